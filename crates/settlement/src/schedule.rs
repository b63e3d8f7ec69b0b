//! Which periods are due: each tick of the programme's cron schedule (in its time zone) makes
//! the month before the tick's month due. Every due period without a finished run is settled,
//! from the programme's `first_period` (or its first recorded run, or else the latest due
//! period) on, so a tick missed while the service was down is caught up when it starts.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use partnerflow_core::rebate::{Period, SettlementRules};

use crate::{Error, Result};

/// Parses the schedule; a bad expression is a configuration error naming it.
pub fn schedule(rules: &SettlementRules) -> Result<cron::Schedule> {
    cron::Schedule::from_str(&rules.schedule).map_err(|e| {
        Error::Config(format!(
            "settlement.schedule `{}` is not a cron expression with seconds (such as \"0 0 2 10 * *\"): {e}",
            rules.schedule
        ))
    })
}

/// The period the latest tick at or before `now` made due (`None` before any tick).
pub fn latest_due(rules: &SettlementRules, now: DateTime<Utc>) -> Result<Option<Period>> {
    let s = schedule(rules)?;
    let tz = rules.timezone;
    let since = (now - Duration::days(400)).with_timezone(&tz);
    let latest = s
        .after(&since)
        .take_while(|t| t.with_timezone(&Utc) <= now)
        .last();
    Ok(latest.map(|t| Period::of(t.with_timezone(&Utc), tz).prev()))
}

/// The periods to settle now, oldest first: every due period from the first one on that has
/// no finished run. `recorded` are the periods with a run (finished or not), `finished` those
/// whose run finished.
pub fn due(
    rules: &SettlementRules,
    now: DateTime<Utc>,
    recorded: &BTreeSet<Period>,
    finished: &BTreeSet<Period>,
) -> Result<Vec<Period>> {
    let Some(latest) = latest_due(rules, now)? else {
        return Ok(Vec::new());
    };
    let first = rules
        .first_period
        .or_else(|| recorded.iter().next().copied())
        .unwrap_or(latest);
    let mut out = Vec::new();
    let mut p = first;
    while p <= latest {
        if !finished.contains(&p) {
            out.push(p);
        }
        p = p.next();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn p(s: &str) -> Period {
        s.parse().expect("period")
    }

    #[test]
    fn the_10th_at_2_settles_the_month_before() {
        let rules = SettlementRules::default();
        assert_eq!(
            latest_due(&rules, at(2026, 12, 10, 1)).expect("due"),
            Some(p("2026-10"))
        );
        assert_eq!(
            latest_due(&rules, at(2026, 12, 10, 2)).expect("due"),
            Some(p("2026-11"))
        );
    }

    #[test]
    fn missed_ticks_are_caught_up_from_the_first_period() {
        let rules = SettlementRules {
            first_period: Some(p("2026-08")),
            ..SettlementRules::default()
        };
        let finished = BTreeSet::from([p("2026-08")]);
        // Down from September to 15 December: September, October and November are due.
        let due = due(&rules, at(2026, 12, 15, 9), &finished, &finished).expect("due");
        assert_eq!(due, vec![p("2026-09"), p("2026-10"), p("2026-11")]);
        // Without a first period, the first recorded run is where catching up starts.
        let rules = SettlementRules::default();
        let recorded = BTreeSet::from([p("2026-10")]);
        let due_now = super::due(&rules, at(2026, 12, 15, 9), &recorded, &recorded).expect("due");
        assert_eq!(due_now, vec![p("2026-11")]);
        let fresh = super::due(
            &rules,
            at(2026, 12, 15, 9),
            &BTreeSet::new(),
            &BTreeSet::new(),
        )
        .expect("due");
        assert_eq!(
            fresh,
            vec![p("2026-11")],
            "a fresh deployment does not settle history"
        );
    }

    #[test]
    fn a_bad_schedule_is_named() {
        let rules = SettlementRules {
            schedule: "every tenth".to_owned(),
            ..SettlementRules::default()
        };
        let e = latest_due(&rules, at(2026, 12, 1, 0)).expect_err("bad");
        assert!(e.to_string().contains("every tenth"), "{e}");
    }
}
