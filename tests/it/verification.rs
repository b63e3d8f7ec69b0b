//! Business verification: the simulated provider's micro-deposit lock, and the HTTP provider
//! against a stand-in server speaking its protocol (the real one is a third party).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use partnerflow::harness::{Harness, application, shanghai};
use serde_json::{Value, json};

use crate::helpers::{kinds, templates_to};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wrong_micro_deposit_confirmations_lock_verification_and_reject() {
    let h = crate::helpers::sqlite(shanghai(2025, 9, 1, 9, 0)).await;
    let mut app = application("P-1001", "agent", "P-1001/zhang");
    app["micro_deposit_entries"] = json!(["1.00", "0.00", "2.00"]);
    let id = h.apply(app).await.expect("start");
    h.settle().await.expect("settle");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.status, "rejected");
    assert_eq!(
        v.data["steps"]["verify_business"]["reason"],
        json!("micro-deposit confirmed wrongly 3 times")
    );
    assert!(templates_to(&v, "p-1001@partner.example").contains(&"onboarding.rejected".to_owned()));
}

/// Answers per partner: a list of (status code, body) consumed in order, the last repeated.
type Script = Arc<Mutex<Vec<(String, Vec<(u16, Value)>)>>>;

async fn provider(
    State(script): State<Script>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let partner = body["partner_id"].as_str().unwrap_or_default().to_owned();
    let mut script = script
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some((_, answers)) = script.iter_mut().find(|(p, _)| *p == partner) else {
        return (StatusCode::NOT_FOUND, Json(json!({})));
    };
    let (code, answer) = if answers.len() > 1 {
        answers.remove(0)
    } else {
        answers[0].clone()
    };
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(answer),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_provider_is_retried_while_pending_and_its_verdict_followed() {
    let script: Script = Arc::new(Mutex::new(vec![
        (
            "P-1001".to_owned(),
            vec![
                (503, json!({})),
                (200, json!({ "status": "pending" })),
                (200, json!({ "status": "verified", "reference": "KYB-1" })),
            ],
        ),
        (
            "P-1002".to_owned(),
            vec![(
                200,
                json!({ "status": "locked", "reason": "three wrong amounts" }),
            )],
        ),
        (
            "P-1003".to_owned(),
            vec![(400, json!({ "error": "bad uscc" }))],
        ),
        (
            "P-1004".to_owned(),
            vec![(200, json!({ "status": "pending" }))],
        ),
    ]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v1/verifications",
        listener.local_addr().expect("addr")
    );
    let server = axum::Router::new()
        .route("/v1/verifications", post(provider))
        .with_state(script.clone());
    let fix = script;
    tokio::spawn(async move { axum::serve(listener, server).await });

    let db = std::env::temp_dir().join(format!("pf-test-{}.db", uuid::Uuid::now_v7()));
    let database_url = format!("sqlite:{}", db.display());
    let mut h_settings =
        partnerflow::settings::Settings::load(std::path::Path::new("config")).expect("settings");
    h_settings.database.url = database_url.clone();
    h_settings.verification.url = url.clone();
    let h = Harness::with_settings(&database_url, shanghai(2025, 9, 1, 9, 0), |s| {
        s.verification.provider = "http".to_owned();
        s.verification.url = url;
    })
    .await
    .expect("harness");
    let ok = h
        .apply(application("P-1001", "agent", "P-1001/zhang"))
        .await
        .expect("start");
    let locked = h
        .apply(application("P-1002", "agent", "P-1002/liu"))
        .await
        .expect("start");
    let refused = h
        .apply(application("P-1003", "agent", "P-1003/wu"))
        .await
        .expect("start");
    let never = h
        .apply(application("P-1004", "agent", "P-1004/qian"))
        .await
        .expect("start");
    h.advance_to(shanghai(2025, 9, 1, 9, 5))
        .await
        .expect("advance");
    assert_eq!(
        h.view(ok).await.expect("view").current_steps,
        vec!["verify_business"],
        "pending: asked again in an hour, not retried within seconds"
    );
    h.advance_to(shanghai(2025, 9, 1, 10, 5))
        .await
        .expect("advance");

    let v = h.view(ok).await.expect("view");
    assert_eq!(
        v.data["steps"]["verify_business"]["reference"],
        json!("KYB-1"),
        "verified on the third call"
    );
    // Still pending after 4 working days: still waiting, not failed.
    h.advance_to(shanghai(2025, 9, 5, 9, 30))
        .await
        .expect("advance");
    let n = h.view(never).await.expect("view");
    assert_eq!(
        (n.status.as_str(), n.current_steps.clone()),
        ("running", vec!["verify_business".to_owned()])
    );
    // 5 working days after the submission (Mon 1 Sep 09:00 → Mon 8 Sep 09:00): withdrawn.
    h.advance_to(shanghai(2025, 9, 8, 9, 30))
        .await
        .expect("advance");
    let n = h.view(never).await.expect("view");
    assert_eq!(n.status, "withdrawn", "{:?}", kinds(&n));
    assert_eq!(
        crate::helpers::times_of(&n, "finished"),
        vec!["2025-09-08 09:00"]
    );
    assert!(
        templates_to(&n, "p-1004@partner.example").contains(&"onboarding.withdrawn".to_owned())
    );
    assert_eq!(v.current_steps, vec!["contract"]);
    assert_eq!(h.view(locked).await.expect("view").status, "rejected");
    let r = h.view(refused).await.expect("view");
    assert_eq!(
        r.status, "failed",
        "a refused request is not retried: it waits for an operator"
    );
    assert!(kinds(&r).contains(&"failed".to_owned()));

    // The provider is fixed; an operator resumes the instance from the command line.
    let mut settings = h_settings.clone();
    if let Some((_, answers)) = fix
        .lock()
        .expect("lock")
        .iter_mut()
        .find(|(p, _)| p == "P-1003")
    {
        *answers = vec![(200, json!({ "status": "verified", "reference": "KYB-3" }))];
    }
    settings.verification.provider = "http".to_owned();
    let refused_in = partnerflow::operate::run(
        &settings,
        h.clock.clone(),
        refused,
        partnerflow::operate::Operation::Resume,
        "nobody",
    )
    .await;
    assert!(refused_in.is_err(), "only a configured operator may resume");
    let answer = partnerflow::operate::run(
        &settings,
        h.clock.clone(),
        refused,
        partnerflow::operate::Operation::Resume,
        "ops.he",
    )
    .await
    .expect("resume");
    assert_eq!(answer["instance_status"], json!("running"));
    h.settle().await.expect("settle");
    let r = h.view(refused).await.expect("view");
    assert_eq!(r.current_steps, vec!["contract"], "{:?}", kinds(&r));
    assert_eq!(
        r.data["steps"]["verify_business"]["reference"],
        json!("KYB-3")
    );
    let resumed = r
        .timeline
        .iter()
        .find(|e| e.event.kind == "resumed")
        .expect("resumed");
    assert_eq!(resumed.event.actor, "ops.he");
}
