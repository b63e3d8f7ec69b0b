//! Ledger postings a definition asks for, as data: on a step's entry (`post` of the step) or on
//! a transition (`post` of `on.<outcome>`), each `{ movement, account, amount }` where the
//! account is a template (`{partner}` is the instance's partner, `{/input/quota_account}` a
//! text of the instance's data) and the amount a JSON pointer into the instance's data
//! (`/input/budget`). A posting that sets aside or pays out what is owed to the partner names
//! its payable, a template like the account's (`payable = "mdf:{instance}"`).

use serde::{Deserialize, Serialize};

use crate::ledger::Movement;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostingSpec {
    pub movement: Movement,
    pub account: String,
    pub amount: String,
    /// Template of the payable the posting belongs to (`mdf:{instance}`), if any.
    pub payable: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPosting {
    movement: Movement,
    account: String,
    amount: String,
    payable: Option<String>,
}

pub(crate) fn postings(
    raw: &[RawPosting],
    problems: &mut Vec<(&'static str, String)>,
) -> Vec<PostingSpec> {
    raw.iter()
        .filter_map(|p| {
            if !p.amount.starts_with('/') {
                problems.push((
                    "bad-posting",
                    format!(
                        "posting amount must be a JSON pointer such as `/input/budget`, not `{}`",
                        p.amount
                    ),
                ));
                return None;
            }
            if p.account.trim().is_empty() {
                problems.push(("bad-posting", "a posting needs an account".to_owned()));
                return None;
            }
            if p.payable.as_ref().is_some_and(|t| t.trim().is_empty()) {
                problems.push((
                    "bad-posting",
                    "a posting's payable must not be blank".to_owned(),
                ));
                return None;
            }
            Some(PostingSpec {
                movement: p.movement,
                account: p.account.clone(),
                amount: p.amount.clone(),
                payable: p.payable.clone(),
            })
        })
        .collect()
}
