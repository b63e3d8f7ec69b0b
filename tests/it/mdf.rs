//! `mdf_claim` end to end over the HTTP API: the quota granted, a usage application reserved
//! against it (and refused above it, with nothing posted), the claim adjusting the reservation
//! to the actual amount, the invoices checked by the 1.06 rule, and the payment consuming it.

use axum::http::{Method, StatusCode};
use partnerflow::harness::Harness;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::Api;
use crate::on_both_backends;

pub(crate) const ACCOUNT: &str = "mdf:P-1001:2026";

pub(crate) fn usage(budget: &str) -> Value {
    json!({
        "partner_id": "P-1001",
        "contacts": [{ "name": "Zhang San", "email": "zhang.san@partner1001.example", "phone": "13900001001" }],
        "activity": { "name": "Cloud day Fuzhou", "type": "customer_seminar", "city": "Fuzhou",
                      "planned_start": "2026-10-16", "planned_end": "2026-10-16" },
        "targets": { "overview": "30 customer CXOs" },
        "agreement_accepted": true,
        "budget": [
            { "item": "venue", "use_mdf": true, "amount": budget },
            { "item": "gifts", "use_mdf": false, "amount": "300.00" }
        ]
    })
}

/// (available, reserved, consumed) of the partner's 2026 quota account.
pub(crate) async fn account(h: &Harness) -> (Decimal, Decimal, Decimal) {
    let (b, _) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    (b.available(), b.reserved, b.consumed)
}

pub(crate) fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// 20 October, after the activity of 16 October: where a claim of `spent` goes, and the claim
/// naming its materials as uploaded by P-1001's portal.
pub(crate) async fn after_the_activity(h: &Harness, id: Uuid, spent: &str) -> (String, Value) {
    h.advance_to(partnerflow::harness::shanghai(2026, 10, 20, 10, 0))
        .await
        .expect("advance");
    let wait = h.view(id).await.expect("view").waits[0].correlation.clone();
    let mut materials = serde_json::Map::new();
    for (name, file) in [
        ("activity_photos", "photos.zip"),
        ("summary_attachment", "summary.docx"),
        ("third_party_invoices", "invoices.pdf"),
    ] {
        let id = h
            .upload("P-1001", "mdf_claim", file, name.as_bytes())
            .await
            .expect("upload");
        materials.insert(name.to_owned(), json!(id));
    }
    let claim = json!({
        "actual_start": "2026-10-16", "actual_end": "2026-10-16", "attendees": 28,
        "summary": { "overview": "28 CXOs, 6 leads" },
        "actual_costs": [{ "item": "venue", "use_mdf": true, "amount": spent }],
        "materials": materials
    });
    let uri = format!("/v1/instances/{id}/events/claim_submitted?correlation={wait}");
    (uri, claim)
}

/// P-1001's business information certified (an onboarding whose verification passed).
pub(crate) async fn certified(h: &Harness) {
    h.certify_business("P-1001", "P-1001/zhang")
        .await
        .expect("certified");
}

pub(crate) async fn apply(api: &Api, key: &str, input: Value) -> (StatusCode, Value) {
    let body = json!({ "business_key": key, "input": input, "actor": { "id": "P-1001/zhang" } });
    api.signed("/v1/workflows/mdf_claim/instances", "portal-p1001", &body)
        .await
}

pub(crate) async fn decide(
    api: &Api,
    h: &Harness,
    id: Uuid,
    integration: &str,
    body: Value,
) -> (StatusCode, Value) {
    let (task, _) = h.open_task(id).await.expect("task").expect("open task");
    let answer = api
        .signed(&format!("/v1/tasks/{task}/decision"), integration, &body)
        .await;
    h.settle().await.expect("settle");
    answer
}

