//! Transactions into the record, all or nothing: every row is checked
//! ([`partnerflow_core::rebate::transactions`]); a file with any bad row is refused whole
//! unless bad rows are to be skipped (then they go to the reject report). An order already
//! recorded for its source is left out, so importing a file twice imports it once. PostgreSQL
//! takes the rows through `COPY`; SQLite in batched inserts, in one transaction.

use std::io::{Read, Write};

use chrono::{DateTime, Utc};
use partnerflow_core::rebate::transactions::{Header, RowError, Transaction, parse_row};
use partnerflow_store::{Backend, Store, transactions};
use serde::Serialize;

use crate::{Error, Result};

/// Rows checked and sent together.
const CHUNK: usize = 20_000;

/// How an import went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Rows new to the record.
    pub imported: u64,
    /// Good rows whose order the record (or the file, earlier) had already.
    pub duplicates: u64,
    /// Bad rows, skipped (only with `skip_invalid`; otherwise the import is refused).
    pub rejected: u64,
    /// The first bad rows, with row, column and reason.
    pub errors: Vec<RowError>,
}

/// What an import does with bad rows.
pub struct Options<'a> {
    /// Import the good rows and report the bad ones, instead of refusing the file.
    pub skip_invalid: bool,
    /// Where each bad row goes (`row,column,reason`), when given.
    pub rejects: Option<&'a mut dyn Write>,
    /// The time zone of `booked_at` values without an offset.
    pub timezone: chrono_tz::Tz,
    /// Called after each chunk with the rows and bytes read so far.
    pub progress: &'a mut dyn FnMut(u64, u64),
}

/// How many bad rows a refusal names.
const NAMED: usize = 50;

/// Where the rows go: a `COPY` on PostgreSQL, a transaction of batched inserts elsewhere.
enum Sink {
    Copy(transactions::Copy),
    Insert(partnerflow_store::Transaction<'static, sqlx::Any>, u64),
}

impl Sink {
    async fn open(store: &Store, now: DateTime<Utc>) -> Result<Sink> {
        Ok(match store.backend {
            Backend::Postgres => Sink::Copy(transactions::Copy::begin(store, now).await?),
            Backend::Sqlite => Sink::Insert(store.begin().await?, 0),
        })
    }

    async fn send(
        &mut self,
        store: &Store,
        rows: Vec<Transaction>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        match self {
            Sink::Copy(c) => c.send(rows).await?,
            Sink::Insert(tx, n) => {
                *n += transactions::insert(tx, store.backend, &rows, now).await?;
            }
        }
        Ok(())
    }

    async fn finish(self) -> Result<u64> {
        Ok(match self {
            Sink::Copy(c) => c.finish().await?,
            Sink::Insert(tx, n) => {
                tx.commit().await.map_err(partnerflow_store::Error::from)?;
                n
            }
        })
    }

