//! Wiring: settings → store, queue, notifier, calendar, directory, programme, definitions →
//! engine. The only place that chooses backends.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use partnerflow_core::BusinessCalendar;
use partnerflow_core::directory::Directory;
use partnerflow_core::programme::Programme;
use partnerflow_engine::queue::{MemoryQueue, Queue, RedisQueue};
use partnerflow_engine::{Clock, Engine, EngineParts};
use partnerflow_store::Store;
use partnerflow_store::connections::Overdrawn;
use tokio_util::sync::CancellationToken;

use crate::settings::Settings;

/// Files shipped in the binary, used when the configured path does not exist, so the
/// embedded default runs from any directory.
const EMBEDDED_WORKFLOWS: &[(&str, &str)] = &[
    (
        "partner_onboarding.toml",
        include_str!("../../../workflows/partner_onboarding.toml"),
    ),
    (
        "contract_signing.toml",
        include_str!("../../../workflows/contract_signing.toml"),
    ),
    (
        "mdf_quota.toml",
        include_str!("../../../workflows/mdf_quota.toml"),
    ),
    (
        "mdf_claim.toml",
        include_str!("../../../workflows/mdf_claim.toml"),
    ),
    (
        "mdf_supplement.toml",
        include_str!("../../../workflows/mdf_supplement.toml"),
    ),
    (
        "nre_milestones.toml",
        include_str!("../../../workflows/nre_milestones.toml"),
    ),
    (
        "rebate_settlement.toml",
        include_str!("../../../workflows/rebate_settlement.toml"),
    ),
];
const EMBEDDED_POLICIES: &[(&str, &str)] = &[(
    "base-monthly-v1.toml",
    include_str!("../../../config/policies/base-monthly-v1.toml"),
)];
const EMBEDDED_PROGRAMME: &str = include_str!("../../../config/programme.toml");
const EMBEDDED_DIRECTORY: &str = include_str!("../../../config/directory.toml");
const EMBEDDED_CALENDARS: &[(&str, &str)] = &[
    (
        "cn-2025.toml",
        include_str!("../../../config/calendars/cn-2025.toml"),
    ),
    (
        "cn-2026.toml",
        include_str!("../../../config/calendars/cn-2026.toml"),
    ),
];

/// Programme, directory and calendar, read and checked.
#[derive(Debug, Clone)]
pub struct ConfigData {
    pub programme: Arc<Programme>,
    pub directory: Arc<Directory>,
    pub calendar: Arc<BusinessCalendar>,
}

fn read_or(path: &Path, embedded: &str) -> Result<String> {
    if path.exists() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    } else {
        Ok(embedded.to_owned())
    }
}

impl ConfigData {
    pub fn load(settings: &Settings) -> Result<Self> {
        let programme = Programme::parse(&read_or(&settings.paths.programme, EMBEDDED_PROGRAMME)?)
            .with_context(|| format!("programme file {}", settings.paths.programme.display()))?;
        let directory: Directory =
            toml::from_str(&read_or(&settings.paths.directory, EMBEDDED_DIRECTORY)?).with_context(
                || format!("directory file {}", settings.paths.directory.display()),
            )?;
        if let Err(problems) = directory.validate() {
            bail!(
                "directory {}: {}",
                settings.paths.directory.display(),
                problems.join("; ")
            );
        }
        let mut files = Vec::new();
        for name in &programme.calendars {
            let path = settings.paths.calendars.join(name);
            let embedded = EMBEDDED_CALENDARS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| *t);
            let text = match (path.exists(), embedded) {
                (true, _) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (false, Some(t)) => t.to_owned(),
                (false, None) => bail!("calendar file {} does not exist", path.display()),
            };
            files.push((name.clone(), text));
        }
        let calendar = BusinessCalendar::from_files(&files)?;
        Ok(ConfigData {
            programme: Arc::new(programme),
            directory: Arc::new(directory),
            calendar: Arc::new(calendar),
        })
    }
}

/// `(file name, text)` of every `*.toml` in `dir`, or the definitions shipped in the binary
/// when `dir` does not exist (the embedded default run from anywhere).
pub fn read_definitions_or_embedded(dir: &Path) -> Result<Vec<(String, String)>> {
    if dir.exists() {
        return read_definitions(dir);
    }
    Ok(EMBEDDED_WORKFLOWS
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect())
}

