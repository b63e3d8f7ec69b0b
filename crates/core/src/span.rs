//! Durations as definitions and programme configuration write them.
//!
//! `3WD` working days, `30CD` calendar days, `3M` natural months, `4h` hours, and for the
//! ladders of a human step `50%` of that step's SLA. Parsed once here; the rest of the code
//! works with [`Span`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar::{BusinessCalendar, Due};

/// A length of time on the programme's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Working days on the business calendar.
    WorkingDays(u32),
    /// Calendar days.
    CalendarDays(u32),
    /// Natural months (same day of month, clamped to the month's end).
    Months(u32),
    /// Hours of wall-clock time.
    Hours(u32),
    /// A percentage of the step's SLA (only meaningful inside a human step's ladders).
    PercentOfSla(u32),
}

/// Why a span string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{input}` is not a duration: expected a number followed by WD, CD, M, h or %")]
pub struct SpanError {
    input: String,
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SpanError {
            input: s.to_owned(),
        };
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (num, unit) = s.split_at(split);
        let n: u32 = num.parse().map_err(|_| err())?;
        match unit.trim() {
            "WD" | "wd" => Ok(Span::WorkingDays(n)),
            "CD" | "cd" | "d" => Ok(Span::CalendarDays(n)),
            "M" => Ok(Span::Months(n)),
            "h" | "H" => Ok(Span::Hours(n)),
            "%" => Ok(Span::PercentOfSla(n)),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::WorkingDays(n) => write!(f, "{n}WD"),
            Span::CalendarDays(n) => write!(f, "{n}CD"),
            Span::Months(n) => write!(f, "{n}M"),
            Span::Hours(n) => write!(f, "{n}h"),
            Span::PercentOfSla(n) => write!(f, "{n}%"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

const MINUTES_PER_DAY: i64 = 24 * 60;

impl Span {
    /// The moment this span after `start` ends. `sla` resolves percentages; a percentage
    /// with no SLA is treated as a percentage of nothing (zero), which validation prevents.
    pub fn after(&self, start: DateTime<Utc>, sla: Option<Span>, cal: &BusinessCalendar) -> Due {
        let plain = |at| Due {
            at,
            beyond_calendar: false,
        };
        match *self {
            Span::WorkingDays(n) => cal.add_working_minutes(start, i64::from(n) * MINUTES_PER_DAY),
            Span::CalendarDays(n) => plain(start + Duration::days(i64::from(n))),
            Span::Hours(n) => plain(start + Duration::hours(i64::from(n))),
            Span::Months(n) => plain(cal.add_months(start, Months::new(n))),
            Span::PercentOfSla(p) => match sla {
                Some(Span::WorkingDays(n)) => cal.add_working_minutes(
                    start,
                    i64::from(n) * MINUTES_PER_DAY * i64::from(p) / 100,
                ),
                Some(Span::CalendarDays(n)) => plain(
                    start + Duration::minutes(i64::from(n) * MINUTES_PER_DAY * i64::from(p) / 100),
                ),
                Some(Span::Hours(n)) => {
                    plain(start + Duration::minutes(i64::from(n) * 60 * i64::from(p) / 100))
                }
                Some(Span::Months(n)) => {
                    let end = cal.add_months(start, Months::new(n));
                    plain(start + (end - start) * i32::try_from(p).unwrap_or(i32::MAX) / 100)
                }
                Some(Span::PercentOfSla(_)) | None => plain(start),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_refuses_garbage() {
        assert_eq!("3WD".parse(), Ok(Span::WorkingDays(3)));
        assert_eq!("30CD".parse(), Ok(Span::CalendarDays(30)));
        assert_eq!("3M".parse(), Ok(Span::Months(3)));
        assert_eq!("4h".parse(), Ok(Span::Hours(4)));
        assert_eq!("80%".parse(), Ok(Span::PercentOfSla(80)));
        assert!("WD".parse::<Span>().is_err());
        assert!("3 weeks".parse::<Span>().is_err());
        assert!("-3WD".parse::<Span>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["3WD", "30CD", "3M", "4h", "50%"] {
            assert_eq!(s.parse::<Span>().map(|x| x.to_string()), Ok(s.to_owned()));
        }
    }
}
