//! An instance's life outside its steps' own outcomes: leaving a step (its task, timers and
//! running child go with it), failing (the parent is told), child workflows finishing, and an
//! operator's cancel and resume.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Actor, Effect, Error, Machine, Status, step_has_timers};

/// The outcome a child step follows when its child failed for good.
pub const CHILD_FAILED: &str = "failed";
/// The end status of a cancelled instance, and the outcome a child step follows for it.
pub const CANCELLED: &str = "cancelled";

impl Machine<'_, '_> {
    /// Everything the current step entry holds ends with it: its open task closes with
    /// `outcome`, its timers are cancelled, its wait closes and a child it is waiting for is
    /// cancelled (its own tasks and timers with it).
    pub(super) fn leave(&mut self, outcome: &str) -> Result<(), Error> {
        let had_timers = self
            .state
            .step
            .as_deref()
            .and_then(|id| self.def.step(id))
            .is_some_and(|s| step_has_timers(&s.kind));
        self.state.wait = None;
        if let Some(task) = self.state.task.take() {
            self.out.effects.push(Effect::CloseTask {
                task_id: task.id,
                outcome: outcome.to_owned(),
            });
        }
        if had_timers {
            self.out.effects.push(Effect::CancelTimers {
                seq: self.state.seq,
            });
        }
        if let Some(child_id) = self.state.child.take() {
            self.event(
                "child_cancelled",
                &Actor::system(),
                json!({ "child": child_id, "because": outcome }),
            );
            self.out.effects.push(Effect::CancelChild { child_id });
        }
        Ok(())
    }

    /// Stops the instance for an operator, and tells a waiting parent.
    pub(super) fn fail(&mut self, error: String, payload: Value) {
        self.event("failed", &Actor::system(), payload);
        self.state.status = Status::Failed(error);
        self.tell_parent(CHILD_FAILED);
    }

    /// Tells a waiting parent how this instance ended.
    pub(super) fn tell_parent(&mut self, status: &str) {
        if let Some(parent) = self.state.parent.clone() {
            self.out.effects.push(Effect::NotifyParent {
                parent,
                status: status.to_owned(),
            });
        }
    }

    pub(super) fn child_finished(
        &mut self,
        seq: u64,
        child_id: Uuid,
        status: String,
    ) -> Result<(), Error> {
        if seq != self.state.seq {
            return self.stale();
        }
        self.event(
            "child_finished",
            &Actor::system(),
            json!({ "child": child_id, "status": status }),
        );
        // The child has ended by itself: nothing of it is left to cancel.
        if self.state.child == Some(child_id) {
            self.state.child = None;
        }
        if !self.current()?.on.contains_key(&status) {
            // The child ended in a way this definition does not handle: stop for an operator
            // rather than refuse, which would undo the child's own ending.
            let error = format!(
                "child ended `{status}`, which step `{}` has no transition for",
                self.current_id()
            );
            self.fail(error.clone(), json!({ "error": error }));
            return Ok(());
        }
        self.follow(&status)
    }

    /// Cancels a running instance: its step is left (task, timers, child), it ends
    /// `cancelled`, and a waiting parent is told unless the parent is the one cancelling.
    pub(super) fn cancel(
        &mut self,
        actor: &Actor,
        reason: &str,
        by_parent: bool,
    ) -> Result<(), Error> {
        if self.state.status != Status::Running {
            if by_parent {
                return self.stale();
            }
            return Err(Error::NotRunning(self.state.status.label().to_owned()));
        }
        self.leave(CANCELLED)?;
        self.event(
            "cancelled",
            actor,
            json!({ "step": self.state.step, "reason": reason }),
        );
        self.state.status = Status::Finished(CANCELLED.to_owned());
        if !by_parent {
            self.tell_parent(CANCELLED);
        }
        Ok(())
    }

    /// Resumes a failed instance by entering its failed step again (a new entry, so nothing
    /// addressed to the failed one applies).
    pub(super) fn resume(&mut self, actor: &Actor) -> Result<(), Error> {
        let Status::Failed(error) = &self.state.status else {
            return Err(Error::NotFailed(self.state.status.label().to_owned()));
        };
        let error = error.clone();
        let step = self.current_id();
        self.leave("resumed")?;
        self.event(
            "resumed",
            actor,
            json!({ "step": step, "failed_with": error }),
        );
        self.state.status = Status::Running;
        self.enter(&step)
    }
}

#[cfg(test)]
mod tests;
