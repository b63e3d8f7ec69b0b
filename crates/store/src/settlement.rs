//! Settlement runs and statements. A run exists once per (programme, period) and keeps the
//! cutoff it settles up to, so a re-run or a second concurrent run computes the same figures;
//! a statement exists once per (programme, partner, period), so neither can settle a partner
//! twice. A statement names the instance of its workflow once that is started.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::Row;

use crate::{Conn, Error, Result, from_micros, to_micros};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub id: String,
    pub programme: String,
    pub period: String,
    /// `running` or `finished`.
    pub status: String,
    pub cutoff: i64,
    pub previous_cutoff: Option<i64>,
    pub partners_total: i64,
    pub partners_done: i64,
    pub statements: i64,
    pub total: Decimal,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str = "id, programme, period, status, cutoff, previous_cutoff, partners_total, partners_done, statements, total, started_at, finished_at";

fn run_of(r: &sqlx::any::AnyRow) -> Result<Run> {
    Ok(Run {
        id: r.try_get(0)?,
        programme: r.try_get(1)?,
        period: r.try_get(2)?,
        status: r.try_get(3)?,
        cutoff: r.try_get(4)?,
        previous_cutoff: r.try_get(5)?,
        partners_total: r.try_get(6)?,
        partners_done: r.try_get(7)?,
        statements: r.try_get(8)?,
        total: crate::decimal_at(r, 9)?,
        started_at: from_micros(r.try_get(10)?),
        finished_at: r.try_get::<Option<i64>, _>(11)?.map(from_micros),
    })
}

/// The run of a programme's period, created with `cutoff` when there is none yet (a
/// concurrent creation keeps the first's).
pub async fn open_run(
    conn: &mut Conn,
    id: &str,
    programme: &str,
    period: &str,
    cutoff: i64,
    previous_cutoff: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Run> {
    sqlx::query(
        "insert into settlement_runs (id, programme, period, status, cutoff, previous_cutoff, partners_total,
                                      partners_done, statements, total, started_at)
         values ($1, $2, $3, 'running', $4, $5, 0, 0, 0, '0', $6)
         on conflict (programme, period) do nothing",
    )
    .bind(id)
    .bind(programme)
    .bind(period)
    .bind(cutoff)
    .bind(previous_cutoff)
    .bind(to_micros(now))
    .execute(&mut *conn)
    .await?;
    run(conn, programme, period)
        .await?
        .ok_or_else(|| Error::NotFound(format!("settlement run {programme} {period}")))
}

pub async fn run(conn: &mut Conn, programme: &str, period: &str) -> Result<Option<Run>> {
    let sql =
        format!("select {RUN_COLUMNS} from settlement_runs where programme = $1 and period = $2");
    let row = sqlx::query(crate::sql(sql))
        .bind(programme)
        .bind(period)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(run_of).transpose()
}

/// A programme's runs, newest period first.
pub async fn runs(conn: &mut Conn, programme: &str, limit: i64) -> Result<Vec<Run>> {
    let sql = format!(
        "select {RUN_COLUMNS} from settlement_runs where programme = $1 order by period desc limit $2"
    );
    let rows = sqlx::query(crate::sql(sql))
        .bind(programme)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(run_of).collect()
}

