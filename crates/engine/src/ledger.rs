//! Reading the ledger: an account with its postings, and a partner's accounts with their
//! postings, payables and payments.

use partnerflow_core::ledger::{Balance, Movement, PayableLine, PayableStatus, Posting, payables};
use partnerflow_core::money::Money;
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

/// An account whose stored balance is not what its postings add up to, or breaks a rule.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerFinding {
    pub account: String,
    pub stored: Balance,
    /// The balance its postings add up to, replayed in order (`None` when a posting could not
    /// have been accepted in that order).
    pub replayed: Option<Balance>,
    pub problem: String,
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

    /// Replays every account's postings and compares the result with the stored balance: for
    /// every account, quota + supplements = available + reserved + consumed with no bucket
    /// below zero, exactly as its postings say. Empty when the ledger holds together.
    pub async fn verify_ledger(&self) -> Result<Vec<LedgerFinding>> {
        let mut conn = self.conn().await?;
        let mut findings = Vec::new();
        for (account, stored) in ledger::all_accounts(&mut conn).await? {
            let entries = ledger::entries(&mut conn, &account).await?;
            let mut replayed = Some(Balance::default());
            let mut problem = None;
            for e in &entries {
                let (Some(b), Some(m)) = (replayed, movement(&e.movement)) else {
                    problem.get_or_insert_with(|| {
                        format!("posting {} has movement `{}`", e.id, e.movement)
                    });
                    replayed = None;
                    break;
                };
                let posting = Posting {
                    account: account.clone(),
                    movement: m,
                    amount: Money::cny(e.amount),
                    field: format!("posting {}", e.id),
                    payable: e.payable.clone(),
                };
                match b.apply(&posting) {
                    Ok(next) => replayed = Some(next),
                    Err(refused) => {
                        problem = Some(format!(
                            "posting {} could not have been accepted: {refused}",
                            e.id
                        ));
                        replayed = None;
                        break;
                    }
                }
            }
            if problem.is_none() && replayed != Some(stored) {
                problem = Some("the stored balance differs from its postings".to_owned());
            }
            let negative = [
                stored.quota,
                stored.supplements,
                stored.reserved,
                stored.consumed,
                stored.available(),
            ]
            .iter()
            .any(|x| *x < rust_decimal::Decimal::ZERO);
            if problem.is_none() && negative {
                problem = Some("a bucket is below zero".to_owned());
            }
            if let Some(problem) = problem {
                findings.push(LedgerFinding {
                    account,
                    stored,
                    replayed,
                    problem,
                });
            }
        }
        Ok(findings)
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
