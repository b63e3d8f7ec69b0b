//! Typed settings, loaded in layers: `config/default.toml` → `config/$PARTNERFLOW_ENV.toml` →
//! untracked `config/local.toml` → `PARTNERFLOW__SECTION__KEY` environment variables.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: Database,
    pub verification: Verification,
    pub payments: Payments,
    pub settlement: SettlementLoop,
    pub queue: Queue,
    pub engine: Engine,
    pub http: Http,
    pub paths: Paths,
    pub auth: Auth,
    pub audit: Audit,
    pub retention: Retention,
    pub notifications: crate::reach::Notifications,
    /// Outbound webhook subscribers.
    #[serde(default)]
    pub webhooks: Vec<crate::reach::Webhook>,
}

/// How long rows that only served delivery are kept (see `config/default.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct Retention {
    pub done_outbox_days: u64,
    pub closed_timer_days: u64,
    pub idempotency_key_days: u64,
    pub batch: i64,
    pub every_secs: u64,
}

/// The audit chain's keys.
#[derive(Clone, Deserialize)]
pub struct Audit {
    pub keys: Vec<AuditKey>,
}

#[derive(Clone, Deserialize)]
pub struct AuditKey {
    pub version: u32,
    pub secret: String,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let versions: Vec<u32> = self.keys.iter().map(|k| k.version).collect();
        f.debug_struct("Audit")
            .field("versions", &versions)
            .finish()
    }
}

