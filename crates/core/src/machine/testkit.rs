//! A definition and an instance of it, applied on a fixed clock with deterministic ids: the
//! machine's unit tests drive one command at a time.

use chrono::{TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::calendar::BusinessCalendar;
use crate::definition::{AnyNames, WorkflowDefinition};
use crate::directory::Directory;

/// The directory of the unit tests: a director, a partner-side person of P-1 and three experts.
pub(crate) const DIRECTORY: &str = r#"
programme_director = "boss"
[[people]]
id = "boss"
name = "Boss"
[[people]]
id = "P-1/a"
name = "A"
partner = "P-1"
[[people]]
id = "e1"
name = "Expert 1"
roles = ["expert"]
[[people]]
id = "e2"
name = "Expert 2"
roles = ["expert"]
[[people]]
id = "e3"
name = "Expert 3"
roles = ["expert"]
"#;

pub(crate) struct Instance {
    pub(crate) def: WorkflowDefinition,
    pub(crate) state: InstanceState,
    pub(crate) dir: Directory,
}

impl Instance {
    pub(crate) fn new(text: &str, parent: Option<ParentRef>) -> Self {
        let def = WorkflowDefinition::parse("t.toml", text, None, &AnyNames).expect("valid");
        let state = InstanceState {
            parent,
            ..InstanceState::new(Uuid::from_u128(7), &def, "k")
        };
        let dir = toml::from_str(DIRECTORY).expect("directory");
        Instance { def, state, dir }
    }

    pub(crate) fn apply(&mut self, cmd: Command) -> Result<Applied, Error> {
        let now = Utc
            .with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
            .single()
            .expect("valid time");
        let cal = BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai);
        let mut n = 100;
        let mut new_id = || {
            n += 1;
            Uuid::from_u128(n)
        };
        let mut ctx = Ctx {
            now,
            calendar: &cal,
            directory: &self.dir,
            new_id: &mut new_id,
            validate: &|_, data, _| Ok(data.clone()),
        };
        let mut copy = self.state.clone();
        let out = apply(&self.def, &mut copy, cmd, &mut ctx);
        if out.is_ok() {
            self.state = copy;
        }
        out
    }

    pub(crate) fn start_with(&mut self, input: serde_json::Value) -> Applied {
        self.apply(Command::Start {
            input,
            actor: Actor::system(),
        })
        .expect("start")
    }

    pub(crate) fn start(&mut self) -> Applied {
        self.start_with(json!({}))
    }
}
