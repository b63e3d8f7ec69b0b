//! The HTTP API over the real onboarding workflow: a refused application, and a partner's
//! signature and a reviewer's decision as signed callbacks.

use axum::http::{Method, StatusCode};
use partnerflow::harness::{Harness, application};
use serde_json::{Value, json};

use crate::http::Api;
use crate::on_both_backends;

async fn an_application_failing_several_rules_gets_one_422_naming_every_field(h: Harness) {
    let api = Api::new(&h);
    let mut bad = application("P-1001", "agent", "P-1001/zhang");
    bad["company"]["registered_capital"] = json!("999999.99");
    bad["exam_passers"] = json!(2);
    bad["company"]["established_on"] = json!("2025-06-01");
    let body = json!({ "business_key": "P-1001", "input": bad });
    let (status, error) = api
        .operator(
            Method::POST,
            "/v1/workflows/partner_onboarding/instances",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let fields: Vec<&str> = error["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    for f in [
        "company.registered_capital",
        "exam_passers",
        "company.established_on",
    ] {
        assert!(fields.contains(&f), "{f} missing from {error}");
    }
    let (_, list) = api.operator(Method::GET, "/v1/instances", None).await;
    assert_eq!(list, json!([]), "nothing is stored as submitted");
}
on_both_backends!(
    an_application_failing_several_rules_gets_one_422_naming_every_field,
    shanghai(2025, 9, 1, 9, 0)
);

async fn partner_and_reviewers_act_through_signed_callbacks(h: Harness) {
    let api = Api::new(&h);
    // P-1001's portal submits for its own person.
    let body = json!({ "business_key": "P-1001", "input": application("P-1001", "agent", "P-1001/zhang"),
                       "actor": { "id": "P-1001/zhang" } });
    let (status, started) = api
        .signed(
            "/v1/workflows/partner_onboarding/instances",
            "portal-p1001",
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    h.settle().await.expect("settle");
    let (_, tasks) = api
        .operator(Method::GET, "/v1/tasks?role=partner&status=open", None)
        .await;
    let task = tasks[0]["id"]
        .as_str()
        .expect("partner_sign task")
        .to_owned();
    let uri = format!("/v1/tasks/{task}/decision");
    let contract = tasks[0]["instance_id"]
        .as_str()
        .expect("contract instance")
        .to_owned();
    let (_, view) = api
        .operator(Method::GET, &format!("/v1/instances/{contract}"), None)
        .await;
    let generated = view["data"]["steps"]["generate_agreement"]["document_sha256"].clone();
    let signature = |hash: &Value| {
        json!({ "decision": "sign", "actor": { "id": "P-1001/zhang" },
                "data": { "method": "electronic", "signer": "Zhang San", "document_sha256": hash } })
    };
    // A signature over another document, or a paper signature without its tracking number, is
    // refused with the field named, and changes nothing.
    for (bad, field) in [
        (signature(&json!("0".repeat(64))), "data.document_sha256"),
        (
            json!({ "decision": "sign", "actor": { "id": "P-1001/zhang" }, "data": { "method": "paper" } }),
            "data.tracking_number",
        ),
    ] {
        let (status, refused) = api.signed(&uri, "portal-p1001", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(
            refused["error"]["details"][0]["field"],
            json!(field),
            "{refused}"
        );
    }
    let (_, after) = api
        .operator(Method::GET, &format!("/v1/instances/{contract}"), None)
        .await;
    assert_eq!(after["timeline"], view["timeline"]);
    let sign = signature(&generated);
    // The CRM integration is not scoped to the partner role.
    let (status, refused) = api.signed(&uri, "crm", &sign).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("out_of_scope"))
    );
    let (status, answer) = api.signed(&uri, "portal-p1001", &sign).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["current_step"], json!("countersign"));
    h.settle().await.expect("settle");
    let (_, tasks) = api
        .operator(Method::GET, "/v1/tasks?role=legal&status=open", None)
        .await;
    let task = tasks[0]["id"]
        .as_str()
        .expect("countersign task")
        .to_owned();
    let approve = json!({ "decision": "approve", "actor": { "id": "legal.sun" } });
    let (status, answer) = api
        .signed(&format!("/v1/tasks/{task}/decision"), "crm", &approve)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["current_step"],
        json!("archive"),
        "archiving runs next, as a job"
    );
    h.settle().await.expect("settle");
    let id = started["id"].as_str().expect("id");
    let (_, view) = api
        .operator(Method::GET, &format!("/v1/instances/{id}"), None)
        .await;
    assert_eq!(view["current_steps"], json!(["assessment_period"]));
    let (_, evidence) = api
        .operator(Method::GET, &format!("/v1/instances/{id}/evidence"), None)
        .await;
    assert_eq!(evidence["chain"]["verified"], json!(true));
    assert_eq!(
        evidence["children"][0]["instance"]["data"]["steps"]["partner_sign"]["data"]["signer"],
        json!("Zhang San")
    );
}
on_both_backends!(
    partner_and_reviewers_act_through_signed_callbacks,
    shanghai(2025, 9, 1, 9, 0)
);

async fn the_task_list_pages_with_a_cursor_soonest_due_first(h: Harness) {
    let api = Api::new(&h);
    for (n, partner) in ["P-1001", "P-1002", "P-1003"].into_iter().enumerate() {
        h.apply(application(partner, "agent", &format!("{partner}/zhang")))
            .await
            .expect("apply");
        // Each a little later, so the due times differ.
        h.clock.advance(chrono::Duration::minutes(10 + n as i64));
    }
    h.settle().await.expect("settle");
    let (status, all) = api
        .operator(Method::GET, "/v1/tasks?status=open", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let all = all.as_array().cloned().unwrap_or_default();
    assert!(all.len() >= 3, "{all:?}");
    let due: Vec<&str> = all.iter().filter_map(|t| t["due_at"].as_str()).collect();
    assert!(
        due.windows(2).all(|w| w[0] <= w[1]),
        "soonest due first: {due:?}"
    );
    // One at a time, each page after the last one's cursor, walks the same list.
    let mut walked = Vec::new();
    let mut uri = "/v1/tasks?status=open&limit=1".to_owned();
    loop {
        let (status, page) = api.operator(Method::GET, &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let Some(task) = page.as_array().and_then(|p| p.first()).cloned() else {
            break;
        };
        assert_eq!(page.as_array().map(Vec::len), Some(1));
        walked.push(task["id"].clone());
        let cursor = task["cursor"].as_str().expect("cursor");
        uri = format!("/v1/tasks?status=open&limit=1&after={cursor}");
        assert!(walked.len() <= all.len(), "the walk ends");
    }
    let ids: Vec<Value> = all.iter().map(|t| t["id"].clone()).collect();
    assert_eq!(walked, ids);
    let (status, refused) = api
        .operator(Method::GET, "/v1/tasks?after=yesterday", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], json!("after"));
}
on_both_backends!(
    the_task_list_pages_with_a_cursor_soonest_due_first,
    shanghai(2026, 3, 2, 10, 0)
);