async fn an_mdf_activity_moves_its_quota_from_application_to_payment(h: Harness) {
    let api = Api::new(&h);
    certified(&h).await;
    let grant = json!({ "business_key": "MDF-QUOTA-P-1001-2026",
                        "input": { "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 } });
    let (status, granted) = api
        .operator(
            Method::POST,
            "/v1/workflows/mdf_quota/instances",
            Some(grant),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{granted}");
    assert_eq!(account(&h).await, (d("50000.00"), d("0"), d("0")));

    // Refused: every failing field named, nothing started, nothing posted.
    let mut bad = usage("5600.00");
    bad["agreement_accepted"] = json!(false);
    bad["activity"]["planned_end"] = json!("2026-10-01");
    let (status, refused) = apply(&api, "MDF-BAD", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let named: Vec<&str> = refused["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(named, vec!["activity.planned_end", "agreement_accepted"]);
    // Above the quota: refused by the ledger, with the amount's field named.
    let (status, refused) = apply(&api, "MDF-BIG", usage("50000.01")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], "mdf_amount");
    assert_eq!(refused["error"]["details"][0]["rule"], "available");
    assert_eq!(account(&h).await, (d("50000.00"), d("0"), d("0")));

    let (status, started) = apply(&api, "MDF-1", usage("7000.50")).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id: Uuid = started["id"].as_str().expect("id").parse().expect("uuid");
    h.settle().await.expect("settle");
    assert_eq!(account(&h).await, (d("42999.50"), d("7000.50"), d("0")));

    let approve = |who: &str| json!({ "decision": "approve", "actor": { "id": who } });
    let (status, answer) = decide(&api, &h, id, "crm", approve("eco.lin")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["current_step"], "await_claim");

    // After the activity: the claim, with less spent than budgeted.
    let (uri, claim) = after_the_activity(&h, id, "5601.00").await;
    let mut no_photos = claim.clone();
    no_photos["materials"]
        .as_object_mut()
        .expect("materials")
        .remove("activity_photos");
    let (status, refused) = api.signed(&uri, "portal-p1001", &no_photos).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        refused["error"]["details"][0]["field"],
        "materials.activity_photos"
    );
    let (status, answer) = api.signed(&uri, "portal-p1001", &claim).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    h.settle().await.expect("settle");

    // Approved: the reservation follows the actual amount.
    let (status, answer) = decide(&api, &h, id, "crm", approve("eco.lin")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(account(&h).await, (d("44399.00"), d("5601.00"), d("0")));

    // Invoices: ordinary ones count at 1/1.06, so 5,601.00 needs 5,937.06.
    let scan = h
        .upload("P-1001", "mdf_claim", "FZ-0001.pdf", b"%PDF invoice")
        .await
        .expect("upload");
    let invoice = |amount: &str| {
        json!({ "decision": "submit", "actor": { "id": "P-1001/zhang" },
                "data": { "invoices": [{ "number": "FZ-0001", "kind": "ordinary", "amount": amount, "attachment": scan }] } })
    };
    let (status, refused) = decide(&api, &h, id, "portal-p1001", invoice("5937.05")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["details"][0]["rule"], "coverage");
    let (status, answer) = decide(&api, &h, id, "portal-p1001", invoice("5937.06")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (status, answer) = decide(&api, &h, id, "crm", approve("finance.xu")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let paid = json!({ "decision": "approve", "actor": { "id": "finance.xu" } });
    let (status, answer) = decide(&api, &h, id, "crm", paid).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["current_step"], "pay",
        "the bank is paid by a job, after the commit"
    );
    let v = h.view(id).await.expect("view");
    assert_eq!(v.status, "paid");
    assert_eq!(
        v.data["steps"]["pay"]["payable_id"],
        json!(format!("mdf:{id}"))
    );
    assert_eq!(account(&h).await, (d("44399.00"), d("0"), d("5601.00")));

    // The partner's own portal reads its ledger; not another partner's; the CRM not at all.
    let (status, ledger) = api
        .signed_get("/v1/partners/P-1001/ledger", "portal-p1001")
        .await;
    assert_eq!(status, StatusCode::OK, "{ledger}");
    assert_eq!(ledger["accounts"][0]["account"], ACCOUNT);
    assert_eq!(ledger["accounts"][0]["consumed"], "5601.00");
    // What was owed to the partner and what was paid, each with the instance and step.
    let payable = format!("mdf:{id}");
    assert_eq!(
        ledger["payables"].as_array().map(Vec::len),
        Some(1),
        "{ledger}"
    );
    assert_eq!(ledger["payables"][0]["payable"], payable.as_str());
    assert_eq!(ledger["payables"][0]["status"], "paid");
    assert_eq!(ledger["payables"][0]["owed"], "5601.00");
    assert_eq!(ledger["payables"][0]["paid"], "5601.00");
    assert_eq!(ledger["payments"][0]["payable"], payable.as_str());
    assert_eq!(ledger["payments"][0]["step"], "pay");
    assert_eq!(ledger["payments"][0]["instance_id"], id.to_string());
    let movements: Vec<&str> = ledger["postings"]
        .as_array()
        .expect("postings")
        .iter()
        .filter_map(|p| p["movement"].as_str())
        .collect();
    assert_eq!(
        movements,
        vec!["grant", "reserve", "release", "reserve", "consume"]
    );
    let (status, _) = api
        .signed_get("/v1/partners/P-1002/ledger", "portal-p1001")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.signed_get("/v1/partners/P-1001/ledger", "crm").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
on_both_backends!(
    an_mdf_activity_moves_its_quota_from_application_to_payment,
    shanghai(2026, 9, 1, 10, 0)
);

async fn a_rejected_application_releases_its_reservation(h: Harness) {
    let api = Api::new(&h);
    let grant = json!({ "business_key": "MDF-QUOTA-P-1001-2026",
                        "input": { "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 } });
    api.operator(
        Method::POST,
        "/v1/workflows/mdf_quota/instances",
        Some(grant),
    )
    .await;
    let (status, started) = apply(&api, "MDF-2", usage("30000.00")).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id: Uuid = started["id"].as_str().expect("id").parse().expect("uuid");
    h.settle().await.expect("settle");
    assert_eq!(account(&h).await, (d("20000.00"), d("30000.00"), d("0")));
    let reject =
        json!({ "decision": "reject", "reason": "no customer list", "actor": { "id": "eco.lin" } });
    let (status, answer) = decide(&api, &h, id, "crm", reject).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(account(&h).await, (d("50000.00"), d("0"), d("0")));
    // Resubmitted with changes: reserved again.
    let wait = h.view(id).await.expect("view").waits[0].correlation.clone();
    let (status, answer) = api
        .signed(
            &format!("/v1/instances/{id}/events/usage_resubmitted?correlation={wait}"),
            "portal-p1001",
            &usage("25000.00"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    h.settle().await.expect("settle");
    assert_eq!(account(&h).await, (d("25000.00"), d("25000.00"), d("0")));
}
on_both_backends!(
    a_rejected_application_releases_its_reservation,
    shanghai(2026, 9, 1, 10, 0)
);

pub(crate) async fn grant_and_approve(h: &Harness, api: &Api, budget: &str) -> Uuid {
    let grant = json!({ "business_key": "MDF-QUOTA-P-1001-2026",
                        "input": { "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 } });
    api.operator(
        Method::POST,
        "/v1/workflows/mdf_quota/instances",
        Some(grant),
    )
    .await;
    let (status, started) = apply(api, "MDF-3", usage(budget)).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    let id: Uuid = started["id"].as_str().expect("id").parse().expect("uuid");
    h.settle().await.expect("settle");
    let approve = json!({ "decision": "approve", "actor": { "id": "eco.lin" } });
    let (status, answer) = decide(api, h, id, "crm", approve).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    id
}

async fn an_approved_application_without_a_claim_lapses_after_12_months_and_releases(h: Harness) {
    let api = Api::new(&h);
    let id = grant_and_approve(&h, &api, "8000.00").await;
    assert_eq!(account(&h).await, (d("42000.00"), d("8000.00"), d("0")));
    h.advance_to(partnerflow::harness::shanghai(2027, 9, 1, 9, 0))
        .await
        .expect("advance");
    assert_eq!(
        h.view(id).await.expect("view").status,
        "running",
        "not before 12 months"
    );
    h.advance_to(partnerflow::harness::shanghai(2027, 9, 1, 11, 0))
        .await
        .expect("advance");
    assert_eq!(h.view(id).await.expect("view").status, "lapsed");
    assert_eq!(account(&h).await, (d("50000.00"), d("0"), d("0")));
}
on_both_backends!(
    an_approved_application_without_a_claim_lapses_after_12_months_and_releases,
    shanghai(2026, 9, 1, 10, 0)
);

async fn the_partner_is_reminded_to_invoice_at_7_and_12_days_and_escalated_at_15(h: Harness) {
    let api = Api::new(&h);
    certified(&h).await;
    let id = grant_and_approve(&h, &api, "8000.00").await;
    let (uri, claim) = after_the_activity(&h, id, "8000.00").await;
    let (status, answer) = api.signed(&uri, "portal-p1001", &claim).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    h.settle().await.expect("settle");
    let approve = json!({ "decision": "approve", "actor": { "id": "eco.lin" } });
    decide(&api, &h, id, "crm", approve).await;
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["partner_invoice"]
    );
    h.advance_to(partnerflow::harness::shanghai(2026, 11, 10, 10, 0))
        .await
        .expect("advance");
    let v = h.view(id).await.expect("view");
    assert_eq!(
        crate::helpers::times_of(&v, "reminder"),
        vec!["2026-10-27 10:00", "2026-11-01 10:00"],
        "7 and 12 calendar days after the claim's approval"
    );
    assert_eq!(
        crate::helpers::times_of(&v, "escalated"),
        vec!["2026-11-04 10:00"]
    );
    assert_eq!(
        v.current_steps,
        vec!["partner_invoice"],
        "money is never approved by silence"
    );
}
on_both_backends!(
    the_partner_is_reminded_to_invoice_at_7_and_12_days_and_escalated_at_15,
    shanghai(2026, 9, 1, 10, 0)
);

/// The partner's portal revokes the application, naming the open step entry.
async fn revoke(api: &Api, h: &Harness, id: Uuid) -> (StatusCode, Value) {
    let v = h.view(id).await.expect("view");
    let wait = v
        .waits
        .iter()
        .find(|w| w.event == "usage_revoked")
        .map(|w| w.correlation.clone())
        .expect("revocable");
    let uri = format!("/v1/instances/{id}/events/usage_revoked?correlation={wait}");
    let answer = api
        .signed(
            &uri,
            "portal-p1001",
            &json!({ "reason": "event cancelled" }),
        )
        .await;
    h.settle().await.expect("settle");
    answer
}

async fn an_application_revoked_under_review_or_approved_releases_its_reservation(h: Harness) {
    let api = Api::new(&h);
    let grant = json!({ "business_key": "MDF-QUOTA-P-1001-2026",
                        "input": { "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 } });
    api.operator(
        Method::POST,
        "/v1/workflows/mdf_quota/instances",
        Some(grant),
    )
    .await;
    // Under review: the task closes with the revocation and the reservation is released.
    let (_, started) = apply(&api, "MDF-R1", usage("10000.00")).await;
    let under_review: Uuid = started["id"].as_str().expect("id").parse().expect("uuid");
    h.settle().await.expect("settle");
    assert_eq!(account(&h).await, (d("40000.00"), d("10000.00"), d("0")));
    let (status, answer) = revoke(&api, &h, under_review).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let v = h.view(under_review).await.expect("view");
    assert_eq!(v.status, "revoked");
    assert!(v.tasks.iter().all(|t| t.status != "open"));
    assert_eq!(account(&h).await, (d("50000.00"), d("0"), d("0")));
    // Approved, before the claim: released too.
    let approved = grant_and_approve(&h, &api, "12000.00").await;
    assert_eq!(account(&h).await, (d("38000.00"), d("12000.00"), d("0")));
    let (status, answer) = revoke(&api, &h, approved).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(h.view(approved).await.expect("view").status, "revoked");
    assert_eq!(account(&h).await, (d("50000.00"), d("0"), d("0")));
    // Once revoked, a second revocation has nothing left to revoke.
    let uri = format!("/v1/instances/{approved}/events/usage_revoked?correlation=1");
    let (status, _) = api.signed(&uri, "portal-p1001", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}
on_both_backends!(
    an_application_revoked_under_review_or_approved_releases_its_reservation,
    shanghai(2026, 9, 1, 10, 0)
);
