//! The router against a real engine (SQLite in a temporary file, in-process queue, virtual
//! clock) and a small workflow of its own: wait for `docs_uploaded`, then a four-eyes review.
//! Driven through `tower::ServiceExt::oneshot`, so nothing listens on a port.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use partnerflow_api::{
    AppState, AuthConfig, Integration, Operator, Read, SignedRequest, router, sign,
};
use partnerflow_core::BusinessCalendar;
use partnerflow_core::directory::Directory;
use partnerflow_core::handler::HandlerRegistry;
use partnerflow_core::programme::Programme;
use partnerflow_engine::queue::MemoryQueue;
use partnerflow_engine::{Engine, EngineParts, Settings, VirtualClock};
use serde_json::{Value, json};
use tower::ServiceExt;

const WORKFLOW: &str = r#"
id = "review_flow"
version = 1
start = "wait_docs"

[[steps]]
id = "wait_docs"
kind = "wait_event"
event = "docs_uploaded"
on.received = "review"

[[steps]]
id = "review"
kind = "human"
role = "reviewer"
sla = "2WD"
decisions = ["approve", "reject"]
reason_required = ["reject"]
four_eyes = true
on.approve = "approved"
on.reject = "rejected"

[[steps]]
id = "approved"
kind = "end"
status = "completed"

[[steps]]
id = "rejected"
kind = "end"
status = "rejected"
"#;

const OPERATOR: &str = "operator-token";
const PORTAL_OLD: &str = "portal-secret-old";
const PORTAL_NEW: &str = "portal-secret-new";
const FINANCE: &str = "finance-secret";

struct TestApp {
    router: Router,
    clock: Arc<VirtualClock>,
    db: std::path::PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

fn start_time() -> DateTime<Utc> {
    // Monday 5 January 2026, 10:00 in Shanghai.
    Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0)
        .single()
        .expect("valid time")
}

fn directory() -> Directory {
    serde_json::from_value(json!({
        "programme_director": "director",
        "roles": { "reviewer": { "escalation_to": "director" } },
        "people": [
            { "id": "director", "name": "Director", "roles": ["director"] },
            { "id": "rev1", "name": "Reviewer One", "roles": ["reviewer"] },
            { "id": "rev2", "name": "Reviewer Two", "roles": ["reviewer"] },
            { "id": "fin1", "name": "Finance", "roles": ["finance"] }
        ]
    }))
    .expect("directory")
}

async fn spawn_app(metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>) -> TestApp {
    let db = std::env::temp_dir().join(format!("partnerflow-api-{}.db", uuid::Uuid::new_v4()));
    let store = partnerflow_store::Store::connect(&format!("sqlite:{}", db.display()), 4)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let clock = Arc::new(VirtualClock::new(start_time()));
    let calendar = BusinessCalendar::from_files(&[
        (
            "cn-2025.toml".to_owned(),
            include_str!("../../../config/calendars/cn-2025.toml").to_owned(),
        ),
        (
            "cn-2026.toml".to_owned(),
            include_str!("../../../config/calendars/cn-2026.toml").to_owned(),
        ),
    ])
    .expect("calendar");
    let engine = Engine::new(EngineParts {
        store,
        queue: Arc::new(MemoryQueue::default()),
        notifier: Arc::new(partnerflow_notify::LogNotifier),
        clock: clock.clone(),
        registry: HandlerRegistry::default(),
        calendar: Arc::new(calendar),
        directory: Arc::new(directory()),
        programme: Arc::new(
            Programme::parse(include_str!("../../../config/programme.toml")).expect("programme"),
        ),
        settings: Settings::default(),
        reach: partnerflow_engine::Reach::development().expect("shipped templates"),
    });
    engine
        .load_definitions(&[("review_flow.toml".to_owned(), WORKFLOW.to_owned())])
        .await
        .expect("definitions");
    let auth = AuthConfig {
        integrations: vec![
            Integration {
                id: "portal".to_owned(),
                secrets: vec![PORTAL_OLD.to_owned(), PORTAL_NEW.to_owned()],
                roles: vec!["reviewer".to_owned()],
                events: vec!["docs_uploaded".to_owned()],
                workflows: vec!["review_flow".to_owned()],
                reads: vec![Read::Instances, Read::Tasks],
                imports: vec![],
                partner: None,
            },
            Integration {
                id: "finance-feed".to_owned(),
                secrets: vec![FINANCE.to_owned()],
                roles: vec!["finance".to_owned()],
                events: vec![],
                workflows: vec![],
                reads: vec![],
                imports: vec![],
                partner: None,
            },
        ],
        operators: vec![Operator {
            id: "op.alice".to_owned(),
            token: OPERATOR.to_owned(),
        }],
        tolerance_secs: 300,
    };
    let state = AppState {
        engine,
        auth: Arc::new(auth),
        metrics,
        clock: clock.clone(),
        settlement: None,
    };
    TestApp {
        router: router(state),
        clock,
        db,
    }
}

