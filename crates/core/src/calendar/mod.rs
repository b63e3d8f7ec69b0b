//! The business calendar: which local dates are working days, and time arithmetic on them.
//!
//! Holiday data comes from `config/calendars/*.toml`, one file per year, handed in as text (this
//! crate does no I/O), so an operator can add next year's file without a rebuild. Inside a loaded
//! year a date is a working day when it is Monday to Friday and not a listed holiday, or when it is
//! a listed make-up working day (调休). Outside the loaded years only Monday to Friday count, and
//! every result that relied on such a date says so ([`Due::beyond_calendar`]), so the engine can
//! flag the guess instead of being silently wrong.
//!
//! Working-time model: each working date contributes the 24 hours of its local day and other dates
//! contribute nothing. `3WD` is therefore 72 working hours, and an SLA started on Friday at 16:00
//! ends on Wednesday at 16:00 in an ordinary week. The clock is the local wall clock of the
//! calendar's zone. Where DST makes a local time ambiguous, the earlier instant is used; where it
//! skips a local time, the first instant after the gap is used.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

const DAY: TimeDelta = TimeDelta::days(1);
const SECONDS_PER_DAY: i64 = 86_400;

/// A due time and whether it had to be computed past the loaded calendar (weekdays only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    /// When the span ends.
    pub at: DateTime<Utc>,
    /// Some date used to get here lies outside the loaded years and was taken as a plain
    /// Monday-to-Friday week. The engine records an event, logs and counts it: it is a guess.
    pub beyond_calendar: bool,
}

/// Why a set of calendar files was refused. The operator who edits these files reads this at
/// start-up or in `validate`, so it names the file and the rule the file broke.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("calendar file {file}: {rule}")]
    Invalid { file: String, rule: CalendarRule },
    #[error("no calendar files given; use a weekdays-only calendar when no holiday data is wanted")]
    NoFiles,
}

/// The rule a calendar file broke; entries are named as `holiday "Name"` or
/// `make-up working day "Name"`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarRule {
    #[error("not valid TOML: {0}")]
    Toml(String),
    #[error("`{0}` is not an IANA time zone name")]
    UnknownTimezone(String),
    /// Found, expected, and the file that set the expected zone.
    #[error("timezone `{0}` differs from `{1}` in {2}; all calendar files must share one zone")]
    TimezoneMismatch(String, String, String),
    #[error("year {0} is out of range (1..=9999)")]
    BadYear(i32),
    /// The year and the file that already supplied it.
    #[error("year {0} is already loaded from {1}")]
    DuplicateYear(i32, String),
    /// The entry and the text that is not a date.
    #[error("{0}: `{1}` is not a date (expected \"YYYY-MM-DD\")")]
    BadDate(String, String),
    /// The entry, its date and the file's year.
    #[error("{0}: {1} is not in the file's year {2}")]
    DateOutsideYear(String, NaiveDate, i32),
    /// The entry, its first and its last day.
    #[error("{0}: ends on {2}, before it starts on {1}")]
    ReversedRange(String, NaiveDate, NaiveDate),
    /// A weekday is a working day already, so listing it as a make-up day is likely a typo.
    #[error("{0}: {1} is a weekday; a make-up working day must be a Saturday or Sunday")]
    MakeupOnWeekday(String, NaiveDate),
    /// The date, the holiday's name and the make-up day's name.
    #[error("{0} is both a holiday ({1}) and a make-up working day ({2})")]
    HolidayAndMakeup(NaiveDate, String, String),
}

/// The working-day calendar of one programme: a time zone plus holiday data for some years.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    /// Every date and every "local" time below is in this zone.
    tz: Tz,
    /// The years with holiday data. Other years are taken as plain Monday-to-Friday weeks.
    years: BTreeSet<i32>,
    /// Listed holiday dates (weekend ones included; they change nothing, but the files list them).
    holidays: BTreeSet<NaiveDate>,
    /// Listed make-up working days. Validation guarantees each is a Saturday or Sunday and not
    /// a holiday, which [`Self::working_days_in`] relies on when it counts instead of iterating.
    makeup: BTreeSet<NaiveDate>,
}

/// One calendar file as written. Unknown keys are refused: a misspelt `makeup_working_days`
/// would otherwise drop every make-up day without a word.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    year: i32,
    timezone: String,
    #[serde(default)]
    holidays: Vec<HolidayEntry>,
    #[serde(default)]
    makeup_working_days: Vec<MakeupEntry>,
}

