//! A signature covers the whole request (`t.METHOD.PATH.IDEMPOTENCY_KEY.BODY`): made for one
//! task, instance, event, key or method, it is worthless for any other, and the request it
//! was made for still replays to its first answer.

use axum::http::{Method, StatusCode};
use partnerflow::harness::{Harness, application};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::Api;
use crate::on_both_backends;

/// An application of `partner` (one of its directory people submits) that needs a manual
/// qualification review; returns the instance and its open review task.
pub(crate) async fn under_review(h: &Harness, partner: &str, person: &str) -> (Uuid, Uuid) {
    let mut app = application(partner, "agent", person);
    app["sensitive_relationship_declared"] = json!(true);
    let id = h.apply(app).await.expect("start");
    h.settle().await.expect("settle");
    let (task, step) = h.open_task(id).await.expect("task").expect("open task");
    assert_eq!(step, "qualification_review");
    (id, task)
}

/// What a refused request must leave untouched.
pub(crate) async fn record(h: &Harness, id: Uuid) -> Value {
    let v = h.view(id).await.expect("view");
    json!({ "timeline": v.timeline.len(), "status": v.status, "steps": v.current_steps,
            "tasks": v.tasks.iter().map(|t| (t.id.clone(), t.status.clone())).collect::<Vec<_>>() })
}

fn approve() -> Value {
    json!({ "decision": "approve", "reason": null, "actor": { "id": "cm.li" } })
}

async fn a_decision_signature_is_bound_to_its_task_key_and_method(h: Harness) {
    let api = Api::new(&h);
    let (a, task_a) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let (b, task_b) = under_review(&h, "P-1002", "P-1002/liu").await;
    let (before_a, before_b) = (record(&h, a).await, record(&h, b).await);
    let for_a = api.sign(
        Method::POST,
        &format!("/v1/tasks/{task_a}/decision"),
        "crm",
        "approve-a",
        &approve(),
    );
    let mut to_b = for_a.clone();
    to_b.uri = format!("/v1/tasks/{task_b}/decision");
    let mut other_key = for_a.clone();
    other_key.key = "approve-a-2".to_owned();
    // Signed as a PUT, sent as the POST the route accepts.
    let mut as_put = api.sign(
        Method::PUT,
        &format!("/v1/tasks/{task_a}/decision"),
        "crm",
        "approve-a",
        &approve(),
    );
    as_put.method = Method::POST;
    for (what, forged) in [("task B", to_b), ("key", other_key), ("method", as_put)] {
        let (status, answer) = api.call(forged.request()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_signature", "{what}: {answer}");
    }
    assert_eq!(record(&h, a).await, before_a, "task A is untouched");
    assert_eq!(record(&h, b).await, before_b, "task B is untouched");

    let first = api.call(for_a.request()).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(first.1["current_step"], "contract");
    let after_a = record(&h, a).await;
    assert_eq!(
        api.call(for_a.request()).await,
        first,
        "a replay answers the first answer"
    );
    assert_eq!(record(&h, a).await, after_a, "and changes nothing");
    assert_eq!(record(&h, b).await, before_b);
}
on_both_backends!(
    a_decision_signature_is_bound_to_its_task_key_and_method,
    shanghai(2025, 9, 1, 9, 0)
);

async fn signed_writes_must_carry_an_idempotency_key(h: Harness) {
    let api = Api::new(&h);
    let (a, task) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let before = record(&h, a).await;
    let signed = api.sign(
        Method::POST,
        &format!("/v1/tasks/{task}/decision"),
        "crm",
        "",
        &approve(),
    );
    let mut request = signed.request();
    request.headers_mut().remove("idempotency-key");
    let (status, answer) = api.call(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "idempotency_key_required");
    assert_eq!(answer["error"]["details"][0]["field"], "Idempotency-Key");
    assert_eq!(record(&h, a).await, before);
}
on_both_backends!(
    signed_writes_must_carry_an_idempotency_key,
    shanghai(2025, 9, 1, 9, 0)
);

/// Returns the application of `id` for changes: it waits for `application_resubmitted`.
pub(crate) async fn returned(h: &Harness, id: Uuid) -> String {
    h.decide(id, "cm.li", "return", Some("fix the address"), Value::Null)
        .await
        .expect("return");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.current_steps, vec!["await_resubmission"]);
    v.waits[0].correlation.clone()
}

