//! One imported transaction, checked field by field: the rows of
//! `partnerflow import transactions FILE.csv` and of `POST /v1/transactions`.
//!
//! Columns (a header row names them, in any order): `source`, `order_id`, `partner_id`,
//! `customer_id`, `product`, `family`, `amount` (tax included, at most two decimals: positive
//! for a purchase, negative for a refund, either for an adjustment), `currency` (CNY),
//! `tax_rate` (the sales VAT rate, `0.06`), `kind` (`purchase`, `refund`, `adjustment`),
//! `booked_at` (RFC 3339, or `YYYY-MM-DD HH:MM:SS` in the programme's time zone), and optional
//! `original_order_id` (the order a refund gives money back for). An order id is unique per
//! source.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Purchase,
    Refund,
    Adjustment,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Refund => "refund",
            Kind::Adjustment => "adjustment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub source: String,
    pub order_id: String,
    pub partner_id: String,
    pub customer_id: String,
    pub product: String,
    pub family: String,
    /// Tax included; negative for a refund.
    pub amount: Decimal,
    pub currency: String,
    pub tax_rate: Decimal,
    pub kind: Kind,
    pub booked_at: DateTime<Utc>,
    pub original_order_id: Option<String>,
}

/// A refused row: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The row's number in the file, the header being row 1 (the batch's index + 1 for the API).
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// The columns every row must have.
pub const COLUMNS: [&str; 11] = [
    "source",
    "order_id",
    "partner_id",
    "customer_id",
    "product",
    "family",
    "amount",
    "currency",
    "tax_rate",
    "kind",
    "booked_at",
];

/// Where each column is in the file's rows, from its header.
#[derive(Debug, Clone)]
pub struct Header {
    at: Vec<(String, usize)>,
}

impl Header {
    /// Reads a header row; a missing or unknown column refuses the file at row 1.
    pub fn parse(names: &[&str]) -> Result<Header, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut at = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let name = name.trim().trim_start_matches('\u{feff}');
            if !COLUMNS.contains(&name) && name != "original_order_id" {
                errors.push(RowError {
                    row: 1,
                    column: name.to_owned(),
                    reason: format!(
                        "unknown column; the columns are {}, original_order_id",
                        COLUMNS.join(", ")
                    ),
                });
            }
            at.push((name.to_owned(), i));
        }
        for c in COLUMNS {
            if !at.iter().any(|(n, _)| n == c) {
                errors.push(RowError {
                    row: 1,
                    column: c.to_owned(),
                    reason: "missing column".to_owned(),
                });
            }
        }
        if errors.is_empty() {
            Ok(Header { at })
        } else {
            Err(errors)
        }
    }

    /// The header the API's JSON rows imply.
    pub fn standard() -> Header {
        let mut at: Vec<(String, usize)> = COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| ((*c).to_owned(), i))
            .collect();
        at.push(("original_order_id".to_owned(), COLUMNS.len()));
        Header { at }
    }

    fn get<'a>(&self, fields: &[&'a str], column: &str) -> &'a str {
        self.at
            .iter()
            .find(|(n, _)| n == column)
            .and_then(|(_, i)| fields.get(*i))
            .map_or("", |f| f.trim())
    }
}

/// A JSON row's fields in [`Header::standard`]'s order (`POST /v1/transactions`): texts as
/// they are, numbers and the like as JSON, absent ones empty.
pub fn json_fields(row: &serde_json::Value) -> Vec<String> {
    COLUMNS
        .iter()
        .chain(std::iter::once(&"original_order_id"))
        .map(|c| match row.get(*c) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        })
        .collect()
}

const MAX_TEXT: usize = 128;

