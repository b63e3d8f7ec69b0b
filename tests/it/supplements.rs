//! `mdf_supplement`: more quota granted by the ecosystem manager, posted as a supplement on the
//! partner's year, so applications above the tier's quota fit.

use axum::http::{Method, StatusCode};
use partnerflow::harness::Harness;
use serde_json::json;

use crate::http::Api;
use crate::mdf::{account, apply, d, usage};
use crate::on_both_backends;

async fn a_granted_supplement_raises_what_applications_may_reserve(h: Harness) {
    let api = Api::new(&h);
    let grant = json!({ "business_key": "MDF-QUOTA-P-1001-2026",
                        "input": { "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 } });
    let (status, _) = api
        .operator(
            Method::POST,
            "/v1/workflows/mdf_quota/instances",
            Some(grant),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = apply(&api, "MDF-BIG", usage("60000.00")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    let request = |amount: &str, reason: Option<&str>| {
        json!({ "business_key": format!("SUP-{amount}"), "actor": { "id": "P-1001/zhang" },
                "input": { "partner_id": "P-1001", "year": 2026, "amount": amount, "reason": reason } })
    };
    let (status, refused) = api
        .signed(
            "/v1/workflows/mdf_supplement/instances",
            "portal-p1001",
            &request("20000.00", None),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], "reason");
    let (status, started) = api
        .signed(
            "/v1/workflows/mdf_supplement/instances",
            "portal-p1001",
            &request("20000.00", Some("a second customer forum")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id = started["id"].as_str().expect("id").parse().expect("uuid");
    assert_eq!(
        account(&h).await,
        (d("50000.00"), d("0"), d("0")),
        "nothing before approval"
    );
    h.decide(id, "eco.lin", "approve", None, serde_json::Value::Null)
        .await
        .expect("granted");
    assert_eq!(h.view(id).await.expect("view").status, "granted");
    let (b, _) = h
        .engine
        .ledger_account("mdf:P-1001:2026")
        .await
        .expect("account");
    assert_eq!((b.quota, b.supplements), (d("50000.00"), d("20000.00")));
    assert_eq!(account(&h).await, (d("70000.00"), d("0"), d("0")));
    let (status, started) = apply(&api, "MDF-BIG", usage("60000.00")).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    h.settle().await.expect("settle");
    assert_eq!(account(&h).await, (d("10000.00"), d("60000.00"), d("0")));
}
on_both_backends!(
    a_granted_supplement_raises_what_applications_may_reserve,
    shanghai(2026, 9, 1, 10, 0)
);
