//! Reading the settlement: runs and statements, and why a statement line says what it says
//! (its policy version, tier, rate and figures, and the transactions it came from).

use partnerflow_store::settlement::{self as record, Statement};
use partnerflow_store::transactions::{self, Recorded};
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Result, Settlement};

/// How many of a line's transactions an explanation lists.
const LISTED: i64 = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub statement_id: String,
    pub partner_id: String,
    pub period: String,
    pub line: Value,
    /// The line's arithmetic in words.
    pub formula: String,
    pub transactions: Vec<Recorded>,
    /// Whether more transactions exist than are listed.
    pub truncated: bool,
}

impl Settlement {
    /// The programme's runs, newest period first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<record::Run>> {
        let mut conn = self.engine().store().acquire().await?;
        Ok(record::runs(&mut conn, self.programme(), limit).await?)
    }

    /// Statements by partner and/or period (all when `None`), newest first.
    pub async fn statements(
        &self,
        partner: Option<&str>,
        period: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Statement>> {
        let mut conn = self.engine().store().acquire().await?;
        Ok(record::statements(&mut conn, self.programme(), partner, period, limit).await?)
    }

    pub async fn statement(&self, id: &str) -> Result<Option<Statement>> {
        let mut conn = self.engine().store().acquire().await?;
        Ok(record::statement(&mut conn, id).await?)
    }

    /// Line `n` (1-based) of a statement, explained.
    pub async fn explain(&self, statement_id: &str, n: usize) -> Result<Option<Explanation>> {
        let Some(s) = self.statement(statement_id).await? else {
            return Ok(None);
        };
        let Some(line) = s
            .lines
            .as_array()
            .and_then(|l| l.iter().find(|x| x["n"].as_u64() == Some(n as u64)))
            .cloned()
        else {
            return Err(Error::Invalid(format!(
                "statement {statement_id} has no line {n}"
            )));
        };
        let sel = &line["selection"];
        let time = |k: &str| {
            sel[k]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_default()
        };
        let ids = (
            sel["ids_after"].as_i64().unwrap_or(0),
            sel["ids_upto"].as_i64().unwrap_or(0),
        );
        let family = line["family"].as_str().unwrap_or_default();
        let mut conn = self.engine().store().acquire().await?;
        let mut listed = transactions::of_line(
            &mut conn,
            &s.partner_id,
            family,
            time("from"),
            time("to"),
            ids,
            LISTED + 1,
        )
        .await?;
        if line["kind"] == "clawback" {
            listed.retain(|t| t.kind == "refund" && t.original_order_id.is_some());
        }
        let truncated = listed.len() as i64 > LISTED;
        listed.truncate(usize::try_from(LISTED).unwrap_or(1000));
        let v = |k: &str| line[k].as_str().unwrap_or("?").to_owned();
        let formula = format!(
            "round({} (net of sales tax) × {} (policy {} v{}, tier {}) × (1 + {} partner invoice tax)) = {}",
            v("performance"),
            v("rate"),
            v("policy_id"),
            line["policy_version"],
            line["tier"],
            v("partner_invoice_rate"),
            v("amount"),
        );
        Ok(Some(Explanation {
            statement_id: s.id,
            partner_id: s.partner_id,
            period: s.period,
            line,
            formula,
            transactions: listed,
            truncated,
        }))
    }
}
