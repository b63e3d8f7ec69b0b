//! `partnerflow bench timers`: open human tasks with their SLA timers, opened in bulk (the
//! engine's bulk start, a thousand at a time) on a clock set back, so that their first
//! reminders come due over the next minutes, a share of them at one instant (the morning after
//! a holiday); then the timer sweeper alone, on a clock that runs at real speed from just
//! before the first one. Prints how late the reminders fired (p50, p99, max; the burst's
//! apart), this process's resident memory sampled every second while the sweeper ran, and the
//! time `GET /v1/tasks` takes to page through the open tasks with its cursor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::Request;
use chrono::{DateTime, Utc};
use partnerflow_core::machine::Actor;
use partnerflow_engine::{BulkStart, Clock, Engine, Submitter, VirtualClock};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::app;
use crate::measure::{memory_mib, percentile_ms};
use crate::settings::Settings;

const WORKFLOW: &str = "reference_reminders";
/// The first rung of `workflows/reference/reminders.toml`: 25 % of its 2 h SLA.
const FIRST_RUNG: chrono::Duration = chrono::Duration::minutes(30);
const BATCH: u64 = 1_000;

/// What the bench opens and when their reminders come due.
pub struct Plan {
    pub tasks: u64,
    /// Tasks whose first reminder is due at one instant, halfway through.
    pub burst: u64,
    /// The seconds over which the other reminders come due.
    pub over_secs: u64,
}

fn summary(label: &str, late: &mut [Duration]) {
    late.sort_unstable();
    println!(
        "{label}: {} fired, late p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        late.len(),
        percentile_ms(late, 0.5),
        percentile_ms(late, 0.99),
        percentile_ms(late, 1.0)
    );
}

async fn open(
    engine: &Engine,
    clock: &VirtualClock,
    plan: &Plan,
    base: DateTime<Utc>,
) -> Result<()> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let bar = crate::progress::Progress::new(
        plan.tasks,
        "{bar:40} {pos}/{len} tasks · {per_sec} · ETA {eta}",
        "bench timers (tasks opened)",
    );
    let steady = plan.tasks.saturating_sub(plan.burst);
    let over = chrono::Duration::seconds(i64::try_from(plan.over_secs).unwrap_or(600));
    let mut opened = 0;
    while opened < plan.tasks {
        let n = BATCH.min(plan.tasks - opened);
        // The burst first, all at one instant halfway through; then the rest, evenly spread.
        let at = if opened < plan.burst {
            base + over / 2
        } else {
            let i = i32::try_from((opened - plan.burst) * 1_000_000 / steady.max(1)).unwrap_or(0);
            base + over * i / 1_000_000
        };
        clock.set(at);
        let n = if opened < plan.burst {
            n.min(plan.burst - opened)
        } else {
            n
        };
        let starts = (opened..opened + n)
            .map(|k| BulkStart {
                business_key: format!("bench-timers-{run}-{k}"),
                input: serde_json::json!({}),
                submitter: Submitter {
                    actor: Actor::system(),
                    partner: None,
                },
            })
            .collect();
        engine.start_many(WORKFLOW, starts).await?;
        opened += n;
        bar.set_position(opened);
    }
    bar.finish_and_clear();
    Ok(())
}

