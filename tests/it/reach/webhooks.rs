//! Outbound webhooks as a receiver sees them: signed as the README describes (checked here
//! from that description alone), delivered in order per instance even while the receiver
//! fails, logged, replayable, and signed with both secrets only during a rotation's overlap.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use hmac::{Hmac, Mac};
use partnerflow::harness::shanghai;
use serde_json::json;
use sha2::Sha256;

use super::mail::{declared, harness_on};
use super::receivers::{Received, Receiver};
use crate::http::Api;

/// The README's check: HMAC-SHA256 over `t.POST.PATH.IDEMPOTENCY_KEY.BODY`, any `v1` matching.
fn verifies(r: &Received, secret: &str) -> bool {
    let header = r.header("x-partnerflow-signature");
    let mut t = "";
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => tags.push(v.to_owned()),
            _ => {}
        }
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{t}.POST.{}.{}.", r.path, r.header("idempotency-key")).as_bytes());
    mac.update(&r.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    tags.contains(&expected)
}

/// Runs `scenario(url)` as two tests, on a fresh SQLite file and a fresh PostgreSQL database.
macro_rules! on_both_databases {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                super::$scenario(crate::helpers::sqlite_url()).await;
            }
            #[tokio::test]
            async fn postgres() {
                if !crate::services::postgres(concat!(stringify!($scenario), "::postgres")) {
                    return;
                }
                super::$scenario(crate::helpers::postgres_url().await).await;
            }
        }
    };
}

