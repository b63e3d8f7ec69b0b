//! The settlement over HTTP: a batch of transactions refused whole with each bad row named,
//! imported once; statements read by operators and each partner's own portal only; a line
//! explained; the partner disputing through its statement's task, signed.

use axum::http::{Method, StatusCode};
use partnerflow::harness::Harness;
use partnerflow_core::rebate::SettlementRules;
use serde_json::{Value, json};

use crate::http::Api;
use crate::on_both_backends;
use crate::settlement::{partners, settlement};

fn row(order: &str, partner: &str, amount: &str) -> Value {
    json!({ "source": "billing", "order_id": order, "partner_id": partner, "customer_id": "C-1",
            "product": "rds", "family": "database", "amount": amount, "currency": "CNY",
            "tax_rate": "0.06", "kind": "purchase", "booked_at": "2026-11-03T10:00:00+08:00" })
}

async fn statements_are_imported_read_explained_and_disputed_over_http(h: Harness) {
    partners(&h).await;
    let api = Api::new(&h);
    let batch =
        json!({ "transactions": [row("B-1", "P-1001", "1060.00"), row("B-2", "P-1002", "x")] });
    let (status, _) = api.signed("/v1/transactions", "portal-p1001", &batch).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a portal imports nothing");
    let (status, refused) = api.signed("/v1/transactions", "crm", &batch).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["error"]["details"][0]["field"],
        "transactions[1].amount"
    );
    let good = json!({ "transactions": [row("B-1", "P-1001", "1060.00"), row("B-2", "P-1002", "2120.00")] });
    let (status, answer) = api.signed("/v1/transactions", "crm", &good).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["imported"].as_u64(), answer["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    let (_, again) = api
        .operator(Method::POST, "/v1/transactions", Some(good))
        .await;
    assert_eq!(
        (again["imported"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    let s = settlement(&h, SettlementRules::default());
    s.settle("2026-11".parse().expect("period"), &mut |_| {})
        .await
        .expect("settle");
    h.settle().await.expect("settle");
    let (status, runs) = api.operator(Method::GET, "/v1/settlement/runs", None).await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    assert_eq!(runs["runs"][0]["period"], "2026-11");
    assert_eq!(runs["runs"][0]["statements"], 2);
    let (status, _) = api.signed_get("/v1/settlement/runs", "crm").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Each portal sees its own statement only.
    let (status, own) = api
        .signed_get("/v1/statements?period=2026-11", "portal-p1001")
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let listed = own["statements"].as_array().expect("statements");
    assert_eq!(listed.len(), 1);
    // 1,000.00 × 20 % × 1.06 = 212.00
    assert_eq!(listed[0]["total"], "212.00");
    let id = listed[0]["id"].as_str().expect("id").to_owned();
    let (status, _) = api
        .signed_get(&format!("/v1/statements/{id}"), "portal-p1002")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another partner's statement");
    let (status, view) = api
        .signed_get(&format!("/v1/statements/{id}"), "portal-p1001")
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["workflow"]["task"]["step"], "partner_reconcile");
    let (status, why) = api
        .signed_get(
            &format!("/v1/statements/{id}/lines/1/explain"),
            "portal-p1001",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{why}");
    assert_eq!(why["transactions"][0]["order_id"], "B-1");
    assert!(
        why["formula"].as_str().unwrap_or("").ends_with("= 212.00"),
        "{why}"
    );
    let (status, _) = api
        .signed_get(
            &format!("/v1/statements/{id}/lines/9/explain"),
            "portal-p1001",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The partner disputes line 1 through its task, signed.
    let task = view["workflow"]["task"]["id"]
        .as_str()
        .expect("task")
        .to_owned();
    let dispute = json!({ "decision": "dispute", "reason": "B-1 was cancelled", "actor": { "id": "P-1001/zhang" },
                          "data": { "lines": [1] } });
    let (status, answer) = api
        .signed(
            &format!("/v1/tasks/{task}/decision"),
            "portal-p1001",
            &dispute,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["current_step"], "resolve_dispute");
}
on_both_backends!(
    statements_are_imported_read_explained_and_disputed_over_http,
    shanghai(2026, 12, 10, 3, 0)
);
