//! Votes on a human step that needs more than one approval: each person votes once, the step
//! follows `approve` when approvals reach what is needed and `reject` only once enough
//! rejections make that impossible; every vote is audited.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::{Actor, Error, Machine};
use crate::definition::HumanStep;

/// Where a vote leaves the step.
pub(super) enum Tally {
    /// Not decided yet: the task stays open for the other voters.
    Open,
    Approved,
    Rejected,
}

impl Machine<'_, '_> {
    /// Approvals the step needs for this instance: its quorum, and at least two when the
    /// amount it approves lies above its dual-approval threshold (or cannot be read: money is
    /// never approved on a guess).
    pub(super) fn approvals_needed(&self, h: &HumanStep) -> u32 {
        let dual = h.dual_approval.as_ref().is_some_and(|d| {
            self.state_pointer(&d.amount)
                .and_then(|v| Decimal::from_str(&v).ok())
                .is_none_or(|amount| amount > d.above)
        });
        if dual {
            h.quorum.approve.max(2)
        } else {
            h.quorum.approve
        }
    }

    /// Whether this step's approvals and rejections are votes rather than single decisions.
    pub(super) fn is_vote(&self, h: &HumanStep, decision: &str) -> bool {
        (decision == "approve" || decision == "reject")
            && (self.approvals_needed(h) > 1 || h.quorum.of.is_some())
    }

    /// Records `actor`'s vote on the open task and tallies it.
    pub(super) fn vote(
        &mut self,
        task_id: Uuid,
        h: &HumanStep,
        actor: &Actor,
        approve: bool,
    ) -> Result<Tally, Error> {
        let needed = self.approvals_needed(h);
        let panel = h.quorum.of.unwrap_or_else(|| self.eligible_voters(h));
        let Some(task) = self.state.task.as_mut().filter(|t| t.id == task_id) else {
            return Err(Error::TaskClosed(task_id));
        };
        if task.approvals.contains(&actor.id) || task.rejections.contains(&actor.id) {
            return Err(Error::AlreadyVoted(actor.id.clone()));
        }
        if approve {
            task.approvals.push(actor.id.clone());
        } else {
            task.rejections.push(actor.id.clone());
        }
        let (approvals, rejections) = (task.approvals.len(), task.rejections.len());
        self.event(
            "vote_recorded",
            actor,
            json!({ "task": task_id, "vote": if approve { "approve" } else { "reject" },
                    "approvals": approvals, "rejections": rejections,
                    "needed": needed, "panel": panel }),
        );
        let needed = usize::try_from(needed).unwrap_or(usize::MAX);
        let panel = usize::try_from(panel).unwrap_or(usize::MAX);
        Ok(if approvals >= needed {
            Tally::Approved
        } else if !approve && panel.saturating_sub(rejections) < needed {
            Tally::Rejected
        } else {
            Tally::Open
        })
    }

    /// Everyone the directory lets decide the step's role here, less the submitter when the
    /// step is four-eyes.
    fn eligible_voters(&self, h: &HumanStep) -> u32 {
        let submitter = self.state.submitted_by.as_deref().filter(|_| h.four_eyes);
        let partner = self.state.partner_id.as_deref();
        let n = self
            .ctx
            .directory
            .people
            .iter()
            .filter(|p| Some(p.id.as_str()) != submitter)
            .filter(|p| self.ctx.directory.may_act(&p.id, &h.role, partner))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests;
