//! `partnerflow bench`: the reference workload of PRODUCT §6 against the configured backend.
//!
//! A 3-step workflow (automated step → human approval → automated step) is started, the
//! approval is sent as an HMAC-signed callback through the real API router (in process, no
//! TCP), and the time from sending the callback to the workflow's completion is measured.
//! Dispatcher, sweeper and workers run in this process on the configured queue (in-process or
//! Redis) and database (SQLite or PostgreSQL); every transition is committed durably.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Body;
use axum::http::Request;
use partnerflow_core::machine::Actor;
use partnerflow_engine::Submitter;
use partnerflow_engine::{Clock, Engine, Notice, SystemClock};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use uuid::Uuid;

use crate::app;
use crate::settings::Settings;

const WORKFLOW: &str = "reference_approval";

type Waiters = crate::workload::Waiters<Uuid, Uuid>;

pub async fn run(settings: &Settings, workflows: usize, concurrency: usize) -> Result<()> {
    let mut settings = settings.clone();
    settings
        .paths
        .extra_workflows
        .push(settings.paths.workflows.join("reference"));
    let temp_db = settings
        .database
        .url
        .starts_with("sqlite:")
        .then(|| std::env::temp_dir().join(format!("partnerflow-bench-{}.db", Uuid::now_v7())));
    if let Some(path) = &temp_db {
        settings.database.url = format!("sqlite:{}", path.display());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = app::build(&settings, clock.clone()).await?;
    let (integration, secret) = settings
        .auth
        .integrations
        .iter()
        .find(|i| i.roles.iter().any(|r| r == "channel_manager"))
        .and_then(|i| Some((i.id.clone(), i.secrets.first()?.clone())))
        .context("bench needs an integration scoped to channel_manager with a secret")?;
    let router = partnerflow_api::router(partnerflow_api::AppState {
        engine: engine.clone(),
        auth: Arc::new(app::auth_config(&settings)),
        metrics: None,
        clock,
        settlement: None,
    });

    let shutdown = CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    app::spawn_loops(&engine, &shutdown, &tracker);
    let worker_concurrency = settings.engine.worker_concurrency.max(concurrency);
    app::spawn_workers(&engine, worker_concurrency, &shutdown, &tracker);
    let waiters: Arc<Waiters> = Arc::default();
    tracker.spawn(route_notices(
        engine.clone(),
        waiters.clone(),
        shutdown.clone(),
    ));

    println!(
        "partnerflow bench: {workflows} × {WORKFLOW} (automated → signed-callback approval → automated), {concurrency} in flight, database {}, queue {}",
        if temp_db.is_some() {
            "SQLite (embedded)"
        } else {
            "PostgreSQL"
        },
        settings.queue.kind
    );
    let run_id = Uuid::now_v7().simple().to_string();
    let client = Arc::new(Client {
        engine: engine.clone(),
        router: router.clone(),
        waiters: waiters.clone(),
        integration: integration.clone(),
        secret: secret.clone(),
    });
    let (elapsed, mut callback_to_done, mut end_to_end) = crate::workload::run_clients(
        workflows,
        concurrency,
        &format!("bench-{run_id}"),
        "bench (workflows)",
        move |key| {
            let client = client.clone();
            async move { client.one(&key).await }
        },
    )
    .await?;
    shutdown.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
    engine.store().pool.close().await;
    if let Some(path) = temp_db {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    report(workflows, elapsed, &mut callback_to_done, &mut end_to_end);
    Ok(())
}

/// Prints throughput and the two latency distributions (shared with `bench http`).
pub(crate) fn report(n: usize, elapsed: Duration, cb: &mut [Duration], e2e: &mut [Duration]) {
    cb.sort_unstable();
    e2e.sort_unstable();
    let pct = crate::measure::percentile_ms;
    println!(
        "completed {n} workflows in {:.2} s: {:.0} workflows/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "callback → completion: p50 {:.1} ms, p99 {:.1} ms",
        pct(cb, 0.50),
        pct(cb, 0.99)
    );
    println!(
        "start → completion:    p50 {:.1} ms, p99 {:.1} ms",
        pct(e2e, 0.50),
        pct(e2e, 0.99)
    );
}

async fn route_notices(engine: Engine, waiters: Arc<Waiters>, shutdown: CancellationToken) {
    let mut rx = engine.subscribe();
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            n = rx.recv() => match n {
                Ok(n) => n,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                    tracing::error!(missed = k, "bench notice listener lagged");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        match notice {
            Notice::TaskOpened {
                instance_id,
                task_id,
            } => waiters.task_opened(instance_id, task_id),
            Notice::Finished { instance_id, .. } => waiters.finished(instance_id),
        }
    }
}

struct Client {
    engine: Engine,
    router: axum::Router,
    waiters: Arc<Waiters>,
    integration: String,
    secret: String,
}

impl Client {
    /// Runs one workflow; returns (callback → completion, start → completion).
    async fn one(&self, key: &str) -> Result<(Duration, Duration)> {
        let t_start = Instant::now();
        let (started, _) = self
            .engine
            .start(
                WORKFLOW,
                key,
                serde_json::json!({}),
                Submitter {
                    actor: Actor {
                        id: "bench".to_owned(),
                    },
                    partner: None,
                },
                None,
            )
            .await?;
        let id = started.id;
        let task = self.waiters.task(&id, "no task").await?;
        let body = serde_json::to_vec(
            &serde_json::json!({ "decision": "approve", "reason": null, "actor": { "id": "cm.li" } }),
        )?;
        let now = chrono::Utc::now().timestamp();
        let path = format!("/v1/tasks/{task}/decision");
        let key = format!("bench-approve-{task}");
        let signed = partnerflow_api::SignedRequest {
            method: "POST",
            path: &path,
            idempotency_key: &key,
            body: &body,
        };
        let request = Request::post(&path)
            .header("content-type", "application/json")
            .header("idempotency-key", &key)
            .header(partnerflow_api::INTEGRATION_HEADER, &self.integration)
            .header(
                partnerflow_api::SIGNATURE_HEADER,
                partnerflow_api::sign(&self.secret, now, signed),
            )
            .body(Body::from(body))?;
        let done = self.waiters.expect_finish(&id);
        let t_callback = Instant::now();
        let response = self.router.clone().oneshot(request).await?;
        if !response.status().is_success() {
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .unwrap_or_default();
            bail!(
                "callback answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        self.waiters.finish(&id, done, "not completed").await?;
        let latency = (t_callback.elapsed(), t_start.elapsed());
        Ok(latency)
    }
}
