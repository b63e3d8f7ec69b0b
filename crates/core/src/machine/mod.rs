//! The instance state machine: `apply(definition, state, command, ctx)` → new state, audit
//! events and effects. No I/O: the engine persists the result in one transaction and carries
//! the effects out afterwards, so a command applied twice (a duplicate delivery, a replayed
//! callback) is recognised here by its step sequence number and changes nothing.

mod effects;
mod human;
mod lifecycle;
mod postings;
mod standing;
mod state;
mod votes;

use serde_json::{Value, json};

use crate::calendar::Due;
use crate::definition::{NotifySpec, Step, StepKind, TimerSpec, WorkflowDefinition};
pub use effects::{Effect, Event, TimerKind};
pub use lifecycle::{CANCELLED, CHILD_FAILED};
pub use state::*;

/// Applies `cmd` to `state` (mutated in place on success; callers apply to a copy).
pub fn apply(
    def: &WorkflowDefinition,
    state: &mut InstanceState,
    cmd: Command,
    ctx: &mut Ctx<'_>,
) -> Result<Applied, Error> {
    let mut m = Machine {
        def,
        state,
        ctx,
        out: Applied {
            changed: true,
            ..Applied::default()
        },
    };
    m.command(cmd)?;
    Ok(m.out)
}

struct Machine<'a, 'c> {
    def: &'a WorkflowDefinition,
    state: &'a mut InstanceState,
    ctx: &'a mut Ctx<'c>,
    out: Applied,
}

impl Machine<'_, '_> {
    fn command(&mut self, cmd: Command) -> Result<(), Error> {
        if let Command::Start { input, actor } = cmd {
            if self.state.step.is_some() {
                return Err(Error::AlreadyStarted);
            }
            self.event(
                "started",
                &actor,
                json!({ "workflow": self.def.id, "version": self.def.version }),
            );
            self.state.data.insert("input".to_owned(), input);
            return self.enter(&self.def.start.clone());
        }
        match cmd {
            Command::Cancel {
                actor,
                reason,
                by_parent,
            } => return self.cancel(&actor, &reason, by_parent),
            Command::Resume { actor } => return self.resume(&actor),
            _ => {}
        }
        if self.state.status != Status::Running {
            return match cmd {
                Command::Decide { task_id, .. } | Command::Reassign { task_id, .. } => {
                    Err(Error::TaskClosed(task_id))
                }
                Command::ExternalEvent { .. } => {
                    Err(Error::NotRunning(self.state.status.label().to_owned()))
                }
                _ => self.stale(),
            };
        }
        match cmd {
            Command::Start { .. } => Err(Error::AlreadyStarted),
            Command::Cancel { .. } | Command::Resume { .. } => self.stale(),
            Command::StepCompleted {
                seq,
                outcome,
                output,
            } => {
                if seq != self.state.seq {
                    return self.stale();
                }
                let step = self.current_id();
                self.event(
                    "step_completed",
                    &Actor::system(),
                    json!({ "step": step, "outcome": outcome, "output": output }),
                );
                self.put_step_output(&step, output);
                self.follow(&outcome)
            }
            Command::StepFailed { seq, error } => {
                if seq != self.state.seq {
                    return self.stale();
                }
                let step = self.current_id();
                if self.current()?.on.contains_key("failed") {
                    self.event(
                        "step_failed",
                        &Actor::system(),
                        json!({ "step": step, "error": error }),
                    );
                    return self.follow("failed");
                }
                self.fail(error.clone(), json!({ "step": step, "error": error }));
                Ok(())
            }
            Command::Decide {
                task_id,
                decision,
                reason,
                actor,
                data,
                evidence,
            } => self.decide(task_id, decision, reason, actor, data, evidence),
            Command::Reassign {
                task_id,
                person,
                actor,
            } => self.reassign(task_id, person, actor),
            Command::ExternalEvent {
                name,
                correlation,
                payload,
                actor,
            } => self.external_event(name, correlation, payload, actor),
            Command::TimerFired { seq, timer } => {
                if seq != self.state.seq {
                    return self.stale();
                }
                self.timer(timer)
            }
            Command::ChildFinished {
                seq,
                child_id,
                status,
            } => self.child_finished(seq, child_id, status),
        }
    }

