//! The directory: people, their roles, managers and delegates; who an escalation goes to.
//!
//! Role checks use this, never a role claimed in a request. Partner-side people carry the id
//! of the partner they belong to and may act only on that partner's instances.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default = "default_tz")]
    pub time_zone: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub manager: Option<String>,
    /// Acts for this person while they are away.
    #[serde(default)]
    pub delegate: Option<String>,
    /// Set for partner-side people: the partner they belong to.
    #[serde(default)]
    pub partner: Option<String>,
}

fn default_locale() -> String {
    "zh-CN".to_owned()
}

fn default_tz() -> String {
    "Asia/Shanghai".to_owned()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoleInfo {
    /// Where a late task of this role escalates first.
    #[serde(default)]
    pub escalation_to: Option<String>,
    /// The role's shared queue: `task.assigned` and reminders of an unassigned task go here
    /// instead of to every holder of the role.
    #[serde(default)]
    pub queue: Option<Queue>,
}

/// A shared address a role's new tasks are announced to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Queue {
    pub name: String,
    pub email: String,
    #[serde(default = "default_locale")]
    pub locale: String,
}

/// Out-of-office: from `starts_at` until `ends_at`, `delegate` receives and may decide the
/// tasks of `person` (of `role` only, when set); `person` is copied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delegation {
    pub person: String,
    pub delegate: String,
    #[serde(default)]
    pub role: Option<String>,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

impl Delegation {
    pub fn covers(&self, role: Option<&str>, at: chrono::DateTime<chrono::Utc>) -> bool {
        self.starts_at <= at
            && at < self.ends_at
            && match (&self.role, role) {
                (Some(mine), Some(asked)) => mine == asked,
                _ => true,
            }
    }
}

/// The role a task must be decided by when a partner acts on its own instance.
pub const PARTNER_ROLE: &str = "partner";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Directory {
    /// Person id of the programme director, the last step of every escalation chain.
    pub programme_director: String,
    #[serde(default)]
    pub roles: BTreeMap<String, RoleInfo>,
    #[serde(default)]
    pub people: Vec<Person>,
    /// Dated delegations: the file's own, plus those made through the API when the engine
    /// reads them.
    #[serde(default)]
    pub delegations: Vec<Delegation>,
}