impl TestApp {
    fn now(&self) -> i64 {
        use partnerflow_engine::Clock;
        self.clock.now().timestamp()
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let bytes = to_bytes(res.into_body(), usize::MAX).await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        (status, body)
    }

    async fn operator(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {OPERATOR}"));
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        self.call(
            req.body(Body::from(body.unwrap_or_default().to_owned()))
                .expect("request"),
        )
        .await
    }

    /// A POST signed by `integration` with `secret` at time `t`, under `key` (a fresh one when
    /// `None`: every signed write carries one).
    async fn signed_at(
        &self,
        uri: &str,
        integration: &str,
        secret: &str,
        t: i64,
        body: &str,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let fresh = uuid::Uuid::new_v4().to_string();
        let key = key.unwrap_or(&fresh);
        let signed = SignedRequest {
            method: "POST",
            path: uri,
            idempotency_key: key,
            body: body.as_bytes(),
        };
        let req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("x-partnerflow-integration", integration)
            .header("x-partnerflow-signature", sign(secret, t, signed))
            .header("idempotency-key", key);
        self.call(req.body(Body::from(body.to_owned())).expect("request"))
            .await
    }

    /// What a refused request must leave untouched: the instance's timeline, tasks and status.
    async fn record(&self, id: &str) -> Value {
        let (status, view) = self
            .operator(Method::GET, &format!("/v1/instances/{id}"), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        json!({ "timeline": view["timeline"], "tasks": view["tasks"], "status": view["status"] })
    }

    async fn portal(&self, uri: &str, body: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.signed_at(uri, "portal", PORTAL_NEW, self.now(), body, key)
            .await
    }

    /// Starts an instance submitted by `submitter` (through the portal, which names them) and
    /// delivers its documents: its review task is open.
    async fn instance_under_review(&self, business_key: &str, submitter: &str) -> (String, String) {
        let body =
            json!({ "business_key": business_key, "input": {}, "actor": { "id": submitter } })
                .to_string();
        let (status, started) = self
            .portal("/v1/workflows/review_flow/instances", &body, None)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{started}");
        let id = started["id"].as_str().expect("id").to_owned();
        let (status, answer) = self
            .portal(
                &format!("/v1/instances/{id}/events/docs_uploaded?correlation=1"),
                r#"{"files":1}"#,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (status, view) = self
            .operator(Method::GET, &format!("/v1/instances/{id}"), None, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{view}");
        let task = view["tasks"][0]["id"].as_str().expect("task").to_owned();
        (id, task)
    }
}

#[track_caller]
fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].is_string(), "{}", answer.1);
}

fn decision(decision: &str, actor: &str, reason: Option<&str>) -> String {
    json!({ "decision": decision, "reason": reason, "actor": { "id": actor } }).to_string()
}

