//! How many approvals a human step needs: a quorum of a panel (`quorum = { approve = 2, of = 3 }`,
//! or `quorum = 2` of everyone who may decide), and two approvals by different persons above an
//! amount (`two_approvals_above = { amount = "/input/amount", above = "50000.00" }`).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Approvals a human step needs, from a panel of `of` voters (everyone who may decide the
/// step's role, less the submitter, when not given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quorum {
    pub approve: u32,
    pub of: Option<u32>,
}

impl Quorum {
    /// One decision decides.
    pub const SINGLE: Quorum = Quorum {
        approve: 1,
        of: None,
    };
}

/// Above `above` (read from the instance's data at the JSON pointer `amount`), a step needs
/// two approvals by different persons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DualApproval {
    pub amount: String,
    pub above: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawQuorum {
    Count(u32),
    Panel { approve: u32, of: u32 },
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawDualApproval {
    amount: String,
    above: String,
}

type Problems = Vec<(&'static str, String)>;

pub(crate) fn quorum(raw: Option<&RawQuorum>, problems: &mut Problems) -> Quorum {
    let q = match raw {
        None => return Quorum::SINGLE,
        Some(RawQuorum::Count(n)) => Quorum {
            approve: *n,
            of: None,
        },
        Some(RawQuorum::Panel { approve, of }) => Quorum {
            approve: *approve,
            of: Some(*of),
        },
    };
    if q.approve == 0 {
        problems.push(("bad-quorum", "quorum must be at least 1".to_owned()));
    }
    if let Some(of) = q.of.filter(|of| *of < q.approve) {
        problems.push((
            "bad-quorum",
            format!(
                "a quorum of {} cannot be reached by a panel of {of}",
                q.approve
            ),
        ));
    }
    q
}

pub(crate) fn dual_approval(
    raw: Option<&RawDualApproval>,
    problems: &mut Problems,
) -> Option<DualApproval> {
    let raw = raw?;
    if !raw.amount.starts_with('/') {
        problems.push((
            "bad-dual-approval",
            format!(
                "`two_approvals_above.amount` must be a JSON pointer such as `/input/amount`, not `{}`",
                raw.amount
            ),
        ));
        return None;
    }
    match Decimal::from_str(raw.above.trim()) {
        Ok(above) if above >= Decimal::ZERO => Some(DualApproval {
            amount: raw.amount.clone(),
            above,
        }),
        _ => {
            problems.push((
                "bad-dual-approval",
                format!(
                    "`two_approvals_above.above` must be a non-negative amount such as \"50000.00\", not `{}`",
                    raw.above
                ),
            ));
            None
        }
    }
}