pub async fn run(settings: &Settings, plan: Plan) -> Result<()> {
    let mut settings = settings.clone();
    settings
        .paths
        .extra_workflows
        .push(settings.paths.workflows.join("reference"));
    let base = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now);
    let clock = Arc::new(VirtualClock::new(base));
    let engine = app::build(&settings, clock.clone()).await?;
    let plan = Plan {
        burst: plan.burst.min(plan.tasks),
        over_secs: plan.over_secs.max(1),
        ..plan
    };
    println!(
        "timers bench on {}: {} open tasks, first reminders due over {} s, {} of them at one instant",
        app::redact(&settings.database.url),
        plan.tasks,
        plan.over_secs,
        plan.burst
    );
    let opening = Instant::now();
    open(&engine, &clock, &plan, base).await?;
    println!(
        "opened {} tasks with their timers in {:.1} s",
        plan.tasks,
        opening.elapsed().as_secs_f64()
    );
    // What autoanalyze does within a minute of a bulk load; a server running without
    // autovacuum would otherwise plan the task list on the counts of an empty table.
    if engine.store().backend == partnerflow_store::Backend::Postgres {
        partnerflow_store::raw_execute(engine.store(), "analyze")
            .await
            .context("analyze after the bulk open")?;
    }

    // The clock runs at real speed from two seconds before the first reminder.
    let over = chrono::Duration::seconds(i64::try_from(plan.over_secs).unwrap_or(600));
    let (due_from, due_to) = (base + FIRST_RUNG, base + FIRST_RUNG + over);
    let burst_at = base + FIRST_RUNG + over / 2;
    let from = due_from - chrono::Duration::seconds(2);
    let real = Instant::now();
    clock.set(from);
    let stop = CancellationToken::new();
    let ticker = {
        let (clock, stop) = (clock.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                clock.set(from + chrono::Duration::from_std(real.elapsed()).unwrap_or_default());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let sweeper = {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move { engine.run_sweeper(stop).await })
    };
    let mut rss = Vec::new();
    let give_up = Duration::from_secs(plan.over_secs + 300);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.extend(memory_mib("VmRSS"));
        if clock.now() < due_to {
            continue;
        }
        let mut conn = engine.store().acquire().await?;
        let left = partnerflow_store::timers::pending_between(&mut conn, due_from, due_to).await?;
        if left == 0 || real.elapsed() > give_up {
            if left > 0 {
                println!("gave up with {left} reminders still pending");
            }
            break;
        }
    }
    stop.cancel();
    let _ = tokio::join!(ticker, sweeper);
    let fired = {
        let mut conn = engine.store().acquire().await?;
        partnerflow_store::timers::lateness(&mut conn, due_from, due_to).await?
    };
    let late = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
    let mut all: Vec<Duration> = fired.iter().map(|(_, us)| late(*us)).collect();
    let mut burst: Vec<Duration> = fired
        .iter()
        .filter(|(due, _)| *due == burst_at)
        .map(|(_, us)| late(*us))
        .collect();
    summary("reminders", &mut all);
    summary("the burst", &mut burst);
    let max = rss.iter().copied().fold(0.0, f64::max);
    println!(
        "sweeper RSS: {} samples, first {:.0} MiB, last {:.0} MiB, max {max:.0} MiB",
        rss.len(),
        rss.first().copied().unwrap_or_default(),
        rss.last().copied().unwrap_or_default()
    );
    list_tasks(&settings, &engine, clock).await
}

/// Pages through `GET /v1/tasks` as an operator, twenty pages of a hundred.
async fn list_tasks(settings: &Settings, engine: &Engine, clock: Arc<VirtualClock>) -> Result<()> {
    let token = settings
        .auth
        .operators
        .first()
        .map(|o| o.token.clone())
        .context("bench timers lists tasks as an operator: configure one")?;
    let clock: Arc<dyn Clock> = clock;
    let router = partnerflow_api::router(partnerflow_api::AppState {
        engine: engine.clone(),
        auth: Arc::new(app::auth_config(settings)),
        metrics: None,
        clock,
        settlement: None,
    });
    let mut took = Vec::new();
    let mut after = String::new();
    for _ in 0..20 {
        let uri = format!("/v1/tasks?status=open&limit=100{after}");
        let request = Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())?;
        let began = Instant::now();
        let response = router.clone().oneshot(request).await?;
        let body = axum::body::to_bytes(response.into_body(), 16 << 20).await?;
        took.push(began.elapsed());
        let page: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
        match page.last().and_then(|t| t["cursor"].as_str()) {
            Some(cursor) => after = format!("&after={cursor}"),
            None => break,
        }
    }
    took.sort_unstable();
    println!(
        "GET /v1/tasks (100 a page, {} pages by cursor): p50 {:.1} ms, max {:.1} ms",
        took.len(),
        percentile_ms(&took, 0.5),
        percentile_ms(&took, 1.0)
    );
    Ok(())
}
