use chrono::NaiveDate;
use serde_json::{Value, json};

use super::*;

fn cn() -> BusinessCalendar {
    BusinessCalendar::from_files(&[(
        "cn-2026.toml".to_owned(),
        include_str!("../../../../config/calendars/cn-2026.toml").to_owned(),
    )])
    .expect("calendar")
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// A usage application for an activity starting on 16 October 2026.
fn usage() -> Value {
    json!({
        "partner_id": "P-1001",
        "activity": { "name": "Cloud day Fuzhou", "type": "customer_seminar", "city": "Fuzhou",
                      "planned_start": "2026-10-16", "planned_end": "2026-10-16" },
        "targets": { "overview": "30 customer CXOs" },
        "agreement_accepted": true,
        "budget": [
            { "item": "venue", "use_mdf": true, "amount": "5600.00" },
            { "item": "catering", "use_mdf": true, "amount": "1400.50" },
            { "item": "gifts", "use_mdf": false, "amount": "300.00" }
        ]
    })
}

fn fields(r: Result<Value, Vec<FieldError>>) -> Vec<(String, String)> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.field, e.rule))
        .collect()
}

fn pair(f: &str, r: &str) -> (String, String) {
    (f.to_owned(), r.to_owned())
}

#[test]
fn a_usage_application_totals_its_mdf_lines_for_the_reservation() {
    let ok =
        validate_usage(&usage(), &MdfRules::default(), &cn(), day("2026-09-01")).expect("valid");
    assert_eq!(ok["mdf_amount"], "7000.50");
    assert_eq!(ok["other_amount"], "300.00");
    assert_eq!(ok["total_amount"], "7300.50");
    assert_eq!(ok["quota_account"], "mdf:P-1001:2026");
}

#[test]
fn lateness_counts_working_days_on_the_cn_calendar_across_national_day() {
    let rules = MdfRules::default();
    // 16 Oct: 10 working days back (make-up Saturday 10 Oct counted, 1-7 Oct not) is 28 Sep.
    assert!(validate_usage(&usage(), &rules, &cn(), day("2026-09-28")).is_ok());
    assert_eq!(
        fields(validate_usage(&usage(), &rules, &cn(), day("2026-09-29"))),
        vec![pair("late_reason", "required_when_late")],
        "on weekdays alone 29 Sep would be 13 working days ahead, not late"
    );
    let mut late = usage();
    late["late_reason"] = json!("the venue was confirmed late");
    assert!(validate_usage(&late, &rules, &cn(), day("2026-09-29")).is_ok());
}

#[test]
fn every_failing_field_of_a_usage_application_is_named() {
    let mut bad = usage();
    bad["agreement_accepted"] = json!(false);
    bad["activity"]["planned_end"] = json!("2026-10-15");
    bad["budget"][0]["amount"] = json!("5600.001");
    bad["budget"][1]["use_mdf"] = json!("yes");
    bad["targets"] = json!({});
    let got = fields(validate_usage(
        &bad,
        &MdfRules::default(),
        &cn(),
        day("2026-09-01"),
    ));
    for expected in [
        pair("activity.planned_end", "after_start"),
        pair("targets.overview", "required"),
        pair("agreement_accepted", "accepted"),
        pair("budget[0].amount", "amount"),
        pair("budget[1].use_mdf", "boolean"),
    ] {
        assert!(got.contains(&expected), "{expected:?} missing from {got:?}");
    }
    let mut none = usage();
    none["budget"] = json!([{ "item": "gifts", "use_mdf": false, "amount": "300.00" }]);
    assert_eq!(
        fields(validate_usage(
            &none,
            &MdfRules::default(),
            &cn(),
            day("2026-09-01")
        )),
        vec![pair("budget", "use_mdf")]
    );
}

