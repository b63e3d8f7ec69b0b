//! Notification delivery: a failure part-way through a notification's addresses neither loses
//! nor repeats the ones already sent.

use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use partnerflow_core::BusinessCalendar;
use partnerflow_core::handler::HandlerRegistry;
use partnerflow_core::machine::Actor;
use partnerflow_core::programme::Programme;
use partnerflow_engine::queue::MemoryQueue;
use partnerflow_engine::{Engine, EngineParts, Settings, VirtualClock};
use partnerflow_notify::{Error, Message, Notifier};
use serde_json::json;

const FLOW: &str = r#"
id = "announce"
version = 1
start = "wait"
[[steps]]
id = "wait"
kind = "wait_event"
event = "go"
notify = [{ to = "role:reviewer", template = "announce.opened", channels = ["email", "sms"] }]
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

#[tokio::test]
async fn a_failed_address_is_retried_alone_and_none_is_sent_twice() {
    let db = std::env::temp_dir().join(format!("pf-notify-{}.db", uuid::Uuid::now_v7()));
    let store = partnerflow_store::Store::connect(&format!("sqlite:{}", db.display()), 4)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
        .single()
        .expect("time");
    let clock = Arc::new(VirtualClock::new(start));
    let notifier = Arc::new(Flaky::default());
    let engine = Engine::new(EngineParts {
        store,
        queue: Arc::new(MemoryQueue::default()),
        notifier: notifier.clone(),
        clock: clock.clone(),
        registry: HandlerRegistry::default(),
        calendar: Arc::new(BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai)),
        directory: Arc::new(toml::from_str(DIRECTORY).expect("directory")),
        programme: Arc::new(
            Programme::parse(include_str!("../../../config/programme.toml")).expect("programme"),
        ),
        settings: Settings::default(),
    });
    engine
        .load_definitions(&[("announce.toml".to_owned(), FLOW.to_owned())])
        .await
        .expect("definitions");
    let (started, _) = engine
        .start(
            "announce",
            "k1",
            json!({}),
            partnerflow_engine::Submitter {
                actor: Actor { id: "t".to_owned() },
                partner: None,
            },
            None,
        )
        .await
        .expect("start");

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
            "13800000011",
            "13800000012",
            "r1@vendor.example",
            "r2@vendor.example"
        ]
    );
    assert_eq!(engine.backlog().await.expect("backlog"), 0);
    assert_eq!(
        engine
            .instance(started.id)
            .await
            .expect("view")
            .notifications
            .len(),
        4,
        "each address recorded once"
    );
}