/// Dates are read as raw values so that both `"2025-10-01"` and a bare TOML date work, and a
/// bad one is reported by this module with the entry's name rather than by serde.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayEntry {
    name: String,
    from: toml::Value,
    to: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MakeupEntry {
    date: toml::Value,
    name: String,
}

/// A validated file: its year, zone, and dates with the entry names kept for error messages.
struct YearData {
    year: i32,
    tz: Tz,
    holidays: BTreeMap<NaiveDate, String>,
    makeup: BTreeMap<NaiveDate, String>,
}

impl BusinessCalendar {
    /// `files` are (file name, TOML text). All files must share one timezone.
    pub fn from_files(files: &[(String, String)]) -> Result<Self, CalendarError> {
        let mut zone: Option<(Tz, &str)> = None;
        let mut years: BTreeMap<i32, &str> = BTreeMap::new();
        let mut holidays = BTreeSet::new();
        let mut makeup = BTreeSet::new();
        for (file, text) in files {
            let fail = |rule| CalendarError::Invalid {
                file: file.clone(),
                rule,
            };
            let data = parse_file(text).map_err(fail)?;
            match zone {
                None => zone = Some((data.tz, file)),
                Some((tz, first)) if tz != data.tz => {
                    let (found, expected) = (data.tz.name().to_owned(), tz.name().to_owned());
                    return Err(fail(CalendarRule::TimezoneMismatch(
                        found,
                        expected,
                        first.to_owned(),
                    )));
                }
                Some(_) => {}
            }
            if let Some(other) = years.insert(data.year, file) {
                return Err(fail(CalendarRule::DuplicateYear(
                    data.year,
                    other.to_owned(),
                )));
            }
            holidays.extend(data.holidays.into_keys());
            makeup.extend(data.makeup.into_keys());
        }
        let Some((tz, _)) = zone else {
            return Err(CalendarError::NoFiles);
        };
        Ok(Self {
            tz,
            years: years.into_keys().collect(),
            holidays,
            makeup,
        })
    }

    /// A calendar with no holiday data: weekdays only, everything flagged beyond_calendar.
    pub fn weekdays_only(tz: Tz) -> Self {
        Self {
            tz,
            years: BTreeSet::new(),
            holidays: BTreeSet::new(),
            makeup: BTreeSet::new(),
        }
    }

