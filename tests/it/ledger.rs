//! The ledger as a definition uses it: postings on a step's entry and on transitions, checked
//! against the account's balance in the transition's transaction.

use partnerflow::harness::Harness;
use partnerflow_core::machine::Actor;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both_backends;

const FLOWS: &str = r#"
id = "test_quota_grant"
version = 1
start = "granted"
[[steps]]
id = "granted"
kind = "end"
post = [{ movement = "grant", account = "mdf:{partner}:2026", amount = "/input/amount" }]
"#;

const USAGE: &str = r#"
id = "test_quota_usage"
version = 1
start = "review"
[[steps]]
id = "review"
kind = "human"
role = "channel_manager"
sla = "3WD"
decisions = ["approve", "reject"]
reason_required = ["reject"]
post = [{ movement = "reserve", account = "mdf:{partner}:2026", amount = "/input/budget" }]
on.approve = "await_payment"
on.reject = { to = "rejected", post = [{ movement = "release", account = "mdf:{partner}:2026", amount = "/input/budget" }] }
[[steps]]
id = "await_payment"
kind = "wait_event"
event = "payment_confirmed"
on.received = { to = "paid", post = [{ movement = "consume", account = "mdf:{partner}:2026", amount = "/input/budget" }] }
[[steps]]
id = "paid"
kind = "end"
[[steps]]
id = "rejected"
kind = "end"
status = "rejected"
"#;

const ACCOUNT: &str = "mdf:P-1001:2026";

async fn with_flows(h: &Harness) {
    let mut files =
        partnerflow::app::read_definitions_or_embedded(std::path::Path::new("workflows"))
            .expect("definitions");
    files.push(("test_quota_grant.toml".to_owned(), FLOWS.to_owned()));
    files.push(("test_quota_usage.toml".to_owned(), USAGE.to_owned()));
    h.engine.load_definitions(&files).await.expect("load");
}

fn p1001(person: &str) -> partnerflow_engine::Submitter {
    partnerflow_engine::Submitter {
        actor: Actor {
            id: person.to_owned(),
        },
        partner: Some("P-1001".to_owned()),
    }
}

async fn start(
    h: &Harness,
    workflow: &str,
    key: &str,
    input: Value,
) -> Result<Uuid, partnerflow_engine::Error> {
    h.engine
        .start(workflow, key, input, p1001("P-1001/zhang"), None)
        .await
        .map(|(s, _)| s.id)
}

