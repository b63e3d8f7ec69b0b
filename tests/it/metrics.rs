//! `/metrics` explains the service: every series is there with zeros before the first event,
//! and a scenario's counts and gauges show up as they happened.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use metrics_exporter_prometheus::PrometheusBuilder;
use partnerflow::harness::{Harness, shanghai};
use tower::ServiceExt;

use crate::reach::mail::declared;

/// The value of one series line (`name{labels}`), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_show_zeros_at_start_and_what_a_scenario_did() {
    // A recorder of this test's thread only (the runtime is single-threaded), so other tests
    // in the same process count elsewhere.
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let url = crate::helpers::sqlite_url();
    let h = Harness::with_settings(&url, shanghai(2026, 3, 2, 10, 0), |s| {
        s.notifications.working_hours = String::new();
    })
    .await
    .expect("harness");
    h.engine.register_metrics();
    let settings =
        partnerflow::settings::Settings::load(std::path::Path::new("config")).expect("settings");
    let render = handle.clone();
    let router = partnerflow_api::router(partnerflow_api::AppState {
        engine: h.engine.clone(),
        auth: Arc::new(partnerflow::app::auth_config(&settings)),
        metrics: Some(Arc::new(move || render.render())),
        clock: h.clock.clone(),
        settlement: None,
    });
    let scrape = || async {
        let r = router
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).expect("req"))
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), 200);
        String::from_utf8(
            axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .expect("body")
                .to_vec(),
        )
        .expect("utf-8")
    };

    let before = scrape().await;
    for series in [
        "partnerflow_workflows_started_total{workflow=\"partner_onboarding\"}",
        "partnerflow_workflows_finished_total{workflow=\"partner_onboarding\",status=\"rejected\"}",
        "partnerflow_sla_reminders_total{role=\"channel_manager\"}",
        "partnerflow_sla_escalations_total{role=\"channel_manager\"}",
        "partnerflow_notifications_sent_total{channel=\"sms\"}",
        "partnerflow_open_tasks{role=\"channel_manager\"}",
        "partnerflow_outbox_backlog",
        "partnerflow_queue_depth",
    ] {
        assert_eq!(
            value(&before, series),
            Some(0.0),
            "{series} registered at zero:\n{before}"
        );
    }

    let a = h.apply(declared("P-9701", "zh-CN")).await.expect("apply");
    h.apply(declared("P-9702", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    h.decide(
        a,
        "cm.li",
        "reject",
        Some("incomplete"),
        serde_json::Value::Null,
    )
    .await
    .expect("reject");
    // Past 80 % of the 3-working-day SLA and past 100 %: two reminders, one escalation.
    h.advance_to(shanghai(2026, 3, 5, 11, 0))
        .await
        .expect("advance");
    h.engine.publish_gauges().await.expect("gauges");
    let after = scrape().await;
    let v = |s: &str| value(&after, s).unwrap_or(-1.0);
    assert_eq!(
        v("partnerflow_workflows_started_total{workflow=\"partner_onboarding\"}"),
        2.0
    );
    assert_eq!(
        v(
            "partnerflow_workflows_finished_total{workflow=\"partner_onboarding\",status=\"rejected\"}"
        ),
        1.0
    );
    assert_eq!(
        v("partnerflow_sla_reminders_total{role=\"channel_manager\"}"),
        2.0,
        "{after}"
    );
    assert_eq!(
        v("partnerflow_sla_escalations_total{role=\"channel_manager\"}"),
        1.0,
        "{after}"
    );
    assert_eq!(v("partnerflow_open_tasks{role=\"channel_manager\"}"), 1.0);
    assert_eq!(
        v("partnerflow_overdue_tasks{role=\"channel_manager\"}"),
        1.0
    );
    assert_eq!(v("partnerflow_outbox_backlog"), 0.0);
    assert!(
        v("partnerflow_notifications_sent_total{channel=\"email\"}") >= 4.0,
        "{after}"
    );
    assert!(
        after.contains("# HELP partnerflow_sla_breaches_total"),
        "described"
    );
}