    /// An external event: the one the current `wait_event` step waits for (it names the open
    /// wait), or one of the step's interrupts (it names the step entry), which leaves the step
    /// by `on.<event>`.
    fn external_event(
        &mut self,
        name: String,
        correlation: String,
        payload: Value,
        actor: Actor,
    ) -> Result<(), Error> {
        let step = self.current()?;
        let (replaces_input, open, outcome) = match &step.kind {
            StepKind::WaitEvent {
                event,
                replaces_input,
                ..
            } if *event == name => (
                *replaces_input,
                self.open_correlation(),
                "received".to_owned(),
            ),
            _ if step.interrupts.contains(&name) => {
                (false, self.state.seq.to_string(), name.clone())
            }
            _ if step.accepts.iter().any(|a| a.event == name) => {
                return self.record_event(name, correlation, payload, actor);
            }
            _ => return Err(Error::EventNotExpected(name)),
        };
        let (name, correlation) = Self::correlated(name, correlation, open)?;
        self.event(
            "event_received",
            &actor,
            json!({ "event": name, "correlation": correlation, "payload": payload }),
        );
        if replaces_input {
            // Notifications from here on go to the contact the new input names.
            if let Some(party) = party_in(&payload) {
                self.state.party = Some(party);
            }
            self.state.data.insert("input".to_owned(), payload.clone());
        }
        let events = self.state.data.entry("events").or_insert_with(|| json!({}));
        if let Some(map) = events.as_object_mut() {
            map.insert(name, payload);
        }
        self.follow(&outcome)
    }

    /// An event the step accepts without leaving it: audited and kept under `/events/<name>`
    /// (a later one replaces it); the step, its wait and its timers stay as they are.
    fn record_event(
        &mut self,
        name: String,
        correlation: String,
        payload: Value,
        actor: Actor,
    ) -> Result<(), Error> {
        let open = self.state.seq.to_string();
        let (name, correlation) = Self::correlated(name, correlation, open)?;
        self.event(
            "event_recorded",
            &actor,
            json!({ "event": name, "correlation": correlation, "payload": payload, "step": self.state.step }),
        );
        let events = self.state.data.entry("events").or_insert_with(|| json!({}));
        if let Some(map) = events.as_object_mut() {
            map.insert(name, payload);
        }
        Ok(())
    }

    /// The event and its correlation id, when it names the open wait; `WaitClosed` otherwise.
    fn correlated(
        name: String,
        correlation: String,
        open: String,
    ) -> Result<(String, String), Error> {
        if correlation == open {
            Ok((name, correlation))
        } else {
            Err(Error::WaitClosed {
                event: name,
                correlation,
                open,
            })
        }
    }

    /// The correlation id of the open wait (the entry's seq for a wait recorded without one).
    fn open_correlation(&self) -> String {
        self.state
            .wait
            .as_ref()
            .map_or_else(|| self.state.seq.to_string(), |w| w.correlation.clone())
    }

    fn stale(&mut self) -> Result<(), Error> {
        self.out.changed = false;
        Ok(())
    }

    fn current_id(&self) -> String {
        self.state.step.clone().unwrap_or_default()
    }

    fn current(&self) -> Result<&Step, Error> {
        let id = self.current_id();
        self.def.step(&id).ok_or(Error::MissingStep(id))
    }

