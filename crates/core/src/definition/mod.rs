//! Workflow definitions: data in `workflows/*.toml`, validated once at load.
//!
//! A definition is a graph of steps joined by outcome-named transitions. Step kinds are an
//! automated handler, a human task, a timer, a wait for an external event, a child workflow and
//! an end. Programme configuration may override any step field (an SLA, a reminder ladder, a
//! renewal date) without touching the definition file; the override is applied before
//! validation, so an override can never produce an invalid definition.

mod postings;
mod raw;
mod votes;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::NaiveTime;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::span::Span;
pub use postings::PostingSpec;
use raw::{RawDefinition, RawNotify, RawStep, RawTransition};
pub use votes::{DualApproval, Quorum};

/// A definition failed validation. Names the file, the step and the rule.
#[derive(Debug, Clone, thiserror::Error, Serialize, PartialEq, Eq)]
#[error("{file}: {}{rule}: {message}", step.as_ref().map(|s| format!("step `{s}`: ")).unwrap_or_default())]
pub struct DefinitionError {
    /// The file the definition came from.
    pub file: String,
    /// The offending step, when the problem is inside one.
    pub step: Option<String>,
    /// Short rule code: `unknown-target`, `unreachable`, `unknown-handler`, `missing-sla`, …
    pub rule: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

/// A validated workflow definition.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowDefinition {
    pub id: String,
    pub version: u32,
    pub title: String,
    pub start: String,
    /// Validator applied to the start input before anything is stored.
    pub input_validator: Option<String>,
    pub steps: BTreeMap<String, Step>,
    /// What a listing shows of each instance (`activity = "/input/activity/name"`): name →
    /// JSON pointer into the instance's data.
    pub summary: BTreeMap<String, String>,
    /// SHA-256 of the effective definition, so a changed file without a version bump is caught.
    pub fingerprint: String,
    /// The effective TOML (overrides applied): stored so running instances can be rebuilt.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub kind: StepKind,
    /// Notifications sent when the step is entered.
    pub notify: Vec<NotifySpec>,
    /// Ledger postings made when the step is entered.
    pub post: Vec<PostingSpec>,
    /// External events that may end the step whatever its kind (a partner revoking an
    /// application under review), each leaving it by `on.<event>`.
    pub interrupts: Vec<String>,
    /// External events the step records under `/events/<name>` without leaving it (a partner
    /// telling that the activity was held while the claim is awaited), each with the
    /// validator of its payload; correlated, like interrupts, by the step entry.
    pub accepts: Vec<AcceptedEvent>,
    pub on: BTreeMap<String, Transition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedEvent {
    pub event: String,
    pub validator: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    Automated {
        handler: String,
        max_attempts: u32,
        /// When the handler answers "pending" (a provider waiting for a person), ask again
        /// every `every` until `deadline` after the step was entered; then follow `timeout`
        /// (or fail for an operator when the step has none).
        poll: Option<Poll>,
        /// The handler's parameters, as the definition gives them (`params = { … }`).
        params: serde_json::Value,
    },
    Human(HumanStep),
    Timer {
        fires: TimerSpec,
    },
    /// Waits for an external event; with `replaces_input` the (validated) payload becomes the
    /// instance's input, as when a returned application is resubmitted.
    WaitEvent {
        event: String,
        validator: Option<String>,
        timeout: Option<TimerSpec>,
        replaces_input: bool,
        /// A JSON pointer into the instance's data whose value, when the step is entered, is
        /// the correlation id an event must name (a milestone number, a payable id); without
        /// one, the step entry's sequence number.
        correlate: Option<String>,
    },
    Child {
        workflow: String,
        deadline: Option<TimerSpec>,
    },
    End {
        status: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct HumanStep {
    pub role: String,
    /// Validator of the data a decision carries (a signature, a tracking number).
    pub validator: Option<String>,
    pub sla: Span,
    pub reminders: Vec<Span>,
    pub escalations: Vec<Escalation>,
    /// When the SLA counts as breached (defaults to the SLA itself).
    pub breach: Span,
    pub silence: SilencePolicy,
    pub decisions: Vec<String>,
    pub reason_required: BTreeSet<String>,
    /// Approvals needed for an `approve` to take effect, and the panel that votes.
    pub quorum: Quorum,
    /// Two approvals by different persons above an amount.
    pub dual_approval: Option<DualApproval>,
    /// The submitter of the item may not decide it.
    pub four_eyes: bool,
    /// Money moves on approval: silence may never approve such a step.
    pub moves_money: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    pub at: Span,
    pub to: Recipient,
}

/// What happens when a human step's SLA runs out and nobody decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum SilencePolicy {
    /// Only the escalation ladder acts; the task stays open.
    EscalateOnly,
    /// The given decision is taken on the reviewer's behalf.
    AutoConfirm { decision: String },
    /// The step ends with outcome `expired`.
    AutoExpire,
    /// The step ends with outcome `reject`.
    AutoReject,
}

/// When a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerSpec {
    /// A span after the step is entered.
    After(Span),
    /// The next local occurrence of a month-day and time (`12-01`, `12-31T23:59`).
    Annual {
        month: u32,
        day: u32,
        time: NaiveTime,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub to: String,
    pub notify: Vec<NotifySpec>,
    /// Ledger postings made when the transition is followed.
    pub post: Vec<PostingSpec>,
    /// Facts about the instance's partner recorded when the transition is followed
    /// (`record = { business_info = "certified" }`), which validators of other workflows
    /// consult (a claim needs a certified partner).
    pub record: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NotifySpec {
    pub to: Recipient,
    pub template: String,
    pub channels: Vec<Channel>,
    /// Sent at once, even in the recipient's quiet hours (a breach, an escalation to the
    /// programme director); everything else waits for their working hours.
    #[serde(default)]
    pub urgent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

/// Who a notification or escalation goes to, resolved against the directory when sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    /// The partner's primary contact.
    Partner,
    /// Everyone holding a role.
    Role(String),
    /// The escalation target of the task's role.
    EscalationTarget,
    /// Whoever the open task is for: its assignee, else the role's queue address, else
    /// every holder of the role.
    Assignee,
    /// The programme director.
    ProgrammeDirector,
    /// One person.
    Person(String),
}

impl Recipient {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "partner" => Some(Self::Partner),
            "escalation_target" => Some(Self::EscalationTarget),
            "programme_director" => Some(Self::ProgrammeDirector),
            _ => match s.split_once(':') {
                Some(("role", r)) if !r.is_empty() => Some(Self::Role(r.to_owned())),
                Some(("person", p)) if !p.is_empty() => Some(Self::Person(p.to_owned())),
                _ => None,
            },
        }
    }
}

impl TimerSpec {
    fn parse(s: &str) -> Option<Self> {
        if let Ok(span) = s.parse::<Span>() {
            return Some(Self::After(span));
        }
        let (md, time) = match s.split_once('T') {
            Some((md, t)) => (md, NaiveTime::parse_from_str(t, "%H:%M").ok()?),
            None => (s, NaiveTime::MIN),
        };
        let (m, d) = md.split_once('-')?;
        let (month, day): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
        // 2024 is a leap year, so 02-29 is accepted as a month-day.
        chrono::NaiveDate::from_ymd_opt(2024, month, day)?;
        Some(Self::Annual { month, day, time })
    }
}

/// How an automated step waits for a provider that has not decided yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Poll {
    pub every: Span,
    pub deadline: Span,
}

