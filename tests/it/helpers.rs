//! Test backends and assertion helpers.

use partnerflow::harness::Harness;
use partnerflow_engine::view::InstanceView;
use uuid::Uuid;

/// Settings a scenario adjusts before its harness is built.
pub(crate) type Adjust = fn(&mut partnerflow::settings::Settings);

/// A fresh SQLite file in the temp directory.
pub(crate) async fn sqlite(start: chrono::DateTime<chrono::Utc>) -> Harness {
    sqlite_with(start, |_| {}).await
}

pub(crate) async fn sqlite_with(start: chrono::DateTime<chrono::Utc>, adjust: Adjust) -> Harness {
    Harness::with_settings(&sqlite_url(), start, adjust)
        .await
        .expect("sqlite harness")
}

/// The URL of a fresh SQLite file.
pub(crate) fn sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!("pf-test-{}.db", Uuid::now_v7()));
    format!("sqlite:{}", path.display())
}

/// A fresh PostgreSQL database. Fails loudly when the server is not reachable.
pub(crate) async fn postgres(start: chrono::DateTime<chrono::Utc>) -> Harness {
    postgres_with(start, |_| {}).await
}

pub(crate) async fn postgres_with(start: chrono::DateTime<chrono::Utc>, adjust: Adjust) -> Harness {
    Harness::with_settings(&postgres_url().await, start, adjust)
        .await
        .expect("postgres harness")
}

/// The URL of a fresh PostgreSQL database. Fails loudly when the server is not reachable.
pub(crate) async fn postgres_url() -> String {
    let admin = crate::services::postgres_admin();
    let name = format!("pf_test_{}", Uuid::now_v7().simple());
    sqlx_admin(&admin, &format!("create database {name}")).await;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    format!("{base}/{name}")
}

async fn sqlx_admin(url: &str, statement: &str) {
    let store = partnerflow_store::Store::connect(url, 1)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is required for these tests and is not reachable at {url}: {e}")
        });
    sqlx_exec(&store, statement).await;
    store.pool.close().await;
}

async fn sqlx_exec(store: &partnerflow_store::Store, statement: &str) {
    partnerflow_store::raw_execute(store, statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Runs a scenario `async fn(Harness)` on both backends as two tests (with settings adjusted
/// by a third argument, a `fn(&mut Settings)`, when given).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $start:expr, $adjust:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(
                    $crate::helpers::sqlite_with(
                        {
                            use partnerflow::harness::shanghai;
                            $start
                        },
                        $adjust,
                    )
                    .await,
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::services::postgres(concat!(stringify!($name), "::postgres")) {
                    return;
                }
                super::$name(
                    $crate::helpers::postgres_with(
                        {
                            use partnerflow::harness::shanghai;
                            $start
                        },
                        $adjust,
                    )
                    .await,
                )
                .await;
            }
        }
    };
    ($name:ident, $start:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(
                    $crate::helpers::sqlite({
                        use partnerflow::harness::shanghai;
                        $start
                    })
                    .await,
                )
                .await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::services::postgres(concat!(stringify!($name), "::postgres")) {
                    return;
                }
                super::$name(
                    $crate::helpers::postgres({
                        use partnerflow::harness::shanghai;
                        $start
                    })
                    .await,
                )
                .await;
            }
        }
    };
}

/// Kinds of the instance's events, in order.
pub(crate) fn kinds(v: &InstanceView) -> Vec<String> {
    v.timeline.iter().map(|e| e.event.kind.clone()).collect()
}

/// How many events of `kind` the instance has.
pub(crate) async fn count_events(h: &Harness, id: Uuid, kind: &str) -> usize {
    kinds(&h.view(id).await.expect("view"))
        .iter()
        .filter(|k| *k == kind)
        .count()
}

/// Local Shanghai times of events of one kind.
#[track_caller]
pub(crate) fn times_of(v: &InstanceView, kind: &str) -> Vec<String> {
    v.timeline
        .iter()
        .filter(|e| e.event.kind == kind)
        .map(|e| {
            e.event
                .at
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .collect()
}

/// Templates notified to an address.
pub(crate) fn templates_to(v: &InstanceView, address: &str) -> Vec<String> {
    v.notifications
        .iter()
        .filter(|n| n.address == address)
        .map(|n| n.template.clone())
        .collect()
}

/// Settings with the reference workflows (`workflows/reference`) loaded.
pub(crate) fn with_reference(s: &mut partnerflow::settings::Settings) {
    s.paths.extra_workflows =
        vec![concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows/reference").into()];
}

/// One start of a bulk start, by the system, with an empty input.
pub(crate) fn bulk(key: &str) -> partnerflow_engine::BulkStart {
    partnerflow_engine::BulkStart {
        business_key: key.to_owned(),
        input: serde_json::json!({}),
        submitter: partnerflow_engine::Submitter {
            actor: partnerflow_core::machine::Actor::system(),
            partner: None,
        },
    }
}