#[tokio::test]
async fn probes_answer_without_credentials() {
    let app = spawn_app(None).await;
    let get = |uri: &str| {
        Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(
        app.call(get("/healthz")).await,
        (StatusCode::OK, json!({ "status": "ok" }))
    );
    assert_eq!(app.call(get("/readyz")).await.0, StatusCode::OK);
    assert_error(
        &app.call(get("/metrics")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.call(get("/v1/nothing-here")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let with_metrics = spawn_app(Some(Arc::new(|| "partnerflow_up 1\n".to_owned()))).await;
    assert_eq!(
        with_metrics.call(get("/metrics")).await,
        (StatusCode::OK, json!("partnerflow_up 1\n"))
    );
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let app = spawn_app(None).await;
    let answer = app
        .call(
            Request::builder()
                .method(Method::DELETE)
                .uri("/healthz")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn starting_needs_credentials() {
    let app = spawn_app(None).await;
    let body = json!({ "business_key": "k", "input": {} }).to_string();
    let bare = Request::builder()
        .method(Method::POST)
        .uri("/v1/workflows/review_flow/instances")
        .body(Body::from(body.clone()))
        .expect("request");
    assert_error(
        &app.call(bare).await,
        StatusCode::UNAUTHORIZED,
        "missing_credentials",
    );
    let wrong = Request::builder()
        .method(Method::POST)
        .uri("/v1/workflows/review_flow/instances")
        .header("authorization", "Bearer nope")
        .body(Body::from(body))
        .expect("request");
    assert_error(
        &app.call(wrong).await,
        StatusCode::UNAUTHORIZED,
        "bad_token",
    );
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_instance() {
    let app = spawn_app(None).await;
    let uri = "/v1/workflows/review_flow/instances";
    let body = json!({ "business_key": "P-1", "input": {} }).to_string();
    let (status, first) = app
        .operator(Method::POST, uri, Some(&body), Some("start-1"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["workflow_id"], "review_flow");
    assert_eq!(first["status"], "running");
    assert_eq!(
        app.operator(Method::POST, uri, Some(&body), Some("start-1"))
            .await,
        (StatusCode::OK, first.clone())
    );
    // The same business key without a key also finds the instance.
    assert_eq!(
        app.operator(Method::POST, uri, Some(&body), None).await,
        (StatusCode::OK, first)
    );
    let other = json!({ "business_key": "P-2", "input": {} }).to_string();
    assert_error(
        &app.operator(Method::POST, uri, Some(&other), Some("start-1"))
            .await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    );
}

#[tokio::test]
async fn bad_start_requests_are_refused_with_json_errors() {
    let app = spawn_app(None).await;
    let uri = "/v1/workflows/review_flow/instances";
    assert_error(
        &app.operator(Method::POST, uri, Some("{not json"), None)
            .await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    assert_error(
        &app.operator(Method::POST, uri, Some(r#"{"input":{}}"#), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let blank = json!({ "business_key": " ", "input": {} }).to_string();
    let answer = app.operator(Method::POST, uri, Some(&blank), None).await;
    assert_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(answer.1["error"]["details"][0]["field"], "business_key");
    let body = json!({ "business_key": "k", "input": {} }).to_string();
    assert_error(
        &app.operator(
            Method::POST,
            "/v1/workflows/nope/instances",
            Some(&body),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let bad_key = app
        .operator(Method::POST, uri, Some(&body), Some("has space"))
        .await;
    assert_error(&bad_key, StatusCode::BAD_REQUEST, "bad_idempotency_key");
}

#[tokio::test]
async fn integrations_may_start_instances_with_a_signature() {
    let app = spawn_app(None).await;
    let body = json!({ "business_key": "P-9", "input": {} }).to_string();
    let (status, started) = app
        .portal("/v1/workflows/review_flow/instances", &body, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let (_, view) = app
        .operator(
            Method::GET,
            &format!("/v1/instances/{}", started["id"].as_str().expect("id")),
            None,
            None,
        )
        .await;
    assert_eq!(view["timeline"][0]["actor"], "integration:portal", "{view}");
}

#[tokio::test]
async fn instances_are_shown_and_listed() {
    let app = spawn_app(None).await;
    let (id, _) = app.instance_under_review("P-3", "rev2").await;
    let (status, view) = app
        .operator(Method::GET, &format!("/v1/instances/{id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["current_steps"], json!(["review"]));
    assert_eq!(view["sla_clocks"][0]["role"], "reviewer");
    let (status, list) = app
        .operator(Method::GET, "/v1/instances?status=running", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], id.as_str());
    assert_error(
        &app.operator(Method::GET, "/v1/instances/not-a-uuid", None, None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_path",
    );
    let unknown = format!("/v1/instances/{}", uuid::Uuid::nil());
    assert_error(
        &app.operator(Method::GET, &unknown, None, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.operator(Method::GET, "/v1/instances?limit=0", None, None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &app.operator(Method::GET, "/v1/instances?limit=many", None, None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
}

#[tokio::test]
async fn open_tasks_are_listed_by_role() {
    let app = spawn_app(None).await;
    let (id, task) = app.instance_under_review("P-4", "rev2").await;
    let (status, tasks) = app
        .operator(
            Method::GET,
            "/v1/tasks?role=reviewer&status=open",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let item = &tasks[0];
    assert_eq!(
        (item["id"].as_str(), item["instance_id"].as_str()),
        (Some(task.as_str()), Some(id.as_str()))
    );
    assert_eq!(
        (
            &item["step"],
            &item["role"],
            &item["status"],
            &item["escalation_level"]
        ),
        (
            &json!("review"),
            &json!("reviewer"),
            &json!("open"),
            &json!(0)
        )
    );
    assert!(item["due_at"].is_string());
    let (_, none) = app
        .operator(
            Method::GET,
            "/v1/tasks?role=finance&status=open",
            None,
            None,
        )
        .await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn events_must_be_signed_and_expected() {
    let app = spawn_app(None).await;
    let (id, _) = app.instance_under_review("P-5", "rev2").await;
    let uri = format!("/v1/instances/{id}/events/docs_uploaded?correlation=1");
    assert_error(
        &app.operator(Method::POST, &uri, Some("{}"), None).await,
        StatusCode::UNAUTHORIZED,
        "signature_required",
    );
    // The instance has moved on to the review: the event is no longer expected.
    assert_error(
        &app.portal(&uri, "{}", None).await,
        StatusCode::CONFLICT,
        "event_not_expected",
    );
    // An integration may post only the events its configuration lists; nothing changes.
    let before = app
        .operator(Method::GET, &format!("/v1/instances/{id}"), None, None)
        .await;
    assert_error(
        &app.signed_at(&uri, "finance-feed", FINANCE, app.now(), "{}", None)
            .await,
        StatusCode::FORBIDDEN,
        "out_of_scope",
    );
    let after = app
        .operator(Method::GET, &format!("/v1/instances/{id}"), None, None)
        .await;
    assert_eq!(before.1["timeline"], after.1["timeline"]);
    let unknown = format!(
        "/v1/instances/{}/events/docs_uploaded?correlation=1",
        uuid::Uuid::nil()
    );
    assert_error(
        &app.portal(&unknown, "{}", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.portal(&uri, "{oops", None).await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
}

#[tokio::test]
async fn decisions_need_a_valid_signature_at_the_virtual_now() {
    let app = spawn_app(None).await;
    let (id, task) = app.instance_under_review("P-6", "rev2").await;
    let before = app.record(&id).await;
    let uri = format!("/v1/tasks/{task}/decision");
    let body = decision("approve", "rev1", None);
    // An operator decides as themselves: naming someone else is refused.
    let as_other = app.operator(Method::POST, &uri, Some(&body), None).await;
    assert_error(
        &as_other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_eq!(as_other.1["error"]["details"][0]["field"], "actor.id");
    let wall_clock = Utc::now().timestamp();
    assert_error(
        &app.signed_at(&uri, "portal", PORTAL_NEW, wall_clock, &body, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "stale_signature",
    );
    let old = app.now() - 301;
    assert_error(
        &app.signed_at(&uri, "portal", PORTAL_NEW, old, &body, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "stale_signature",
    );
    assert_error(
        &app.signed_at(&uri, "portal", "guess", app.now(), &body, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    );
    assert_error(
        &app.signed_at(&uri, "stranger", PORTAL_NEW, app.now(), &body, None)
            .await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    );
    assert_eq!(
        app.record(&id).await,
        before,
        "refused callbacks change nothing"
    );
    // The old secret of the rotation still works, and the clock moving makes a fresh signature valid.
    app.clock.advance(Duration::minutes(10));
    let (status, answer) = app
        .signed_at(&uri, "portal", PORTAL_OLD, app.now(), &body, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["instance_status"], "completed", "{answer}");
}

#[tokio::test]
async fn decisions_are_checked_against_scope_directory_and_definition() {
    let app = spawn_app(None).await;
    let (id, task) = app.instance_under_review("P-7", "rev2").await;
    let before = app.record(&id).await;
    let uri = format!("/v1/tasks/{task}/decision");
    let finance = app
        .signed_at(
            &uri,
            "finance-feed",
            FINANCE,
            app.now(),
            &decision("approve", "rev1", None),
            None,
        )
        .await;
    assert_error(&finance, StatusCode::FORBIDDEN, "out_of_scope");
    let unknown = format!("/v1/tasks/{}/decision", uuid::Uuid::nil());
    assert_error(
        &app.portal(&unknown, &decision("approve", "rev1", None), None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &app.portal(
            "/v1/tasks/nope/decision",
            &decision("approve", "rev1", None),
            None,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_path",
    );
    assert_error(
        &app.portal(&uri, &decision("approve", "fin1", None), None)
            .await,
        StatusCode::FORBIDDEN,
        "role_missing",
    );
    assert_error(
        &app.portal(&uri, &decision("approve", "rev2", None), None)
            .await,
        StatusCode::FORBIDDEN,
        "own_item",
    );
    assert_error(
        &app.portal(&uri, &decision("maybe", "rev1", None), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_decision",
    );
    assert_error(
        &app.portal(&uri, &decision("reject", "rev1", None), None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
    );
    assert_error(
        &app.portal(&uri, &decision("approve", "", None), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &app.portal(&uri, r#"{"decision":"approve"}"#, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert_error(
        &app.portal(&uri, "{oops", None).await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    assert_eq!(
        app.record(&id).await,
        before,
        "refused decisions change nothing"
    );
    let (status, answer) = app
        .portal(
            &uri,
            &decision("reject", "rev1", Some("incomplete documents")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["instance_status"], "rejected", "{answer}");
}

#[tokio::test]
async fn a_closed_task_answers_409_and_a_replayed_key_the_first_answer() {
    let app = spawn_app(None).await;
    let (id, task) = app.instance_under_review("P-8", "rev2").await;
    let uri = format!("/v1/tasks/{task}/decision");
    let body = decision("approve", "rev1", None);
    let (status, first) = app.portal(&uri, &body, Some("decide-1")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, replay) = app.portal(&uri, &body, Some("decide-1")).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["instance_status"], first["instance_status"]);
    assert_eq!(replay["instance_id"], first["instance_id"]);
    assert_error(
        &app.portal(
            &uri,
            &decision("reject", "rev1", Some("changed my mind")),
            Some("decide-1"),
        )
        .await,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    );
    assert_error(
        &app.portal(&uri, &body, Some("decide-2")).await,
        StatusCode::CONFLICT,
        "task_closed",
    );
    assert_error(
        &app.portal(&uri, &body, None).await,
        StatusCode::CONFLICT,
        "task_closed",
    );
    let (_, view) = app
        .operator(Method::GET, &format!("/v1/instances/{id}"), None, None)
        .await;
    let decisions = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| e["kind"] == "decision")
        .count();
    assert_eq!(decisions, 1, "{view}");
}

#[tokio::test]
async fn a_replayed_key_returns_the_identical_first_body() {
    let app = spawn_app(None).await;
    let (id, task) = app.instance_under_review("P-10", "rev2").await;
    let uri = format!("/v1/tasks/{task}/decision");
    let body = decision("approve", "rev1", None);
    let first = app.portal(&uri, &body, Some("decide-1")).await;
    assert_eq!(app.portal(&uri, &body, Some("decide-1")).await, first);
    let body = json!({ "business_key": "P-11", "input": {} }).to_string();
    let (_, started) = app
        .operator(
            Method::POST,
            "/v1/workflows/review_flow/instances",
            Some(&body),
            None,
        )
        .await;
    let uri = format!(
        "/v1/instances/{}/events/docs_uploaded?correlation=1",
        started["id"].as_str().expect("id")
    );
    let first = app.portal(&uri, "{}", Some("event-1")).await;
    assert_eq!(
        app.portal(&uri, "{}", Some("event-1")).await,
        first,
        "instance {id}"
    );
}
