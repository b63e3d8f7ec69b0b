//! Human steps: opening a task with its SLA clock, decisions, reminders, escalations and the
//! silence policy.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Actor, Effect, Error, Machine, OpenTask, TimerKind};
use crate::definition::{Channel, HumanStep, NotifySpec, Recipient, SilencePolicy, Step, StepKind};
use crate::span::Span;

impl Machine<'_, '_> {
    pub(super) fn open_task(&mut self, step: &Step, h: &HumanStep) {
        let now = self.ctx.now;
        let cal = self.ctx.calendar;
        let task_id = (self.ctx.new_id)();
        let due = h.sla.after(now, None, cal);
        self.state.task = Some(OpenTask {
            id: task_id,
            due,
            opened_at: now,
            approvals: vec![],
            rejections: vec![],
            assignee: None,
            chained_timers: true,
        });
        self.out.effects.push(Effect::OpenTask {
            task_id,
            seq: self.state.seq,
            step: step.id.clone(),
            role: h.role.clone(),
            due,
        });
        self.event(
            "task_opened",
            &Actor::system(),
            json!({ "task": task_id, "step": step.id, "role": h.role, "due_at": due.at }),
        );
        self.notify_all(
            &[NotifySpec {
                to: Recipient::Assignee,
                template: "task.assigned".to_owned(),
                channels: vec![Channel::Email],
                urgent: false,
            }],
            "task",
        );
        if let Some((kind, due)) = ladder(h, now, cal).into_iter().next() {
            self.schedule(kind, due);
        }
    }

    /// After a rung of a chained task's ladder fired (and the task is still open at the
    /// same step), schedules the one after it.
    fn next_rung(&mut self, fired: &TimerKind, seq: u64) {
        let Some(task) = self.state.task.as_ref().filter(|t| t.chained_timers) else {
            return;
        };
        if self.state.seq != seq || self.state.status != super::Status::Running {
            return;
        }
        let Ok((_, h)) = self.human() else {
            return;
        };
        let rungs = ladder(&h, task.opened_at, self.ctx.calendar);
        let next = rungs
            .iter()
            .position(|(kind, _)| kind == fired)
            .and_then(|i| rungs.get(i + 1).cloned());
        if let Some((kind, due)) = next {
            self.schedule(kind, due);
        }
    }

    fn human(&self) -> Result<(Step, HumanStep), Error> {
        let step = self.current()?.clone();
        match &step.kind {
            StepKind::Human(h) => Ok((step.clone(), h.clone())),
            _ => Err(Error::MissingStep(step.id)),
        }
    }