impl Directory {
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    /// Everyone holding `role` directly.
    pub fn holders<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Person> + 'a {
        self.people
            .iter()
            .filter(move |p| p.roles.iter().any(|r| r == role))
    }

    /// Who receives what is meant for `person` (for `role`) at `at`: their delegate while a
    /// delegation runs, else themselves.
    pub fn acting_for(
        &self,
        person: &str,
        role: Option<&str>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<&Person> {
        self.delegations
            .iter()
            .find(|d| d.person == person && d.covers(role, at))
            .and_then(|d| self.person(&d.delegate))
    }

    /// [`Directory::may_act`], also for a delegate while a dated delegation of a holder of
    /// `role` runs at `at`.
    pub fn may_act_at(
        &self,
        actor: &str,
        role: &str,
        partner: Option<&str>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        self.may_act(actor, role, partner)
            || (self.person(actor).is_some_and(|p| p.partner.is_none())
                && self.delegations.iter().any(|d| {
                    d.delegate == actor
                        && d.covers(Some(role), at)
                        && self
                            .person(&d.person)
                            .is_some_and(|p| p.roles.iter().any(|r| r == role))
                }))
    }

    /// Whom `actor` decides a task of `role` for, when they do so as someone's delegate (they
    /// do not hold the role themselves): for the audit.
    pub fn on_behalf_of<'a>(
        &'a self,
        actor: &str,
        role: &'a str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Option<&'a str> {
        let person = self.person(actor)?;
        if person.roles.iter().any(|r| r == role) {
            return None;
        }
        self.delegations
            .iter()
            .find(|d| {
                d.delegate == actor
                    && d.covers(Some(role), at)
                    && self
                        .person(&d.person)
                        .is_some_and(|p| p.roles.iter().any(|r| r == role))
            })
            .map(|d| d.person.as_str())
            .or_else(|| {
                self.holders(role)
                    .find(|h| h.delegate.as_deref() == Some(actor))
                    .map(|h| h.id.as_str())
            })
    }

    /// Whether `actor` may decide a task of `role` on an instance of `partner`. A delegate acts
    /// with the roles of the people who named them; a partner-side person only for their own
    /// partner.
    pub fn may_act(&self, actor: &str, role: &str, partner: Option<&str>) -> bool {
        let Some(person) = self.person(actor) else {
            return false;
        };
        if role == PARTNER_ROLE {
            return person.partner.is_some() && person.partner.as_deref() == partner;
        }
        person.partner.is_none()
            && (person.roles.iter().any(|r| r == role)
                || self
                    .holders(role)
                    .any(|h| h.delegate.as_deref() == Some(actor)))
    }

    /// The role a late task of `role` escalates to first.
    pub fn escalation_target(&self, role: &str) -> Option<&str> {
        self.roles.get(role)?.escalation_to.as_deref()
    }

    /// Checks internal references (managers, delegates, director) so a typo fails at start-up.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.person(&self.programme_director).is_none() {
            problems.push(format!(
                "programme_director `{}` is not a person in the directory",
                self.programme_director
            ));
        }
        for p in &self.people {
            if let Some(phone) = &p.phone
                && let Err(e) = crate::phone::normalize(phone, crate::phone::DEFAULT_COUNTRY_CODE)
            {
                problems.push(format!("person `{}`: phone `{phone}`: {e}", p.id));
            }
            for (field, target) in [("manager", &p.manager), ("delegate", &p.delegate)] {
                if let Some(t) = target.as_ref().filter(|t| self.person(t).is_none()) {
                    problems.push(format!(
                        "person `{}`: {field} `{t}` is not a person in the directory",
                        p.id
                    ));
                }
            }
        }
        for (i, d) in self.delegations.iter().enumerate() {
            for id in [&d.person, &d.delegate] {
                if self.person(id).is_none() {
                    problems.push(format!(
                        "delegations[{i}]: `{id}` is not a person in the directory"
                    ));
                }
            }
            if d.ends_at <= d.starts_at {
                problems.push(format!("delegations[{i}]: ends_at must be after starts_at"));
            }
        }
        for (role, info) in &self.roles {
            if let Some(t) = info
                .escalation_to
                .as_ref()
                .filter(|t| self.holders(t).next().is_none())
            {
                problems.push(format!(
                    "role `{role}`: escalation_to `{t}` is held by nobody"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        toml::from_str(
            r#"
            programme_director = "dir"
            [roles.channel_manager]
            escalation_to = "channel_lead"
            [[people]]
            id = "dir"
            name = "Director"
            roles = ["programme_director"]
            [[people]]
            id = "lead"
            name = "Lead"
            roles = ["channel_lead"]
            [[people]]
            id = "cm"
            name = "CM"
            roles = ["channel_manager"]
            delegate = "deputy"
            [[people]]
            id = "deputy"
            name = "Deputy"
            [[people]]
            id = "p1-user"
            name = "Partner user"
            partner = "P1"
            "#,
        )
        .expect("test directory parses")
    }

    #[test]
    fn role_comes_from_the_directory_and_delegates_inherit_it() {
        let d = dir();
        assert!(d.may_act("cm", "channel_manager", None));
        assert!(d.may_act("deputy", "channel_manager", None));
        assert!(!d.may_act("lead", "channel_manager", None));
        assert!(!d.may_act("nobody", "channel_manager", None));
    }

    #[test]
    fn partner_people_act_only_on_their_own_partner() {
        let d = dir();
        assert!(d.may_act("p1-user", PARTNER_ROLE, Some("P1")));
        assert!(!d.may_act("p1-user", PARTNER_ROLE, Some("P2")));
        assert!(!d.may_act("cm", PARTNER_ROLE, Some("P1")));
    }

    #[test]
    fn validate_names_dangling_references() {
        let mut d = dir();
        assert_eq!(d.validate(), Ok(()));
        d.people[2].manager = Some("ghost".to_owned());
        let problems = d.validate().expect_err("dangling manager is refused");
        assert!(problems[0].contains("ghost"), "{problems:?}");
    }
}