on_both_databases!(webhooks_arrive_signed_in_order_per_instance_through_failures_and_rotation);
async fn webhooks_arrive_signed_in_order_per_instance_through_failures_and_rotation(url: String) {
    // The receiver fails its first three requests.
    let receiver = Receiver::start(Arc::new(|n, _| {
        (
            if n < 3 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            },
            None,
        )
    }))
    .await;
    let start = shanghai(2026, 3, 2, 10, 0);
    let overlap_ends = start + chrono::Duration::hours(2);
    let mut s = super::mail::settings(1, None, "");
    s.notifications.email.provider = "log".to_owned();
    s.webhooks = vec![
        toml::from_str(&format!(
            r#"id = "erp"
url = "{}"
secrets = [{{ secret = "new-secret" }}, {{ secret = "old-secret", until = "{}" }}]"#,
            receiver.url,
            overlap_ends.to_rfc3339()
        ))
        .expect("webhook"),
    ];
    let h = harness_on(&url, s, start).await;
    let ids = [
        h.apply(declared("P-9301", "zh-CN")).await.expect("apply"),
        h.apply(declared("P-9302", "zh-CN")).await.expect("apply"),
        h.apply(declared("P-9303", "zh-CN")).await.expect("apply"),
    ];
    h.advance_to(h.now() + chrono::Duration::minutes(10))
        .await
        .expect("deliveries");

    let got = receiver.received();
    assert!(got.len() > 3, "{got:?}");
    // Per instance: requests in non-decreasing sequence (a later event never goes before an
    // earlier one was accepted), and each event accepted exactly once.
    let mut by_instance: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (n, r) in got.iter().enumerate() {
        let body = r.json();
        assert!(
            verifies(r, "new-secret") && verifies(r, "old-secret"),
            "both secrets sign during the overlap: {}",
            r.header("x-partnerflow-signature")
        );
        assert_eq!(
            r.header("x-partnerflow-delivery"),
            body["id"].as_str().unwrap_or("")
        );
        let accepted = if n < 3 { "failed" } else { "accepted" };
        by_instance
            .entry(body["instance_id"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push((body["sequence"].as_i64().unwrap_or(-1), accepted.to_owned()));
    }
    assert_eq!(by_instance.len(), 3, "{by_instance:?}");
    for (instance, seen) in &by_instance {
        assert!(
            seen.windows(2).all(|w| w[0].0 <= w[1].0),
            "out of order for {instance}: {seen:?}"
        );
        let accepted: Vec<i64> = seen
            .iter()
            .filter(|(_, a)| a == "accepted")
            .map(|(s, _)| *s)
            .collect();
        let mut unique = accepted.clone();
        unique.dedup();
        assert_eq!(accepted, unique, "each event accepted once: {seen:?}");
    }
    let types: Vec<String> = got
        .iter()
        .map(|r| r.header("x-partnerflow-event"))
        .collect();
    assert!(types.iter().any(|t| t == "task.created"), "{types:?}");
    assert!(types.iter().any(|t| t == "step.completed"), "{types:?}");

    // The delivery log, and a replay with the same event id.
    let api = Api::new(&h);
    let (status, log) = api
        .operator(Method::GET, "/v1/webhooks/erp/deliveries", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = log.as_array().cloned().unwrap_or_default();
    assert!(entries.iter().all(|d| d["status"] == "delivered"), "{log}");
    assert!(
        entries.iter().any(|d| d["attempts"].as_i64() > Some(1)),
        "retried ones show their attempts: {log}"
    );
    let first = got[0].header("x-partnerflow-delivery");
    let (status, body) = api
        .operator(
            Method::POST,
            &format!("/v1/webhooks/erp/deliveries/{first}/replay"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.settle().await.expect("replay");
    let replayed: Vec<_> = receiver
        .received()
        .into_iter()
        .filter(|r| r.header("x-partnerflow-delivery") == first)
        .collect();
    assert!(replayed.len() >= 2, "sent again under the same id");
    let (status, _) = api
        .operator(Method::GET, "/v1/webhooks/nobody/deliveries", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // After the overlap only the new secret signs.
    h.advance_to(overlap_ends + chrono::Duration::minutes(1))
        .await
        .expect("later");
    let before = receiver.received().len();
    h.decide(ids[0], "cm.li", "approve", None, json!(null))
        .await
        .expect("decide");
    h.advance_to(h.now() + chrono::Duration::minutes(1))
        .await
        .expect("deliver");
    let after: Vec<_> = receiver.received().into_iter().skip(before).collect();
    assert!(!after.is_empty());
    for r in &after {
        assert!(verifies(r, "new-secret"), "the new secret signs");
        assert!(!verifies(r, "old-secret"), "the old secret no longer does");
    }
}

on_both_databases!(order_per_instance_holds_with_several_workers_and_a_flaky_receiver);
async fn order_per_instance_holds_with_several_workers_and_a_flaky_receiver(url: String) {
    // Every third request fails; answers take a little while, so workers overlap.
    let receiver = Receiver::start(Arc::new(|n, _| {
        let status = if n % 3 == 0 {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::OK
        };
        (
            status,
            Some(std::time::Duration::from_millis(5 + (n as u64 * 7) % 20)),
        )
    }))
    .await;
    let start = shanghai(2026, 3, 2, 10, 0);
    let mut s = super::mail::settings(1, None, "");
    s.notifications.email.provider = "log".to_owned();
    s.webhooks = vec![
        toml::from_str(&format!(
            "id = \"erp\"\nurl = \"{}\"\nsecrets = [{{ secret = \"s\" }}]",
            receiver.url
        ))
        .expect("webhook"),
    ];
    let h = harness_on(&url, s, start).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            h.apply(declared(&format!("P-94{n:02}"), "zh-CN"))
                .await
                .expect("apply"),
        );
    }
    // Four workers, the dispatcher and the sweeper run for real; the clock moves on so that
    // retries come due.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    let e = h.engine.clone();
    let s2 = stop.clone();
    tasks.push(tokio::spawn(async move { e.run_dispatcher(s2).await }));
    let e = h.engine.clone();
    let s2 = stop.clone();
    tasks.push(tokio::spawn(async move { e.run_sweeper(s2).await }));
    let e = h.engine.clone();
    let s2 = stop.clone();
    tasks.push(tokio::spawn(async move {
        let _ = e.run_workers(4, s2).await;
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        h.clock.advance(chrono::Duration::seconds(3));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if !receiver.received().is_empty() && h.engine.backlog().await.expect("backlog") == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries did not finish: {} requests",
            receiver.received().len()
        );
    }
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let mut by_instance: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in receiver.received() {
        let body = r.json();
        by_instance
            .entry(body["instance_id"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push(body["sequence"].as_i64().unwrap_or(-1));
    }
    assert_eq!(by_instance.len(), ids.len());
    let failed = receiver
        .received()
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 3 == 0)
        .count();
    assert!(
        failed >= 3,
        "the receiver failed some requests, which were retried"
    );
    for (instance, seq) in &by_instance {
        assert!(
            seq.windows(2).all(|w| w[0] <= w[1]),
            "out of order for {instance}: {seq:?}"
        );
    }
    // Every event the receiver accepted is logged delivered, and its outbox row is done.
    let log = h
        .engine
        .webhook_deliveries("erp", false, 10_000)
        .await
        .expect("delivery log");
    let events: std::collections::BTreeSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("x-partnerflow-delivery"))
        .collect();
    assert_eq!(log.len(), events.len(), "{log:?}");
    assert!(
        log.iter().all(|d| d.status == "delivered"),
        "{:?}",
        log.iter().map(|d| &d.status).collect::<Vec<_>>()
    );
    assert_eq!(h.engine.backlog().await.expect("backlog"), 0);
}
