//! Exactly-once effects under duplicate delivery, the audit chain, and definition versions.

use partnerflow::harness::{Harness, application, shanghai};
use partnerflow_core::machine::Actor;
use partnerflow_store::outbox;
use serde_json::json;

use crate::helpers::kinds;

/// P-1001's own person, submitting through P-1001's portal.
fn zhang() -> partnerflow_engine::Submitter {
    partnerflow_engine::Submitter {
        actor: Actor {
            id: "P-1001/zhang".to_owned(),
        },
        partner: Some("P-1001".to_owned()),
    }
}
use crate::on_both_backends;

/// What the provider received, in order; the first message waits until released.
#[derive(Default)]
struct Provider {
    received: std::sync::Mutex<Vec<(String, String)>>,
    first_arrived: tokio::sync::Notify,
    release_first: tokio::sync::Notify,
}

#[derive(Clone, Default)]
struct Counting(std::sync::Arc<Provider>);

impl Counting {
    fn received(&self) -> Vec<(String, String)> {
        self.0
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait::async_trait]
impl partnerflow_notify::Notifier for Counting {
    async fn send(&self, m: &partnerflow_notify::Message) -> Result<(), partnerflow_notify::Error> {
        let first = {
            let mut received = self
                .0
                .received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            received.push((m.address.clone(), m.key.clone()));
            received.len() == 1
        };
        if first {
            self.0.first_arrived.notify_one();
            self.0.release_first.notified().await;
        }
        Ok(())
    }
}

/// A notification row delivered three times: once by a worker that stalls inside the
/// provider call, once concurrently while that worker holds the lease, and once by a worker
/// that takes over after the lease ran out. Counts what the provider received.
async fn a_duplicate_delivered_concurrently_and_during_a_lease_expiry_sends_nothing_new(
    database_url: String,
) {
    let provider = Counting::default();
    let providers = partnerflow::app::Providers {
        notifier: std::sync::Arc::new(provider.clone()),
        ..partnerflow::app::Providers::default()
    };
    let h = Harness::with_providers(&database_url, shanghai(2025, 9, 1, 9, 0), |_| {}, providers)
        .await
        .expect("harness");
    let (started, _) = h
        .engine
        .start(
            "partner_onboarding",
            "P-1001",
            application("P-1001", "agent", "P-1001/zhang"),
            zhang(),
            None,
        )
        .await
        .expect("start");
    let store = h.engine.store().clone();
    let now = h.now();
    let ids = outbox::claim_due(&store, now, now + chrono::Duration::seconds(60), 100)
        .await
        .expect("dispatch");
    let mut notify_row = None;
    for id in ids {
        let pending = {
            let mut conn = store.acquire().await.expect("conn");
            outbox::get_pending(&mut conn, id).await.expect("row")
        };
        match pending.map(|(row, _)| row.work) {
            Some(outbox::Work::Notify { .. }) => notify_row = Some(id),
            _ => h.engine.run_job(id).await.expect("step"),
        }
    }
    let row = notify_row.expect("the submission notification row");

    let stalled = {
        let engine = h.engine.clone();
        tokio::spawn(async move { engine.run_job(row).await })
    };
    provider.0.first_arrived.notified().await;
    // Concurrently, while the stalled worker holds the lease: nothing is sent.
    h.engine.run_job(row).await.expect("concurrent duplicate");
    assert_eq!(provider.received().len(), 1);
    // The lease runs out; another worker takes the row over and finishes it.
    h.clock.advance(chrono::Duration::seconds(31));
    h.engine.run_job(row).await.expect("take-over");
    provider.0.release_first.notify_one();
    stalled.await.expect("join").expect("stalled worker");
    h.settle().await.expect("settle");

    let received: Vec<(String, String)> = provider
        .received()
        .into_iter()
        .filter(|(_, key)| key.contains(":onboarding.submitted:"))
        .collect();
    let mut addresses: Vec<&str> = received.iter().map(|(a, _)| a.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(
        addresses,
        vec!["+8613900009999", "p-1001@partner.example"],
        "the submission went to the partner's email and phone: {received:?}"
    );
    for address in &addresses {
        let keys: Vec<&str> = received
            .iter()
            .filter(|(a, _)| a == address)
            .map(|(_, k)| k.as_str())
            .collect();
        assert!(
            keys.windows(2).all(|w| w[0] == w[1]),
            "{address}: the stalled call and its take-over carry one key, never a new one: {keys:?}"
        );
    }
    // The stalled call's answer never came in time, so the take-over repeated that one call,
    // under its key (which the provider sees), and sent the other address once: three calls,
    // and nothing at all from the concurrent duplicate.
    assert_eq!(
        received.len(),
        3,
        "only the call the lease expiry interrupted is repeated: {received:?}"
    );
    let v = h.view(started.id).await.expect("view");
    let submitted: Vec<_> = v
        .notifications
        .iter()
        .filter(|n| n.template == "onboarding.submitted")
        .collect();
    assert_eq!(submitted.len(), 2, "one email and one SMS");
    assert!(submitted.iter().all(|n| n.status == "sent"));
    assert_eq!(h.engine.backlog().await.expect("backlog"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivered_concurrently_sends_nothing_new_on_sqlite() {
    a_duplicate_delivered_concurrently_and_during_a_lease_expiry_sends_nothing_new(
        crate::helpers::sqlite_url(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivered_concurrently_sends_nothing_new_on_postgres() {
    if !crate::services::postgres(
        "a_duplicate_delivered_concurrently_sends_nothing_new_on_postgres",
    ) {
        return;
    }
    a_duplicate_delivered_concurrently_and_during_a_lease_expiry_sends_nothing_new(
        crate::helpers::postgres_url().await,
    )
    .await;
}

async fn the_audit_chain_detects_an_edited_event(h: Harness) {
    let id = h
        .apply(application("P-1001", "agent", "P-1001/zhang"))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    assert_eq!(h.engine.verify_chain(id).await.expect("verify"), Ok(()));
    partnerflow_store::raw_execute(
        h.engine.store(),
        &format!("update events set actor = 'mallory' where instance_id = '{id}' and seq = 3"),
    )
    .await
    .expect("tamper");
    assert_eq!(h.engine.verify_chain(id).await.expect("verify"), Err(3));
    let bundle = h.engine.evidence(id).await.expect("evidence");
    assert!(!bundle.chain.verified);
    assert_eq!(bundle.chain.broken_at, Some(3));
    assert_eq!(
        bundle.children.len(),
        1,
        "the contract's bundle is included"
    );
    assert!(bundle.children[0].chain.verified);
}
on_both_backends!(
    the_audit_chain_detects_an_edited_event,
    shanghai(2025, 9, 1, 9, 0)
);

async fn the_audit_chain_detects_deleted_last_events_and_names_its_key(h: Harness) {
    let id = h
        .apply(application("P-1001", "agent", "P-1001/zhang"))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    let bundle = h.engine.evidence(id).await.expect("evidence");
    assert!(bundle.chain.verified);
    assert_eq!(
        bundle.chain.key_versions,
        vec![1],
        "tagged with audit key 1"
    );
    let count = bundle.chain.events;
    // Deleting the newest events leaves a chain that verifies link by link; the instance's
    // own record of its end does not match it.
    partnerflow_store::raw_execute(
        h.engine.store(),
        &format!(
            "delete from events where instance_id = '{id}' and seq >= {}",
            count - 1
        ),
    )
    .await
    .expect("tamper");
    let expected_break = u64::try_from(count - 1).expect("count");
    assert_eq!(
        h.engine.verify_chain(id).await.expect("verify"),
        Err(expected_break)
    );
    let bundle = h.engine.evidence(id).await.expect("evidence");
    assert!(!bundle.chain.verified);
    assert_eq!(bundle.chain.broken_at, Some(expected_break));
    assert_eq!(
        bundle.chain.expected_events,
        i64::try_from(count).expect("count")
    );
}
on_both_backends!(
    the_audit_chain_detects_deleted_last_events_and_names_its_key,
    shanghai(2025, 9, 1, 9, 0)
);

async fn a_running_instance_keeps_the_definition_version_it_started_with(h: Harness) {
    let mut app = application("P-1002", "agent", "P-1002/liu");
    app["sensitive_relationship_declared"] = json!(true);
    let old = h.apply(app.clone()).await.expect("start");
    h.settle().await.expect("settle");
    let defs = partnerflow::app::read_definitions_or_embedded(std::path::Path::new("workflows"))
        .expect("definitions");
    let changed: Vec<(String, String)> = defs
        .into_iter()
        .map(|(f, t)| {
            if t.contains("id = \"partner_onboarding\"") {
                (
                    f,
                    t.replace("version = 2", "version = 3")
                        .replace("sla = \"3WD\"", "sla = \"5WD\""),
                )
            } else {
                (f, t)
            }
        })
        .collect();
    h.engine.load_definitions(&changed).await.expect("load v2");
    app["partner_id"] = json!("P-1003");
    let new = h.apply(app).await.expect("start v2");
    h.settle().await.expect("settle");
    let (o, n) = (
        h.view(old).await.expect("view"),
        h.view(new).await.expect("view"),
    );
    assert_eq!((o.version, n.version), (2, 3));
    assert_eq!(o.tasks[0].due_at, shanghai(2025, 9, 4, 9, 0), "v2: 3 WD");
    assert_eq!(n.tasks[0].due_at, shanghai(2025, 9, 8, 9, 0), "v3: 5 WD");
    h.decide(old, "cm.li", "approve", None, serde_json::Value::Null)
        .await
        .expect("the v2 instance still runs");
    let bumped_without_version: Vec<(String, String)> =
        partnerflow::app::read_definitions_or_embedded(std::path::Path::new("workflows"))
            .expect("definitions")
            .into_iter()
            .map(|(f, t)| (f, t.replace("sla = \"3WD\"", "sla = \"4WD\"")))
            .collect();
    let err = h
        .engine
        .load_definitions(&bumped_without_version)
        .await
        .expect_err("a changed definition needs a new version");
    assert!(err.to_string().contains("bump `version`"), "{err}");
}
on_both_backends!(
    a_running_instance_keeps_the_definition_version_it_started_with,
    shanghai(2025, 9, 1, 9, 0)
);

async fn concurrent_replays_of_one_decision_all_get_the_first_answer(h: Harness) {
    let mut app = application("P-1002", "agent", "P-1002/liu");
    app["sensitive_relationship_declared"] = json!(true);
    let id = h.apply(app).await.expect("start");
    h.settle().await.expect("settle");
    let (task, _) = h.open_task(id).await.expect("task").expect("open");
    let idem = || partnerflow_engine::Idempotency {
        key: "decide-once".to_owned(),
        request_hash: "same-body".to_owned(),
    };
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (engine, idem) = (h.engine.clone(), idem());
        calls.spawn(async move {
            engine
                .decide(
                    task,
                    "approve",
                    None,
                    Actor {
                        id: "cm.li".to_owned(),
                    },
                    serde_json::Value::Null,
                    Some(idem),
                )
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = calls.join_next().await {
        answers.push(joined.expect("join").expect("every replay gets an answer"));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let v = h.view(id).await.expect("view");
    assert_eq!(
        kinds(&v).iter().filter(|k| *k == "decision").count(),
        1,
        "applied once"
    );
}
on_both_backends!(
    concurrent_replays_of_one_decision_all_get_the_first_answer,
    shanghai(2025, 9, 1, 9, 0)
);

async fn a_second_start_with_the_same_business_key_answers_with_the_first_instance(h: Harness) {
    let app = application("P-1001", "agent", "P-1001/zhang");
    let (first, created) = h
        .engine
        .start("partner_onboarding", "P-1001", app.clone(), zhang(), None)
        .await
        .expect("first start");
    assert!(created);
    let (again, created) = h
        .engine
        .start("partner_onboarding", "P-1001", app, zhang(), None)
        .await
        .expect("second start");
    assert!(!created);
    assert_eq!(again, first);
    assert_eq!(
        h.engine
            .instances(partnerflow_engine::Listing::default(), 10)
            .await
            .expect("list")
            .len(),
        1
    );
}
on_both_backends!(
    a_second_start_with_the_same_business_key_answers_with_the_first_instance,
    shanghai(2025, 9, 1, 9, 0)
);

async fn a_timer_fires_once_when_a_claim_runs_out_mid_batch(h: Harness) {
    let (id, _) = crate::signatures::under_review(&h, "P-1001", "P-1001/zhang").await;
    let due = h.engine.next_due().await.expect("next").expect("a timer");
    h.clock.set(due);
    // Sweeper A claims the due timers for one second, then stalls.
    let store = h.engine.store().clone();
    let claimed_by_a =
        partnerflow_store::timers::claim_due(&store, due, due + chrono::Duration::seconds(1), 100)
            .await
            .expect("claim");
    assert!(!claimed_by_a.is_empty());
    // Its claim runs out; sweeper B claims and fires them.
    h.clock.set(due + chrono::Duration::seconds(2));
    assert_eq!(
        h.engine.sweep_once().await.expect("sweep"),
        claimed_by_a.len()
    );
    h.settle().await.expect("settle");
    let after_b = h.view(id).await.expect("view");
    // A wakes up and fires what it claimed: nothing happens a second time.
    for t in &claimed_by_a {
        h.engine
            .fire_timer(t, h.now())
            .await
            .expect("a superseded firing is not an error");
    }
    h.settle().await.expect("settle");
    let after_a = h.view(id).await.expect("view");
    assert_eq!(kinds(&after_a), kinds(&after_b));
    assert_eq!(
        kinds(&after_a).iter().filter(|k| *k == "reminder").count(),
        1,
        "{:?}",
        kinds(&after_a)
    );
    let keys = |v: &partnerflow_engine::view::InstanceView| {
        v.notifications
            .iter()
            .map(|n| n.key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&after_a), keys(&after_b));
}
on_both_backends!(
    a_timer_fires_once_when_a_claim_runs_out_mid_batch,
    shanghai(2025, 9, 1, 9, 0)
);

/// Rows of `table` matching `condition`.
async fn count(h: &Harness, table: &str, condition: &str) -> i64 {
    // Table and condition are literals of this file.
    let sql = sqlx::AssertSqlSafe(format!("select count(*) from {table} where {condition}"));
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&h.engine.store().pool)
        .await
        .expect("count")
}

async fn the_janitor_deletes_old_delivery_rows_and_keeps_the_record(h: Harness) {
    let (id, task) = crate::signatures::under_review(&h, "P-1001", "P-1001/zhang").await;
    let key = partnerflow_engine::Idempotency {
        key: "decide-1".to_owned(),
        request_hash: "h".to_owned(),
    };
    h.engine
        .decide(
            task,
            "approve",
            None,
            Actor {
                id: "cm.li".to_owned(),
            },
            json!(null),
            Some(key),
        )
        .await
        .expect("decide");
    h.settle().await.expect("settle");
    let done = count(&h, "outbox", "status = 'done'").await;
    let closed = count(&h, "timers", "status in ('fired', 'cancelled')").await;
    assert!(done > 0 && closed > 0, "done {done}, closed {closed}");
    let events = count(&h, "events", "1 = 1").await;
    // Nothing is old enough yet.
    assert_eq!(h.engine.purge_once().await.expect("purge"), 0);
    // Eight days later the week-old delivery rows go; the 30-day keys and the record stay.
    h.clock.advance(chrono::Duration::days(8));
    let purged = h.engine.purge_once().await.expect("purge");
    assert!(purged > 0);
    assert_eq!(count(&h, "outbox", "status = 'done'").await, 0);
    let week_ago = (h.now() - chrono::Duration::days(7)).timestamp_micros();
    assert_eq!(
        count(&h, "outbox", "status = 'pending'").await,
        count(&h, "outbox", "1 = 1").await
    );
    assert_eq!(
        count(
            &h,
            "timers",
            &format!("status in ('fired', 'cancelled') and closed_at < {week_ago}")
        )
        .await,
        0
    );
    assert_eq!(
        count(&h, "timers", "status in ('fired', 'cancelled')").await,
        0,
        "{closed} were closed"
    );
    assert_eq!(count(&h, "idempotency_keys", "1 = 1").await, 1);
    assert_eq!(
        count(&h, "events", "1 = 1").await,
        events,
        "the audit record stays"
    );
    assert!(h.engine.verify_chain(id).await.expect("verify").is_ok());
    h.clock.advance(chrono::Duration::days(30));
    h.engine.purge_once().await.expect("purge");
    assert_eq!(count(&h, "idempotency_keys", "1 = 1").await, 0);
}
on_both_backends!(
    the_janitor_deletes_old_delivery_rows_and_keeps_the_record,
    shanghai(2025, 9, 1, 9, 0)
);