/// Names of step handlers and validators known to this build, for `unknown-handler` checks.
pub trait Registry {
    fn has_handler(&self, name: &str) -> bool;
    fn has_validator(&self, name: &str) -> bool;
}

/// Accepts every handler and validator name: for checks of a definition's structure alone
/// (tests, tools that have no worker registry at hand).
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyNames;

impl Registry for AnyNames {
    fn has_handler(&self, _: &str) -> bool {
        true
    }

    fn has_validator(&self, _: &str) -> bool {
        true
    }
}

/// Outcomes a step of a given kind produces by itself (beyond handler- or decision-named ones).
fn implied_outcomes(kind: &StepKind) -> Vec<String> {
    match kind {
        StepKind::Human(h) => {
            let mut v = h.decisions.clone();
            match &h.silence {
                SilencePolicy::AutoExpire => v.push("expired".to_owned()),
                SilencePolicy::AutoReject => v.push("reject".to_owned()),
                SilencePolicy::EscalateOnly | SilencePolicy::AutoConfirm { .. } => {}
            }
            v
        }
        StepKind::Timer { .. } => vec!["elapsed".to_owned()],
        StepKind::WaitEvent { timeout, .. } => {
            let mut v = vec!["received".to_owned()];
            if timeout.is_some() {
                v.push("timeout".to_owned());
            }
            v
        }
        StepKind::Child { deadline, .. } => {
            let mut v = vec!["completed".to_owned()];
            if deadline.is_some() {
                v.push("timeout".to_owned());
            }
            v
        }
        StepKind::Automated { .. } | StepKind::End { .. } => vec![],
    }
}