/// `(file name, text)` of `dir` when it is a file, or of every `*.toml` in it.
pub fn read_definitions(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    if dir.is_file() {
        files.push((dir.display().to_string(), std::fs::read_to_string(dir)?));
        return Ok(files);
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    for p in entries {
        files.push((
            p.display().to_string(),
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        ));
    }
    Ok(files)
}

/// Warns (log and metric) when the loaded calendar ends within 60 days of `now`.
pub fn warn_if_calendar_ends_soon(
    calendar: &BusinessCalendar,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let today = now.with_timezone(&calendar.timezone()).date_naive();
    if !calendar.ends_within(today, 60) {
        return None;
    }
    let last = calendar
        .last_covered_day()
        .map_or_else(|| "no year".to_owned(), |d| d.to_string());
    let msg = format!(
        "the business calendar ends on {last}, within 60 days: add next year's file to config/calendars/ and list it in the programme"
    );
    tracing::warn!("{msg}");
    metrics::gauge!("partnerflow_calendar_ends_within_60_days").set(1.0);
    Some(msg)
}

/// The outside systems partnerflow delivers to. The embedded default logs notifications and
/// pays through a simulated bank.
#[derive(Clone)]
pub struct Providers {
    pub notifier: Arc<dyn partnerflow_notify::Notifier>,
    pub payments: Arc<dyn partnerflow_workers::PaymentProvider>,
}

impl Default for Providers {
    fn default() -> Self {
        Providers {
            notifier: Arc::new(partnerflow_notify::LogNotifier),
            payments: Arc::new(partnerflow_workers::SimulatedBank::default()),
        }
    }
}

impl Providers {
    /// The providers the settings configure (`[payments]`, `[notifications]`).
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let p = &settings.payments;
        let payments: Arc<dyn partnerflow_workers::PaymentProvider> = match p.provider.as_str() {
            "simulated" => Arc::new(partnerflow_workers::SimulatedBank::default()),
            "http" if p.url.is_empty() => {
                bail!("payments.url is required when payments.provider = \"http\"")
            }
            "http" => Arc::new(
                partnerflow_workers::HttpBank::new(
                    &p.url,
                    p.token.clone(),
                    Duration::from_millis(p.timeout_ms),
                )
                .map_err(anyhow::Error::msg)?,
            ),
            other => bail!("payments.provider must be `simulated` or `http`, got `{other}`"),
        };
        Ok(Providers {
            notifier: crate::reach::notifier(&settings.notifications)?,
            payments,
        })
    }
}

/// Step handlers and validators, with the configured verification provider and `payments`.
pub fn registry(
    settings: &Settings,
    payments: Arc<dyn partnerflow_workers::PaymentProvider>,
) -> Result<partnerflow_core::handler::HandlerRegistry> {
    let pause = partnerflow_workers::ReferenceOptions {
        pause: settings.engine.reference_step_ms.map(Duration::from_millis),
        run_log: settings.engine.reference_run_log.clone(),
    };
    let v = &settings.verification;
    Ok(match v.provider.as_str() {
        "simulated" => {
            partnerflow_workers::registry(partnerflow_workers::SimulatedVerifier, payments, pause)
        }
        "http" if v.url.is_empty() => {
            bail!("verification.url is required when verification.provider = \"http\"")
        }
        "http" => {
            let verifier = partnerflow_workers::HttpVerifier::new(
                &v.url,
                v.token.clone(),
                Duration::from_millis(v.timeout_ms),
            )
            .map_err(anyhow::Error::msg)?;
            partnerflow_workers::registry(verifier, payments, pause)
        }
        other => bail!("verification.provider must be `simulated` or `http`, got `{other}`"),
    })
}

/// The rebate policies: the configured directory's files, or the shipped example when the
/// directory does not exist.
pub fn policies(settings: &Settings) -> Result<partnerflow_core::rebate::policy::PolicySet> {
    let dir = &settings.paths.policies;
    let set = if dir.exists() {
        partnerflow_settlement::policies::load(dir)
    } else {
        let files: Vec<(String, String)> = EMBEDDED_POLICIES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        partnerflow_settlement::policies::parse(&files)
    };
    set.with_context(|| format!("rebate policies in {}", dir.display()))
}

/// The programme's settlement on `engine`, with its policies and schedule checked.
pub fn settlement(
    settings: &Settings,
    engine: &Engine,
) -> Result<partnerflow_settlement::Settlement> {
    let programme = engine.programme();
    let rules = programme.settlement.clone();
    partnerflow_settlement::schedule::schedule(&rules)?;
    Ok(partnerflow_settlement::Settlement::new(
        engine.clone(),
        &programme.id,
        rules,
        policies(settings)?,
    ))
}

/// Builds and starts an engine from settings on the given clock.
pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Engine> {
    build_with(settings, clock, Providers::from_settings(settings)?).await
}

