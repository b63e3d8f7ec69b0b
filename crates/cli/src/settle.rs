//! The settlement commands: `import transactions` (with a progress bar and a reject report),
//! `settle --period` (with the run's progress), and the schedule the dispatching processes
//! keep (every due period settled, missed ones caught up at start-up), all through
//! [`partnerflow_settlement::Settlement`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use partnerflow_core::rebate::Period;
use partnerflow_engine::SystemClock;
use partnerflow_settlement::Settlement;
use tokio_util::sync::CancellationToken;

use crate::app;
use crate::settings::Settings;

/// Imports a CSV file of transactions; refused whole on a bad row unless `skip_invalid`.
pub async fn import(
    settings: &Settings,
    file: &Path,
    skip_invalid: bool,
    rejects: Option<&Path>,
) -> Result<()> {
    let engine = app::build(settings, Arc::new(SystemClock)).await?;
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let size = input.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = crate::progress::Progress::new(
        size,
        "{bar:40} {bytes}/{total_bytes} · {msg} · ETA {eta}",
        "import (bytes)",
    );
    let started = std::time::Instant::now();
    let mut on_progress = |rows: u64, bytes: u64| {
        bar.set_position(bytes);
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!("{rows} rows · {rate:.0} rows/s"));
    };
    let mut report_file = match rejects {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let opts = partnerflow_settlement::import::Options {
        skip_invalid,
        rejects: report_file.as_mut().map(|w| w as &mut dyn std::io::Write),
        timezone: engine.programme().settlement.timezone,
        progress: &mut on_progress,
    };
    let report = partnerflow_settlement::import::csv(
        engine.store(),
        std::io::BufReader::new(input),
        opts,
        engine.now(),
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "{} rows: {} imported, {} already recorded, {} rejected{} in {:.1} s",
        report.rows,
        report.imported,
        report.duplicates,
        report.rejected,
        rejects
            .filter(|_| report.rejected > 0)
            .map(|p| format!(" (see {})", p.display()))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Settles one period of the programme and prints the run.
pub async fn settle(settings: &Settings, period: &str) -> Result<()> {
    let period: Period = period.parse().map_err(anyhow::Error::msg)?;
    let engine = app::build(settings, Arc::new(SystemClock)).await?;
    let settlement = app::settlement(settings, &engine)?;
    let bar = crate::progress::Progress::new(
        0,
        "{bar:40} {pos}/{len} partners · {msg} · ETA {eta}",
        "settle (partners)",
    );
    let started = std::time::Instant::now();
    let run = settlement
        .settle(period, &mut |p| {
            bar.set_length(p.partners_total);
            bar.set_position(p.partners_done);
            bar.set_message(format!("{} workflows started", p.started));
        })
        .await;
    bar.finish_and_clear();
    let run = run?;
    println!(
        "{} {}: {} · {} statements · total {} · cutoff at transaction {} · {:.1} s",
        run.programme,
        run.period,
        run.status,
        run.statements,
        run.total,
        run.cutoff,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Settles every due period now and then (at start-up first, which catches up ticks missed
/// while the service was down).
pub fn spawn_schedule(
    settlement: Settlement,
    every: Duration,
    shutdown: &CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) {
    let s = shutdown.clone();
    tracker.spawn(async move {
        loop {
            match settlement.settle_due().await {
                Ok(runs) => {
                    for r in runs {
                        tracing::info!(period = %r.period, statements = r.statements, total = %r.total, "settlement run finished");
                    }
                }
                Err(e) => tracing::error!(error = %e, "settling due periods failed; trying again later"),
            }
            tokio::select! {
                () = s.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}
