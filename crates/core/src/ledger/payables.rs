//! Payables: what is owed to a partner, followed through the postings that name it. A payable
//! is set aside by `reserve` (less what a `release` gives back) and paid by `consume`; its
//! status follows from those sums, so it is never stored apart from the postings.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::Movement;

/// One posting that names a payable, as the record holds it.
#[derive(Debug, Clone)]
pub struct PayableLine<'a> {
    pub payable: &'a str,
    pub account: &'a str,
    pub movement: Movement,
    pub amount: Decimal,
    pub currency: &'a str,
    pub instance_id: &'a str,
    pub at: DateTime<Utc>,
}

/// A payable's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayableStatus {
    pub payable: String,
    pub account: String,
    pub instance_id: String,
    pub currency: String,
    /// Set aside for it: Σ reserve − Σ release.
    pub owed: Decimal,
    /// Paid out: Σ consume.
    pub paid: Decimal,
    /// `open` (owed, not yet paid), `paid` (paid in full) or `released` (nothing owed).
    pub status: &'static str,
    pub first_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// Every payable named by `lines` (in the order first seen), with its sums and status.
pub fn payables(lines: &[PayableLine<'_>]) -> Vec<PayableStatus> {
    let mut out: Vec<PayableStatus> = Vec::new();
    for line in lines {
        let i = match out.iter().position(|p| p.payable == line.payable) {
            Some(i) => i,
            None => {
                out.push(PayableStatus {
                    payable: line.payable.to_owned(),
                    account: line.account.to_owned(),
                    instance_id: line.instance_id.to_owned(),
                    currency: line.currency.to_owned(),
                    owed: Decimal::ZERO,
                    paid: Decimal::ZERO,
                    status: "released",
                    first_at: line.at,
                    paid_at: None,
                });
                out.len() - 1
            }
        };
        let p = &mut out[i];
        match line.movement {
            Movement::Reserve => p.owed += line.amount,
            Movement::Release => p.owed -= line.amount,
            Movement::Consume => {
                p.paid += line.amount;
                p.paid_at = Some(line.at);
            }
            Movement::Grant | Movement::Supplement => {}
        }
    }
    for p in &mut out {
        p.status = if p.paid > Decimal::ZERO && p.paid >= p.owed {
            "paid"
        } else if p.owed > p.paid {
            "open"
        } else {
            "released"
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn line(
        payable: &'static str,
        movement: Movement,
        amount: &str,
        day: u32,
    ) -> PayableLine<'static> {
        PayableLine {
            payable,
            account: "nre:P-1:NRE-7",
            movement,
            amount: amount.parse().expect("amount"),
            currency: "CNY",
            instance_id: "i-1",
            at: Utc
                .with_ymd_and_hms(2026, 3, day, 2, 0, 0)
                .single()
                .expect("time"),
        }
    }

    #[test]
    fn a_payable_is_open_until_consumed_and_released_when_given_back() {
        let got = payables(&[
            line("nre:i-1:1", Movement::Reserve, "30.00", 1),
            line("nre:i-1:2", Movement::Reserve, "70.00", 2),
            line("nre:i-1:1", Movement::Consume, "30.00", 3),
            line("mdf:i-2", Movement::Reserve, "5.00", 4),
            line("mdf:i-2", Movement::Release, "5.00", 5),
        ]);
        let view: Vec<(&str, &str, String, String)> = got
            .iter()
            .map(|p| {
                (
                    p.payable.as_str(),
                    p.status,
                    p.owed.to_string(),
                    p.paid.to_string(),
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("nre:i-1:1", "paid", "30.00".to_owned(), "30.00".to_owned()),
                ("nre:i-1:2", "open", "70.00".to_owned(), "0".to_owned()),
                ("mdf:i-2", "released", "0.00".to_owned(), "0".to_owned()),
            ]
        );
        assert_eq!(
            got[0].paid_at,
            Some(
                Utc.with_ymd_and_hms(2026, 3, 3, 2, 0, 0)
                    .single()
                    .expect("t")
            )
        );
    }
}
