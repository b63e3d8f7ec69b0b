//! An engine for the engine's own tests: a fresh SQLite file, the in-process queue, a virtual
//! clock on Monday 2 March 2026 10:00 in Shanghai, a weekday calendar, and one definition.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use partnerflow_core::BusinessCalendar;
use partnerflow_core::handler::HandlerRegistry;
use partnerflow_core::machine::Actor;
use partnerflow_core::programme::Programme;
use partnerflow_engine::queue::MemoryQueue;
use partnerflow_engine::{Engine, EngineParts, Settings, Submitter, VirtualClock};
use partnerflow_notify::Notifier;
use serde_json::json;

pub(crate) struct TestEngine {
    pub(crate) engine: Engine,
    pub(crate) clock: Arc<VirtualClock>,
}

/// An engine running `flow` (its id is the definition's) with the given parts.
pub(crate) async fn engine(
    flow: &str,
    registry: HandlerRegistry,
    directory: &str,
    notifier: Arc<dyn Notifier>,
) -> TestEngine {
    let reach = partnerflow_engine::Reach::development().expect("shipped templates");
    engine_reaching(flow, registry, directory, notifier, reach).await
}

/// [`engine`] with its delivery settings (quiet hours, webhooks) given.
pub(crate) async fn engine_reaching(
    flow: &str,
    registry: HandlerRegistry,
    directory: &str,
    notifier: Arc<dyn Notifier>,
    reach: partnerflow_engine::Reach,
) -> TestEngine {
    let db = std::env::temp_dir().join(format!("pf-engine-{}.db", uuid::Uuid::now_v7()));
    let store = partnerflow_store::Store::connect(&format!("sqlite:{}", db.display()), 4)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let start = Utc
        .with_ymd_and_hms(2026, 3, 2, 2, 0, 0)
        .single()
        .expect("time");
    let clock = Arc::new(VirtualClock::new(start));
    let engine = Engine::new(EngineParts {
        store,
        queue: Arc::new(MemoryQueue::default()),
        notifier,
        clock: clock.clone(),
        registry,
        calendar: Arc::new(BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai)),
        directory: Arc::new(toml::from_str(directory).expect("directory")),
        programme: Arc::new(
            Programme::parse(include_str!("../../../../config/programme.toml")).expect("programme"),
        ),
        settings: Settings::default(),
        reach,
    });
    engine
        .load_definitions(&[("flow.toml".to_owned(), flow.to_owned())])
        .await
        .expect("definitions");
    TestEngine { engine, clock }
}

impl TestEngine {
    /// Starts `workflow` with an empty input; the new instance's id.
    pub(crate) async fn start(&self, workflow: &str) -> uuid::Uuid {
        let submitter = Submitter {
            actor: Actor { id: "t".to_owned() },
            partner: None,
        };
        let (started, _) = self
            .engine
            .start(workflow, "k1", json!({}), submitter, None)
            .await
            .expect("start");
        started.id
    }
}