impl Audit {
    pub fn keys(&self) -> Result<partnerflow_core::audit::AuditKeys> {
        partnerflow_core::audit::AuditKeys::new(
            self.keys
                .iter()
                .map(|k| (k.version, k.secret.as_bytes().to_vec())),
        )
        .map_err(anyhow::Error::from)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Database {
    pub url: String,
    pub max_connections: u32,
    /// `url` points at a connection pooler (PgBouncer in transaction mode), which multiplexes
    /// pools onto fewer server connections: the start-up check of the connection budget is
    /// skipped.
    #[serde(default)]
    pub behind_pooler: bool,
}

/// The business-verification provider of `verify_business`.
#[derive(Debug, Clone, Deserialize)]
pub struct Verification {
    /// `simulated` (deterministic, embedded default) or `http`.
    pub provider: String,
    /// The provider's endpoint (`http` only).
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub token: Option<String>,
    pub timeout_ms: u64,
}

/// How often the dispatching processes look for due settlement periods.
#[derive(Debug, Clone, Deserialize)]
pub struct SettlementLoop {
    pub check_every_secs: u64,
}

/// The payment provider of the `pay` step.
#[derive(Debug, Clone, Deserialize)]
pub struct Payments {
    /// `simulated` (an in-memory bank per process, embedded default) or `http`.
    pub provider: String,
    /// The provider's endpoint (`http` only).
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub token: Option<String>,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Queue {
    /// `memory` or `redis`.
    pub kind: String,
    pub redis_url: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Engine {
    pub lease_secs: u64,
    pub redispatch_secs: u64,
    pub batch: i64,
    pub poll_ms: u64,
    pub worker_concurrency: usize,
    /// Most single-instance transitions committed in one transaction; 1 commits each alone.
    pub group_commit: usize,
    /// Pause inside each step of the reference workload (fault tests only; unset in service).
    #[serde(default)]
    pub reference_step_ms: Option<u64>,
    /// File the reference workload logs every step run to (fault tests only; unset in service).
    #[serde(default)]
    pub reference_run_log: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Http {
    pub listen: String,
    pub signature_tolerance_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Paths {
    pub workflows: PathBuf,
    /// More definition directories (e.g. `workflows/reference` for `bench`).
    #[serde(default)]
    pub extra_workflows: Vec<PathBuf>,
    pub programme: PathBuf,
    pub directory: PathBuf,
    pub calendars: PathBuf,
    /// Where uploaded attachments are kept (content-addressed).
    pub attachments: PathBuf,
    /// The rebate policy files (one version each).
    pub policies: PathBuf,
}

#[derive(Clone, Deserialize)]
pub struct Auth {
    /// Says the shipped development secrets are in use. The listen guard does not trust it
    /// alone: it also compares every configured secret with the shipped ones.
    pub development_secrets: bool,
    #[serde(default)]
    pub operators: Vec<Operator>,
    #[serde(default)]
    pub integrations: Vec<Integration>,
}

#[derive(Clone, Deserialize)]
pub struct Operator {
    /// Recorded as the actor of everything the operator does.
    pub id: String,
    pub token: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("development_secrets", &self.development_secrets)
            .field(
                "operators",
                &self.operators.iter().map(|o| &o.id).collect::<Vec<_>>(),
            )
            .field(
                "integrations",
                &self.integrations.iter().map(|i| &i.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Clone, Deserialize)]
pub struct Integration {
    pub id: String,
    pub secrets: Vec<String>,
    /// Task roles it may decide for.
    pub roles: Vec<String>,
    /// External events it may post.
    #[serde(default)]
    pub events: Vec<String>,
    /// Workflows it may start.
    #[serde(default)]
    pub workflows: Vec<String>,
    /// What it may read: `instances`, `tasks`, `evidence`, `ledger`, `statements`.
    #[serde(default)]
    pub reads: Vec<partnerflow_api::Read>,
    /// What it may import: `transactions`.
    #[serde(default)]
    pub imports: Vec<String>,
    /// A partner-side integration's partner: it sees and acts on that partner's instances only.
    #[serde(default)]
    pub partner: Option<String>,
}

/// The settings shipped in the binary, so `partnerflow demo` works from any directory.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

impl Settings {
    /// Loads the layers from `config_dir` (missing files are skipped, except a named
    /// `PARTNERFLOW_ENV` file) and the process environment.
    pub fn load(config_dir: &Path) -> Result<Self> {
        let mut merged: toml::Table =
            toml::from_str(DEFAULTS).context("built-in config/default.toml")?;
        let default_file = config_dir.join("default.toml");
        if default_file.exists() {
            merge(&mut merged, read_table(&default_file)?);
        }
        // An empty PARTNERFLOW_ENV is no overlay, as if unset.
        if let Ok(env) = std::env::var("PARTNERFLOW_ENV")
            && !env.trim().is_empty()
        {
            merge(
                &mut merged,
                read_table(&config_dir.join(format!("{env}.toml")))?,
            );
        }
        let local = config_dir.join("local.toml");
        if local.exists() {
            merge(&mut merged, read_table(&local)?);
        }
        for (key, value) in std::env::vars() {
            if let Some(path) = key.strip_prefix("PARTNERFLOW__") {
                set_path(&mut merged, &path.to_lowercase(), &value);
            }
        }
        merged.try_into().context("settings")
    }
}

impl Auth {
    /// Where a shipped development secret is still configured (`auth.operators[id].token`,
    /// `auth.integrations[id].secrets`): such a service must not listen beyond loopback.
    pub fn shipped_secrets_in_use(&self) -> Vec<String> {
        let Ok(shipped) = toml::from_str::<toml::Table>(DEFAULTS)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                toml::Value::Table(t)
                    .get("auth")
                    .cloned()
                    .ok_or_else(|| "no [auth]".to_owned())
            })
            .and_then(|a| a.try_into::<Auth>().map_err(|e| e.to_string()))
        else {
            return Vec::new();
        };
        let shipped_tokens: Vec<&str> =
            shipped.operators.iter().map(|o| o.token.as_str()).collect();
        let shipped_secrets: Vec<&str> = shipped
            .integrations
            .iter()
            .flat_map(|i| i.secrets.iter().map(String::as_str))
            .chain(shipped_tokens.iter().copied())
            .collect();
        let mut found = Vec::new();
        for o in &self.operators {
            if shipped_secrets.contains(&o.token.as_str()) {
                found.push(format!("auth.operators[{}].token", o.id));
            }
        }
        for i in &self.integrations {
            if i.secrets
                .iter()
                .any(|s| shipped_secrets.contains(&s.as_str()))
            {
                found.push(format!("auth.integrations[{}].secrets", i.id));
            }
        }
        found
    }

    /// Refuses a non-loopback address while development secrets are in use, whether the
    /// `development_secrets` flag says so or a shipped secret is configured.
    pub fn check_listen(&self, addr: std::net::SocketAddr) -> Result<()> {
        self.check_listen_with(addr, &[])
    }

    /// [`Auth::check_listen`], with more places a shipped secret was found in.
    pub fn check_listen_with(&self, addr: std::net::SocketAddr, also: &[String]) -> Result<()> {
        if addr.ip().is_loopback() {
            return Ok(());
        }
        let mut shipped = self.shipped_secrets_in_use();
        shipped.extend_from_slice(also);
        if self.development_secrets || !shipped.is_empty() {
            let which = if shipped.is_empty() {
                "auth.development_secrets = true".to_owned()
            } else {
                format!("shipped development secrets in {}", shipped.join(", "))
            };
            anyhow::bail!(
                "refusing to listen on {addr} with development secrets ({which}): configure your own operators and integration secrets (config/production.toml, config/local.toml or PARTNERFLOW__AUTH__*) and set auth.development_secrets = false"
            );
        }
        Ok(())
    }
}

impl Settings {
    /// The listen guard over everything secret: operators' tokens, integrations' secrets, the
    /// audit keys and the signed-link key.
    pub fn check_listen(&self, addr: std::net::SocketAddr) -> Result<()> {
        let shipped_audit: Vec<String> = self
            .audit
            .keys
            .iter()
            .filter(|k| k.secret == partnerflow_core::audit::DEVELOPMENT_KEY)
            .map(|k| format!("audit.keys[{}]", k.version))
            .chain(
                (self.notifications.link_secret == crate::reach::DEVELOPMENT_LINK_SECRET)
                    .then(|| "notifications.link_secret".to_owned()),
            )
            .collect();
        self.auth.check_listen_with(addr, &shipped_audit)?;
        if !addr.ip().is_loopback() && self.payments.provider == "simulated" {
            anyhow::bail!(
                "refusing to listen on {addr} with the simulated bank: set [payments] provider = \"http\" and its url (config/production.toml does)"
            );
        }
        Ok(())
    }
}

fn read_table(path: &Path) -> Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// `database__url=…` sets `[database] url`. Values parse as TOML when they can (numbers,
/// booleans, arrays) and are strings otherwise.
fn set_path(table: &mut toml::Table, path: &str, raw: &str) {
    let mut parts: Vec<&str> = path.split("__").collect();
    let Some(last) = parts.pop() else { return };
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = entry else {
            return;
        };
        t = next;
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut v| v.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    t.insert(last.to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_select_the_embedded_backend() {
        let s: Settings = toml::from_str::<toml::Table>(DEFAULTS)
            .expect("defaults parse")
            .try_into()
            .expect("defaults are complete");
        assert!(s.database.url.starts_with("sqlite:"));
        assert_eq!(s.queue.kind, "memory");
        assert!(s.auth.development_secrets);
    }

    #[test]
    fn environment_paths_override_nested_keys_with_typed_values() {
        let mut t: toml::Table = toml::from_str(DEFAULTS).expect("defaults parse");
        set_path(&mut t, "database__url", "postgres://x@y/z");
        set_path(&mut t, "engine__lease_secs", "5");
        let s: Settings = t.try_into().expect("still valid");
        assert_eq!(s.database.url, "postgres://x@y/z");
        assert_eq!(s.engine.lease_secs, 5);
    }

    #[test]
    fn integrations_can_come_from_one_environment_variable() {
        let mut t: toml::Table = toml::from_str(DEFAULTS).expect("defaults parse");
        set_path(
            &mut t,
            "auth__integrations",
            r#"[{ id = "crm", secrets = ["s1", "s2"], roles = ["legal"], events = [], workflows = ["partner_onboarding"], reads = ["tasks"], partner = "P-1" }]"#,
        );
        let s: Settings = t.try_into().expect("still valid");
        assert_eq!(s.auth.integrations.len(), 1);
        let crm = &s.auth.integrations[0];
        assert_eq!(crm.secrets, vec!["s1", "s2"]);
        assert_eq!(crm.roles, vec!["legal"]);
        assert_eq!(crm.workflows, vec!["partner_onboarding"]);
        assert_eq!(crm.reads, vec![partnerflow_api::Read::Tasks]);
        assert_eq!(crm.partner.as_deref(), Some("P-1"));
    }

    fn defaults() -> Settings {
        toml::from_str::<toml::Table>(DEFAULTS)
            .expect("defaults parse")
            .try_into()
            .expect("defaults are complete")
    }

    #[test]
    fn shipped_secrets_on_a_public_address_are_refused_whatever_the_flag_says() {
        let public: std::net::SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let loopback: std::net::SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let mut s = defaults();
        assert!(s.auth.check_listen(loopback).is_ok());
        assert!(s.auth.check_listen(public).is_err());
        // Claiming the secrets are real does not make them so.
        s.auth.development_secrets = false;
        let refused = s.auth.check_listen(public).expect_err("shipped secrets");
        assert!(refused.to_string().contains("auth.operators["), "{refused}");
        for o in &mut s.auth.operators {
            o.token = format!("real-token-{}", o.id);
        }
        let refused = s
            .auth
            .check_listen(public)
            .expect_err("integration secrets");
        assert!(
            refused.to_string().contains("auth.integrations["),
            "{refused}"
        );
        // One shipped secret kept beside a new one during a rotation is still refused.
        for i in &mut s.auth.integrations {
            i.secrets = vec![format!("real-secret-{}", i.id)];
        }
        s.auth.integrations[0]
            .secrets
            .push("dev-crm-secret".to_owned());
        assert!(s.auth.check_listen(public).is_err());
        s.auth.integrations[0].secrets.pop();
        assert!(s.auth.check_listen(public).is_ok());
        s.auth.development_secrets = true;
        assert!(
            s.auth.check_listen(public).is_err(),
            "the flag alone refuses too"
        );
    }

    #[test]
    fn the_simulated_bank_is_refused_on_a_public_address() {
        let public: std::net::SocketAddr = "0.0.0.0:8080".parse().expect("addr");
        let mut s = defaults();
        s.auth.development_secrets = false;
        for o in &mut s.auth.operators {
            o.token = format!("real-token-{}", o.id);
        }
        for i in &mut s.auth.integrations {
            i.secrets = vec![format!("real-secret-{}", i.id)];
        }
        for k in &mut s.audit.keys {
            k.secret = format!("real-audit-key-{}", k.version);
        }
        let shipped_link_key = s.check_listen(public).expect_err("shipped link key");
        assert!(
            shipped_link_key
                .to_string()
                .contains("notifications.link_secret"),
            "{shipped_link_key}"
        );
        s.notifications.link_secret = "a-real-link-key".to_owned();
        let refused = s.check_listen(public).expect_err("simulated bank");
        assert!(refused.to_string().contains("simulated bank"), "{refused}");
        assert!(
            s.check_listen("127.0.0.1:8080".parse().expect("addr"))
                .is_ok()
        );
        s.payments.provider = "http".to_owned();
        assert!(
            s.check_listen(public).is_ok(),
            "{:?}",
            s.check_listen(public)
        );
    }
}