/// The balance, after checking available = quota + supplements − reserved − consumed.
async fn balance(h: &Harness) -> (Decimal, Decimal, Decimal) {
    let (b, entries) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert_eq!(
        b.available(),
        b.quota + b.supplements - b.reserved - b.consumed
    );
    let sum = |m: &str| -> Decimal {
        entries
            .iter()
            .filter(|e| e.movement == m)
            .map(|e| e.amount)
            .sum()
    };
    assert_eq!(
        b.quota,
        sum("grant"),
        "the balance is the sum of its postings"
    );
    assert_eq!(b.reserved, sum("reserve") - sum("release") - sum("consume"));
    assert_eq!(b.consumed, sum("consume"));
    (b.available(), b.reserved, b.consumed)
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

async fn postings_reserve_release_and_consume_against_the_quota(h: Harness) {
    with_flows(&h).await;
    start(
        &h,
        "test_quota_grant",
        "G-1",
        json!({ "amount": "50000.00" }),
    )
    .await
    .expect("grant");
    assert_eq!(balance(&h).await, (d("50000.00"), d("0"), d("0")));

    let first = start(
        &h,
        "test_quota_usage",
        "U-1",
        json!({ "budget": "30000.00" }),
    )
    .await
    .expect("within the quota");
    assert_eq!(balance(&h).await, (d("20000.00"), d("30000.00"), d("0")));

    // Above what is left: refused with the field named, and nothing posted or started.
    let refused = start(
        &h,
        "test_quota_usage",
        "U-2",
        json!({ "budget": "20000.01" }),
    )
    .await;
    match refused {
        Err(partnerflow_engine::Error::Invalid(fields)) => {
            assert_eq!(
                (fields[0].field.as_str(), fields[0].rule.as_str()),
                ("budget", "available")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(balance(&h).await, (d("20000.00"), d("30000.00"), d("0")));
    assert_eq!(
        h.engine
            .instances(partnerflow_engine::Listing::default(), 10)
            .await
            .expect("list")
            .len(),
        2
    );
    let missing = start(&h, "test_quota_usage", "U-3", json!({ "budget": "lots" })).await;
    assert!(
        matches!(
            &missing,
            Err(partnerflow_engine::Error::Refused(
                partnerflow_core::machine::Error::InvalidData(fields)
            )) if fields[0].field == "budget" && fields[0].rule == "amount"
        ),
        "{missing:?}"
    );

    // Exactly what is left passes; a rejection releases its reservation.
    let second = start(
        &h,
        "test_quota_usage",
        "U-4",
        json!({ "budget": "20000.00" }),
    )
    .await
    .expect("the rest of the quota");
    assert_eq!(balance(&h).await, (d("0"), d("50000.00"), d("0")));
    h.decide(
        second,
        "cm.li",
        "reject",
        Some("no budget line"),
        Value::Null,
    )
    .await
    .expect("reject");
    assert_eq!(balance(&h).await, (d("20000.00"), d("30000.00"), d("0")));

    // Approved and paid: the reservation is consumed.
    h.decide(first, "cm.li", "approve", None, Value::Null)
        .await
        .expect("approve");
    h.post_event(first, "payment_confirmed", json!({}), "integration:crm")
        .await
        .expect("paid");
    assert_eq!(balance(&h).await, (d("20000.00"), d("0"), d("30000.00")));
    let view = h.view(first).await.expect("view");
    assert_eq!(view.status, "completed");
    // The operator's view of the account, each posting with the instance and step behind it.
    let api = crate::http::Api::new(&h);
    let (status, shown) = api
        .operator(
            axum::http::Method::GET,
            &format!("/v1/ledger/accounts/{ACCOUNT}"),
            None,
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::OK, "{shown}");
    assert_eq!(
        (&shown["available"], &shown["reserved"], &shown["consumed"]),
        (&json!("20000.00"), &json!("0.00"), &json!("30000.00"))
    );
    let paid = shown["postings"]
        .as_array()
        .expect("postings")
        .iter()
        .find(|p| p["movement"] == "consume")
        .expect("the consumption");
    assert_eq!(paid["instance_id"], json!(first.to_string()));
    assert_eq!(paid["step"], json!("await_payment"));
    let (status, _) = api
        .signed_get(&format!("/v1/ledger/accounts/{ACCOUNT}"), "crm")
        .await;
    assert_eq!(status, axum::http::StatusCode::FORBIDDEN);
    assert_eq!(
        view.timeline
            .iter()
            .filter(|e| e.event.kind == "posting")
            .count(),
        2,
        "each posting is in the instance's audit trail"
    );
}
on_both_backends!(
    postings_reserve_release_and_consume_against_the_quota,
    shanghai(2026, 3, 2, 10, 0)
);

async fn two_concurrent_applications_exceeding_the_quota_leave_exactly_one(h: Harness) {
    with_flows(&h).await;
    start(
        &h,
        "test_quota_grant",
        "G-1",
        json!({ "amount": "50000.00" }),
    )
    .await
    .expect("grant");
    for round in 0..5 {
        let (key_a, key_b) = (format!("A-{round}"), format!("B-{round}"));
        let budget = json!({ "budget": "30000.00" });
        let (a, b) = tokio::join!(
            start(&h, "test_quota_usage", &key_a, budget.clone()),
            start(&h, "test_quota_usage", &key_b, budget.clone()),
        );
        let accepted: Vec<Uuid> = [a, b].into_iter().filter_map(Result::ok).collect();
        assert_eq!(
            accepted.len(),
            1,
            "round {round}: exactly one of two is accepted"
        );
        assert_eq!(balance(&h).await, (d("20000.00"), d("30000.00"), d("0")));
        h.decide(
            accepted[0],
            "cm.li",
            "reject",
            Some("next round"),
            Value::Null,
        )
        .await
        .expect("release");
    }
}
on_both_backends!(
    two_concurrent_applications_exceeding_the_quota_leave_exactly_one,
    shanghai(2026, 3, 2, 10, 0)
);

async fn a_balance_that_is_not_what_its_postings_add_up_to_is_found(h: Harness) {
    with_flows(&h).await;
    start(
        &h,
        "test_quota_grant",
        "G-1",
        json!({ "amount": "50000.00" }),
    )
    .await
    .expect("grant");
    start(
        &h,
        "test_quota_usage",
        "U-1",
        json!({ "budget": "30000.00" }),
    )
    .await
    .expect("usage");
    h.settle().await.expect("the ledger holds together");
    assert!(h.engine.verify_ledger().await.expect("verify").is_empty());
    // A stored balance edited behind the ledger's back.
    let store = h.engine.store();
    partnerflow_store::raw_execute(
        store,
        &format!("update ledger_accounts set reserved = '29000.00' where account = '{ACCOUNT}'"),
    )
    .await
    .expect("tamper");
    let findings = h.engine.verify_ledger().await.expect("verify");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].account, ACCOUNT);
    assert_eq!(
        findings[0].problem,
        "the stored balance differs from its postings"
    );
    assert_eq!(
        findings[0].replayed.map(|b| b.reserved),
        Some(d("30000.00"))
    );
    let refused = h.settle().await.expect_err("settle checks the ledger");
    assert!(
        refused.to_string().contains("does not hold together"),
        "{refused}"
    );
    // A consumption no reservation covers, appended to the postings.
    partnerflow_store::raw_execute(
        store,
        &format!("update ledger_accounts set reserved = '30000.00' where account = '{ACCOUNT}'"),
    )
    .await
    .expect("restore");
    partnerflow_store::raw_execute(
        store,
        &format!(
            "insert into ledger_entries (account, movement, amount, currency, instance_id, seq, step, created_at)
             values ('{ACCOUNT}', 'consume', '40000.00', 'CNY', 'x', 1, 'pay', 0)"
        ),
    )
    .await
    .expect("tamper");
    let findings = h.engine.verify_ledger().await.expect("verify");
    assert!(
        findings[0].problem.contains("could not have been accepted"),
        "{:?}",
        findings[0]
    );
}
on_both_backends!(
    a_balance_that_is_not_what_its_postings_add_up_to_is_found,
    shanghai(2026, 3, 2, 10, 0)
);
