//! `partnerflow bench settlement`: a deterministic data set of partners and transactions for
//! the month before, written to a temporary CSV file (untimed), imported from it (through
//! `COPY` on PostgreSQL) and settled on the configured
//! backend; prints the import's and the run's times, the totals, a second run's (which must
//! create nothing and print the same totals) and the process's peak resident memory.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use partnerflow_core::rebate::Period;
use partnerflow_engine::SystemClock;

use crate::app;
use crate::settings::Settings;

/// Transactions as CSV, generated as they are read: partner `i % partners`, one of three
/// families, amounts and times from a fixed linear congruential sequence.
struct Generated {
    partners: u64,
    rows: u64,
    next: u64,
    buf: Vec<u8>,
    at: usize,
    seed: u64,
    days: u32,
    month: String,
}

impl Generated {
    fn line(&mut self) -> Option<String> {
        if self.next == 0 {
            self.next += 1;
            return Some(
                "source,order_id,partner_id,customer_id,product,family,amount,currency,tax_rate,kind,booked_at,original_order_id\n"
                    .to_owned(),
            );
        }
        let i = self.next - 1;
        if i >= self.rows {
            return None;
        }
        self.next += 1;
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = self.seed >> 33;
        let family = ["compute", "database", "marketplace"][(r % 3) as usize];
        let cents = 100 + r % 2_000_000;
        let refund = r.is_multiple_of(50);
        let amount = if refund {
            format!("-{}.{:02}", cents / 100, cents % 100)
        } else {
            format!("{}.{:02}", cents / 100, cents % 100)
        };
        let day = 1 + (r / 7 % u64::from(self.days)) as u32;
        let (h, m) = ((r / 11) % 24, (r / 13) % 60);
        Some(format!(
            "bench,O-{i},P-{:06},C-{},p-{family},{family},{amount},CNY,0.06,{},{}-{day:02} {h:02}:{m:02}:00,\n",
            i % self.partners,
            r % 100_000,
            if refund { "refund" } else { "purchase" },
            self.month,
        ))
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.buf.len() {
            self.buf.clear();
            self.at = 0;
            for _ in 0..1000 {
                match self.line() {
                    Some(l) => self.buf.extend_from_slice(l.as_bytes()),
                    None => break,
                }
            }
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

pub async fn run(settings: &Settings, partners: u64, transactions: u64) -> Result<()> {
    let engine = app::build(settings, Arc::new(SystemClock)).await?;
    let settlement = app::settlement(settings, &engine)?;
    let tz = settlement.rules().timezone;
    let period = Period::of(engine.now(), tz).prev();
    let days = (period.next().first_day() - period.first_day()).num_days() as u32;
    let data = Generated {
        partners: partners.max(1),
        rows: transactions,
        next: 0,
        buf: Vec::new(),
        at: 0,
        seed: 42,
        days,
        month: period.to_string(),
    };
    println!(
        "settlement bench on {}: {partners} partners, {transactions} transactions in {period}",
        app::redact(&settings.database.url)
    );
    // The file is written first, untimed: an import reads a file that exists.
    let generating = Instant::now();
    let path = std::env::temp_dir().join(format!(
        "partnerflow-bench-settlement-{}.csv",
        std::process::id()
    ));
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        std::io::copy(&mut { data }, &mut file)?;
        std::io::Write::flush(&mut file)?;
    }
    println!(
        "generated {} in {:.1} s",
        path.display(),
        generating.elapsed().as_secs_f64()
    );
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
    let started = Instant::now();
    let bar = crate::progress::Progress::new(
        transactions,
        "{bar:40} {pos}/{len} rows · {per_sec} · ETA {eta}",
        "settlement bench import (rows)",
    );
    let mut progress = |rows: u64, _: u64| bar.set_position(rows);
    let opts = partnerflow_settlement::import::Options {
        skip_invalid: false,
        rejects: None,
        timezone: tz,
        progress: &mut progress,
    };
    let report =
        partnerflow_settlement::import::csv(engine.store(), input, opts, engine.now()).await;
    let _ = std::fs::remove_file(&path);
    let report = report?;
    bar.finish_and_clear();
    let import_secs = started.elapsed().as_secs_f64();
    println!(
        "import: {} rows, {} new, {} already recorded in {import_secs:.1} s ({:.0} rows/s)",
        report.rows,
        report.imported,
        report.duplicates,
        report.rows as f64 / import_secs.max(0.001)
    );
    let started = Instant::now();
    let mut recorded_at = None;
    let run = settlement
        .settle(period, &mut |p| {
            if p.partners_total > 0 && p.partners_done == p.partners_total && recorded_at.is_none()
            {
                recorded_at = Some(started.elapsed().as_secs_f64());
            }
        })
        .await?;
    let run_secs = started.elapsed().as_secs_f64();
    let recorded = recorded_at.unwrap_or(run_secs);
    println!(
        "run: {} statements, total {} in {run_secs:.1} s ({:.0} statements/s): computed and recorded in {recorded:.1} s, workflows started in {:.1} s",
        run.statements,
        run.total,
        run.statements as f64 / run_secs.max(0.001),
        run_secs - recorded
    );
    let started = Instant::now();
    let again = settlement.settle(period, &mut |_| {}).await?;
    println!(
        "second run: {} statements, total {} in {:.1} s ({})",
        again.statements,
        again.total,
        started.elapsed().as_secs_f64(),
        if again.total == run.total && again.statements == run.statements {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    if let Some(mib) = crate::measure::memory_mib("VmHWM") {
        println!("peak RSS: {mib:.0} MiB");
    }
    Ok(())
}
