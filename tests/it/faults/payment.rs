//! A payment interrupted by a real crash: the worker process calls the bank over HTTP, the
//! bank executes the payment, and the process is SIGKILLed before the bank's answer is
//! committed. Another worker process takes the job over when the lease runs out, calls the
//! bank again under the payable's own key, and the bank answers with the first payment: one
//! payment, one consumption on the ledger.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use partnerflow_core::machine::Actor;
use partnerflow_engine::{Engine, Submitter, UploadMeta};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use super::rig::Rig;

/// What the bank on loopback saw: every call's key, and the payments it executed.
#[derive(Default)]
struct Ledger {
    calls: Vec<String>,
    payments: BTreeMap<String, (Value, String)>,
}

#[derive(Clone, Default)]
struct Bank {
    ledger: Arc<Mutex<Ledger>>,
    executed: Arc<tokio::sync::Notify>,
}

/// Pays each key once. The first call of a key executes the payment and never answers (the
/// answer is lost with the process that waits for it); later calls answer with that payment.
async fn pay(State(bank): State<Bank>, headers: HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let known = {
        let mut l = bank
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        l.calls.push(key.clone());
        let known = l.payments.get(&key).map(|(_, r)| r.clone());
        if known.is_none() {
            let reference = format!("BANK-{:04}", l.payments.len() + 1);
            l.payments.insert(key, (body, reference));
        }
        known
    };
    match known {
        Some(reference) => Json(json!({ "status": "confirmed", "reference": reference })),
        None => {
            bank.executed.notify_one();
            std::future::pending().await
        }
    }
}

fn actor(id: &str) -> Actor {
    Actor { id: id.to_owned() }
}

fn p1001() -> Submitter {
    Submitter {
        actor: actor("P-1001/zhang"),
        partner: Some("P-1001".to_owned()),
    }
}

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_task(e: &Engine, id: Uuid) -> Uuid {
    let v = e.instance(id).await.expect("view");
    let task = v
        .tasks
        .iter()
        .find(|t| t.status == "open")
        .expect("an open task");
    Uuid::parse_str(&task.id).expect("task id")
}

async fn decide(e: &Engine, id: Uuid, who: &str, decision: &str, data: Value) {
    let task = open_task(e, id).await;
    e.decide(task, decision, None, actor(who), data, None)
        .await
        .unwrap_or_else(|err| panic!("{who} {decision}: {err}"));
}

async fn upload(e: &Engine, file: &str) -> String {
    let mut u = e
        .begin_upload("mdf_claim", file)
        .await
        .expect("begin upload");
    u.write(file.as_bytes()).await.expect("write");
    let meta = UploadMeta {
        screen: "mdf_claim".to_owned(),
        filename: file.to_owned(),
        uploaded_by: "integration:portal-p1001".to_owned(),
        partner_id: Some("P-1001".to_owned()),
    };
    e.finish_upload(u, meta).await.expect("finish upload").id
}

