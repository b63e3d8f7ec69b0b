//! An operator reassigns an open task: audited under the operator, the new assignee is told
//! (and gets the links), reminders follow the assignee, and someone who may not decide the
//! task cannot be given it.

use axum::http::{Method, StatusCode};
use partnerflow::harness::shanghai;
use serde_json::json;

use super::mail::{declared, harness, settings, tokens};
use super::receivers::SmtpSink;
use crate::http::Api;

#[tokio::test]
async fn an_operator_reassigns_an_open_task_to_someone_who_may_decide_it() {
    if !SmtpSink::available("an_operator_reassigns_an_open_task") {
        return;
    }
    let sink = SmtpSink::start(None);
    let h = harness(settings(sink.port, None, ""), shanghai(2026, 3, 2, 10, 0)).await;
    let api = Api::new(&h);
    let id = h.apply(declared("P-9501", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    let (task, _) = h.open_task(id).await.expect("task").expect("open task");

    let (status, err) = api
        .operator(
            Method::POST,
            &format!("/v1/tasks/{task}/assign"),
            Some(json!({ "person": "legal.sun" })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "legal.sun does not hold channel_manager: {err}"
    );
    let (status, err) = api
        .operator(
            Method::POST,
            &format!("/v1/tasks/{task}/assign"),
            Some(json!({ "person": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    let before = sink.to("chen.jie@vendor.example").len();
    let (status, body) = api
        .operator(
            Method::POST,
            &format!("/v1/tasks/{task}/assign"),
            Some(json!({ "person": "cm.chen" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.settle().await.expect("settle");
    let chen = sink.to("chen.jie@vendor.example");
    assert_eq!(chen.len(), before + 1, "the new assignee is told");
    assert_eq!(
        tokens(chen.last().expect("mail")).len(),
        3,
        "with the links"
    );
    let v = h.view(id).await.expect("view");
    let event = v
        .timeline
        .iter()
        .find(|e| e.event.kind == "task_reassigned")
        .expect("audited");
    assert_eq!(event.event.actor, "ops.he");
    assert_eq!(event.event.payload["to"], json!("cm.chen"));
    assert_eq!(
        v.tasks
            .iter()
            .find(|t| t.status == "open")
            .and_then(|t| t.assignee.clone())
            .as_deref(),
        Some("cm.chen")
    );

    // The 50 % reminder goes to the assignee only.
    let li_before = sink.to("li.na@vendor.example").len();
    h.advance_to(h.now() + chrono::Duration::days(2))
        .await
        .expect("reminder");
    let reminders = |address: &str| {
        sink.to(address)
            .into_iter()
            .filter(|m| m.contains("提醒"))
            .count()
    };
    assert!(
        reminders("chen.jie@vendor.example") >= 1,
        "the assignee is reminded"
    );
    assert_eq!(
        sink.to("li.na@vendor.example").len(),
        li_before,
        "the other holder is not"
    );
}
