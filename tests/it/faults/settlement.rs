//! A settlement run killed midway: `partnerflow settle` (a real process) is SIGKILLed while it
//! records statements, and a second `partnerflow settle` of the same period completes the
//! run. Every partner has exactly one statement and one statement workflow, and the totals are
//! what one uninterrupted run gives.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use partnerflow_core::rebate::Period;
use rust_decimal::Decimal;

use super::rig::Rig;

const PARTNERS: usize = 1500;
const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn settle(rig: &Rig, programme: &std::path::Path, period: Period) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_partnerflow"))
        .args(["settle", "--period", &period.to_string()])
        .current_dir(REPO_ROOT)
        .env("PARTNERFLOW__DATABASE__URL", rig.database_url())
        .env("PARTNERFLOW__PATHS__PROGRAMME", programme)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn partnerflow settle")
}

async fn statements(rig: &Rig) -> i64 {
    partnerflow_store::raw_execute(rig.engine().store(), "select 1")
        .await
        .expect("db");
    let mut conn = rig.engine().store().acquire().await.expect("conn");
    let all = partnerflow_store::settlement::statements(&mut conn, "default", None, None, 100_000)
        .await
        .expect("statements");
    all.len() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settlement_run_killed_midway_completes_without_duplicates() {
    let test = "a_settlement_run_killed_midway_completes_without_duplicates";
    if !crate::services::postgres_and_redis(test) {
        return;
    }
    let rig = Rig::new(&crate::services::redis_url()).await;
    let e = rig.engine().clone();
    let tz = chrono_tz::Asia::Shanghai;
    let period = Period::of(e.now(), tz).prev();
    // One purchase a partner: 1,060.00 of databases = 1,000.00 × 20 % × 1.06 = 212.00 each.
    let day = period.first_day().format("%Y-%m-05 10:00:00").to_string();
    let mut csv = String::from(crate::settlement::HEADER);
    csv.push('\n');
    for i in 0..PARTNERS {
        csv.push_str(&format!(
            "billing,O-{i},P-{i:05},C-{i},rds,database,1060.00,CNY,0.06,purchase,{day},\n"
        ));
    }
    let mut progress = |_: u64, _: u64| {};
    let opts = partnerflow_settlement::import::Options {
        skip_invalid: false,
        rejects: None,
        timezone: tz,
        progress: &mut progress,
    };
    let report = partnerflow_settlement::import::csv(e.store(), csv.as_bytes(), opts, e.now())
        .await
        .expect("import");
    assert_eq!(report.imported, PARTNERS as u64);
    // Small batches, so the run is still recording statements when it is killed.
    let programme =
        std::env::temp_dir().join(format!("pf-programme-{}.toml", uuid::Uuid::now_v7()));
    let text =
        std::fs::read_to_string(format!("{REPO_ROOT}/config/programme.toml")).expect("programme");
    std::fs::write(&programme, format!("{text}\n[settlement]\nbatch = 5\n"))
        .expect("write programme");

    let mut first = settle(&rig, &programme, period);
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let n = statements(&rig).await;
        if n > 0 {
            first.kill().expect("SIGKILL");
            first.wait().expect("reap");
            break n;
        }
        assert!(
            first.try_wait().expect("try_wait").is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            Instant::now() < deadline,
            "the run never recorded a statement"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let after_kill = statements(&rig).await;
    rig.say(&format!(
        "SIGKILLed the run with {at_kill}..{after_kill} of {PARTNERS} statements recorded"
    ));
    assert!(
        after_kill < PARTNERS as i64,
        "killed midway, not after the last statement"
    );

    let status = settle(&rig, &programme, period).wait().expect("second run");
    assert!(status.success(), "the second run completes: {status}");
    let mut conn = e.store().acquire().await.expect("conn");
    let run = partnerflow_store::settlement::run(&mut conn, "default", &period.to_string())
        .await
        .expect("run")
        .expect("recorded");
    assert_eq!(
        (run.status.as_str(), run.statements),
        ("finished", PARTNERS as i64)
    );
    assert_eq!(run.total, Decimal::new(212 * PARTNERS as i64, 0));
    let all = partnerflow_store::settlement::statements(&mut conn, "default", None, None, 100_000)
        .await
        .expect("statements");
    let partners: std::collections::BTreeSet<&str> =
        all.iter().map(|s| s.partner_id.as_str()).collect();
    assert_eq!(
        (all.len(), partners.len()),
        (PARTNERS, PARTNERS),
        "one statement a partner"
    );
    assert!(
        all.iter().all(|s| s.instance_id.is_some()),
        "every statement's workflow started"
    );
    drop(conn);
    let workflows = e
        .instances(
            partnerflow_engine::Listing {
                workflow: Some("rebate_settlement"),
                ..Default::default()
            },
            100_000,
        )
        .await
        .expect("instances");
    assert_eq!(workflows.len(), PARTNERS, "one workflow a statement");
    let _ = std::fs::remove_file(&programme);
    rig.finish().await;
}