/// An MDF claim taken to its payout approval on the driver engine; the instance's id.
async fn claim_up_to_the_payout(e: &Engine) -> Uuid {
    let app = partnerflow::harness::application("P-1001", "integration", "P-1001/zhang");
    e.start("partner_onboarding", "P-1001", app, p1001(), None)
        .await
        .expect("onboarding");
    until("P-1001's business certification", async || {
        let s = e.standing("P-1001").await.ok()?;
        (s.get("business_info").map(String::as_str) == Some("certified")).then_some(())
    })
    .await;
    // An activity held five days ago, in the current year's quota window.
    let held = (e.now() - chrono::Duration::days(5))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let day = held.format("%Y-%m-%d").to_string();
    let year = chrono::Datelike::year(&held);
    let ops = Submitter {
        actor: actor("ops.he"),
        partner: None,
    };
    let grant = json!({ "partner_id": "P-1001", "tier": "software_advanced", "year": year });
    e.start(
        "mdf_quota",
        &format!("MDF-QUOTA-P-1001-{year}"),
        grant,
        ops,
        None,
    )
    .await
    .expect("quota");
    let usage = json!({
        "partner_id": "P-1001",
        "contacts": [{ "name": "Zhang San", "email": "zhang.san@partner1001.example", "phone": "13900001001" }],
        "activity": { "name": "Cloud day Fuzhou", "type": "customer_seminar", "city": "Fuzhou",
                      "planned_start": day, "planned_end": day },
        "targets": { "overview": "30 customer CXOs" },
        "agreement_accepted": true,
        "budget": [{ "item": "venue", "use_mdf": true, "amount": "7000.00" }],
        "late_reason": "applied after the event, with the ecosystem manager's consent"
    });
    let (started, _) = e
        .start("mdf_claim", "MDF-CRASH-1", usage, p1001(), None)
        .await
        .expect("usage application");
    let id = started.id;
    decide(e, id, "eco.lin", "approve", Value::Null).await;
    let claim = json!({
        "actual_start": day, "actual_end": day, "attendees": 28,
        "summary": { "overview": "28 CXOs" },
        "actual_costs": [{ "item": "venue", "use_mdf": true, "amount": "6500.00" }],
        "materials": {
            "activity_photos": upload(e, "photos.zip").await,
            "summary_attachment": upload(e, "summary.docx").await,
            "third_party_invoices": upload(e, "receipts.pdf").await
        }
    });
    let wait = e.instance(id).await.expect("view").waits[0]
        .correlation
        .clone();
    e.post_event(
        id,
        "claim_submitted",
        &wait,
        claim,
        actor("P-1001/zhang"),
        None,
    )
    .await
    .expect("claim");
    decide(e, id, "eco.lin", "approve", Value::Null).await;
    let invoices = json!({ "invoices": [{ "number": "FZ-1", "kind": "special", "amount": "6500.00",
                                          "attachment": upload(e, "FZ-1.pdf").await }] });
    decide(e, id, "P-1001/zhang", "submit", invoices).await;
    decide(e, id, "finance.xu", "approve", Value::Null).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_after_the_bank_paid_pays_once() {
    let test = "a_worker_killed_after_the_bank_paid_pays_once";
    if !crate::services::postgres_and_redis(test) {
        return;
    }
    let bank = Bank::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the bank");
    let url = format!("http://{}/pay", listener.local_addr().expect("addr"));
    let app = axum::Router::new()
        .route("/pay", post(pay))
        .with_state(bank.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut rig = Rig::new(&crate::services::redis_url()).await;
    // The bank's answer is awaited far longer than the test runs: only the kill ends the call.
    let env = [
        ("PARTNERFLOW__PAYMENTS__PROVIDER", "http"),
        ("PARTNERFLOW__PAYMENTS__URL", url.as_str()),
        ("PARTNERFLOW__PAYMENTS__TIMEOUT_MS", "600000"),
    ];
    let first = rig.spawn_worker_with(&env);
    let e = rig.engine().clone();
    let id = claim_up_to_the_payout(&e).await;
    let executed = bank.executed.notified();
    decide(&e, id, "finance.xu", "approve", Value::Null).await;
    tokio::time::timeout(Duration::from_secs(60), executed)
        .await
        .expect("the bank executed the payment");
    rig.say("the bank paid; killing the worker before it commits");
    rig.kill_mid_step(first).await;
    assert_eq!(
        e.instance(id).await.expect("view").current_steps,
        vec!["pay"]
    );
    rig.spawn_worker_with(&env);
    until("the payment committed by the second worker", async || {
        (e.instance(id).await.ok()?.status == "paid").then_some(())
    })
    .await;

    let payable = format!("mdf:{id}");
    {
        let l = bank
            .ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(l.payments.len(), 1, "one payment executed");
        assert_eq!(l.payments[&payable].0["amount"], "6500.00");
        assert!(
            l.calls.iter().filter(|k| **k == payable).count() >= 2,
            "called again after the crash: {:?}",
            l.calls
        );
    }
    let v = e.instance(id).await.expect("view");
    assert_eq!(v.data["steps"]["pay"]["reference"], "BANK-0001");
    let ledger = e.partner_ledger("P-1001").await.expect("ledger");
    let consumed: Vec<Decimal> = ledger.payments.iter().map(|p| p.amount).collect();
    assert_eq!(consumed, vec![Decimal::new(650_000, 2)], "consumed once");
    assert_eq!(ledger.payables.len(), 1);
    assert_eq!(ledger.payables[0].status, "paid");
    rig.finish().await;
}