    /// The zone every local date and time of this calendar is read in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether `date` (a local date) is a working day. Outside the loaded years: Monday to Friday.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.makeup.contains(&date) || (is_weekday(date) && !self.holidays.contains(&date))
    }

    /// Whether the date's year is loaded.
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.years.contains(&date.year())
    }

    /// 31 December of the last loaded year; `None` when no year is loaded.
    pub fn last_covered_day(&self) -> Option<NaiveDate> {
        self.years
            .last()
            .and_then(|&y| NaiveDate::from_ymd_opt(y, 12, 31))
    }

    /// True when the last loaded day is less than `days` days after `today` (used for the
    /// 60-day warning). Also true when nothing is loaded: that calendar has already "ended".
    pub fn ends_within(&self, today: NaiveDate, days: i64) -> bool {
        self.last_covered_day()
            .is_none_or(|last| (last - today).num_days() < days)
    }

    /// Adds `minutes` of working time to `start` (see the module doc for the model).
    ///
    /// The result is the earliest instant at which that much working time has passed. So a start
    /// on a non-working date begins counting at the next working date's local midnight, a span
    /// that uses up a working day exactly ends at that day's 24:00 (the next local midnight), and
    /// `minutes <= 0` returns `start` unchanged with `beyond_calendar` false: no date is consulted,
    /// and moving a zero span to the next working morning would make it longer than zero.
    ///
    /// Cost: one step per day across loaded years (at most 366 per year); stretches outside them
    /// are crossed a week at a time. Results past the range of `DateTime` saturate to its maximum.
    pub fn add_working_minutes(&self, start: DateTime<Utc>, minutes: i64) -> Due {
        const SATURATED: Due = Due {
            at: DateTime::<Utc>::MAX_UTC,
            beyond_calendar: true,
        };
        if minutes <= 0 {
            return Due {
                at: start,
                beyond_calendar: false,
            };
        }
        let Some(mut remaining) = TimeDelta::try_minutes(minutes) else {
            return SATURATED;
        };
        let local = self.local(start);
        let mut date = local.date();
        // `min` guards against a leap second (23:59:60) making the offset exceed a day.
        let mut offset = since_midnight(local).min(DAY);
        let mut beyond = false;
        loop {
            if !self.covers(date) {
                beyond = true;
                let weeks = if offset.is_zero() {
                    self.skippable_weeks(date, remaining)
                } else {
                    0
                };
                if weeks > 0 {
                    let next = u64::try_from(weeks * 7)
                        .ok()
                        .and_then(|n| date.checked_add_days(Days::new(n)));
                    let (Some(next), Some(used)) = (next, TimeDelta::try_days(weeks * 5)) else {
                        return SATURATED;
                    };
                    date = next;
                    remaining -= used;
                    continue;
                }
            }
            if self.is_working_day(date) {
                let available = DAY - offset;
                if remaining <= available {
                    let end = date
                        .and_time(NaiveTime::MIN)
                        .checked_add_signed(offset + remaining);
                    return end.map_or(SATURATED, |end| Due {
                        at: self.to_utc(end),
                        beyond_calendar: beyond,
                    });
                }
                remaining -= available;
            }
            offset = TimeDelta::zero();
            let Some(next) = date.succ_opt() else {
                return SATURATED;
            };
            date = next;
        }
    }

    /// Working minutes elapsed from a to b under the same model (0 if b <= a). Used for SLA clocks.
    /// Counts rather than iterates, so it costs the same for a day as for a decade.
    pub fn working_minutes_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        let (la, lb) = (self.local(a), self.local(b));
        // The local comparison also covers a DST fall-back, where b > a can read earlier locally.
        if b <= a || lb <= la {
            return 0;
        }
        let (da, db) = (la.date(), lb.date());
        let zero = TimeDelta::zero();
        let total = if da == db {
            Some(if self.is_working_day(da) {
                lb - la
            } else {
                zero
            })
        } else {
            let head = if self.is_working_day(da) {
                DAY - since_midnight(la).min(DAY)
            } else {
                zero
            };
            let tail = if self.is_working_day(db) {
                since_midnight(lb)
            } else {
                zero
            };
            let middle = da.succ_opt().map_or(0, |d| self.working_days_in(d, db));
            TimeDelta::try_days(middle)
                .and_then(|m| m.checked_add(&head))
                .and_then(|m| m.checked_add(&tail))
        };
        total.map_or(i64::MAX, |t| t.num_minutes())
    }

    /// Adds natural months in local time (same day-of-month, clamped to month end; same local time).
    pub fn add_months(&self, start: DateTime<Utc>, months: Months) -> DateTime<Utc> {
        self.local(start)
            .checked_add_months(months)
            .map_or(DateTime::<Utc>::MAX_UTC, |l| self.to_utc(l))
    }

    /// The next local moment strictly after `after` that is month-day `month`/`day` at local `time`
    /// (e.g. 1 Dec 00:00, or 31 Dec 23:59). If that day has passed this year, next year's.
    ///
    /// A day the month lacks is clamped to its last day (29 Feb is 28 Feb in common years) and a
    /// month outside 1..=12 to the nearest one; definitions are validated so this stays a fallback.
    pub fn next_annual(
        &self,
        after: DateTime<Utc>,
        month: u32,
        day: u32,
        time: NaiveTime,
    ) -> DateTime<Utc> {
        let year = self.local(after).year();
        (year..=year.saturating_add(1))
            .filter_map(|y| annual_date(y, month, day))
            .map(|date| self.to_utc(date.and_time(time)))
            .find(|&at| at > after)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// 31 Dec 23:59:59 local of the local year of `at` (used for certificate and agreement expiry).
    pub fn year_end(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(self.local(at).year(), 12, 31)
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map_or(DateTime::<Utc>::MAX_UTC, |l| self.to_utc(l))
    }

    fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    /// The instant of a local wall-clock time: the earlier one when the clock was turned back over
    /// it, the first instant after the gap when the clock jumped over it.
    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            LocalResult::None => self.end_of_gap(local),
        }
    }

    /// The first instant whose local time is at or after `local`, which lies in a DST gap. No zone
    /// is two days from UTC, so a binary search over seconds in that window finds the transition.
    fn end_of_gap(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let guess = local.and_utc().timestamp();
        let (mut lo, mut hi) = (
            guess.saturating_sub(2 * SECONDS_PER_DAY),
            guess.saturating_add(2 * SECONDS_PER_DAY),
        );
        let reached =
            |s: i64| DateTime::from_timestamp(s, 0).is_none_or(|t| self.local(t) >= local);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if reached(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whole weeks that may be skipped from `date`, an uncovered date entered at local midnight.
    /// Any 7 consecutive uncovered days hold exactly 5 working days. The skip stops short of the
    /// next loaded year, and leaves some time over so the day loop decides where the span ends.
    fn skippable_weeks(&self, date: NaiveDate, remaining: TimeDelta) -> i64 {
        let by_time = (remaining.num_seconds() - 1) / (5 * SECONDS_PER_DAY);
        let by_calendar = self
            .years
            .range(date.year().saturating_add(1)..)
            .next()
            .and_then(|&y| NaiveDate::from_ymd_opt(y, 1, 1))
            .map_or(i64::MAX, |next| (next - date).num_days() / 7);
        by_time.min(by_calendar).max(0)
    }

    /// Working dates in `[from, to)`, counted: weekdays, less weekday holidays, plus make-up days.
    fn working_days_in(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to <= from {
            return 0;
        }
        let off = self
            .holidays
            .range(from..to)
            .filter(|d| is_weekday(**d))
            .count();
        let on = self.makeup.range(from..to).count();
        weekdays_in(from, to) - count(off) + count(on)
    }
}

/// Parses and checks one file on its own; [`BusinessCalendar::from_files`] checks across files.
fn parse_file(text: &str) -> Result<YearData, CalendarRule> {
    let parsed: CalendarFile =
        toml::from_str(text).map_err(|e| CalendarRule::Toml(e.to_string()))?;
    let year = parsed.year;
    if !(1..=9999).contains(&year) {
        return Err(CalendarRule::BadYear(year));
    }
    let tz: Tz = parsed
        .timezone
        .parse()
        .map_err(|_| CalendarRule::UnknownTimezone(parsed.timezone.clone()))?;
    let in_year = |entry: &str, value: &toml::Value| {
        let date = parse_date(entry, value)?;
        if date.year() == year {
            Ok(date)
        } else {
            Err(CalendarRule::DateOutsideYear(entry.to_owned(), date, year))
        }
    };

    let mut holidays = BTreeMap::new();
    for h in &parsed.holidays {
        let entry = format!("holiday \"{}\"", h.name);
        let from = in_year(&entry, &h.from)?;
        let to = h.to.as_ref().map_or(Ok(from), |to| in_year(&entry, to))?;
        if to < from {
            return Err(CalendarRule::ReversedRange(entry, from, to));
        }
        // Both ends are in one year, so this is at most 366 dates.
        for date in from.iter_days().take_while(|d| *d <= to) {
            holidays.entry(date).or_insert_with(|| h.name.clone());
        }
    }

    let mut makeup = BTreeMap::new();
    for m in &parsed.makeup_working_days {
        let entry = format!("make-up working day \"{}\"", m.name);
        let date = in_year(&entry, &m.date)?;
        if is_weekday(date) {
            return Err(CalendarRule::MakeupOnWeekday(entry, date));
        }
        if let Some(holiday) = holidays.get(&date) {
            return Err(CalendarRule::HolidayAndMakeup(
                date,
                holiday.clone(),
                m.name.clone(),
            ));
        }
        makeup.insert(date, m.name.clone());
    }
    Ok(YearData {
        year,
        tz,
        holidays,
        makeup,
    })
}

/// Accepts a quoted `"YYYY-MM-DD"` or a bare TOML date; anything else is reported as written.
fn parse_date(entry: &str, value: &toml::Value) -> Result<NaiveDate, CalendarRule> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CalendarRule::BadDate(entry.to_owned(), text))
}

/// `month`/`day` in `year`, the day clamped to the month's last day and the month to 1..=12.
fn annual_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(year, month.clamp(1, 12), 1)?;
    let last_day = first.checked_add_months(Months::new(1))?.pred_opt()?.day();
    first.with_day(day.clamp(1, last_day))
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn since_midnight(t: NaiveDateTime) -> TimeDelta {
    t.time() - NaiveTime::MIN
}

/// Monday-to-Friday dates in `[from, to)`: five per whole week, then the leftover days one by one.
fn weekdays_in(from: NaiveDate, to: NaiveDate) -> i64 {
    let days = (to - from).num_days();
    if days <= 0 {
        return 0;
    }
    let first = i64::from(from.weekday().num_days_from_monday());
    let rest = (0..days % 7).filter(|i| (first + i) % 7 < 5).count();
    days / 7 * 5 + count(rest)
}

/// A count of set members or of days in a week, which always fits.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