/// [`build`] with the providers given.
pub async fn build_with(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    providers: Providers,
) -> Result<Engine> {
    let data = ConfigData::load(settings)?;
    let store = Store::connect(&settings.database.url, settings.database.max_connections)
        .await
        .with_context(|| format!("connecting to {}", redact(&settings.database.url)))?;
    if !settings.database.behind_pooler {
        check_connection_budget(&store, settings.database.max_connections).await?;
    }
    store.migrate().await.context("migrating")?;
    let queue: Arc<dyn Queue> = match settings.queue.kind.as_str() {
        "memory" => Arc::new(MemoryQueue::default()),
        "redis" => Arc::new(
            RedisQueue::connect(&settings.queue.redis_url, &settings.queue.namespace)
                .await
                .with_context(|| format!("connecting to Redis at {}", settings.queue.redis_url))?,
        ),
        other => bail!("queue.kind must be `memory` or `redis`, got `{other}`"),
    };
    warn_if_calendar_ends_soon(&data.calendar, clock.now());
    let engine = Engine::new(EngineParts {
        store,
        queue,
        notifier: providers.notifier,
        clock,
        registry: registry(settings, providers.payments)?,
        calendar: data.calendar,
        directory: data.directory,
        programme: data.programme,
        reach: crate::reach::reach(
            &settings.notifications,
            &settings.webhooks,
            crate::reach::templates(&settings.notifications)?,
        )?,
        settings: partnerflow_engine::Settings {
            lease: Duration::from_secs(settings.engine.lease_secs),
            redispatch: Duration::from_secs(settings.engine.redispatch_secs),
            audit: settings.audit.keys()?,
            attachments_dir: settings.paths.attachments.clone(),
            retention: partnerflow_engine::Retention {
                done_outbox: days(settings.retention.done_outbox_days),
                closed_timers: days(settings.retention.closed_timer_days),
                idempotency_keys: days(settings.retention.idempotency_key_days),
                batch: settings.retention.batch,
                every: Duration::from_secs(settings.retention.every_secs),
            },
            batch: settings.engine.batch,
            poll: Duration::from_millis(settings.engine.poll_ms),
            group_commit: settings.engine.group_commit,
            ..partnerflow_engine::Settings::default()
        },
    });
    let mut definitions = read_definitions_or_embedded(&settings.paths.workflows)?;
    for extra in &settings.paths.extra_workflows {
        definitions.extend(read_definitions(extra)?);
    }
    engine.load_definitions(&definitions).await?;
    engine.check_templates().map_err(|problems| {
        anyhow::anyhow!("notification templates:\n  {}", problems.join("\n  "))
    })?;
    Ok(engine)
}

/// Refuses a pool PostgreSQL can never fill, and warns when the pools of the partnerflow
/// processes connected add up to more than it serves: another process may be on its way out
/// (a rolling restart), so that is not a reason to refuse.
async fn check_connection_budget(store: &Store, own: u32) -> Result<()> {
    let Some(budget) = store
        .connection_budget()
        .await
        .context("reading PostgreSQL's connection limit")?
    else {
        return Ok(());
    };
    match budget.check(own) {
        Ok(()) => Ok(()),
        Err(e @ Overdrawn::Alone { .. }) => Err(e.into()),
        Err(e @ Overdrawn::Together { .. }) => {
            tracing::warn!("{e}");
            Ok(())
        }
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(24 * 3600))
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The API's authentication settings.
pub fn auth_config(settings: &Settings) -> partnerflow_api::AuthConfig {
    partnerflow_api::AuthConfig {
        integrations: settings
            .auth
            .integrations
            .iter()
            .map(|i| partnerflow_api::Integration {
                id: i.id.clone(),
                secrets: i.secrets.clone(),
                roles: i.roles.clone(),
                events: i.events.clone(),
                workflows: i.workflows.clone(),
                reads: i.reads.clone(),
                imports: i.imports.clone(),
                partner: i.partner.clone(),
            })
            .collect(),
        operators: settings
            .auth
            .operators
            .iter()
            .map(|o| partnerflow_api::Operator {
                id: o.id.clone(),
                token: o.token.clone(),
            })
            .collect(),
        tolerance_secs: settings.http.signature_tolerance_secs,
    }
}

/// Background loops of a dispatching process: the dispatcher, the timer sweeper, the janitor
/// and the gauges of `/metrics`.
pub fn spawn_loops(
    engine: &Engine,
    shutdown: &CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) {
    let (e, s) = (engine.clone(), shutdown.clone());
    tracker.spawn(async move { e.run_dispatcher(s).await });
    let (e, s) = (engine.clone(), shutdown.clone());
    tracker.spawn(async move { e.run_sweeper(s).await });
    let (e, s) = (engine.clone(), shutdown.clone());
    tracker.spawn(async move { e.run_janitor(s).await });
    let (e, s) = (engine.clone(), shutdown.clone());
    tracker.spawn(async move { e.run_gauges(s).await });
}

/// Workers on the configured queue; if they stop for good, the whole process shuts down.
pub fn spawn_workers(
    engine: &Engine,
    concurrency: usize,
    shutdown: &CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) {
    let (e, s) = (engine.clone(), shutdown.clone());
    tracker.spawn(async move {
        if let Err(err) = e.run_workers(concurrency, s.clone()).await {
            tracing::error!(error = %err, "workers stopped; shutting down");
            s.cancel();
        }
    });
}
