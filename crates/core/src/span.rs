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
pub enum SpanError {
    #[error("`{0}` is not a duration: expected a number followed by WD, CD, M, h or %")]
    Malformed(String),
    #[error("`{input}` is longer than {max}{unit}: spans are bounded at about ten years")]
    TooLong {
        input: String,
        max: u32,
        unit: &'static str,
    },
}

/// The longest span of each unit (about ten years; 1000 % of an SLA), so that no definition
/// or configuration value can make date arithmetic overflow.
pub const MAX_WORKING_DAYS: u32 = 2_610;
pub const MAX_CALENDAR_DAYS: u32 = 3_660;
pub const MAX_MONTHS: u32 = 120;
pub const MAX_HOURS: u32 = 87_840;
pub const MAX_PERCENT: u32 = 1_000;

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SpanError::Malformed(s.to_owned());
        let input = s;
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (num, unit) = s.split_at(split);
        let n: u32 = num.parse().map_err(|_| err())?;
        let (span, max, unit) = match unit.trim() {
            "WD" | "wd" => (Span::WorkingDays(n), MAX_WORKING_DAYS, "WD"),
            "CD" | "cd" | "d" => (Span::CalendarDays(n), MAX_CALENDAR_DAYS, "CD"),
            "M" => (Span::Months(n), MAX_MONTHS, "M"),
            "h" | "H" => (Span::Hours(n), MAX_HOURS, "h"),
            "%" => (Span::PercentOfSla(n), MAX_PERCENT, "%"),
            _ => return Err(err()),
        };
        if n > max {
            return Err(SpanError::TooLong {
                input: input.to_owned(),
                max,
                unit,
            });
        }
        Ok(span)
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
    fn spans_are_bounded_at_about_ten_years() {
        assert_eq!("2610WD".parse(), Ok(Span::WorkingDays(2610)));
        for too_long in [
            "2611WD",
            "3661CD",
            "121M",
            "87841h",
            "1001%",
            "4294967295CD",
        ] {
            assert!(
                matches!(too_long.parse::<Span>(), Err(SpanError::TooLong { .. })),
                "{too_long}"
            );
        }
        assert!(matches!(
            "99999999999CD".parse::<Span>(),
            Err(SpanError::Malformed(_))
        ));
    }

    /// Every span a definition can hold, from starts across and beyond the loaded calendar,
    /// with every SLA a percentage can refer to: date arithmetic never panics, and the due
    /// time never lies before the start.
    #[test]
    fn no_bounded_span_makes_date_arithmetic_panic() {
        use chrono::TimeZone;
        let cal = BusinessCalendar::from_files(&[
            (
                "cn-2025.toml".to_owned(),
                include_str!("../../../config/calendars/cn-2025.toml").to_owned(),
            ),
            (
                "cn-2026.toml".to_owned(),
                include_str!("../../../config/calendars/cn-2026.toml").to_owned(),
            ),
        ])
        .expect("calendar");
        // A deterministic pseudo-random walk over each unit's range, plus its edges.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut sample = |max: u32| {
            let mut values = vec![0, 1, max / 2, max.saturating_sub(1), max];
            for _ in 0..12 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                values.push(u32::try_from(seed % u64::from(max + 1)).unwrap_or(max));
            }
            values
        };
        let spans: Vec<Span> = sample(MAX_WORKING_DAYS)
            .into_iter()
            .map(Span::WorkingDays)
            .chain(
                sample(MAX_CALENDAR_DAYS)
                    .into_iter()
                    .map(Span::CalendarDays),
            )
            .chain(sample(MAX_MONTHS).into_iter().map(Span::Months))
            .chain(sample(MAX_HOURS).into_iter().map(Span::Hours))
            .collect();
        let percents: Vec<Span> = sample(MAX_PERCENT)
            .into_iter()
            .map(Span::PercentOfSla)
            .collect();
        let starts = [
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0),
            Utc.with_ymd_and_hms(2026, 12, 31, 15, 59, 59),
            Utc.with_ymd_and_hms(2031, 2, 28, 12, 0, 0),
        ];
        for start in starts.iter().filter_map(|s| s.single()) {
            for span in &spans {
                let due = span.after(start, None, &cal);
                assert!(due.at >= start, "{span} after {start}");
                for p in &percents {
                    let due = p.after(start, Some(*span), &cal);
                    assert!(due.at >= start, "{p} of {span} after {start}");
                }
            }
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["3WD", "30CD", "3M", "4h", "50%"] {
            assert_eq!(s.parse::<Span>().map(|x| x.to_string()), Ok(s.to_owned()));
        }
    }
}
