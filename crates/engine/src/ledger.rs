//! Reading the ledger: an account with its postings, and a partner's accounts with their
//! postings, payables and payments.

use partnerflow_core::ledger::{Balance, Movement, PayableLine, PayableStatus, payables};
use partnerflow_store::ledger::{self, Entry};
use serde::Serialize;

use crate::engine::{Engine, Result};

/// A partner's money: each account's balance, every posting (with the instance and step that
/// caused it), what is owed to the partner and what was paid.
#[derive(Debug, Clone, Serialize)]
pub struct PartnerLedger {
    pub partner: String,
    pub accounts: Vec<AccountBalance>,
    pub postings: Vec<Entry>,
    pub payables: Vec<PayableStatus>,
    /// The postings that paid a payable out, oldest first.
    pub payments: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountBalance {
    pub account: String,
    #[serde(flatten)]
    pub balance: Balance,
    pub available: rust_decimal::Decimal,
}

fn movement(label: &str) -> Option<Movement> {
    serde_json::from_value(serde_json::Value::String(label.to_owned())).ok()
}

impl Engine {
    /// An account's balance and its postings, oldest first.
    pub async fn ledger_account(&self, account: &str) -> Result<(Balance, Vec<Entry>)> {
        let mut conn = self.conn().await?;
        let balance = ledger::balance(&mut conn, account).await?;
        let entries = ledger::entries(&mut conn, account).await?;
        Ok((balance, entries))
    }

    /// A partner's accounts, postings, payables and payments.
    pub async fn partner_ledger(&self, partner: &str) -> Result<PartnerLedger> {
        let mut conn = self.conn().await?;
        let balances = ledger::accounts_of(&mut conn, partner).await?;
        let mut postings = Vec::new();
        for (account, _) in &balances {
            postings.extend(ledger::entries(&mut conn, account).await?);
        }
        postings.sort_by_key(|e| e.id);
        let lines: Vec<PayableLine<'_>> = postings
            .iter()
            .filter_map(|e| {
                Some(PayableLine {
                    payable: e.payable.as_deref()?,
                    account: &e.account,
                    movement: movement(&e.movement)?,
                    amount: e.amount,
                    currency: &e.currency,
                    instance_id: &e.instance_id,
                    at: e.at,
                })
            })
            .collect();
        let payables = payables(&lines);
        let payments = postings
            .iter()
            .filter(|e| e.payable.is_some() && e.movement == Movement::Consume.label())
            .cloned()
            .collect();
        let accounts = balances
            .into_iter()
            .map(|(account, balance)| AccountBalance {
                account,
                available: balance.available(),
                balance,
            })
            .collect();
        Ok(PartnerLedger {
            partner: partner.to_owned(),
            accounts,
            postings,
            payables,
            payments,
        })
    }
}
