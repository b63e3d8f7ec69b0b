//! The money ledger shared by MDF, NRE and rebates: append-only postings on accounts, each
//! account's balance kept per bucket. A posting is data the state machine produces; the store
//! applies it to the account's balance, locked in the transition's transaction, with
//! [`Balance::apply`], so a rule that two instances cannot both pass (a quota) is checked
//! against the one current balance. Corrections are postings too (a release reverses a
//! reservation), never edits.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// What a posting does to its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Movement {
    /// The account's quota for its window (an MDF tier's allowance, an NRE agreed total).
    Grant,
    /// Extra quota granted on top.
    Supplement,
    /// Set aside for an item under way; refused when the account cannot cover it.
    Reserve,
    /// A reservation given back (a revoked, rejected or expired item, a lower actual amount).
    Release,
    /// A reservation paid out.
    Consume,
}

impl Movement {
    pub fn label(self) -> &'static str {
        match self {
            Movement::Grant => "grant",
            Movement::Supplement => "supplement",
            Movement::Reserve => "reserve",
            Movement::Release => "release",
            Movement::Consume => "consume",
        }
    }
}

/// One posting, as the state machine asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: String,
    pub movement: Movement,
    pub amount: Money,
    /// The input field the amount came from, for the refusal's message.
    pub field: String,
    /// The payable the posting belongs to (`mdf:<instance>`, `nre:<instance>:<n>`), when it
    /// sets aside or pays out an amount owed to the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payable: Option<String>,
}

/// An account's balance, per bucket. available = quota + supplements − reserved − consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub currency: Currency,
    pub quota: Decimal,
    pub supplements: Decimal,
    pub reserved: Decimal,
    pub consumed: Decimal,
}

/// Why a posting was refused. Nothing of the transition is kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("{field}: {amount} exceeds what account {account} has available ({available})")]
    Insufficient {
        account: String,
        field: String,
        amount: Decimal,
        available: Decimal,
    },
    #[error("{field}: {amount} is more than account {account} holds reserved ({reserved})")]
    NotReserved {
        account: String,
        field: String,
        amount: Decimal,
        reserved: Decimal,
    },
    #[error("{field}: amounts on account {account} are positive, not {amount}")]
    NotPositive {
        account: String,
        field: String,
        amount: Decimal,
    },
    #[error("{field}: account {account} is kept in {account_currency:?}, not {currency:?}")]
    Currency {
        account: String,
        field: String,
        account_currency: Currency,
        currency: Currency,
    },
}

impl LedgerError {
    /// The refused field, as a validation error names it.
    pub fn field_error(&self) -> crate::validation::FieldError {
        let (field, rule) = match self {
            LedgerError::Insufficient { field, .. } => (field, "available"),
            LedgerError::NotReserved { field, .. } => (field, "reserved"),
            LedgerError::NotPositive { field, .. } => (field, "positive"),
            LedgerError::Currency { field, .. } => (field, "currency"),
        };
        crate::validation::FieldError::new(field, rule, self.to_string())
    }
}

impl Balance {
    pub fn available(&self) -> Decimal {
        self.quota + self.supplements - self.reserved - self.consumed
    }

    /// The balance after `p`, or why `p` is refused.
    pub fn apply(mut self, p: &Posting) -> Result<Balance, LedgerError> {
        let amount = p.amount.amount;
        let (account, field) = (p.account.clone(), p.field.clone());
        if amount <= Decimal::ZERO {
            return Err(LedgerError::NotPositive {
                account,
                field,
                amount,
            });
        }
        if p.amount.currency != self.currency {
            return Err(LedgerError::Currency {
                account,
                field,
                account_currency: self.currency,
                currency: p.amount.currency,
            });
        }
        match p.movement {
            Movement::Grant => self.quota += amount,
            Movement::Supplement => self.supplements += amount,
            Movement::Reserve => {
                let available = self.available();
                if amount > available {
                    return Err(LedgerError::Insufficient {
                        account,
                        field,
                        amount,
                        available,
                    });
                }
                self.reserved += amount;
            }
            Movement::Release | Movement::Consume => {
                if amount > self.reserved {
                    return Err(LedgerError::NotReserved {
                        account,
                        field,
                        amount,
                        reserved: self.reserved,
                    });
                }
                self.reserved -= amount;
                if p.movement == Movement::Consume {
                    self.consumed += amount;
                }
            }
        }
        Ok(self)
    }
}

mod payables;
pub use payables::{PayableLine, PayableStatus, payables};

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn post(movement: Movement, amount: &str) -> Posting {
        Posting {
            account: "mdf:P-1".to_owned(),
            movement,
            amount: Money::cny(Decimal::from_str(amount).expect("amount")),
            field: "budget".to_owned(),
            payable: None,
        }
    }

    fn run(postings: &[Posting]) -> Result<Balance, LedgerError> {
        postings
            .iter()
            .try_fold(Balance::default(), |b, p| b.apply(p))
    }

    #[test]
    fn reserve_release_consume_keep_the_invariant() {
        let b = run(&[
            post(Movement::Grant, "50000.00"),
            post(Movement::Supplement, "10000.00"),
            post(Movement::Reserve, "30000.00"),
            post(Movement::Release, "5000.00"),
            post(Movement::Consume, "25000.00"),
        ])
        .expect("balance");
        assert_eq!(b.reserved, Decimal::ZERO);
        assert_eq!(b.consumed, Decimal::from(25000));
        assert_eq!(b.available(), Decimal::from(35000));
        assert_eq!(
            b.available(),
            b.quota + b.supplements - b.reserved - b.consumed
        );
    }

    #[test]
    fn a_reservation_above_the_available_amount_is_refused_to_the_fen() {
        assert!(
            run(&[
                post(Movement::Grant, "50000.00"),
                post(Movement::Reserve, "50000.00")
            ])
            .is_ok()
        );
        assert!(matches!(
            run(&[
                post(Movement::Grant, "50000.00"),
                post(Movement::Reserve, "50000.01")
            ]),
            Err(LedgerError::Insufficient { .. })
        ));
    }

    #[test]
    fn nothing_is_released_or_consumed_that_was_not_reserved_and_amounts_are_positive() {
        assert!(matches!(
            run(&[
                post(Movement::Grant, "100.00"),
                post(Movement::Consume, "1.00")
            ]),
            Err(LedgerError::NotReserved { .. })
        ));
        assert!(matches!(
            run(&[post(Movement::Grant, "-1.00")]),
            Err(LedgerError::NotPositive { .. })
        ));
    }
}