    /// A value of the instance's data as a correlation id (strings as they are, numbers in
    /// decimal); `None` when the pointer finds nothing usable.
    pub(super) fn state_pointer(&self, pointer: &str) -> Option<String> {
        match self.state.value_at(pointer)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn put_step_output(&mut self, step: &str, output: Value) {
        if output.is_null() {
            return;
        }
        let steps = self.state.data.entry("steps").or_insert_with(|| json!({}));
        if let Some(map) = steps.as_object_mut() {
            map.insert(step.to_owned(), output);
        }
    }

    fn event(&mut self, kind: &str, actor: &Actor, payload: Value) {
        self.out.events.push(Event {
            kind: kind.to_owned(),
            actor: actor.id.clone(),
            at: self.ctx.now,
            payload,
        });
    }

    /// Leaves the current step by `outcome`.
    fn follow(&mut self, outcome: &str) -> Result<(), Error> {
        let step = self.current()?;
        let transition = step
            .on
            .get(outcome)
            .ok_or_else(|| Error::NoTransition {
                step: step.id.clone(),
                outcome: outcome.to_owned(),
            })?
            .clone();
        self.leave(outcome)?;
        self.post(&transition.post)?;
        self.record_standing(&transition.record)?;
        self.notify_all(&transition.notify, outcome);
        self.enter(&transition.to)
    }

    fn notify_all(&mut self, specs: &[NotifySpec], cause: &str) {
        for (i, spec) in specs.iter().enumerate() {
            let key = format!(
                "{}:{}:{cause}:{i}:{}",
                self.state.id, self.state.seq, spec.template
            );
            self.out.effects.push(Effect::Notify {
                spec: spec.clone(),
                key,
            });
        }
    }

    fn due(&mut self, spec: TimerSpec) -> Due {
        match spec {
            TimerSpec::After(span) => span.after(self.ctx.now, None, self.ctx.calendar),
            TimerSpec::Annual { month, day, time } => Due {
                at: self
                    .ctx
                    .calendar
                    .next_annual(self.ctx.now, month, day, time),
                beyond_calendar: false,
            },
        }
    }

    fn schedule(&mut self, kind: TimerKind, due: Due) {
        if due.beyond_calendar {
            self.event(
                "calendar_exceeded",
                &Actor::system(),
                json!({ "timer": kind, "due_at": due.at }),
            );
        }
        self.out.effects.push(Effect::ScheduleTimer {
            seq: self.state.seq,
            kind,
            due,
        });
    }

    fn enter(&mut self, id: &str) -> Result<(), Error> {
        let step = self
            .def
            .step(id)
            .ok_or_else(|| Error::MissingStep(id.to_owned()))?
            .clone();
        self.state.seq += 1;
        self.state.step = Some(id.to_owned());
        let seq = self.state.seq;
        self.event(
            "step_entered",
            &Actor::system(),
            json!({ "step": id, "seq": seq }),
        );
        self.post(&step.post)?;
        self.notify_all(&step.notify, "enter");
        match &step.kind {
            StepKind::Automated { handler, .. } => {
                self.out.effects.push(Effect::RunStep {
                    seq,
                    step: id.to_owned(),
                    handler: handler.clone(),
                });
            }
            StepKind::Human(h) => self.open_task(&step, h),
            StepKind::Timer { fires } => {
                let due = self.due(*fires);
                self.schedule(TimerKind::Elapsed, due);
            }
            StepKind::WaitEvent {
                event,
                correlate,
                timeout,
                ..
            } => {
                let correlation = correlate
                    .as_deref()
                    .and_then(|p| self.state_pointer(p))
                    .unwrap_or_else(|| seq.to_string());
                self.state.wait = Some(OpenWait {
                    step: id.to_owned(),
                    event: event.clone(),
                    correlation: correlation.clone(),
                });
                self.event(
                    "wait_opened",
                    &Actor::system(),
                    json!({ "step": id, "event": event, "correlation": correlation }),
                );
                if let Some(t) = timeout {
                    let due = self.due(*t);
                    self.schedule(TimerKind::Timeout, due);
                }
            }
            StepKind::Child { workflow, deadline } => {
                let child_id = (self.ctx.new_id)();
                let input = json!({
                    "parent": self.state.data.get("input").cloned().unwrap_or(Value::Null),
                    "steps": self.state.data.get("steps").cloned().unwrap_or(Value::Null),
                });
                self.state.child = Some(child_id);
                self.out.effects.push(Effect::StartChild {
                    child_id,
                    workflow: workflow.clone(),
                    business_key: format!("{}/{id}/{seq}", self.state.business_key),
                    input,
                    parent: ParentRef {
                        instance_id: self.state.id,
                        seq,
                    },
                });
                self.event(
                    "child_started",
                    &Actor::system(),
                    json!({ "child": child_id, "workflow": workflow }),
                );
                if let Some(t) = deadline {
                    let due = self.due(*t);
                    self.schedule(TimerKind::Timeout, due);
                }
            }
            StepKind::End { status } => {
                self.state.status = Status::Finished(status.clone());
                self.event("finished", &Actor::system(), json!({ "status": status }));
                self.tell_parent(status);
            }
        }
        Ok(())
    }
}

/// Whether entering a step of this kind schedules timers that leaving it must cancel.
fn step_has_timers(kind: &StepKind) -> bool {
    match kind {
        StepKind::Human(_) | StepKind::Timer { .. } => true,
        StepKind::WaitEvent { timeout, .. } => timeout.is_some(),
        StepKind::Child { deadline, .. } => deadline.is_some(),
        StepKind::Automated { .. } | StepKind::End { .. } => false,
    }
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
