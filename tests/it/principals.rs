//! Who did something comes from authentication: operators by their named token, integrations
//! within their scopes, partner-side integrations on their own partner's instances only, and
//! the submitter of an item is the actor of the request that submitted it.

use axum::http::{Method, StatusCode};
use partnerflow::harness::{Harness, application};
use serde_json::{Value, json};

use crate::http::Api;
use crate::on_both_backends;
use crate::signatures::{record, under_review};

const ONBOARDING: &str = "/v1/workflows/partner_onboarding/instances";

async fn a_partner_portal_sees_and_acts_on_its_own_partner_only(h: Harness) {
    let api = Api::new(&h);
    let (own, _) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let (other, _) = under_review(&h, "P-1002", "P-1002/liu").await;
    h.decide(other, "cm.li", "return", Some("fix it"), Value::Null)
        .await
        .expect("return");
    let before = record(&h, other).await;

    let contract = json!({ "business_key": "C-1", "input": {}, "actor": { "id": "P-1001/zhang" } });
    let (status, answer) = api
        .signed(
            "/v1/workflows/contract_signing/instances",
            "portal-p1001",
            &contract,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "out_of_scope");

    let (status, mine) = api
        .signed_get(&format!("/v1/instances/{own}"), "portal-p1001")
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let (status, answer) = api
        .signed_get(&format!("/v1/instances/{other}"), "portal-p1001")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, listed) = api.signed_get("/v1/instances", "portal-p1001").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, vec![own.to_string()], "only its partner's instances");
    let (status, answer) = api
        .signed_get(&format!("/v1/instances/{own}/evidence"), "portal-p1001")
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "evidence is not in its reads: {answer}"
    );

    let wait = h.view(other).await.expect("view").waits[0]
        .correlation
        .clone();
    let (status, answer) = api
        .signed(
            &format!("/v1/instances/{other}/events/application_resubmitted?correlation={wait}"),
            "portal-p1001",
            &application("P-1002", "agent", "P-1002/liu"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(record(&h, other).await, before, "nothing changed");
}
on_both_backends!(
    a_partner_portal_sees_and_acts_on_its_own_partner_only,
    shanghai(2025, 9, 1, 9, 0)
);

async fn a_submitter_that_names_someone_else_is_refused(h: Harness) {
    let api = Api::new(&h);
    let start = |input: Value, actor: &str| json!({ "business_key": "P-1001", "input": input, "actor": { "id": actor } });
    // P-1001's portal names Zhang as the submitter, but the input says a channel manager did.
    let colleague = application("P-1001", "agent", "cm.li");
    let (status, answer) = api
        .signed(
            ONBOARDING,
            "portal-p1001",
            &start(colleague, "P-1001/zhang"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "submitted_by");
    // Nor may it submit for another partner, or as another partner's person.
    let (status, answer) = api
        .signed(
            ONBOARDING,
            "portal-p1001",
            &start(
                application("P-1002", "agent", "P-1001/zhang"),
                "P-1001/zhang",
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "partner_id");
    let (status, answer) = api
        .signed(
            ONBOARDING,
            "portal-p1001",
            &start(application("P-1001", "agent", "P-1002/liu"), "P-1002/liu"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // An operator submits as themselves.
    let (status, answer) = api
        .operator(
            Method::POST,
            ONBOARDING,
            Some(json!({ "business_key": "P-1001", "input": application("P-1001", "agent", "P-1001/zhang") })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["error"]["details"][0]["field"], "submitted_by");
    assert!(
        h.engine
            .instances(partnerflow_engine::Listing::default(), 10)
            .await
            .expect("list")
            .is_empty()
    );
    // Omitted, the submitter is filled in from authentication.
    let mut app = application("P-1001", "agent", "");
    app.as_object_mut().expect("object").remove("submitted_by");
    let (status, answer) = api
        .signed(ONBOARDING, "portal-p1001", &start(app, "P-1001/zhang"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["id"].as_str().expect("id").parse().expect("uuid");
    let view = h.view(id).await.expect("view");
    assert_eq!(view.data["input"]["submitted_by"], "P-1001/zhang");
    assert_eq!(view.timeline[0].event.actor, "P-1001/zhang");
}
on_both_backends!(
    a_submitter_that_names_someone_else_is_refused,
    shanghai(2025, 9, 1, 9, 0)
);

async fn an_operator_decision_is_audited_under_the_operators_id(h: Harness) {
    let api = Api::new(&h);
    let (id, task) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let uri = format!("/v1/tasks/{task}/decision");
    // The shipped operator `ops.he` does not hold channel_manager: the directory decides.
    let (status, answer) = api
        .operator(Method::POST, &uri, Some(json!({ "decision": "approve" })))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "role_missing");
    let chen = Api::with_operator(&h, "cm.chen", "chen-token");
    let (status, answer) = chen
        .call_as(
            "chen-token",
            Method::POST,
            &uri,
            json!({ "decision": "approve" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let view = h.view(id).await.expect("view");
    let decision = view
        .timeline
        .iter()
        .find(|e| e.event.kind == "decision")
        .expect("decision event");
    assert_eq!(decision.event.actor, "cm.chen");
    assert!(view.timeline.iter().all(|e| e.event.actor != "operator"));
}
on_both_backends!(
    an_operator_decision_is_audited_under_the_operators_id,
    shanghai(2025, 9, 1, 9, 0)
);

async fn operators_cancel_through_the_api_under_their_own_id(h: Harness) {
    let api = Api::new(&h);
    let (id, task) = under_review(&h, "P-1001", "P-1001/zhang").await;
    let uri = format!("/v1/instances/{id}/cancel");
    let body = json!({ "reason": "duplicate application" });
    let (status, answer) = api.signed(&uri, "crm", &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["error"]["code"], "operators_only");
    let (status, answer) = api
        .operator(Method::POST, &uri, Some(json!({ "reason": " " })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, answer) = api.operator(Method::POST, &uri, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["instance_status"], "cancelled");
    let view = h.view(id).await.expect("view");
    let cancelled = view
        .timeline
        .iter()
        .find(|e| e.event.kind == "cancelled")
        .expect("event");
    assert_eq!(cancelled.event.actor, "ops.he");
    assert_eq!(cancelled.event.payload["reason"], "duplicate application");
    assert!(view.tasks.iter().all(|t| t.status != "open"));
    assert!(view.pending_timers.is_empty());
    let (status, answer) = api
        .signed(
            &format!("/v1/tasks/{task}/decision"),
            "crm",
            &json!({ "decision": "approve", "actor": { "id": "cm.li" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "task_closed");
    let (status, answer) = api.operator(Method::POST, &uri, Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, answer) = api
        .operator(Method::POST, &format!("/v1/instances/{id}/resume"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "not_failed");
}
on_both_backends!(
    operators_cancel_through_the_api_under_their_own_id,
    shanghai(2025, 9, 1, 9, 0)
);
