//! A payment retried after the worker that called the bank lost its lease (stalled between
//! the provider's answer and the commit): the bank is called again under the payable's own
//! key, pays once, and the ledger consumes once.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use partnerflow::harness::{Harness, shanghai};
use partnerflow_core::handler::HandlerError;
use partnerflow_core::machine::Actor;
use partnerflow_store::outbox;
use partnerflow_workers::{PaymentAnswer, PaymentProvider, PaymentRequest};
use rust_decimal::Decimal;
use serde_json::json;

const FLOW: &str = r#"
id = "test_payout"
version = 1
start = "pay"
[[steps]]
id = "pay"
kind = "automated"
handler = "pay"
params = { payable = "test:{instance}", amount = "/input/amount" }
post = [{ movement = "grant", account = "test:{partner}", amount = "/input/amount" }, { movement = "reserve", account = "test:{partner}", amount = "/input/amount" }]
on.confirmed = { to = "paid", post = [{ movement = "consume", account = "test:{partner}", amount = "/input/amount" }] }
[[steps]]
id = "paid"
kind = "end"
status = "paid"
"#;

/// A bank that pays each key once, counts every call, and stalls the first one.
#[derive(Default)]
struct Bank {
    calls: Mutex<Vec<String>>,
    paid: Mutex<BTreeSet<String>>,
    first_called: tokio::sync::Notify,
    release_first: tokio::sync::Notify,
}

#[derive(Clone, Default)]
struct Counting(Arc<Bank>);

#[async_trait::async_trait]
impl PaymentProvider for Counting {
    async fn pay(&self, r: &PaymentRequest) -> Result<PaymentAnswer, HandlerError> {
        let first = {
            let mut calls = self
                .0
                .calls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            calls.push(r.idempotency_key.clone());
            calls.len() == 1
        };
        self.0
            .paid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(r.idempotency_key.clone());
        if first {
            // The bank has paid; its answer reaches the worker only after the lease ran out.
            self.0.first_called.notify_one();
            self.0.release_first.notified().await;
        }
        Ok(PaymentAnswer::Confirmed {
            reference: format!("BANK-{}", r.idempotency_key),
        })
    }
}

async fn a_payment_whose_worker_lost_its_lease_pays_once(database_url: String) {
    let bank = Counting::default();
    let providers = partnerflow::app::Providers {
        payments: Arc::new(bank.clone()),
        ..partnerflow::app::Providers::default()
    };
    let h = Harness::with_providers(
        &database_url,
        shanghai(2026, 3, 2, 10, 0),
        |_| {},
        providers,
    )
    .await
    .expect("harness");
    let mut files =
        partnerflow::app::read_definitions_or_embedded(std::path::Path::new("workflows"))
            .expect("definitions");
    files.push(("test_payout.toml".to_owned(), FLOW.to_owned()));
    h.engine.load_definitions(&files).await.expect("load");
    let submitter = partnerflow_engine::Submitter {
        actor: Actor {
            id: "finance.xu".to_owned(),
        },
        partner: Some("P-1001".to_owned()),
    };
    let (started, _) = h
        .engine
        .start(
            "test_payout",
            "PAY-1",
            json!({ "amount": "9500.00" }),
            submitter,
            None,
        )
        .await
        .expect("start");
    let id = started.id;
    let now = h.now();
    let rows = outbox::claim_due(
        h.engine.store(),
        now,
        now + chrono::Duration::seconds(60),
        10,
    )
    .await
    .expect("dispatch");
    assert_eq!(rows.len(), 1, "the pay job");
    let row = rows[0];

    let stalled = {
        let engine = h.engine.clone();
        tokio::spawn(async move { engine.run_job(row).await })
    };
    bank.0.first_called.notified().await;
    h.clock.advance(chrono::Duration::seconds(31));
    h.engine.run_job(row).await.expect("take-over");
    bank.0.release_first.notify_one();
    stalled.await.expect("join").expect("stalled worker");
    h.settle().await.expect("settle");

    let key = format!("test:{id}");
    let calls = bank.0.calls.lock().expect("calls").clone();
    assert_eq!(
        calls,
        vec![key.clone(), key.clone()],
        "the retry carried the payable's key"
    );
    assert_eq!(
        bank.0.paid.lock().expect("paid").len(),
        1,
        "the bank paid once"
    );
    let (balance, entries) = h
        .engine
        .ledger_account("test:P-1001")
        .await
        .expect("account");
    assert_eq!(
        balance.consumed,
        "9500.00".parse::<Decimal>().expect("amount"),
        "consumed once"
    );
    assert_eq!(
        entries.iter().filter(|e| e.movement == "consume").count(),
        1
    );
    let v = h.view(id).await.expect("view");
    assert_eq!(v.status, "paid");
    assert_eq!(
        v.data["steps"]["pay"]["reference"],
        json!(format!("BANK-{key}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_worker_lost_its_lease_pays_once_on_sqlite() {
    a_payment_whose_worker_lost_its_lease_pays_once(crate::helpers::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_worker_lost_its_lease_pays_once_on_postgres() {
    if !crate::services::postgres("a_payment_whose_worker_lost_its_lease_pays_once_on_postgres") {
        return;
    }
    a_payment_whose_worker_lost_its_lease_pays_once(crate::helpers::postgres_url().await).await;
}
