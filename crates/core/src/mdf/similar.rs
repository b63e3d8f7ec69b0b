//! The duplicate-activity warning of a usage application (V-MDF-2): the seeds leave the
//! similarity rule open; this one compares the activity's name, type, city and dates.

use chrono::NaiveDate;
use serde_json::Value;

use crate::validation::Sibling;
use crate::validation::read::Reader;

/// The statuses of an activity that no longer counts against a new one (it never took place).
const NOT_HELD: [&str; 3] = ["withdrawn", "revoked", "lapsed"];

/// V-MDF-2: an application much like one of the partner's other activities (same type and
/// city with overlapping dates, or the same name) is refused until it carries
/// `confirm_similar = true`, naming the similar ones so the partner can check for a duplicate.
pub(super) fn duplicate_warning(r: &mut Reader, input: &Value, siblings: &[Sibling]) {
    if input.get("confirm_similar").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let similar: Vec<String> = siblings
        .iter()
        .filter(|s| !NOT_HELD.contains(&s.status.as_str()))
        .filter(|s| similar(input, &s.input))
        .map(|s| {
            let a = |k: &str| {
                s.input
                    .pointer(&format!("/activity/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            };
            let mdf = s
                .input
                .get("mdf_amount")
                .and_then(Value::as_str)
                .unwrap_or("?");
            format!(
                "{} `{}` ({}, {}, {} to {}, MDF {mdf}, {})",
                s.business_key,
                a("name"),
                a("type"),
                a("city"),
                a("planned_start"),
                a("planned_end"),
                s.status
            )
        })
        .collect();
    if !similar.is_empty() {
        r.fail(
            "confirm_similar",
            "similar_activity",
            format!(
                "this activity is much like {} already submitted: {}; check it is not a duplicate and resubmit with confirm_similar = true",
                similar.len(),
                similar.join("; ")
            ),
        );
    }
}

/// Same name (ignoring case and spaces), or same type and city with overlapping dates.
fn similar(a: &Value, b: &Value) -> bool {
    let text = |v: &Value, k: &str| {
        v.pointer(&format!("/activity/{k}"))
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().collect::<String>().to_lowercase())
    };
    let date = |v: &Value, k: &str| {
        v.pointer(&format!("/activity/{k}"))
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    if text(a, "name").is_some() && text(a, "name") == text(b, "name") {
        return true;
    }
    let same = |k: &str| text(a, k).is_some() && text(a, k) == text(b, k);
    let overlap = match (
        date(a, "planned_start"),
        date(a, "planned_end"),
        date(b, "planned_start"),
        date(b, "planned_end"),
    ) {
        (Some(s1), Some(e1), Some(s2), Some(e2)) => s1 <= e2 && s2 <= e1,
        _ => false,
    };
    same("type") && same("city") && overlap
}