fn claim() -> Value {
    json!({
        "actual_start": "2026-10-16",
        "actual_end": "2026-10-16",
        "attendees": 28,
        "summary": { "overview": "28 CXOs, 6 leads" },
        "actual_costs": [
            { "item": "venue", "use_mdf": true, "amount": "5600.00" },
            { "item": "transport", "use_mdf": true, "amount": "1.00" }
        ],
        "materials": { "activity_photos": "att-1", "summary_attachment": "att-2",
                       "third_party_invoices": "att-3" }
    })
}

#[test]
fn a_claim_totals_its_actual_mdf_lines_and_needs_its_materials() {
    let rules = MdfRules::default();
    let ok = validate_claim(&claim(), &rules, day("2026-10-20")).expect("valid");
    assert_eq!(ok["claimed_amount"], "5601.00");
    let mut missing = claim();
    missing["materials"]
        .as_object_mut()
        .expect("materials")
        .remove("activity_photos");
    assert_eq!(
        fields(validate_claim(&missing, &rules, day("2026-10-20"))),
        vec![pair("materials.activity_photos", "required")]
    );
}

#[test]
fn a_claim_more_than_90_days_after_the_activity_needs_the_extension_approval() {
    let rules = MdfRules::default();
    // 16 Oct + 90 days = 14 Jan 2027.
    assert!(validate_claim(&claim(), &rules, day("2027-01-14")).is_ok());
    assert_eq!(
        fields(validate_claim(&claim(), &rules, day("2027-01-15"))),
        vec![pair("materials.extension_approval", "required_when_late")]
    );
    let mut extended = claim();
    extended["materials"]["extension_approval"] = json!("att-9");
    assert!(validate_claim(&extended, &rules, day("2027-01-15")).is_ok());
}

fn invoices(list: &[(&str, &str)]) -> Value {
    json!({ "invoices": list.iter().enumerate().map(|(i, (kind, amount))| {
        json!({ "number": format!("INV-{i}"), "kind": kind, "amount": amount })
    }).collect::<Vec<_>>() })
}

#[test]
fn invoices_cover_the_claim_with_ordinary_ones_counted_at_1_06_exactly() {
    let rules = MdfRules::default();
    let claimed: Decimal = "10000.00".parse().expect("decimal");
    let check = |list: &[(&str, &str)]| validate_invoices(&invoices(list), claimed, &rules);
    assert_eq!(
        fields(check(&[("ordinary", "10500.00")])),
        vec![pair("invoices", "coverage")],
        "10,500.00 ordinary is 9,905.66 of cover"
    );
    assert!(check(&[("ordinary", "10600.00")]).is_ok());
    assert_eq!(
        fields(check(&[("ordinary", "10599.99")])),
        vec![pair("invoices", "coverage")],
        "compared exactly, not rounded"
    );
    assert!(check(&[("special", "10000.00")]).is_ok());
    assert_eq!(
        fields(check(&[("special", "9999.99")])),
        vec![pair("invoices", "coverage")]
    );
    // Mixed: 4,000.00 special + 6,360.00 ordinary (= 6,000.00 of cover) is exactly enough.
    assert!(check(&[("special", "4000.00"), ("ordinary", "6360.00")]).is_ok());
    assert!(check(&[("special", "4000.00"), ("ordinary", "6359.99")]).is_err());
    assert_eq!(
        fields(check(&[("receipt", "10000.00")])),
        vec![pair("invoices[0].kind", "kind")]
    );
}

#[test]
fn a_quota_grant_takes_the_tiers_amount_and_refuses_an_unknown_tier() {
    let rules = MdfRules::default();
    let ok = validate_quota_grant(
        &json!({ "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 }),
        &rules,
    )
    .expect("grant");
    assert_eq!(ok["amount"], "50000.00");
    assert_eq!(ok["quota_account"], "mdf:P-1001:2026");
    assert_eq!(
        fields(validate_quota_grant(
            &json!({ "partner_id": "P-1001", "tier": "platinum", "year": 2026 }),
            &rules
        )),
        vec![pair("tier", "tier")]
    );
}