impl WorkflowDefinition {
    /// Parses and validates one definition. `programme_overrides` is the programme's
    /// `[workflows]` table: the entry named by this definition's `id` (its `steps.<step>`
    /// fields) is merged into the steps before validation.
    pub fn parse(
        file: &str,
        text: &str,
        programme_overrides: Option<&toml::Table>,
        registry: &dyn Registry,
    ) -> Result<Self, Vec<DefinitionError>> {
        let err = |step: Option<&str>, rule, message: String| DefinitionError {
            file: file.to_owned(),
            step: step.map(str::to_owned),
            rule,
            message,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| vec![err(None, "toml", e.to_string())])?;
        let id = table
            .get("id")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match programme_overrides.and_then(|all| all.get(&id)) {
            Some(toml::Value::Table(over)) => {
                apply_overrides(&mut table, over).map_err(|m| vec![err(None, "override", m)])?;
            }
            Some(_) => {
                let message = format!("`workflows.{id}` in the programme must be a table");
                return Err(vec![err(None, "override", message)]);
            }
            None => {}
        }
        let source = table.to_string();
        let fingerprint = hex::encode(Sha256::digest(source.as_bytes()));
        let raw: RawDefinition = table
            .try_into()
            .map_err(|e: toml::de::Error| vec![err(None, "schema", e.to_string())])?;

        let mut errors = Vec::new();
        let mut steps = BTreeMap::new();
        for rs in &raw.steps {
            if steps.contains_key(&rs.id) {
                errors.push(err(
                    Some(&rs.id),
                    "duplicate-step",
                    "the step id is used twice".to_owned(),
                ));
                continue;
            }
            match build_step(rs, registry) {
                Ok(step) => {
                    steps.insert(rs.id.clone(), step);
                }
                Err(list) => {
                    errors.extend(list.into_iter().map(|(rule, m)| err(Some(&rs.id), rule, m)))
                }
            }
        }
        for (name, pointer) in &raw.summary {
            if !pointer.starts_with('/') {
                errors.push(err(
                    None,
                    "bad-summary",
                    format!("summary `{name}` must be a JSON pointer such as `/input/activity/name`, not `{pointer}`"),
                ));
            }
        }
        if let Some(v) = raw.input.as_ref().filter(|v| !registry.has_validator(v)) {
            errors.push(err(
                None,
                "unknown-validator",
                format!("input validator `{v}` is not registered"),
            ));
        }
        if !steps.contains_key(&raw.start)
            && !errors.iter().any(|e| e.step.as_deref() == Some(&raw.start))
        {
            errors.push(err(
                None,
                "unknown-target",
                format!("start step `{}` does not exist", raw.start),
            ));
        }
        for step in steps.values() {
            for outcome in implied_outcomes(&step.kind) {
                if !step.on.contains_key(&outcome) {
                    errors.push(err(
                        Some(&step.id),
                        "missing-transition",
                        format!("outcome `{outcome}` has no transition in `on`"),
                    ));
                }
            }
            if !matches!(step.kind, StepKind::End { .. }) && step.on.is_empty() {
                errors.push(err(
                    Some(&step.id),
                    "dead-end",
                    "a step that is not an end needs transitions".to_owned(),
                ));
            }
            for (outcome, t) in &step.on {
                if !steps.contains_key(&t.to) && raw.steps.iter().all(|s| s.id != t.to) {
                    errors.push(err(
                        Some(&step.id),
                        "unknown-target",
                        format!(
                            "outcome `{outcome}` goes to step `{}`, which does not exist",
                            t.to
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            let reachable = reachable_from(&raw.start, &steps);
            for id in steps.keys().filter(|id| !reachable.contains(*id)) {
                errors.push(err(
                    Some(id),
                    "unreachable",
                    format!("no path from `{}` reaches this step", raw.start),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            id: raw.id,
            version: raw.version,
            title: raw.title,
            start: raw.start,
            input_validator: raw.input,
            steps,
            summary: raw.summary,
            fingerprint,
            source,
        })
    }

    /// The step with this id. Validation guarantees every transition target exists.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.get(id)
    }

    /// The notification templates its steps and transitions send.
    pub fn templates(&self) -> std::collections::BTreeSet<&str> {
        self.steps
            .values()
            .flat_map(|s| {
                s.notify
                    .iter()
                    .chain(s.on.values().flat_map(|t| t.notify.iter()))
            })
            .map(|n| n.template.as_str())
            .collect()
    }

    /// Workflows started as children by this definition.
    pub fn child_workflows(&self) -> impl Iterator<Item = &str> {
        self.steps.values().filter_map(|s| match &s.kind {
            StepKind::Child { workflow, .. } => Some(workflow.as_str()),
            _ => None,
        })
    }
}

fn reachable_from(start: &str, steps: &BTreeMap<String, Step>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([start.to_owned()]);
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(step) = steps.get(&id) {
            queue.extend(step.on.values().map(|t| t.to.clone()));
        }
    }
    seen
}

fn apply_overrides(table: &mut toml::Table, over: &toml::Table) -> Result<(), String> {
    let Some(toml::Value::Array(steps)) = table.get_mut("steps") else {
        return Err("the definition has no `steps` array".to_owned());
    };
    let over_steps = match over.get("steps") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err("`steps` in the override must be a table of step ids".to_owned()),
        None => return Ok(()),
    };
    for (step_id, fields) in over_steps {
        let target = steps
            .iter_mut()
            .filter_map(toml::Value::as_table_mut)
            .find(|s| s.get("id").and_then(toml::Value::as_str) == Some(step_id))
            .ok_or_else(|| {
                format!("override names step `{step_id}`, which the definition does not have")
            })?;
        let toml::Value::Table(fields) = fields else {
            return Err(format!("override for step `{step_id}` must be a table"));
        };
        for (k, v) in fields {
            target.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

type StepProblems = Vec<(&'static str, String)>;

/// Parses one duration field, recording a problem when it is malformed.
type SpanParser<'a> = dyn FnMut(&str, &Option<String>, &mut StepProblems) -> Option<Span> + 'a;

fn build_step(rs: &RawStep, registry: &dyn Registry) -> Result<Step, StepProblems> {
    let mut problems: StepProblems = Vec::new();
    let mut span = |field: &str, v: &Option<String>, problems: &mut StepProblems| -> Option<Span> {
        let s = v.as_ref()?;
        match s.parse::<Span>() {
            Ok(span) => Some(span),
            Err(e) => {
                problems.push(("bad-duration", format!("`{field}`: {e}")));
                None
            }
        }
    };
    let timer =
        |field: &str, v: &Option<String>, problems: &mut StepProblems| -> Option<TimerSpec> {
            let s = v.as_ref()?;
            let spec = TimerSpec::parse(s);
            if spec.is_none() {
                problems.push((
                    "bad-timer",
                    format!("`{field}` = `{s}` is neither a duration nor MM-DD[THH:MM]"),
                ));
            }
            spec
        };
    let notify = |list: &[RawNotify], problems: &mut StepProblems| -> Vec<NotifySpec> {
        list.iter()
            .filter_map(|n| {
                let to = Recipient::parse(&n.to);
                if to.is_none() {
                    problems.push(("bad-recipient", format!("notification recipient `{}` is not partner, escalation_target, programme_director, role:<r> or person:<id>", n.to)));
                }
                let mut channels = Vec::new();
                for c in &n.channels {
                    match c.as_str() {
                        "email" => channels.push(Channel::Email),
                        "sms" => channels.push(Channel::Sms),
                        other => problems.push(("bad-channel", format!("channel `{other}` is not email or sms"))),
                    }
                }
                Some(NotifySpec { to: to?, template: n.template.clone(), channels, urgent: n.urgent })
            })
            .collect()
    };

    let kind = match rs.kind.as_str() {
        "automated" => match &rs.handler {
            Some(h) if registry.has_handler(h) => {
                let every = span("poll_every", &rs.poll_every, &mut problems);
                let deadline = span("poll_for", &rs.poll_for, &mut problems);
                let poll = match (every, deadline) {
                    (Some(every), Some(deadline)) => Some(Poll { every, deadline }),
                    (None, None) => None,
                    _ => {
                        problems.push((
                            "incomplete-poll",
                            "`poll_every` and `poll_for` go together".to_owned(),
                        ));
                        None
                    }
                };
                let params = rs
                    .params
                    .as_ref()
                    .and_then(|t| serde_json::to_value(t).ok())
                    .unwrap_or(serde_json::Value::Null);
                Some(StepKind::Automated {
                    handler: h.clone(),
                    max_attempts: rs.max_attempts.unwrap_or(5).max(1),
                    poll,
                    params,
                })
            }
            Some(h) => {
                problems.push((
                    "unknown-handler",
                    format!("handler `{h}` is not registered in workers/"),
                ));
                None
            }
            None => {
                problems.push((
                    "missing-handler",
                    "an automated step needs `handler`".to_owned(),
                ));
                None
            }
        },
        "human" => build_human(rs, &mut problems, &mut span),
        "timer" => match (
            timer("after", &rs.after, &mut problems),
            timer("until", &rs.until, &mut problems),
        ) {
            (Some(fires), None) | (None, Some(fires)) => Some(StepKind::Timer { fires }),
            _ => {
                problems.push((
                    "timer-spec",
                    "a timer step needs exactly one of `after` or `until`".to_owned(),
                ));
                None
            }
        },
        "wait_event" => {
            let timeout = timer("timeout", &rs.timeout, &mut problems);
            match &rs.event {
                Some(event) => Some(StepKind::WaitEvent {
                    event: event.clone(),
                    validator: rs.validator.clone(),
                    timeout,
                    replaces_input: rs.replaces_input.unwrap_or(false),
                    correlate: match &rs.correlate {
                        Some(p) if !p.starts_with('/') => {
                            problems.push((
                                "bad-correlate",
                                format!("`correlate` must be a JSON pointer such as `/input/milestone`, not `{p}`"),
                            ));
                            None
                        }
                        other => other.clone(),
                    },
                }),
                None => {
                    problems.push((
                        "missing-event",
                        "a wait_event step needs `event`".to_owned(),
                    ));
                    None
                }
            }
        }
        "child" => {
            let deadline = timer("timeout_until", &rs.timeout_until, &mut problems)
                .or_else(|| timer("timeout", &rs.timeout, &mut problems));
            match &rs.workflow {
                Some(w) => Some(StepKind::Child {
                    workflow: w.clone(),
                    deadline,
                }),
                None => {
                    problems.push((
                        "missing-workflow",
                        "a child step needs `workflow`".to_owned(),
                    ));
                    None
                }
            }
        }
        "end" => {
            if !rs.on.is_empty() {
                problems.push((
                    "end-has-transitions",
                    "an end step has no transitions".to_owned(),
                ));
            }
            Some(StepKind::End {
                status: rs.status.clone().unwrap_or_else(|| "completed".to_owned()),
            })
        }
        other => {
            problems.push((
                "unknown-kind",
                format!("kind `{other}` is not automated, human, timer, wait_event, child or end"),
            ));
            None
        }
    };
    if let Some(v) = rs.validator.as_ref().filter(|v| !registry.has_validator(v)) {
        problems.push((
            "unknown-validator",
            format!("validator `{v}` is not registered"),
        ));
    }
    let step_notify = notify(&rs.notify, &mut problems);
    let step_post = postings::postings(&rs.post, &mut problems);
    for accepted in &rs.accepts {
        if rs.interrupts.contains(&accepted.event) || rs.on.contains_key(&accepted.event) {
            problems.push((
                "accepted-event",
                format!(
                    "event `{}` is accepted without leaving the step, so it cannot also be an interrupt or have a transition",
                    accepted.event
                ),
            ));
        }
        if let Some(v) = accepted
            .validator
            .as_ref()
            .filter(|v| !registry.has_validator(v))
        {
            problems.push((
                "unknown-validator",
                format!("validator `{v}` is not registered"),
            ));
        }
    }
    for event in rs.interrupts.iter().filter(|e| !rs.on.contains_key(*e)) {
        problems.push((
            "missing-transition",
            format!("interrupt `{event}` needs a transition `on.{event}`"),
        ));
    }
    let on = rs
        .on
        .iter()
        .map(|(outcome, t)| {
            let t = match t {
                RawTransition::To(to) => Transition {
                    to: to.clone(),
                    notify: vec![],
                    post: vec![],
                    record: BTreeMap::new(),
                },
                RawTransition::Full {
                    to,
                    notify: n,
                    post,
                    record,
                } => Transition {
                    to: to.clone(),
                    notify: notify(n, &mut problems),
                    post: postings::postings(post, &mut problems),
                    record: standing(record, &mut problems),
                },
            };
            (outcome.clone(), t)
        })
        .collect();
    match kind {
        Some(kind) if problems.is_empty() => Ok(Step {
            id: rs.id.clone(),
            title: rs.title.clone(),
            kind,
            notify: step_notify,
            post: step_post,
            interrupts: rs.interrupts.clone(),
            accepts: rs
                .accepts
                .iter()
                .map(|a| AcceptedEvent {
                    event: a.event.clone(),
                    validator: a.validator.clone(),
                })
                .collect(),
            on,
        }),
        _ => Err(problems),
    }
}

/// A transition's `record`: fact and state names are identifiers (`business_info`,
/// `certified`), so validators can name them, or the state is a template of the instance's
/// data (`partner_type = "{/input/partner_type}"`).
fn standing(
    raw: &BTreeMap<String, String>,
    problems: &mut Vec<(&'static str, String)>,
) -> BTreeMap<String, String> {
    let identifier = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let template = |s: &str| s.starts_with('{') && s.ends_with('}') && s.len() > 2;
    for (fact, state) in raw {
        if !identifier(fact) || !(identifier(state) || template(state)) {
            problems.push((
                "bad-record",
                format!(
                    "record `{fact} = \"{state}\"` must name a fact in lower_snake_case and a state in lower_snake_case or a template such as \"{{/input/partner_type}}\""
                ),
            ));
        }
    }
    raw.clone()
}

fn build_human(
    rs: &RawStep,
    problems: &mut StepProblems,
    span: &mut SpanParser<'_>,
) -> Option<StepKind> {
    let Some(role) = rs.role.clone() else {
        problems.push(("missing-role", "a human step needs `role`".to_owned()));
        return None;
    };
    let Some(sla) = span("sla", &rs.sla, problems) else {
        if rs.sla.is_none() {
            problems.push(("missing-sla", "a human step needs an `sla`".to_owned()));
        }
        return None;
    };
    if matches!(sla, Span::PercentOfSla(_)) {
        problems.push((
            "bad-sla",
            "the SLA cannot be a percentage of itself".to_owned(),
        ));
    }
    let mut ladder = |v: &Option<Vec<String>>,
                      default: &[&str],
                      field: &str,
                      problems: &mut StepProblems|
     -> Vec<Span> {
        let owned: Vec<String> = v
            .clone()
            .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
        owned
            .iter()
            .filter_map(|s| span(field, &Some(s.clone()), problems))
            .collect()
    };
    let reminders = ladder(&rs.reminders, &["50%", "80%"], "reminders", problems);
    let escalations = match &rs.escalations {
        Some(list) => list
            .iter()
            .filter_map(|e| {
                let at = span("escalations.at", &Some(e.at.clone()), problems);
                let to = Recipient::parse(&e.to);
                if to.is_none() {
                    problems.push((
                        "bad-recipient",
                        format!("escalation target `{}` is not a recipient", e.to),
                    ));
                }
                Some(Escalation { at: at?, to: to? })
            })
            .collect(),
        None => vec![
            Escalation {
                at: Span::PercentOfSla(100),
                to: Recipient::EscalationTarget,
            },
            Escalation {
                at: Span::PercentOfSla(200),
                to: Recipient::ProgrammeDirector,
            },
        ],
    };
    let breach = span("breach", &rs.breach, problems).unwrap_or(Span::PercentOfSla(100));
    let decisions = rs
        .decisions
        .clone()
        .unwrap_or_else(|| vec!["approve".to_owned(), "reject".to_owned()]);
    let moves_money = rs.moves_money.unwrap_or(false);
    let silence = match rs.silence.as_deref().unwrap_or("escalate_only") {
        "escalate_only" => SilencePolicy::EscalateOnly,
        "auto_expire" => SilencePolicy::AutoExpire,
        "auto_reject" => SilencePolicy::AutoReject,
        "auto_confirm" => {
            let decision = rs
                .silence_decision
                .clone()
                .unwrap_or_else(|| "approve".to_owned());
            if !decisions.contains(&decision) {
                problems.push((
                    "bad-silence",
                    format!("silence decision `{decision}` is not one of the step's decisions"),
                ));
            }
            if moves_money {
                problems.push((
                    "money-by-silence",
                    "a step that moves money cannot be approved by silence".to_owned(),
                ));
            }
            SilencePolicy::AutoConfirm { decision }
        }
        other => {
            problems.push(("bad-silence", format!("silence policy `{other}` is not escalate_only, auto_confirm, auto_expire or auto_reject")));
            SilencePolicy::EscalateOnly
        }
    };
    let reason_required: BTreeSet<String> = rs
        .reason_required
        .clone()
        .unwrap_or_else(|| vec!["reject".to_owned(), "return".to_owned()])
        .into_iter()
        .filter(|d| decisions.contains(d))
        .collect();
    let quorum = votes::quorum(rs.quorum.as_ref(), problems);
    let dual_approval = votes::dual_approval(rs.two_approvals_above.as_ref(), problems);
    Some(StepKind::Human(HumanStep {
        role,
        validator: rs.validator.clone(),
        sla,
        reminders,
        escalations,
        breach,
        silence,
        decisions,
        reason_required,
        quorum,
        dual_approval,
        four_eyes: rs.four_eyes.unwrap_or(true),
        moves_money,
    }))
}

#[cfg(test)]
mod tests;
