use axum::body::to_bytes;
use partnerflow_core::definition::DefinitionError;
use partnerflow_core::onboarding::FieldError;
use uuid::Uuid;

use super::*;

fn status_and_code(e: impl Into<ApiError>) -> (u16, &'static str) {
    let e = e.into();
    (e.status().as_u16(), e.code())
}

#[test]
fn refusals_map_to_their_statuses() {
    use machine::Error as M;
    let cases = [
        (M::TaskClosed(Uuid::nil()), 409, "task_closed"),
        (
            M::UnknownDecision {
                step: "review".into(),
                decision: "maybe".into(),
                allowed: "approve".into(),
            },
            422,
            "unknown_decision",
        ),
        (M::ReasonRequired("reject".into()), 422, "reason_required"),
        (
            M::RoleMissing {
                actor: "x".into(),
                role: "finance".into(),
            },
            403,
            "role_missing",
        ),
        (M::OwnItem("x".into()), 403, "own_item"),
        (M::AlreadyVoted("x".into()), 409, "already_voted"),
        (
            M::EventNotExpected("invoice_received".into()),
            409,
            "event_not_expected",
        ),
        (M::NotRunning("completed".into()), 409, "not_running"),
        (
            M::NoTransition {
                step: "review".into(),
                outcome: "sign".into(),
            },
            422,
            "no_transition",
        ),
        (M::MissingStep("ghost".into()), 500, "internal"),
        (M::AlreadyStarted, 409, "already_started"),
    ];
    for (refusal, status, code) in cases {
        let shown = refusal.to_string();
        assert_eq!(
            status_and_code(EngineError::Refused(refusal)),
            (status, code),
            "{shown}"
        );
    }
}

#[test]
fn engine_errors_map_to_their_statuses() {
    assert_eq!(
        status_and_code(EngineError::NotFound("task 1".into())),
        (404, "not_found")
    );
    assert_eq!(
        status_and_code(EngineError::Invalid(vec![])),
        (422, "validation_failed")
    );
    assert_eq!(
        status_and_code(EngineError::KeyReused("k1".into())),
        (409, "idempotency_key_reused")
    );
    assert_eq!(
        status_and_code(EngineError::Conflict("version".into())),
        (409, "conflict")
    );
    let def = DefinitionError {
        file: "x.toml".into(),
        step: None,
        rule: "unreachable",
        message: "step z".into(),
    };
    assert_eq!(
        status_and_code(EngineError::Definitions(vec![def])),
        (500, "internal")
    );
}

async fn body_of(e: ApiError) -> (u16, Value) {
    let response = e.into_response();
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, serde_json::from_slice(&bytes).expect("json"))
}

#[tokio::test]
async fn validation_errors_carry_the_field_list() {
    let fields = vec![FieldError {
        field: "company.registered_capital".into(),
        rule: "min_registered_capital".into(),
        message: "too small".into(),
    }];
    let (status, body) = body_of(EngineError::Invalid(fields).into()).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert_eq!(
        body["error"]["details"][0]["field"],
        "company.registered_capital"
    );
    assert_eq!(
        body["error"]["details"][0]["rule"],
        "min_registered_capital"
    );
}

#[tokio::test]
async fn internal_messages_stay_hidden() {
    let def = DefinitionError {
        file: "secret-path.toml".into(),
        step: None,
        rule: "unreachable",
        message: "inner detail".into(),
    };
    let (status, body) = body_of(EngineError::Definitions(vec![def]).into()).await;
    assert_eq!(status, 500);
    let text = body.to_string();
    assert!(
        !text.contains("secret-path") && !text.contains("inner detail"),
        "{text}"
    );
    let (status, body) =
        body_of(EngineError::Refused(machine::Error::MissingStep("ghost".into())).into()).await;
    assert_eq!(status, 500);
    assert!(!body.to_string().contains("ghost"), "{body}");
}

#[tokio::test]
async fn every_error_has_code_message_and_details() {
    let (status, body) =
        body_of(EngineError::Refused(machine::Error::TaskClosed(Uuid::nil())).into()).await;
    assert_eq!(status, 409);
    let error = body["error"].as_object().expect("error object");
    assert_eq!(
        error.keys().map(String::as_str).collect::<Vec<_>>(),
        ["code", "details", "message"]
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("not open"))
    );
}

#[test]
fn panics_answer_a_json_500() {
    let response = panic_response(Box::new("boom"));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    );
}
