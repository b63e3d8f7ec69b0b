use super::*;
use chrono_tz::{Asia::Shanghai, Europe::Berlin};

const CN_2025: &str = include_str!("../../../../config/calendars/cn-2025.toml");
const CN_2026: &str = include_str!("../../../../config/calendars/cn-2026.toml");

fn file(name: &str, text: &str) -> (String, String) {
    (name.to_owned(), text.to_owned())
}

fn cn() -> BusinessCalendar {
    BusinessCalendar::from_files(&[file("cn-2025.toml", CN_2025), file("cn-2026.toml", CN_2026)])
        .expect("the shipped calendars load")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// An instant given as Shanghai wall-clock time.
fn sh(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Shanghai
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid Shanghai time")
        .to_utc()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid UTC time")
}

const WD: i64 = 24 * 60;

#[test]
fn national_day_2025_is_off_and_its_make_up_weekends_are_on() {
    let cal = cn();
    for d in 1..=8 {
        assert!(
            !cal.is_working_day(date(2025, 10, d)),
            "2025-10-{d:02} is a holiday"
        );
    }
    assert!(
        cal.is_working_day(date(2025, 9, 28)),
        "Sun 28 Sep is a make-up working day"
    );
    assert!(
        cal.is_working_day(date(2025, 10, 11)),
        "Sat 11 Oct is a make-up working day"
    );
    assert!(cal.is_working_day(date(2025, 9, 30)) && cal.is_working_day(date(2025, 10, 9)));
    assert!(
        !cal.is_working_day(date(2025, 10, 12)),
        "an ordinary Sunday stays off"
    );
    assert!(
        !cal.is_working_day(date(2025, 9, 27)),
        "an ordinary Saturday stays off"
    );
}

#[test]
fn three_working_days_across_national_day_2025() {
    // Tue 30 Sep 10:00 → 24:00 is 14h; 1–8 Oct are holidays; Thu 9 Oct 24h (38h);
    // Fri 10 Oct 24h (62h); Sat 11 Oct is a make-up working day: 72h − 62h = 10h → 10:00.
    let due = cn().add_working_minutes(sh(2025, 9, 30, 10, 0), 3 * WD);
    assert_eq!(
        due,
        Due {
            at: sh(2025, 10, 11, 10, 0),
            beyond_calendar: false
        }
    );
}

#[test]
fn ordinary_week_friday_afternoon() {
    // Fri 14 Nov 2025 16:00: 8h Fri, Mon 24h (32h), Tue 24h (56h), Wed 16h → Wed 16:00.
    let cal = cn();
    let fri = sh(2025, 11, 14, 16, 0);
    assert_eq!(
        cal.add_working_minutes(fri, 3 * WD).at,
        sh(2025, 11, 19, 16, 0)
    );
    // 1.5 WD = 36h: 8h Fri, 24h Mon (32h), 4h Tue → Tue 04:00.
    assert_eq!(
        cal.add_working_minutes(fri, 2160).at,
        sh(2025, 11, 18, 4, 0)
    );
}

#[test]
fn zero_minutes_and_starts_on_days_off() {
    let cal = cn();
    let holiday = sh(2025, 10, 3, 15, 0);
    assert_eq!(
        cal.add_working_minutes(holiday, 0),
        Due {
            at: holiday,
            beyond_calendar: false
        }
    );
    assert_eq!(cal.add_working_minutes(holiday, -5).at, holiday);
    // Counting starts at Thu 9 Oct 00:00, the first working day after the holiday.
    assert_eq!(
        cal.add_working_minutes(holiday, 90).at,
        sh(2025, 10, 9, 1, 30)
    );
    // A span that uses up Thursday exactly ends at its 24:00, not at the next working morning.
    assert_eq!(
        cal.add_working_minutes(sh(2025, 10, 9, 0, 0), WD).at,
        sh(2025, 10, 10, 0, 0)
    );
}

#[test]
fn spring_festival_and_new_year_2026() {
    let cal = cn();
    for d in 15..=23 {
        assert!(
            !cal.is_working_day(date(2026, 2, d)),
            "2026-02-{d} is a holiday"
        );
    }
    assert!(
        cal.is_working_day(date(2026, 2, 14)),
        "Sat 14 Feb is a make-up working day"
    );
    assert!(
        cal.is_working_day(date(2026, 2, 28)),
        "Sat 28 Feb is a make-up working day"
    );
    assert!(cal.is_working_day(date(2026, 2, 13)) && cal.is_working_day(date(2026, 2, 24)));
    assert!(
        !cal.is_working_day(date(2026, 1, 2)),
        "Fri 2 Jan is a holiday"
    );
    assert!(
        cal.is_working_day(date(2026, 1, 4)),
        "Sun 4 Jan is a make-up working day"
    );
    // Fri 13 Feb 12:00: 12h Fri, Sat 14 Feb 24h (36h), 15–23 off, Tue 24 Feb 12h → 12:00.
    assert_eq!(
        cal.add_working_minutes(sh(2026, 2, 13, 12, 0), 2 * WD).at,
        sh(2026, 2, 24, 12, 0)
    );
}

#[test]
fn past_the_last_loaded_year_counts_weekdays_and_says_so() {
    let cal = cn();
    // Wed 30 Dec 2026 10:00: 14h, Thu 31 Dec 24h (38h), Fri 1 Jan 2027 (no data, so a
    // working weekday) 24h (62h), weekend, Mon 4 Jan 10h → Mon 4 Jan 2027 10:00.
    let due = cal.add_working_minutes(sh(2026, 12, 30, 10, 0), 3 * WD);
    assert_eq!(
        due,
        Due {
            at: sh(2027, 1, 4, 10, 0),
            beyond_calendar: true
        }
    );
    // Ending exactly at the end of the last loaded day consults no 2027 date.
    let due = cal.add_working_minutes(sh(2026, 12, 31, 0, 0), WD);
    assert_eq!(
        due,
        Due {
            at: sh(2027, 1, 1, 0, 0),
            beyond_calendar: false
        }
    );
    // Starting before the first loaded year is flagged too.
    assert!(
        cal.add_working_minutes(sh(2024, 12, 31, 9, 0), 60)
            .beyond_calendar
    );
    // No holiday data at all: weekdays only, always flagged. Mon 1 Jan 2024 00:00 + 500 WD
    // is 100 full weeks: the end of the 100th Friday, 698 days later.
    let plain = BusinessCalendar::weekdays_only(Shanghai);
    let due = plain.add_working_minutes(sh(2024, 1, 1, 0, 0), 500 * WD);
    assert_eq!(
        due,
        Due {
            at: sh(2024, 1, 1, 0, 0) + TimeDelta::days(698),
            beyond_calendar: true
        }
    );
}

#[test]
fn huge_spans_saturate_instead_of_panicking() {
    let cal = cn();
    let start = sh(2025, 1, 2, 9, 0);
    assert_eq!(
        cal.add_working_minutes(start, i64::MAX).at,
        DateTime::<Utc>::MAX_UTC
    );
    let far = cal.add_working_minutes(start, i64::from(u32::MAX) * WD);
    assert!(far.beyond_calendar && far.at == DateTime::<Utc>::MAX_UTC);
}

/// The week-skipping and counting shortcuts agree with walking the hours one by one.
#[test]
fn shortcuts_match_an_hour_by_hour_walk() {
    fn walk(cal: &BusinessCalendar, start: NaiveDateTime, hours: i64) -> NaiveDateTime {
        let (mut t, mut left) = (start, hours);
        while left > 0 {
            if cal.is_working_day(t.date()) {
                left -= 1;
            }
            t += TimeDelta::hours(1);
        }
        t
    }
    // Only 2026 loaded: the walk crosses uncovered 2025 and 2027 as well as holidays.
    let only_2026 = BusinessCalendar::from_files(&[file("cn-2026.toml", CN_2026)]).expect("loads");
    let plain = BusinessCalendar::weekdays_only(Shanghai);
    let cases = [
        (&only_2026, date(2025, 11, 3), 24 * 120),
        (&only_2026, date(2026, 9, 10), 24 * 150),
        (&plain, date(2025, 12, 29), 24 * 400),
    ];
    for (cal, from, max_hours) in cases {
        for k in 0..40_i64 {
            let start = from.and_time(NaiveTime::MIN) + TimeDelta::hours(k * 31);
            for hours in [1, 7, 24, 37, max_hours / 3 + k, max_hours - k] {
                let at = Shanghai
                    .from_local_datetime(&start)
                    .single()
                    .expect("no DST")
                    .to_utc();
                let due = cal.add_working_minutes(at, hours * 60);
                assert_eq!(
                    cal.local(due.at),
                    walk(cal, start, hours),
                    "{start} + {hours}h"
                );
                assert_eq!(
                    cal.working_minutes_between(at, due.at),
                    hours * 60,
                    "{start} + {hours}h"
                );
            }
        }
    }
}

#[test]
fn working_minutes_between_counts_only_working_days() {
    let cal = cn();
    let (a, b) = (sh(2025, 9, 30, 10, 0), sh(2025, 10, 11, 10, 0));
    assert_eq!(cal.working_minutes_between(a, b), 3 * WD);
    assert_eq!(cal.working_minutes_between(b, a), 0);
    assert_eq!(cal.working_minutes_between(a, a), 0);
    assert_eq!(
        cal.working_minutes_between(sh(2025, 10, 2, 9, 0), sh(2025, 10, 5, 9, 0)),
        0
    );
    assert_eq!(
        cal.working_minutes_between(sh(2025, 10, 9, 9, 0), sh(2025, 10, 9, 11, 30)),
        150
    );
    // Whole year 2026: 261 weekdays, 19 of them holidays (the 13 statutory days plus 6 that
    // the make-up days pay back), and 6 make-up weekend days: 261 − 19 + 6 = 248.
    let year = cal.working_minutes_between(sh(2026, 1, 1, 0, 0), sh(2027, 1, 1, 0, 0));
    assert_eq!(year, 248 * WD);
    // 2025: 261 weekdays, 18 weekday holidays (New Year, Spring 6, Qingming 1, Labour 3,
    // Dragon Boat 1, National Day 6), 5 make-up days: 261 − 18 + 5 = 248 again.
    let year = cal.working_minutes_between(sh(2025, 1, 1, 0, 0), sh(2026, 1, 1, 0, 0));
    assert_eq!(year, 248 * WD);
}

#[test]
fn ends_within_warns_inside_the_window() {
    let cal = BusinessCalendar::from_files(&[file("cn-2026.toml", CN_2026)]).expect("loads");
    assert_eq!(cal.last_covered_day(), Some(date(2026, 12, 31)));
    assert!(cal.ends_within(date(2026, 11, 23), 60), "38 days left");
    assert!(cal.ends_within(date(2026, 11, 2), 60), "59 days left");
    assert!(
        !cal.ends_within(date(2026, 11, 1), 60),
        "60 days left is not within 60"
    );
    assert!(BusinessCalendar::weekdays_only(Shanghai).ends_within(date(2026, 1, 1), 60));
    assert!(cn().covers(date(2025, 6, 1)) && !cn().covers(date(2027, 1, 1)));
}

/// Loads one file that must be refused, checks the message names it, and returns the rule.
fn refused(name: &str, body: &str) -> CalendarRule {
    let text = format!("year = 2025\ntimezone = \"Asia/Shanghai\"\n{body}");
    match BusinessCalendar::from_files(&[file(name, &text)]) {
        Err(CalendarError::Invalid { file, rule }) if file == name => rule,
        other => panic!("{name} should be refused naming the file, got {other:?}"),
    }
}

#[test]
fn bad_files_are_refused_with_the_file_and_rule_named() {
    let holiday = |from: &str, to: &str| {
        format!("[[holidays]]\nname = \"H\"\nfrom = \"{from}\"\nto = \"{to}\"\n")
    };
    let makeup = |d: &str| format!("[[makeup_working_days]]\nname = \"M\"\ndate = \"{d}\"\n");
    let e = refused("a.toml", &holiday("2025-12-31", "2026-01-01"));
    assert_eq!(
        e,
        CalendarRule::DateOutsideYear("holiday \"H\"".into(), date(2026, 1, 1), 2025)
    );
    let e = refused("b.toml", &holiday("2025-13-01", "2025-13-02"));
    assert_eq!(
        e,
        CalendarRule::BadDate("holiday \"H\"".into(), "2025-13-01".into())
    );
    let e = refused(
        "c.toml",
        &(holiday("2025-01-01", "2025-01-05") + &makeup("2025-01-04")),
    );
    assert_eq!(
        e,
        CalendarRule::HolidayAndMakeup(date(2025, 1, 4), "H".into(), "M".into())
    );
    let e = refused("d.toml", &makeup("2025-01-06"));
    assert!(
        matches!(e, CalendarRule::MakeupOnWeekday(_, d) if d == date(2025, 1, 6)),
        "{e}"
    );
    let e = refused("e.toml", &holiday("2025-05-05", "2025-05-01"));
    assert!(matches!(e, CalendarRule::ReversedRange(..)), "{e}");
    let e = refused("f.toml", "holidays = [");
    assert!(matches!(e, CalendarRule::Toml(_)), "{e}");
    let e = refused(
        "g.toml",
        &makeup("2025-01-04").replace("makeup_working_days", "makeup_workdays"),
    );
    assert!(
        matches!(e, CalendarRule::Toml(_)),
        "a misspelt table is refused, not ignored: {e}"
    );
    let mars = "year = 2025\ntimezone = \"Mars/Olympus\"\n";
    let e = BusinessCalendar::from_files(&[file("h.toml", mars)]).expect_err("unknown zone");
    assert!(
        e.to_string().contains("h.toml") && e.to_string().contains("Mars/Olympus"),
        "{e}"
    );
}

#[test]
fn files_must_agree_on_year_and_zone() {
    let load = |second: (String, String)| {
        BusinessCalendar::from_files(&[file("cn-2025.toml", CN_2025), second])
    };
    let e = load(file("copy.toml", CN_2025)).expect_err("duplicate year");
    let rule = CalendarRule::DuplicateYear(2025, "cn-2025.toml".into());
    assert_eq!(
        e,
        CalendarError::Invalid {
            file: "copy.toml".into(),
            rule
        }
    );
    let e = load(file(
        "de-2026.toml",
        "year = 2026\ntimezone = \"Europe/Berlin\"\n",
    ))
    .expect_err("zone mismatch");
    let rule = CalendarRule::TimezoneMismatch(
        "Europe/Berlin".into(),
        "Asia/Shanghai".into(),
        "cn-2025.toml".into(),
    );
    assert_eq!(
        e,
        CalendarError::Invalid {
            file: "de-2026.toml".into(),
            rule
        }
    );
    assert_eq!(
        BusinessCalendar::from_files(&[]).expect_err("empty"),
        CalendarError::NoFiles
    );
    // A bare TOML date and a one-day holiday without `to` are accepted.
    let bare = "year = 2027\ntimezone = \"Asia/Shanghai\"\n[[holidays]]\nname = \"NY\"\nfrom = 2027-01-01\n";
    let cal = load(file("cn-2027.toml", bare)).expect("loads");
    assert!(!cal.is_working_day(date(2027, 1, 1)) && cal.is_working_day(date(2027, 1, 4)));
    assert_eq!(cal.last_covered_day(), Some(date(2027, 12, 31)));
    assert!(!cal.covers(date(2026, 5, 1)), "a gap year is not covered");
}

#[test]
fn next_annual_is_strictly_after() {
    let cal = cn();
    let midnight = NaiveTime::MIN;
    let dec1 = sh(2026, 12, 1, 0, 0);
    assert_eq!(dec1, utc(2026, 11, 30, 16, 0, 0));
    assert_eq!(
        cal.next_annual(sh(2026, 11, 23, 9, 0), 12, 1, midnight),
        dec1
    );
    assert_eq!(
        cal.next_annual(sh(2026, 12, 2, 0, 0), 12, 1, midnight),
        sh(2027, 12, 1, 0, 0)
    );
    assert_eq!(
        cal.next_annual(dec1, 12, 1, midnight),
        sh(2027, 12, 1, 0, 0),
        "strictly after"
    );
    let t2359 = NaiveTime::from_hms_opt(23, 59, 0).expect("valid");
    assert_eq!(
        cal.next_annual(sh(2026, 12, 31, 23, 0), 12, 31, t2359),
        sh(2026, 12, 31, 23, 59)
    );
    assert_eq!(
        cal.next_annual(sh(2026, 3, 1, 0, 0), 2, 29, midnight),
        sh(2027, 2, 28, 0, 0)
    );
}

#[test]
fn year_end_is_in_the_local_year() {
    let cal = cn();
    // 20:00 UTC on 31 Dec 2025 is already 04:00 on 1 Jan 2026 in Shanghai.
    assert_eq!(
        cal.year_end(utc(2025, 12, 31, 20, 0, 0)),
        utc(2026, 12, 31, 15, 59, 59)
    );
    assert_eq!(
        cal.year_end(sh(2025, 3, 1, 12, 0)),
        utc(2025, 12, 31, 15, 59, 59)
    );
}

#[test]
fn add_months_keeps_local_day_and_time() {
    let cal = cn();
    assert_eq!(
        cal.add_months(sh(2025, 11, 30, 10, 0), Months::new(3)),
        sh(2026, 2, 28, 10, 0)
    );
    // 20:00 UTC on 30 Nov is 04:00 on 1 Dec in Shanghai: the local date is what moves.
    assert_eq!(
        cal.add_months(utc(2025, 11, 30, 20, 0, 0), Months::new(3)),
        sh(2026, 3, 1, 4, 0)
    );
}

#[test]
fn dst_gaps_and_overlaps_take_the_earliest_valid_instant() {
    let cal = BusinessCalendar::weekdays_only(Berlin);
    // 29 Mar 2026 02:30 does not exist in Berlin (02:00 CET → 03:00 CEST = 01:00 UTC).
    let start = Berlin
        .with_ymd_and_hms(2026, 1, 29, 2, 30, 0)
        .single()
        .expect("valid")
        .to_utc();
    assert_eq!(
        cal.add_months(start, Months::new(2)),
        utc(2026, 3, 29, 1, 0, 0)
    );
    // 25 Oct 2026 02:30 happens twice (CEST 00:30 UTC, then CET 01:30 UTC): the first one.
    let start = Berlin
        .with_ymd_and_hms(2026, 9, 25, 2, 30, 0)
        .single()
        .expect("valid")
        .to_utc();
    assert_eq!(
        cal.add_months(start, Months::new(1)),
        utc(2026, 10, 25, 0, 30, 0)
    );
}
