//! Who a notification reaches: the definition's recipient resolved against the directory at
//! the moment it is sent (an open task's assignee or its role's queue, delegations in force),
//! each address with the channel it goes by.

use chrono::{DateTime, Utc};
use partnerflow_core::definition::{Channel, NotifySpec, Recipient, StepKind};
use partnerflow_core::directory::{Directory, Person};
use partnerflow_core::machine::InstanceState;
use partnerflow_core::phone;

/// One resolved address of a notification.
#[derive(Debug, Clone)]
pub(crate) struct Address {
    /// Directory id, `queue:<role>` or `partner:<id>`.
    pub(crate) recipient: String,
    pub(crate) name: String,
    pub(crate) locale: String,
    pub(crate) time_zone: String,
    pub(crate) channel: Channel,
    pub(crate) address: String,
    /// A directory person, who may be sent links to decide.
    pub(crate) person: bool,
    /// The other channel's address, for a fallback after this one failed for good.
    pub(crate) other: Option<String>,
    /// Sent as a copy to someone whose delegate received the message.
    pub(crate) copy: bool,
}

/// The role of the instance's open task, if it is at a human step.
pub(crate) fn task_role(
    def: &partnerflow_core::definition::WorkflowDefinition,
    state: &InstanceState,
) -> Option<String> {
    let step = def.step(state.step.as_deref()?)?;
    match &step.kind {
        StepKind::Human(h) => Some(h.role.clone()),
        _ => None,
    }
}

fn email_of(p: &Person) -> Option<String> {
    p.email.clone().filter(|e| !e.is_empty())
}

fn phone_of(p: &Person) -> Option<String> {
    p.phone
        .as_deref()
        .and_then(|raw| phone::normalize(raw, phone::DEFAULT_COUNTRY_CODE).ok())
}

/// Every address of `spec` at `now`; people without a time zone of their own, queues and
/// partner contacts are in `default_tz` (the business calendar's).
pub(crate) fn resolve(
    dir: &Directory,
    state: &InstanceState,
    role: Option<&str>,
    spec: &NotifySpec,
    now: DateTime<Utc>,
    default_tz: &str,
) -> Vec<Address> {
    let people: Vec<&Person> = match &spec.to {
        Recipient::Partner => return partner(state, spec, default_tz),
        Recipient::Assignee => {
            let assignee = state.task.as_ref().and_then(|t| t.assignee.as_deref());
            if let Some(p) = assignee.and_then(|id| dir.person(id)) {
                vec![p]
            } else if let Some(q) = role.and_then(|r| Some((r, dir.roles.get(r)?.queue.as_ref()?)))
            {
                let (role, queue) = q;
                return spec
                    .channels
                    .iter()
                    .filter(|c| **c == Channel::Email)
                    .map(|_| Address {
                        recipient: format!("queue:{role}"),
                        name: queue.name.clone(),
                        locale: queue.locale.clone(),
                        time_zone: default_tz.to_owned(),
                        channel: Channel::Email,
                        address: queue.email.clone(),
                        person: false,
                        other: None,
                        copy: false,
                    })
                    .collect();
            } else {
                role.map(|r| dir.holders(r).collect()).unwrap_or_default()
            }
        }
        Recipient::Role(r) => dir.holders(r).collect(),
        Recipient::EscalationTarget => Vec::new(),
        Recipient::ProgrammeDirector => dir.person(&dir.programme_director).into_iter().collect(),
        Recipient::Person(id) => dir.person(id).into_iter().collect(),
    };
    let mut out = Vec::new();
    for p in people {
        // While a delegation runs, the delegate receives the message and the person a copy.
        let delegate = dir.acting_for(&p.id, role, now);
        let targets: Vec<(&Person, bool)> = match delegate {
            Some(d) if d.id != p.id => vec![(d, false), (p, true)],
            _ => vec![(p, false)],
        };
        for (person, copy) in targets {
            if out
                .iter()
                .any(|a: &Address| a.recipient == person.id && !copy)
            {
                continue;
            }
            for ch in &spec.channels {
                let (address, other) = match ch {
                    Channel::Email => (email_of(person), phone_of(person)),
                    Channel::Sms => (phone_of(person), email_of(person)),
                };
                let Some(address) = address else { continue };
                out.push(Address {
                    recipient: person.id.clone(),
                    name: person.name.clone(),
                    locale: person.locale.clone(),
                    time_zone: person.time_zone.clone(),
                    channel: *ch,
                    address,
                    person: true,
                    other,
                    copy,
                });
            }
        }
    }
    out
}

fn partner(state: &InstanceState, spec: &NotifySpec, default_tz: &str) -> Vec<Address> {
    let recipient = format!("partner:{}", state.partner_id.as_deref().unwrap_or("?"));
    state
        .party
        .iter()
        .flat_map(|c| {
            let recipient = recipient.clone();
            let email = Some(c.email.clone()).filter(|e| !e.is_empty());
            let phone = phone::normalize(&c.phone, phone::DEFAULT_COUNTRY_CODE).ok();
            spec.channels.iter().filter_map(move |ch| {
                let (address, other) = match ch {
                    Channel::Email => (email.clone(), phone.clone()),
                    Channel::Sms => (phone.clone(), email.clone()),
                };
                Some(Address {
                    recipient: recipient.clone(),
                    name: c.name.clone(),
                    locale: c.locale.clone(),
                    time_zone: default_tz.to_owned(),
                    channel: *ch,
                    address: address?,
                    person: false,
                    other,
                    copy: false,
                })
            })
        })
        .collect()
}
