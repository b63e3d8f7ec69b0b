//! Monthly rebate settlement (PRODUCT §1.5, notes/settlement.md, the rebate parts of
//! notes/tencent-and-marketplace.md): the period, the programme's settlement rules, the
//! imported transactions, the effective-dated rebate policies, and the statement a partner's
//! month adds up to. Pure: the run in `crates/settlement` reads and writes the record.
//!
//! # Layout
//! - [`policy`]: versioned, effective-dated policies with flat or tiered rates per family.
//! - [`transactions`]: one imported transaction and the CSV row it comes from.
//! - [`statement`]: a partner's month as statement lines, each rounded once.
//! - [`invoice`]: the partner's invoice for the payable (special at par, ordinary × 0.94).

pub mod invoice;
pub mod policy;
pub mod statement;
pub mod transactions;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A settlement month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    pub fn new(year: i32, month: u32) -> Option<Period> {
        ((1..=12).contains(&month) && (2000..=2100).contains(&year))
            .then_some(Period { year, month })
    }

    /// The month a moment falls in, in `tz`.
    pub fn of(at: DateTime<Utc>, tz: chrono_tz::Tz) -> Period {
        use chrono::Datelike;
        let local = at.with_timezone(&tz);
        Period {
            year: local.year(),
            month: local.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Period {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Period {
        if self.month == 1 {
            Period {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Period {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The first moment of the month in `tz`.
    pub fn start(self, tz: chrono_tz::Tz) -> DateTime<Utc> {
        local_midnight(self.first_day(), tz)
    }

    /// The first moment after the month in `tz`.
    pub fn end(self, tz: chrono_tz::Tz) -> DateTime<Utc> {
        self.next().start(tz)
    }
}

/// The first moment of `day` in `tz`.
pub fn local_midnight(day: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("a period is YYYY-MM (such as 2026-11), not `{s}`");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Period::new(y, m).ok_or_else(bad)
    }
}

impl TryFrom<String> for Period {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Period> for String {
    fn from(p: Period) -> String {
        p.to_string()
    }
}

/// A programme's settlement rules (`[settlement]` of the programme file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementRules {
    /// When the month before is settled: a cron expression with seconds, in `timezone`
    /// (default 02:00 on the 10th, Tencent's).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    #[serde(default = "default_timezone")]
    pub timezone: chrono_tz::Tz,
    /// The first period the schedule settles (earlier months are never caught up).
    pub first_period: Option<Period>,
    /// A payable below this is carried to the next period, not paid.
    #[serde(default = "default_threshold")]
    pub payout_threshold: Decimal,
    /// An ordinary VAT invoice is paid at this share of the payable (special ones at par).
    #[serde(default = "default_ordinary_share")]
    pub ordinary_invoice_share: Decimal,
    /// Partners settled per batch (one transaction of statements and instance starts each).
    #[serde(default = "default_batch")]
    pub batch: usize,
}

impl Default for SettlementRules {
    fn default() -> Self {
        SettlementRules {
            schedule: default_schedule(),
            timezone: default_timezone(),
            first_period: None,
            payout_threshold: default_threshold(),
            ordinary_invoice_share: default_ordinary_share(),
            batch: default_batch(),
        }
    }
}

fn default_schedule() -> String {
    "0 0 2 10 * *".to_owned()
}

fn default_timezone() -> chrono_tz::Tz {
    chrono_tz::Asia::Shanghai
}

fn default_threshold() -> Decimal {
    Decimal::new(1000, 0)
}

fn default_ordinary_share() -> Decimal {
    Decimal::new(94, 2)
}

fn default_batch() -> usize {
    1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_step_and_bound_the_month_in_shanghai() {
        let p: Period = "2026-01".parse().expect("period");
        assert_eq!(p.prev().to_string(), "2025-12");
        assert_eq!(p.next().to_string(), "2026-02");
        assert_eq!(
            p.start(chrono_tz::Asia::Shanghai).to_rfc3339(),
            "2025-12-31T16:00:00+00:00"
        );
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", ""] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }
}
