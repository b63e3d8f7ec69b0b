//! The deterministic core of the simulated business-verification provider.

use super::*;

/// Smallest micro-deposit, ¥0.01 (004:3100).
pub const MICRO_DEPOSIT_MIN: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// Largest micro-deposit, ¥0.99 (004:3100).
pub const MICRO_DEPOSIT_MAX: Decimal = Decimal::from_parts(99, 0, 0, false, 2);

/// The amount the simulated provider "transfers" to a company's bank account.
///
/// Deterministic so that a retried or replayed step sends the same amount and tests can know
/// it; `salt` is a per-programme secret so that a partner cannot derive the amount from its
/// public USCC. The USCC is normalised (trimmed, upper-case) first.
#[must_use]
pub fn micro_deposit_amount(uscc: &str, salt: &str) -> Decimal {
    let mut hasher = Sha256::new();
    hasher.update(b"partnerflow/micro-deposit/v1\0");
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(uscc.trim().to_ascii_uppercase().as_bytes());
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    // 99 possible amounts; the modulo bias of 2^64 mod 99 is far below anything observable.
    let fen = 1 + u64::from_be_bytes(head) % 99;
    Decimal::from_i128_with_scale(i128::from(fen), 2)
}

/// Attempts at entering the micro-deposit amount; stored with the instance between attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroDepositCheck {
    /// Wrong entries so far.
    pub attempts_used: u32,
    /// Set on the last allowed wrong entry; only a support ticket unlocks (004:3134).
    pub locked: bool,
    /// Set on a correct entry, so a repeated confirmation cannot use up attempts.
    pub verified: bool,
}

/// What one confirmation attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DepositOutcome {
    /// The amount matched; business verification can proceed.
    Verified,
    /// Wrong amount; the partner may try again.
    Retry {
        /// Wrong entries still allowed before the check locks.
        attempts_left: u32,
    },
    /// No more attempts (now or already); a ticket is needed.
    Locked,
}

impl MicroDepositCheck {
    /// Records one entry. Amounts compare by value (`0.5` equals `0.50`). A locked check stays
    /// locked and consumes nothing; `max_attempts` of 0 is treated as 1.
    pub fn confirm(
        &mut self,
        expected: Decimal,
        entered: Decimal,
        max_attempts: u32,
    ) -> DepositOutcome {
        if self.verified {
            return DepositOutcome::Verified;
        }
        if self.locked {
            return DepositOutcome::Locked;
        }
        if entered == expected {
            self.verified = true;
            return DepositOutcome::Verified;
        }
        self.attempts_used = self.attempts_used.saturating_add(1);
        let max_attempts = max_attempts.max(1);
        if self.attempts_used >= max_attempts {
            self.locked = true;
            DepositOutcome::Locked
        } else {
            DepositOutcome::Retry {
                attempts_left: max_attempts - self.attempts_used,
            }
        }
    }
}
