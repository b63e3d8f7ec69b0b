//! The HTTP API of a harness, as an operator or a signing integration would call it, with the
//! shipped development credentials.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use partnerflow::harness::Harness;
use partnerflow::settings::Settings;
use partnerflow_api::SignedRequest;
use partnerflow_engine::Clock;
use serde_json::Value;
use tower::ServiceExt;

/// The shipped operator `ops.he`.
pub(crate) const OPERATOR: &str = "Bearer dev-operator-token";

/// The shipped secret of an integration of `config/default.toml`.
pub(crate) fn secret_of(integration: &str) -> String {
    format!("dev-{integration}-secret")
}

pub(crate) struct Api {
    router: axum::Router,
    clock: Arc<partnerflow_engine::VirtualClock>,
}

/// One signed request, its parts separately so a test can send it somewhere else.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) method: Method,
    pub(crate) uri: String,
    pub(crate) key: String,
    pub(crate) body: String,
    pub(crate) integration: String,
    pub(crate) signature: String,
}

impl Signed {
    /// The same headers and signature on another method, target, key or body.
    pub(crate) fn request(&self) -> Request<Body> {
        Request::builder()
            .method(self.method.clone())
            .uri(&self.uri)
            .header(partnerflow_api::INTEGRATION_HEADER, &self.integration)
            .header(partnerflow_api::SIGNATURE_HEADER, &self.signature)
            .header("idempotency-key", &self.key)
            .header("content-type", "application/json")
            .body(Body::from(self.body.clone()))
            .expect("request")
    }
}

impl Api {
    pub(crate) fn new(h: &Harness) -> Self {
        Self::with_auth(h, |_| {})
    }

    /// The shipped credentials and one more operator.
    pub(crate) fn with_operator(h: &Harness, id: &str, token: &str) -> Self {
        Self::with_auth(h, |auth| {
            auth.operators.push(partnerflow_api::Operator {
                id: id.to_owned(),
                token: token.to_owned(),
            });
        })
    }

    fn with_auth(h: &Harness, adjust: impl FnOnce(&mut partnerflow_api::AuthConfig)) -> Self {
        let settings = Settings::load(std::path::Path::new("config")).expect("settings");
        let mut auth = partnerflow::app::auth_config(&settings);
        adjust(&mut auth);
        let router = partnerflow_api::router(partnerflow_api::AppState {
            engine: h.engine.clone(),
            auth: Arc::new(auth),
            metrics: None,
            clock: h.clock.clone(),
            settlement: Some(crate::settlement::settlement(
                h,
                partnerflow_core::rebate::SettlementRules::default(),
            )),
        });
        Api {
            router,
            clock: h.clock.clone(),
        }
    }

    /// A call whose answer is read as text, with its headers (pages, cookies).
    pub(crate) async fn raw(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("body");
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    pub(crate) async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A call with the shipped operator's token.
    pub(crate) async fn operator(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", OPERATOR)
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .expect("request");
        self.call(request).await
    }

    /// A call with an operator's bearer `token`.
    pub(crate) async fn call_as(
        &self,
        token: &str,
        method: Method,
        uri: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.call(request).await
    }

    /// `method uri` signed now by `integration` with its shipped secret, under `key`.
    pub(crate) fn sign(
        &self,
        method: Method,
        uri: &str,
        integration: &str,
        key: &str,
        body: &Value,
    ) -> Signed {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let signature = partnerflow_api::sign(
            &secret_of(integration),
            self.clock.now().timestamp(),
            SignedRequest {
                method: method.as_str(),
                path: uri,
                idempotency_key: key,
                body: body.as_bytes(),
            },
        );
        Signed {
            method,
            uri: uri.to_owned(),
            key: key.to_owned(),
            body,
            integration: integration.to_owned(),
            signature,
        }
    }

    /// A POST signed by `integration` under a fresh key.
    pub(crate) async fn signed(
        &self,
        uri: &str,
        integration: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let key = uuid::Uuid::now_v7().to_string();
        let signed = self.sign(Method::POST, uri, integration, &key, body);
        self.call(signed.request()).await
    }

    /// A GET signed by `integration` (reads carry no key).
    pub(crate) async fn signed_get(&self, uri: &str, integration: &str) -> (StatusCode, Value) {
        let signed = self.sign(Method::GET, uri, integration, "", &Value::Null);
        let mut request = signed.request();
        request.headers_mut().remove("idempotency-key");
        self.call(request).await
    }
}
