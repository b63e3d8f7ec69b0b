//! Notification delivery: a failure part-way through a notification's addresses neither loses
//! nor repeats the ones already sent.

mod common;

use std::sync::{Arc, Mutex};

use chrono::Duration;
use partnerflow_core::handler::HandlerRegistry;
use partnerflow_engine::{Engine, VirtualClock};
use partnerflow_notify::{Error, Message, Notifier};

const FLOW: &str = r#"
id = "announce"
version = 1
start = "wait"
[[steps]]
id = "wait"
kind = "wait_event"
event = "go"
notify = [{ to = "role:reviewer", template = "onboarding.submitted", channels = ["email", "sms"] }]
on.received = "done"
[[steps]]
id = "done"
kind = "end"
"#;

const DIRECTORY: &str = r#"
programme_director = "boss"
[[people]]
id = "boss"
name = "Boss"
[[people]]
id = "r1"
name = "Reviewer 1"
email = "r1@vendor.example"
phone = "13800000011"
roles = ["reviewer"]
[[people]]
id = "r2"
name = "Reviewer 2"
email = "r2@vendor.example"
phone = "13800000012"
roles = ["reviewer"]
"#;

/// Fails the third message it is given, once, as a provider outage would.
#[derive(Default)]
struct Flaky {
    calls: Mutex<Vec<String>>,
    delivered: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Notifier for Flaky {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        let mut calls = self
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        calls.push(m.address.clone());
        if calls.len() == 3 {
            return Err(Error::Retryable("provider timed out".to_owned()));
        }
        self.delivered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(m.address.clone());
        Ok(())
    }
}

/// Accepts every message, but the first answer is lost (a timeout after the provider took it).
#[derive(Default)]
struct LostAnswer {
    received: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl Notifier for LostAnswer {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        let mut received = self
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        received.push((m.address.clone(), m.key.clone()));
        if received.len() == 1 {
            return Err(Error::Retryable(
                "timed out waiting for the answer".to_owned(),
            ));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_call_whose_result_was_lost_is_retried_under_the_same_key_and_shown_meanwhile() {
    let notifier = Arc::new(LostAnswer::default());
    let (engine, clock, id) = announce(notifier.clone()).await;
    engine.drain().await.expect("first delivery");
    let view = engine.instance(id).await.expect("view");
    let pending: Vec<_> = view
        .notifications
        .iter()
        .filter(|n| n.status == "sending")
        .collect();
    assert_eq!(
        pending.len(),
        1,
        "the unanswered call is visible on the instance"
    );
    assert_eq!(pending[0].attempts, 1);
    assert!(
        pending[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("timed out"))
    );
    let first = notifier.received.lock().expect("lock")[0].clone();

    clock.advance(Duration::seconds(5));
    engine.drain().await.expect("retry");
    let received = notifier.received.lock().expect("lock").clone();
    let to_first: Vec<&String> = received
        .iter()
        .filter(|(address, _)| *address == first.0)
        .map(|(_, key)| key)
        .collect();
    assert_eq!(
        to_first,
        vec![&first.1, &first.1],
        "the retry carries the same key"
    );
    let view = engine.instance(id).await.expect("view");
    assert!(
        view.notifications.iter().all(|n| n.status == "sent"),
        "{:?}",
        view.notifications
    );
    let retried = view
        .notifications
        .iter()
        .find(|n| n.key == first.1)
        .expect("record");
    assert_eq!(retried.attempts, 2);
    assert_eq!(engine.backlog().await.expect("backlog"), 0);
}

/// An engine with the `announce` flow started once.
async fn announce(notifier: Arc<dyn Notifier>) -> (Engine, Arc<VirtualClock>, uuid::Uuid) {
    let t = common::engine(FLOW, HandlerRegistry::default(), DIRECTORY, notifier).await;
    let id = t.start("announce").await;
    (t.engine, t.clock, id)
}

#[tokio::test]
async fn a_failed_address_is_retried_alone_and_none_is_sent_twice() {
    let notifier = Arc::new(Flaky::default());
    let (engine, clock, id) = announce(notifier.clone()).await;
    engine.drain().await.expect("first delivery");
    assert_eq!(
        notifier.delivered.lock().expect("lock").len(),
        2,
        "two addresses went out before the failure"
    );
    assert_eq!(
        engine.backlog().await.expect("backlog"),
        1,
        "the row waits for its retry"
    );

    clock.advance(Duration::seconds(5));
    engine.drain().await.expect("retry");
    let mut delivered = notifier.delivered.lock().expect("lock").clone();
    delivered.sort();
    assert_eq!(
        delivered,
        vec![
            "+8613800000011",
            "+8613800000012",
            "r1@vendor.example",
            "r2@vendor.example"
        ]
    );
    assert_eq!(engine.backlog().await.expect("backlog"), 0);
    assert_eq!(
        engine.instance(id).await.expect("view").notifications.len(),
        4,
        "each address recorded once"
    );
}

const NIGHT_FLOW: &str = r#"
id = "announce"
version = 1
start = "wait"
[[steps]]
id = "wait"
kind = "wait_event"
event = "go"
notify = [
  { to = "person:r1", template = "onboarding.submitted", channels = ["email"] },
  { to = "person:r1", template = "task.escalated", channels = ["email"], urgent = true },
]
on.received = "done"
[[steps]]
id = "done"
kind = "end"
"#;

#[derive(Default)]
struct Recording {
    sent: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Notifier for Recording {
    async fn send(&self, m: &Message) -> Result<(), Error> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(m.template.clone());
        Ok(())
    }
}

#[tokio::test]
async fn quiet_hours_hold_the_ordinary_message_and_let_the_urgent_one_through() {
    let notifier = Arc::new(Recording::default());
    let mut reach = partnerflow_engine::Reach::development().expect("templates");
    let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("time");
    let six = chrono::NaiveTime::from_hms_opt(18, 0, 0).expect("time");
    reach.working_hours = Some((nine, six));
    let t = common::engine_reaching(
        NIGHT_FLOW,
        HandlerRegistry::default(),
        DIRECTORY,
        notifier.clone(),
        reach,
    )
    .await;
    // Friday 6 March 2026, 22:00 in Shanghai: the next working hours begin on Monday 09:00.
    t.clock.set(
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 6, 14, 0, 0)
            .single()
            .expect("time"),
    );
    t.start("announce").await;
    t.engine.drain().await.expect("drain");
    let sent = || notifier.sent.lock().expect("lock").clone();
    assert_eq!(
        sent(),
        vec!["task.escalated"],
        "the urgent one goes at once"
    );
    let held = t.engine.next_due().await.expect("next").expect("held row");
    assert_eq!(
        held,
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 9, 1, 0, 0)
            .single()
            .expect("time"),
        "Monday 09:00 Shanghai"
    );
    t.clock.set(held);
    t.engine.drain().await.expect("drain");
    assert_eq!(sent(), vec!["task.escalated", "onboarding.submitted"]);
}
