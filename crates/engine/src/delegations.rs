//! Out-of-office delegations made through the API, and an operator's reassignment of an open
//! task. Decisions and reassignments are checked against the directory with the delegations in
//! force at that moment.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use partnerflow_core::directory::{Delegation, Directory};
use partnerflow_core::machine::{Actor, Command};
use partnerflow_core::validation::FieldError;
use partnerflow_store::{Conn, delegations};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::engine::{Engine, Error, Result};
use crate::transition::Also;

/// How long the delegations read from the database are used before they are read again.
const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// The directory a command is checked against: with the API's delegations when the
    /// command decides or assigns a task (only those consult delegations).
    pub(crate) async fn directory_for(
        &self,
        tx: &mut Conn,
        cmd: &Command,
        now: DateTime<Utc>,
    ) -> Result<Cow<'_, Directory>> {
        if !matches!(cmd, Command::Decide { .. } | Command::Reassign { .. }) {
            return Ok(Cow::Borrowed(&self.inner.directory));
        }
        self.with_delegations(tx, now).await
    }

    /// The directory with the API's delegations added (the directory itself when there are
    /// none), from the once-a-second cache.
    pub(crate) async fn with_delegations(
        &self,
        conn: &mut Conn,
        now: DateTime<Utc>,
    ) -> Result<Cow<'_, Directory>> {
        let cached = self.inner.delegations.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(at, _)| at.elapsed() < CACHE_FOR)
                .map(|(_, d)| d.clone())
        });
        let list = match cached {
            Some(list) => list,
            None => {
                let read: Vec<Delegation> = delegations::current(conn, now)
                    .await?
                    .into_iter()
                    .map(|s| s.delegation)
                    .collect();
                let list = std::sync::Arc::new(read);
                if let Ok(mut c) = self.inner.delegations.lock() {
                    *c = Some((std::time::Instant::now(), list.clone()));
                }
                list
            }
        };
        if list.is_empty() {
            return Ok(Cow::Borrowed(&self.inner.directory));
        }
        let mut dir = (*self.inner.directory).clone();
        dir.delegations.extend(list.iter().cloned());
        Ok(Cow::Owned(dir))
    }

    fn forget_delegations(&self) {
        if let Ok(mut c) = self.inner.delegations.lock() {
            *c = None;
        }
    }

    /// Records a delegation: `delegate` receives and may decide `person`'s tasks (of `role`,
    /// when set) from `starts_at` until `ends_at`.
    pub async fn delegate(&self, d: Delegation, by: &str) -> Result<delegations::Stored> {
        let dir = &self.inner.directory;
        let mut problems = Vec::new();
        for (field, id) in [("person", &d.person), ("delegate", &d.delegate)] {
            match dir.person(id) {
                None => problems.push(FieldError::new(
                    field,
                    "unknown_person",
                    format!("`{id}` is not a person in the directory"),
                )),
                Some(p) if p.partner.is_some() => problems.push(FieldError::new(
                    field,
                    "partner_person",
                    format!("`{id}` is a partner-side person; only vendor staff delegate"),
                )),
                Some(_) => {}
            }
        }
        if d.person == d.delegate {
            problems.push(FieldError::new(
                "delegate",
                "self",
                "a person cannot delegate to themselves".to_owned(),
            ));
        }
        if d.ends_at <= d.starts_at {
            problems.push(FieldError::new(
                "ends_at",
                "order",
                "ends_at must be after starts_at".to_owned(),
            ));
        }
        if let Some(role) = &d.role
            && dir
                .person(&d.person)
                .is_some_and(|p| !p.roles.iter().any(|r| r == role))
        {
            problems.push(FieldError::new(
                "role",
                "not_held",
                format!("`{}` does not hold role `{role}`", d.person),
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let now = self.now();
        let stored = delegations::Stored {
            id: Uuid::now_v7().to_string(),
            delegation: d,
            created_by: by.to_owned(),
            created_at: now,
            revoked_at: None,
        };
        let mut conn = self.conn().await?;
        delegations::insert(&mut conn, &stored).await?;
        self.forget_delegations();
        tracing::info!(id = %stored.id, person = %stored.delegation.person, delegate = %stored.delegation.delegate, by, "delegation recorded");
        Ok(stored)
    }

    /// Delegations not yet ended, the directory file's and the API's.
    pub async fn delegations(&self) -> Result<Vec<delegations::Stored>> {
        let now = self.now();
        let mut conn = self.conn().await?;
        let mut out: Vec<delegations::Stored> = self
            .inner
            .directory
            .delegations
            .iter()
            .filter(|d| d.ends_at > now)
            .enumerate()
            .map(|(i, d)| delegations::Stored {
                id: format!("directory:{i}"),
                delegation: d.clone(),
                created_by: "directory".to_owned(),
                created_at: d.starts_at,
                revoked_at: None,
            })
            .collect();
        out.extend(delegations::current(&mut conn, now).await?);
        Ok(out)
    }

    /// Ends a delegation made through the API.
    pub async fn revoke_delegation(&self, id: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        if delegations::revoke(&mut conn, id, self.now()).await? {
            self.forget_delegations();
            Ok(())
        } else {
            Err(Error::NotFound(format!("delegation {id}")))
        }
    }

    /// Assigns the open task to `person` for the operator `actor`: audited as
    /// `task_reassigned`, and the new assignee is notified.
    pub async fn reassign(&self, task_id: Uuid, person: &str, actor: Actor) -> Result<Value> {
        let task = {
            let mut conn = self.conn().await?;
            partnerflow_store::tasks::get(&mut conn, task_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("task {task_id}")))?
        };
        let instance_id =
            Uuid::parse_str(&task.instance_id).map_err(|e| Error::Conflict(e.to_string()))?;
        let cmd = Command::Reassign {
            task_id,
            person: person.to_owned(),
            actor,
        };
        self.apply(instance_id, cmd, Also::default()).await?;
        Ok(json!({ "task_id": task_id, "assignee": person, "instance_id": instance_id }))
    }
}
