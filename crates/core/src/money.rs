//! Money: `rust_decimal` amounts with their currency, rounded once per line to 0.01 with
//! banker's rounding (the seeds' 2.325 → 2.32).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// An amount in a currency. Arithmetic stays at full precision; round with [`Money::rounded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Currency {
    #[default]
    CNY,
}

impl Money {
    pub fn cny(amount: Decimal) -> Self {
        Money {
            amount,
            currency: Currency::CNY,
        }
    }

    /// Rounded to the fen with MidpointNearestEven, the one rounding rule of the ledger.
    pub fn rounded(self) -> Self {
        Money {
            amount: round_fen(self.amount),
            currency: self.currency,
        }
    }
}

/// Rounds to 0.01 with banker's rounding.
pub fn round_fen(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal literal")
    }

    #[test]
    fn rounds_half_to_even_at_the_fen() {
        assert_eq!(round_fen(d("2.325")), d("2.32"));
        assert_eq!(round_fen(d("2.335")), d("2.34"));
        assert_eq!(round_fen(d("2.3251")), d("2.33"));
        assert_eq!(Money::cny(d("0.005")).rounded().amount, d("0.00"));
    }
}