async fn an_event_signature_is_bound_to_its_instance_and_event(h: Harness) {
    let api = Api::new(&h);
    let (a, _) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let (b, _) = under_review(&h, "P-1002", "P-1002/liu").await;
    let wait_a = returned(&h, a).await;
    let wait_b = returned(&h, b).await;
    assert_eq!(wait_a, wait_b, "both waits are the same step entry");
    let (before_a, before_b) = (record(&h, a).await, record(&h, b).await);
    let fixed = application("P-1001", "agent", "P-1001/zhang");
    let uri =
        |id: Uuid, event: &str| format!("/v1/instances/{id}/events/{event}?correlation={wait_a}");
    let for_a = api.sign(
        Method::POST,
        &uri(a, "application_resubmitted"),
        "portal-p1001",
        "resubmit-1",
        &fixed,
    );
    let mut to_b = for_a.clone();
    to_b.uri = uri(b, "application_resubmitted");
    let mut other_event = for_a.clone();
    other_event.uri = uri(a, "agreement_uploaded");
    // An empty body signed for one instance is no longer valid for every instance.
    let empty_for_a = api.sign(
        Method::POST,
        &uri(a, "application_resubmitted"),
        "portal-p1001",
        "resubmit-empty",
        &Value::Null,
    );
    let mut empty_to_b = empty_for_a.clone();
    empty_to_b.uri = uri(b, "application_resubmitted");
    for (what, forged) in [
        ("instance B", to_b),
        ("another event", other_event),
        ("empty body to B", empty_to_b),
    ] {
        let (status, answer) = api.call(forged.request()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
    }
    assert_eq!(record(&h, a).await, before_a);
    assert_eq!(record(&h, b).await, before_b);
    let (status, answer) = api.call(for_a.request()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(record(&h, b).await, before_b, "B still waits");
}
on_both_backends!(
    an_event_signature_is_bound_to_its_instance_and_event,
    shanghai(2025, 9, 1, 9, 0)
);

async fn a_late_retry_for_an_earlier_wait_is_refused_by_the_next_one(h: Harness) {
    let api = Api::new(&h);
    let (id, _) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let first_wait = returned(&h, id).await;
    let mut app = application("P-1001", "agent", "P-1001/zhang");
    app["sensitive_relationship_declared"] = json!(true);
    let resubmit = |key: &str, wait: &str| {
        api.sign(
            Method::POST,
            &format!("/v1/instances/{id}/events/application_resubmitted?correlation={wait}"),
            "portal-p1001",
            key,
            &app,
        )
    };
    let first = api
        .call(resubmit("resubmit-1", &first_wait).request())
        .await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    h.settle().await.expect("settle");
    // The application is reviewed and returned again: a second wait is open.
    let (_, step) = h.open_task(id).await.expect("task").expect("open");
    assert_eq!(step, "qualification_review");
    let second_wait = returned(&h, id).await;
    assert_ne!(second_wait, first_wait);
    let before = record(&h, id).await;
    // The first resubmission's retry under its own key is answered as before, changing nothing;
    // sent again under a new key, it names a wait that is closed.
    assert_eq!(
        api.call(resubmit("resubmit-1", &first_wait).request())
            .await,
        first
    );
    let late = api
        .call(resubmit("resubmit-1-retry", &first_wait).request())
        .await;
    assert_eq!(late.0, StatusCode::CONFLICT, "{}", late.1);
    assert_eq!(late.1["error"]["code"], "wait_closed");
    assert_eq!(
        record(&h, id).await,
        before,
        "the second wait is still open"
    );
    let (status, answer) = api
        .call(resubmit("resubmit-2", &second_wait).request())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
on_both_backends!(
    a_late_retry_for_an_earlier_wait_is_refused_by_the_next_one,
    shanghai(2025, 9, 1, 9, 0)
);