    pub(super) fn decide(
        &mut self,
        task_id: Uuid,
        decision: String,
        reason: Option<String>,
        actor: Actor,
        data: Value,
        evidence: Option<Value>,
    ) -> Result<(), Error> {
        let Some(task) = self.state.task.clone().filter(|t| t.id == task_id) else {
            return Err(Error::TaskClosed(task_id));
        };
        let (step, h) = self.human()?;
        if !h.decisions.contains(&decision) {
            return Err(Error::UnknownDecision {
                step: step.id,
                decision,
                allowed: h.decisions.join(", "),
            });
        }
        if h.reason_required.contains(&decision)
            && reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(Error::ReasonRequired(decision));
        }
        if !self.ctx.directory.may_act_at(
            &actor.id,
            &h.role,
            self.state.partner_id.as_deref(),
            self.ctx.now,
        ) {
            return Err(Error::RoleMissing {
                actor: actor.id,
                role: h.role,
            });
        }
        if h.four_eyes && self.state.submitted_by.as_deref() == Some(actor.id.as_str()) {
            return Err(Error::OwnItem(actor.id));
        }
        if task.approvals.contains(&actor.id) || task.rejections.contains(&actor.id) {
            return Err(Error::AlreadyVoted(actor.id));
        }
        let data = match &h.validator {
            Some(name) => {
                (self.ctx.validate)(name, &data, self.state).map_err(Error::InvalidData)?
            }
            None => data,
        };
        let mut payload = json!({ "task": task_id, "step": step.id, "decision": decision, "reason": reason, "data": data });
        if let Some(map) = payload.as_object_mut() {
            if let Some(evidence) = evidence {
                map.insert("evidence".to_owned(), evidence);
            }
            if let Some(owner) = self
                .ctx
                .directory
                .on_behalf_of(&actor.id, &h.role, self.ctx.now)
            {
                map.insert("on_behalf_of".to_owned(), json!(owner));
            }
        }
        self.event("decision", &actor, payload);
        let record = json!({ "decision": decision, "reason": reason, "actor": actor.id, "data": data, "at": self.ctx.now });
        if self.is_vote(&h, &decision) {
            match self.vote(task_id, &h, &actor, decision == "approve")? {
                super::votes::Tally::Open => return Ok(()),
                super::votes::Tally::Approved => {
                    self.put_step_output(&step.id, record);
                    return self.follow("approve");
                }
                super::votes::Tally::Rejected => {
                    self.put_step_output(&step.id, record);
                    return self.follow("reject");
                }
            }
        }
        self.put_step_output(&step.id, record);
        self.follow(&decision)
    }

    pub(super) fn reassign(
        &mut self,
        task_id: Uuid,
        person: String,
        actor: Actor,
    ) -> Result<(), Error> {
        let Some(task) = self.state.task.as_mut().filter(|t| t.id == task_id) else {
            return Err(Error::TaskClosed(task_id));
        };
        let from = task.assignee.clone();
        let (step, h) = self.human()?;
        if !self.ctx.directory.may_act_at(
            &person,
            &h.role,
            self.state.partner_id.as_deref(),
            self.ctx.now,
        ) {
            return Err(Error::RoleMissing {
                actor: person,
                role: h.role,
            });
        }
        if let Some(task) = self.state.task.as_mut() {
            task.assignee = Some(person.clone());
        }
        self.out.effects.push(Effect::AssignTask {
            task_id,
            person: person.clone(),
        });
        self.event(
            "task_reassigned",
            &actor,
            json!({ "task": task_id, "step": step.id, "from": from, "to": person }),
        );
        let cause = format!("reassign:{person}");
        self.notify_all(
            &[NotifySpec {
                to: Recipient::Person(person),
                template: "task.assigned".to_owned(),
                channels: vec![Channel::Email],
                urgent: false,
            }],
            &cause,
        );
        Ok(())
    }

    pub(super) fn timer(&mut self, timer: TimerKind) -> Result<(), Error> {
        let seq = self.state.seq;
        self.fire(timer.clone())?;
        if !matches!(timer, TimerKind::Elapsed | TimerKind::Timeout) {
            self.next_rung(&timer, seq);
        }
        Ok(())
    }

    fn fire(&mut self, timer: TimerKind) -> Result<(), Error> {
        let system = Actor::system();
        match timer {
            TimerKind::Elapsed => {
                self.event(
                    "timer_elapsed",
                    &system,
                    json!({ "step": self.current_id() }),
                );
                self.follow("elapsed")
            }
            TimerKind::Timeout => {
                self.event("timed_out", &system, json!({ "step": self.current_id() }));
                self.follow("timeout")
            }
            TimerKind::Remind { index } => {
                let (step, h) = self.human()?;
                self.event(
                    "reminder",
                    &system,
                    json!({ "step": step.id, "index": index, "role": h.role }),
                );
                let spec = NotifySpec {
                    to: Recipient::Assignee,
                    template: "task.reminder".to_owned(),
                    channels: vec![Channel::Email],
                    urgent: false,
                };
                self.notify_all(&[spec], &format!("remind{index}"));
                Ok(())
            }
            TimerKind::Escalate { index, to } => {
                let (step, h) = self.human()?;
                let target = match &to {
                    Recipient::EscalationTarget => self
                        .ctx
                        .directory
                        .escalation_target(&h.role)
                        .map_or(Recipient::ProgrammeDirector, |r| {
                            Recipient::Role(r.to_owned())
                        }),
                    other => other.clone(),
                };
                if let Some(task) = &self.state.task {
                    self.out.effects.push(Effect::EscalateTask {
                        task_id: task.id,
                        level: index + 1,
                    });
                }
                self.event(
                    "escalated",
                    &system,
                    json!({ "step": step.id, "role": h.role, "level": index + 1, "to": target }),
                );
                let spec = NotifySpec {
                    urgent: target == Recipient::ProgrammeDirector,
                    to: target,
                    template: "task.escalated".to_owned(),
                    channels: vec![Channel::Email, Channel::Sms],
                };
                self.notify_all(&[spec], &format!("escalate{index}"));
                Ok(())
            }
            TimerKind::Breach => {
                let (step, h) = self.human()?;
                self.event(
                    "sla_breached",
                    &system,
                    json!({ "step": step.id, "role": h.role }),
                );
                let spec = NotifySpec {
                    to: Recipient::Assignee,
                    template: "task.breached".to_owned(),
                    channels: vec![Channel::Email, Channel::Sms],
                    urgent: true,
                };
                self.notify_all(&[spec], "breach");
                Ok(())
            }
            TimerKind::Silence => {
                let (step, h) = self.human()?;
                match h.silence {
                    SilencePolicy::EscalateOnly => Ok(()),
                    SilencePolicy::AutoExpire => {
                        self.event(
                            "silence_applied",
                            &system,
                            json!({ "step": step.id, "policy": "auto_expire" }),
                        );
                        self.follow("expired")
                    }
                    SilencePolicy::AutoReject => {
                        self.event(
                            "silence_applied",
                            &system,
                            json!({ "step": step.id, "policy": "auto_reject" }),
                        );
                        self.follow("reject")
                    }
                    SilencePolicy::AutoConfirm { decision } => {
                        self.event("silence_applied", &system, json!({ "step": step.id, "policy": "auto_confirm", "decision": decision }));
                        self.follow(&decision)
                    }
                }
            }
        }
    }
}

/// A human step's SLA ladder from the moment its task opened, earliest first (a stable sort:
/// rungs due at the same instant keep the order reminders, escalations, breach, silence).
fn ladder(
    h: &HumanStep,
    opened_at: chrono::DateTime<chrono::Utc>,
    cal: &crate::calendar::BusinessCalendar,
) -> Vec<(TimerKind, crate::calendar::Due)> {
    let at = |span: Span| span.after(opened_at, Some(h.sla), cal);
    let mut rungs: Vec<(TimerKind, crate::calendar::Due)> = Vec::new();
    for (index, span) in h.reminders.iter().enumerate() {
        rungs.push((TimerKind::Remind { index }, at(*span)));
    }
    for (index, e) in h.escalations.iter().enumerate() {
        rungs.push((
            TimerKind::Escalate {
                index,
                to: e.to.clone(),
            },
            at(e.at),
        ));
    }
    rungs.push((TimerKind::Breach, at(h.breach)));
    if h.silence != SilencePolicy::EscalateOnly {
        rungs.push((TimerKind::Silence, h.sla.after(opened_at, None, cal)));
    }
    rungs.sort_by_key(|(_, due)| due.at);
    rungs
}
