//! The variables every notification template sees. The set is fixed and the same for every
//! template, so a template that names anything else fails when the templates are checked (at
//! start-up and in `partnerflow validate`), never when a message is sent.

use serde::Serialize;

/// What a template may use.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Context {
    pub recipient: RecipientVars,
    pub instance: InstanceVars,
    /// The task a task notification is about; empty strings otherwise.
    pub task: TaskVars,
    /// The escalation level (1, 2, …) or the reminder's rung; 0 when neither.
    pub level: u32,
    /// Decisions the recipient may take from the message (signed links), possibly none.
    pub links: Vec<Link>,
    /// The workflow's summary figures (name and value), in the definition's order.
    pub details: Vec<Detail>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecipientVars {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceVars {
    pub id: String,
    pub workflow: String,
    pub business_key: String,
    pub step: String,
    pub status: String,
    pub partner_id: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TaskVars {
    pub id: String,
    pub role: String,
    pub step: String,
    /// The due time in the recipient's time zone, `2026-12-04 18:00 (Asia/Shanghai)`.
    pub due_at: String,
}

/// A signed link deciding one task one way.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Link {
    pub decision: String,
    pub url: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Detail {
    pub name: String,
    pub value: String,
}

/// The names a template may use, dotted as `minijinja` reports them.
pub(crate) const KNOWN: &[&str] = &[
    "recipient",
    "recipient.name",
    "instance",
    "instance.id",
    "instance.workflow",
    "instance.business_key",
    "instance.step",
    "instance.status",
    "instance.partner_id",
    "task",
    "task.id",
    "task.role",
    "task.step",
    "task.due_at",
    "level",
    "links",
    "details",
];

impl Context {
    /// A context with every variable set, to render each template once when it is checked.
    pub fn sample() -> Self {
        Context {
            recipient: RecipientVars {
                name: "Li Na".to_owned(),
            },
            instance: InstanceVars {
                id: "00000000-0000-7000-8000-000000000000".to_owned(),
                workflow: "partner_onboarding".to_owned(),
                business_key: "P-1001".to_owned(),
                step: "review".to_owned(),
                status: "running".to_owned(),
                partner_id: "P-1001".to_owned(),
            },
            task: TaskVars {
                id: "00000000-0000-7000-8000-000000000001".to_owned(),
                role: "channel_manager".to_owned(),
                step: "review".to_owned(),
                due_at: "2026-12-04 18:00 (Asia/Shanghai)".to_owned(),
            },
            level: 1,
            links: vec![Link {
                decision: "approve".to_owned(),
                url: "https://partnerflow.example/l/AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            }],
            details: vec![Detail {
                name: "amount".to_owned(),
                value: "12000.00".to_owned(),
            }],
        }
    }
}
