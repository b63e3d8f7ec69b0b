//! `partnerflow bench http`: the reference workload driven over HTTP, as a reviewer system
//! would drive it, against a `partnerflow serve` (and any worker processes) running elsewhere.
//!
//! Per workflow: start it (`POST /v1/workflows/reference_approval/instances`, operator token),
//! learn of its task from the `task.created` webhook, send the signed approval, and learn of
//! completion from the `workflow.finished` webhook. The driver is the webhook receiver (it
//! listens where the `bench` subscriber of `config/bench.toml` points) and checks every
//! webhook's signature. Latency is from sending the approval to receiving `workflow.finished`,
//! as the Restate peer's driver measures it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::settings::Settings;

const WORKFLOW: &str = "reference_approval";

type Waiters = crate::workload::Waiters<String, String>;

/// What the driver needs from the settings: who starts, who approves, the webhook secret.
struct Credentials {
    operator_token: String,
    integration: String,
    secret: String,
    webhook_secrets: Vec<String>,
    hook_path: String,
}

fn credentials(settings: &Settings) -> Result<Credentials> {
    let operator_token = settings
        .auth
        .operators
        .first()
        .map(|o| o.token.clone())
        .context("bench http needs an operator token (auth.operators)")?;
    let (integration, secret) = settings
        .auth
        .integrations
        .iter()
        .find(|i| i.roles.iter().any(|r| r == "channel_manager"))
        .and_then(|i| Some((i.id.clone(), i.secrets.first()?.clone())))
        .context("bench http needs an integration scoped to channel_manager with a secret")?;
    let hook = settings
        .webhooks
        .iter()
        .find(|w| w.id == "bench")
        .context("bench http needs the `bench` webhook subscriber: run with PARTNERFLOW_ENV=bench (config/bench.toml)")?;
    let hook_path = hook
        .url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_else(|| "/".to_owned());
    Ok(Credentials {
        operator_token,
        integration,
        secret,
        webhook_secrets: hook.secrets.iter().map(|s| s.secret.clone()).collect(),
        hook_path,
    })
}

pub async fn run(
    settings: &Settings,
    url: &str,
    listen: &str,
    workflows: usize,
    concurrency: usize,
) -> Result<()> {
    let creds = Arc::new(credentials(settings)?);
    let waiters: Arc<Waiters> = Arc::default();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the webhook receiver on {listen}"))?;
    let receiver = {
        let (waiters, creds) = (waiters.clone(), creds.clone());
        axum::Router::new().route(
            &creds.hook_path.clone(),
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (waiters, creds) = (waiters.clone(), creds.clone());
                async move { receive(&waiters, &creds, &headers, &body) }
            }),
        )
    };
    let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .timeout(Duration::from_secs(60))
        .build()?;
    let ready = client.get(format!("{url}/readyz")).send().await;
    if !ready.is_ok_and(|r| r.status().is_success()) {
        bail!(
            "{url}/readyz does not answer: start `PARTNERFLOW_ENV=bench partnerflow serve` first"
        );
    }
    println!(
        "partnerflow bench http: {workflows} × {WORKFLOW} against {url}, {concurrency} in flight; tasks and completions learnt from webhooks on {listen}"
    );
    let run_id = Uuid::now_v7().simple().to_string();
    let driver = Arc::new(Driver {
        client: client.clone(),
        url: url.trim_end_matches('/').to_owned(),
        waiters: waiters.clone(),
        creds: creds.clone(),
    });
    let (elapsed, mut approval_to_done, mut end_to_end) = crate::workload::run_clients(
        workflows,
        concurrency,
        &format!("http-{run_id}"),
        "bench http (workflows)",
        move |key| {
            let driver = driver.clone();
            async move { driver.one(&key).await }
        },
    )
    .await?;
    server.abort();
    crate::bench::report(workflows, elapsed, &mut approval_to_done, &mut end_to_end);
    Ok(())
}

/// One webhook: signature checked, then the waiting workflow told.
fn receive(waiters: &Waiters, creds: &Credentials, headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let signed = partnerflow_core::signature::SignedRequest {
        method: "POST",
        path: &creds.hook_path,
        idempotency_key: header("idempotency-key"),
        body,
    };
    let now = chrono::Utc::now().timestamp();
    if partnerflow_core::signature::verify(
        header("x-partnerflow-signature"),
        signed,
        &creds.webhook_secrets,
        now,
        300,
    )
    .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let instance = event["instance_id"].as_str().unwrap_or("").to_owned();
    match event["type"].as_str() {
        Some("task.created") => {
            let task = event["data"]["task"].as_str().unwrap_or("").to_owned();
            waiters.task_opened(instance, task);
        }
        Some("workflow.finished") => waiters.finished(instance),
        _ => {}
    }
    StatusCode::NO_CONTENT
}

struct Driver {
    client: reqwest::Client,
    url: String,
    waiters: Arc<Waiters>,
    creds: Arc<Credentials>,
}

impl Driver {
    /// One workflow; (approval → finished, start → finished).
    async fn one(&self, key: &str) -> Result<(Duration, Duration)> {
        let t_start = Instant::now();
        let response = self
            .client
            .post(format!("{}/v1/workflows/{WORKFLOW}/instances", self.url))
            .bearer_auth(&self.creds.operator_token)
            .header("idempotency-key", key)
            .json(&json!({ "business_key": key, "input": {} }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "start answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        let started: Value = response.json().await?;
        let id = started["id"]
            .as_str()
            .context("start answered without an id")?
            .to_owned();
        let task = self.waiters.task(&id, "no task.created webhook").await?;
        let done = self.waiters.expect_finish(&id);
        let body =
            serde_json::to_vec(&json!({ "decision": "approve", "actor": { "id": "cm.li" } }))?;
        let path = format!("/v1/tasks/{task}/decision");
        let idem = format!("approve-{task}");
        let signature = partnerflow_api::sign(
            &self.creds.secret,
            chrono::Utc::now().timestamp(),
            partnerflow_api::SignedRequest {
                method: "POST",
                path: &path,
                idempotency_key: &idem,
                body: &body,
            },
        );
        let t_approval = Instant::now();
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .header("idempotency-key", &idem)
            .header(partnerflow_api::INTEGRATION_HEADER, &self.creds.integration)
            .header(partnerflow_api::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "approval answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        self.waiters
            .finish(&id, done, "no workflow.finished webhook")
            .await?;
        let latency = (t_approval.elapsed(), t_start.elapsed());
        Ok(latency)
    }
}