/// Checks one row (`row` is its number in the file); every failing column at once.
pub fn parse_row(
    header: &Header,
    fields: &[&str],
    row: usize,
    tz: chrono_tz::Tz,
) -> Result<Transaction, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut fail = |column: &str, reason: String| {
        errors.push(RowError {
            row,
            column: column.to_owned(),
            reason,
        });
    };
    let mut text = |column: &str| {
        let v = header.get(fields, column);
        if v.is_empty() {
            fail(column, "required".to_owned());
        } else if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
            fail(column, format!("at most {MAX_TEXT} printable characters"));
        }
        v.to_owned()
    };
    let (source, order_id, partner_id) = (text("source"), text("order_id"), text("partner_id"));
    let (customer_id, product, family) = (text("customer_id"), text("product"), text("family"));
    let kind = match header.get(fields, "kind") {
        "purchase" => Some(Kind::Purchase),
        "refund" => Some(Kind::Refund),
        "adjustment" => Some(Kind::Adjustment),
        other => {
            fail(
                "kind",
                format!("`{other}` is not purchase, refund or adjustment"),
            );
            None
        }
    };
    let raw = header.get(fields, "amount");
    let amount = match Decimal::from_str(raw) {
        Ok(a) if a.scale() > 2 => {
            fail("amount", format!("`{raw}` has more than two decimals"));
            None
        }
        Ok(a) => Some(a),
        Err(_) => {
            fail(
                "amount",
                format!("`{raw}` is not an amount such as 85.00 or -2.10"),
            );
            None
        }
    };
    match (kind, amount) {
        (Some(Kind::Purchase), Some(a)) if a <= Decimal::ZERO => {
            fail("amount", format!("a purchase is positive, not {a}"));
        }
        (Some(Kind::Refund), Some(a)) if a >= Decimal::ZERO => {
            fail("amount", format!("a refund is negative, not {a}"));
        }
        (Some(Kind::Adjustment), Some(a)) if a == Decimal::ZERO => {
            fail("amount", "an adjustment is not zero".to_owned());
        }
        _ => {}
    }
    let currency = header.get(fields, "currency").to_owned();
    if currency != "CNY" {
        fail("currency", format!("only CNY is settled, not `{currency}`"));
    }
    let raw_rate = header.get(fields, "tax_rate");
    let tax_rate = match Decimal::from_str(raw_rate) {
        Ok(r) if r >= Decimal::ZERO && r < Decimal::ONE => Some(r),
        _ => {
            fail(
                "tax_rate",
                format!("`{raw_rate}` is not a rate such as 0.06 (at least 0, below 1)"),
            );
            None
        }
    };
    let raw_at = header.get(fields, "booked_at");
    let booked_at = DateTime::parse_from_rfc3339(raw_at)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(raw_at, "%Y-%m-%d %H:%M:%S")
                .ok()
                .and_then(|t| tz.from_local_datetime(&t).earliest())
                .map(|t| t.with_timezone(&Utc))
        });
    if booked_at.is_none() {
        fail(
            "booked_at",
            format!("`{raw_at}` is not a time such as 2026-11-03 14:05:00 or RFC 3339"),
        );
    }
    let original = header.get(fields, "original_order_id");
    let original_order_id = (!original.is_empty()).then(|| original.to_owned());
    if original_order_id.is_some() && kind != Some(Kind::Refund) {
        fail(
            "original_order_id",
            "only a refund names the order it refunds".to_owned(),
        );
    }
    match (kind, amount, tax_rate, booked_at, errors.is_empty()) {
        (Some(kind), Some(amount), Some(tax_rate), Some(booked_at), true) => Ok(Transaction {
            source,
            order_id,
            partner_id,
            customer_id,
            product,
            family,
            amount,
            currency,
            tax_rate,
            kind,
            booked_at,
            original_order_id,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "source,order_id,partner_id,customer_id,product,family,amount,currency,tax_rate,kind,booked_at";

    fn row(line: &str) -> Result<Transaction, Vec<(String, String)>> {
        let names: Vec<&str> = HEADER.split(',').collect();
        let header = Header::parse(&names).expect("header");
        let fields: Vec<&str> = line.split(',').collect();
        parse_row(&header, &fields, 2, chrono_tz::Asia::Shanghai)
            .map_err(|e| e.into_iter().map(|e| (e.column, e.reason)).collect())
    }

    #[test]
    fn a_good_row_is_read_in_the_programmes_time_zone() {
        let t = row("crm,O-1,P-1,C-1,ecs.c7,compute,85.00,CNY,0.06,purchase,2026-11-03 08:00:00")
            .expect("row");
        assert_eq!(t.amount, Decimal::new(8500, 2));
        assert_eq!(t.booked_at.to_rfc3339(), "2026-11-03T00:00:00+00:00");
        let r =
            row("crm,O-2,P-1,C-1,ecs.c7,compute,-2.10,CNY,0.06,refund,2026-11-04T10:00:00+08:00")
                .expect("refund");
        assert_eq!(r.kind, Kind::Refund);
    }

    #[test]
    fn every_bad_column_of_a_row_is_named() {
        let bad =
            row(",O-1,P-1,C-1,ecs,compute,85.001,USD,6%,sale,yesterday").expect_err("refused");
        let columns: Vec<&str> = bad.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            columns,
            vec![
                "source",
                "kind",
                "amount",
                "currency",
                "tax_rate",
                "booked_at"
            ]
        );
        let signs = row("crm,O-1,P-1,C-1,ecs,compute,-85.00,CNY,0.06,purchase,2026-11-03 08:00:00")
            .expect_err("sign");
        assert_eq!(signs[0].0, "amount");
        assert!(signs[0].1.contains("positive"), "{signs:?}");
    }

    #[test]
    fn a_header_must_name_every_column_and_no_unknown_one() {
        let errors = Header::parse(&["source", "order_id", "price"]).expect_err("refused");
        assert!(errors.iter().all(|e| e.row == 1));
        assert!(
            errors
                .iter()
                .any(|e| e.column == "price" && e.reason.starts_with("unknown"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.column == "amount" && e.reason == "missing column")
        );
    }
}