    async fn abort(self) -> Result<()> {
        match self {
            Sink::Copy(c) => c.abort().await?,
            Sink::Insert(tx, _) => drop(tx),
        }
        Ok(())
    }
}

struct Counting<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

fn refused(report: &ImportReport) -> Error {
    let named: Vec<String> = report
        .errors
        .iter()
        .map(|e| format!("row {} {}: {}", e.row, e.column, e.reason))
        .collect();
    Error::Invalid(format!(
        "{} of {} rows are bad, so nothing was imported (--skip-invalid imports the rest): {}",
        report.rejected,
        report.rows,
        named.join("; ")
    ))
}

impl ImportReport {
    fn reject(&mut self, errors: Vec<RowError>, opts: &mut Options<'_>) {
        self.rejected += 1;
        if let Some(out) = opts.rejects.as_deref_mut() {
            for e in &errors {
                let _ = writeln!(
                    out,
                    "{},{},\"{}\"",
                    e.row,
                    e.column,
                    e.reason.replace('"', "\"\"")
                );
            }
        }
        for e in errors {
            if self.errors.len() < NAMED {
                self.errors.push(e);
            }
        }
    }
}

/// Imports a CSV file (a header row, then one transaction a row).
pub async fn csv(
    store: &Store,
    input: impl Read,
    mut opts: Options<'_>,
    now: DateTime<Utc>,
) -> Result<ImportReport> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(Counting {
            inner: input,
            bytes: 0,
        });
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(r)) => Header::parse(&r.iter().collect::<Vec<_>>()),
        Some(Err(e)) => return Err(Error::Invalid(format!("row 1: {e}"))),
        None => {
            return Err(Error::Invalid(
                "the file is empty: a header row is required".to_owned(),
            ));
        }
    }
    .map_err(|errors| {
        let named: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.column, e.reason))
            .collect();
        Error::Invalid(format!("row 1 (the header): {}", named.join("; ")))
    })?;
    let mut report = ImportReport::default();
    let mut sink = Sink::open(store, now).await?;
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut row = 1;
    loop {
        let next = records.next();
        let done = next.is_none();
        if let Some(record) = next {
            row += 1;
            report.rows += 1;
            match record {
                Ok(r) => {
                    let fields: Vec<&str> = r.iter().collect();
                    match parse_row(&header, &fields, row, opts.timezone) {
                        Ok(t) => chunk.push(t),
                        Err(errors) => report.reject(errors, &mut opts),
                    }
                }
                Err(e) => report.reject(
                    vec![RowError {
                        row,
                        column: "$".to_owned(),
                        reason: e.to_string(),
                    }],
                    &mut opts,
                ),
            }
        }
        let refuse = report.rejected > 0 && !opts.skip_invalid;
        if refuse {
            // Keep reading to name the file's bad rows, but send nothing more.
            chunk.clear();
        }
        if (chunk.len() >= CHUNK || done) && !chunk.is_empty() {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if let Err(e) = sink.send(store, full, now).await {
                sink.abort().await?;
                return Err(e);
            }
        }
        if report.rows.is_multiple_of(CHUNK as u64) || done {
            let bytes = records.reader().get_ref().bytes;
            (opts.progress)(report.rows, bytes);
        }
        if done {
            break;
        }
    }
    if report.rejected > 0 && !opts.skip_invalid {
        sink.abort().await?;
        return Err(refused(&report));
    }
    let moving = std::time::Instant::now();
    report.imported = sink.finish().await?;
    tracing::info!(
        rows = report.rows,
        imported = report.imported,
        moved_in_ms = moving.elapsed().as_millis() as u64,
        "transactions imported"
    );
    report.duplicates = report.rows - report.rejected - report.imported;
    Ok(report)
}

/// Imports a batch of rows given as JSON objects with the CSV's columns (`POST
/// /v1/transactions`); any bad row refuses the batch, naming each (row = index + 1).
pub async fn rows(
    store: &Store,
    batch: &[serde_json::Value],
    timezone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportRefused> {
    let header = Header::standard();
    let mut report = ImportReport::default();
    let mut good = Vec::with_capacity(batch.len());
    let mut errors = Vec::new();
    for (i, value) in batch.iter().enumerate() {
        report.rows += 1;
        let owned = partnerflow_core::rebate::transactions::json_fields(value);
        let fields: Vec<&str> = owned.iter().map(String::as_str).collect();
        match parse_row(&header, &fields, i + 1, timezone) {
            Ok(t) => good.push(t),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(ImportRefused::Rows(errors));
    }
    let mut tx = store
        .begin()
        .await
        .map_err(|e| ImportRefused::Failed(e.into()))?;
    report.imported = transactions::insert(&mut tx, store.backend, &good, now)
        .await
        .map_err(|e| ImportRefused::Failed(e.into()))?;
    tx.commit()
        .await
        .map_err(|e| ImportRefused::Failed(partnerflow_store::Error::from(e).into()))?;
    report.duplicates = report.rows - report.imported;
    Ok(report)
}

/// Why a batch was not imported.
#[derive(Debug)]
pub enum ImportRefused {
    /// Bad rows: nothing imported.
    Rows(Vec<RowError>),
    Failed(Error),
}