/// Records a run's progress: partners to settle and settled so far (the statements are
/// counted when it finishes).
pub async fn progress(
    conn: &mut Conn,
    run_id: &str,
    partners_total: i64,
    partners_done: i64,
) -> Result<()> {
    sqlx::query("update settlement_runs set partners_total = $1, partners_done = $2 where id = $3")
        .bind(partners_total)
        .bind(partners_done)
        .bind(run_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Marks a run finished with the total of its statements.
pub async fn finish_run(
    conn: &mut Conn,
    run_id: &str,
    total: Decimal,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "update settlement_runs set status = 'finished', total = $1, finished_at = $2,
             statements = (select count(*) from statements where run_id = $3)
         where id = $3",
    )
    .bind(total.to_string())
    .bind(to_micros(now))
    .bind(run_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A statement as stored; `lines` is its lines' JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Statement {
    pub id: String,
    pub programme: String,
    pub partner_id: String,
    pub period: String,
    pub run_id: String,
    pub total: Decimal,
    pub carried_in: Decimal,
    pub payable: Decimal,
    pub lines: serde_json::Value,
    pub instance_id: Option<String>,
    pub carried_into: Option<String>,
    pub created_at: DateTime<Utc>,
}

const STATEMENT_COLUMNS: &str = "id, programme, partner_id, period, run_id, total, carried_in, payable, lines, instance_id, carried_into, created_at";

fn statement_of(r: &sqlx::any::AnyRow) -> Result<Statement> {
    Ok(Statement {
        id: r.try_get(0)?,
        programme: r.try_get(1)?,
        partner_id: r.try_get(2)?,
        period: r.try_get(3)?,
        run_id: r.try_get(4)?,
        total: crate::decimal_at(r, 5)?,
        carried_in: crate::decimal_at(r, 6)?,
        payable: crate::decimal_at(r, 7)?,
        lines: crate::json("statement lines", &r.try_get::<String, _>(8)?)?,
        instance_id: r.try_get(9)?,
        carried_into: r.try_get(10)?,
        created_at: from_micros(r.try_get(11)?),
    })
}

/// Inserts statements in the caller's transaction, leaving out partners that have one for the
/// period already; the ids of those inserted.
pub async fn insert_statements(conn: &mut Conn, rows: &[Statement]) -> Result<Vec<String>> {
    let mut inserted = Vec::new();
    for chunk in rows.chunks(2000) {
        let sql = format!(
            "insert into statements ({STATEMENT_COLUMNS}) values {}
             on conflict (programme, partner_id, period) do nothing returning id",
            crate::values_clause(chunk.len(), 12)
        );
        let mut q = sqlx::query(crate::sql(sql));
        for s in chunk {
            q = q
                .bind(s.id.clone())
                .bind(s.programme.clone())
                .bind(s.partner_id.clone())
                .bind(s.period.clone())
                .bind(s.run_id.clone())
                .bind(s.total.to_string())
                .bind(s.carried_in.to_string())
                .bind(s.payable.to_string())
                .bind(s.lines.to_string())
                .bind(s.instance_id.clone())
                .bind(s.carried_into.clone())
                .bind(to_micros(s.created_at));
        }
        for r in q.fetch_all(&mut *conn).await? {
            inserted.push(r.try_get(0)?);
        }
    }
    Ok(inserted)
}

/// Marks carried statements as taken into `period`'s statement (only those not taken yet).
pub async fn carry_into(conn: &mut Conn, ids: &[String], period: &str) -> Result<u64> {
    let mut n = 0;
    for id in ids {
        n += sqlx::query(
            "update statements set carried_into = $1 where id = $2 and carried_into is null",
        )
        .bind(period)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(n)
}

/// A run's statements whose workflow has not been started yet, at most `limit`.
pub async fn unstarted(conn: &mut Conn, run_id: &str, limit: i64) -> Result<Vec<Statement>> {
    let sql = format!(
        "select {STATEMENT_COLUMNS} from statements where run_id = $1 and instance_id is null
         order by partner_id limit $2"
    );
    let rows = sqlx::query(crate::sql(sql))
        .bind(run_id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(statement_of).collect()
}

/// Records the instances that settle statements, (statement id, instance id) pairs, in one
/// statement per chunk; a statement that names one already keeps it.
pub async fn set_instances(conn: &mut Conn, pairs: &[(String, String)]) -> Result<()> {
    for chunk in pairs.chunks(400) {
        let whens: Vec<String> = (0..chunk.len())
            .map(|i| format!("when ${} then ${}", 2 * i + 1, 2 * i + 2))
            .collect();
        let ids: Vec<String> = (0..chunk.len())
            .map(|i| format!("${}", 2 * i + 1))
            .collect();
        let sql = format!(
            "update statements set instance_id = case id {} end where id in ({}) and instance_id is null",
            whens.join(" "),
            ids.join(", ")
        );
        let mut q = sqlx::query(crate::sql(sql));
        for (statement, instance) in chunk {
            q = q.bind(statement.clone()).bind(instance.clone());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn statement(conn: &mut Conn, id: &str) -> Result<Option<Statement>> {
    let sql = format!("select {STATEMENT_COLUMNS} from statements where id = $1");
    let row = sqlx::query(crate::sql(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(statement_of).transpose()
}

/// Statements by partner and/or period (all when `None`), newest first.
pub async fn statements(
    conn: &mut Conn,
    programme: &str,
    partner: Option<&str>,
    period: Option<&str>,
    limit: i64,
) -> Result<Vec<Statement>> {
    let sql = format!(
        "select {STATEMENT_COLUMNS} from statements where programme = $1
           and ($2 is null or partner_id = $2) and ($3 is null or period = $3)
         order by period desc, partner_id limit $4"
    );
    let rows = sqlx::query(crate::sql(sql))
        .bind(programme)
        .bind(partner.map(str::to_owned))
        .bind(period.map(str::to_owned))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(statement_of).collect()
}

/// Earlier statements whose payable was carried (their workflow ended `carried`) and that no
/// later statement has taken in yet: (partner, statement id, payable).
pub async fn open_carries(
    conn: &mut Conn,
    programme: &str,
    before: &str,
) -> Result<Vec<(String, String, Decimal)>> {
    let rows = sqlx::query(
        "select s.partner_id, s.id, s.payable from statements s join instances i on i.id = s.instance_id
         where s.programme = $1 and s.period < $2 and s.carried_into is null and i.status = 'carried'
         order by s.period",
    )
    .bind(programme)
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, crate::decimal_at(r, 2)?)))
        .collect()
}

/// The lines of a partner's statement of an earlier period, if it was settled.
pub async fn lines_of(
    conn: &mut Conn,
    programme: &str,
    partner: &str,
    period: &str,
) -> Result<Option<serde_json::Value>> {
    let row = sqlx::query(
        "select lines from statements where programme = $1 and partner_id = $2 and period = $3",
    )
    .bind(programme)
    .bind(partner)
    .bind(period)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| crate::json("statement lines", &r.try_get::<String, _>(0)?))
        .transpose()
}

/// Partner facts the settlement reads (`partner_type`, `invoice_tax_rate`): partner → fact → state.
pub async fn partner_facts(
    conn: &mut Conn,
    facts: &[&str],
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>> {
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        Default::default();
    for fact in facts {
        let rows = sqlx::query("select partner_id, state from partner_standing where fact = $1")
            .bind(*fact)
            .fetch_all(&mut *conn)
            .await?;
        for r in &rows {
            out.entry(r.try_get(0)?)
                .or_default()
                .insert((*fact).to_owned(), r.try_get(1)?);
        }
    }
    Ok(out)
}

/// The total of a run's statements.
pub async fn run_total(conn: &mut Conn, run_id: &str) -> Result<Decimal> {
    let rows = sqlx::query("select total from statements where run_id = $1")
        .bind(run_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| crate::decimal_at(r, 0)).sum()
}
