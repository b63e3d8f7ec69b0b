use chrono::NaiveDate;
use serde_json::{Value, json};

use super::*;
use crate::validation::Sibling;

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

/// P-1001, certified, with uploads att-1 … att-9.
fn known() -> RecordFacts {
    (1..=9).fold(RecordFacts::for_partner("P-1001").certified(), |f, i| {
        f.with_upload(&format!("att-{i}"))
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
    let ok = validate_usage(
        &usage(),
        &MdfRules::default(),
        &cn(),
        day("2026-09-01"),
        &known(),
    )
    .expect("valid");
    assert_eq!(ok["mdf_amount"], "7000.50");
    assert_eq!(ok["other_amount"], "300.00");
    assert_eq!(ok["total_amount"], "7300.50");
    assert_eq!(ok["quota_account"], "mdf:P-1001:2026");
}

#[test]
fn lateness_counts_working_days_on_the_cn_calendar_across_national_day() {
    let rules = MdfRules::default();
    // 16 Oct: 10 working days back (make-up Saturday 10 Oct counted, 1-7 Oct not) is 28 Sep.
    assert!(validate_usage(&usage(), &rules, &cn(), day("2026-09-28"), &known()).is_ok());
    assert_eq!(
        fields(validate_usage(
            &usage(),
            &rules,
            &cn(),
            day("2026-09-29"),
            &known()
        )),
        vec![pair("late_reason", "required_when_late")],
        "on weekdays alone 29 Sep would be 13 working days ahead, not late"
    );
    let mut late = usage();
    late["late_reason"] = json!("the venue was confirmed late");
    assert!(validate_usage(&late, &rules, &cn(), day("2026-09-29"), &known()).is_ok());
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
        &known(),
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
            day("2026-09-01"),
            &known()
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
    let ok = validate_claim(&claim(), &rules, day("2026-10-20"), &known()).expect("valid");
    assert_eq!(ok["claimed_amount"], "5601.00");
    let mut missing = claim();
    missing["materials"]
        .as_object_mut()
        .expect("materials")
        .remove("activity_photos");
    assert_eq!(
        fields(validate_claim(
            &missing,
            &rules,
            day("2026-10-20"),
            &known()
        )),
        vec![pair("materials.activity_photos", "required")]
    );
}

#[test]
fn a_claim_more_than_90_days_after_the_activity_needs_the_extension_approval() {
    let rules = MdfRules::default();
    // 16 Oct + 90 days = 14 Jan 2027.
    assert!(validate_claim(&claim(), &rules, day("2027-01-14"), &known()).is_ok());
    assert_eq!(
        fields(validate_claim(
            &claim(),
            &rules,
            day("2027-01-15"),
            &known()
        )),
        vec![pair("materials.extension_approval", "required_when_late")]
    );
    let mut extended = claim();
    extended["materials"]["extension_approval"] = json!("att-9");
    assert!(validate_claim(&extended, &rules, day("2027-01-15"), &known()).is_ok());
}

fn invoices(list: &[(&str, &str)]) -> Value {
    json!({ "invoices": list.iter().enumerate().map(|(i, (kind, amount))| {
        json!({ "number": format!("INV-{i}"), "kind": kind, "amount": amount, "attachment": "att-4" })
    }).collect::<Vec<_>>() })
}

#[test]
fn invoices_cover_the_claim_with_ordinary_ones_counted_at_1_06_exactly() {
    let rules = MdfRules::default();
    let claimed: Decimal = "10000.00".parse().expect("decimal");
    let check =
        |list: &[(&str, &str)]| validate_invoices(&invoices(list), claimed, &rules, &known());
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

fn sibling(key: &str, status: &str, activity: Value) -> Sibling {
    let mut input = usage();
    input["activity"] = activity;
    input["mdf_amount"] = json!("7000.50");
    Sibling {
        instance_id: format!("id-{key}"),
        business_key: key.to_owned(),
        status: status.to_owned(),
        input,
    }
}

#[test]
fn a_similar_activity_needs_explicit_confirmation_and_a_different_one_does_not() {
    let rules = MdfRules::default();
    let today = day("2026-09-01");
    let check = |siblings: Vec<Sibling>, input: &Value| {
        let facts = RecordFacts {
            siblings,
            ..known()
        };
        fields(validate_usage(input, &rules, &cn(), today, &facts))
    };
    let overlapping = json!({ "name": "Fuzhou CXO forum", "type": "customer_seminar", "city": " fuzhou",
                              "planned_start": "2026-10-15", "planned_end": "2026-10-17" });
    let refused = vec![pair("confirm_similar", "similar_activity")];
    assert_eq!(
        check(
            vec![sibling("A-1", "running", overlapping.clone())],
            &usage()
        ),
        refused
    );
    let same_name = json!({ "name": "cloud day  fuzhou", "type": "joint_marketing", "city": "Xiamen",
                            "planned_start": "2026-03-01", "planned_end": "2026-03-01" });
    assert_eq!(
        check(vec![sibling("A-2", "paid", same_name)], &usage()),
        refused,
        "a paid one counts"
    );
    // Confirmed, it passes; an activity that never took place, or one in another city or
    // week, is no duplicate.
    let mut confirmed = usage();
    confirmed["confirm_similar"] = json!(true);
    assert!(
        check(
            vec![sibling("A-1", "running", overlapping.clone())],
            &confirmed
        )
        .is_empty()
    );
    assert!(
        check(
            vec![sibling("A-3", "revoked", overlapping.clone())],
            &usage()
        )
        .is_empty()
    );
    let mut elsewhere = overlapping.clone();
    elsewhere["city"] = json!("Xiamen");
    let mut later = overlapping;
    later["planned_start"] = json!("2026-10-17");
    assert!(
        check(
            vec![
                sibling("A-4", "running", elsewhere),
                sibling("A-5", "running", later)
            ],
            &usage()
        )
        .is_empty()
    );
}

#[test]
fn the_similar_activities_are_named_in_the_warning() {
    let facts = RecordFacts {
        siblings: vec![sibling("MDF-7", "running", usage()["activity"].clone())],
        ..known()
    };
    let problems = validate_usage(
        &usage(),
        &MdfRules::default(),
        &cn(),
        day("2026-09-01"),
        &facts,
    )
    .expect_err("similar");
    assert!(
        problems[0].message.contains("MDF-7 `Cloud day Fuzhou`"),
        "{}",
        problems[0].message
    );
    assert!(
        problems[0].message.contains("MDF 7000.50"),
        "{}",
        problems[0].message
    );
}

#[test]
fn a_claim_needs_the_partners_business_certification_and_its_own_uploads() {
    let rules = MdfRules::default();
    let today = day("2026-10-20");
    let uncertified = RecordFacts {
        standing: Default::default(),
        ..known()
    };
    assert_eq!(
        fields(validate_claim(&claim(), &rules, today, &uncertified)),
        vec![pair("partner_id", "business_info_not_certified")]
    );
    let mut unknown = claim();
    unknown["materials"]["activity_photos"] = json!("att-404");
    assert_eq!(
        fields(validate_claim(&unknown, &rules, today, &known())),
        vec![pair("materials.activity_photos", "attachment")]
    );
    let mut theirs = known();
    if let Some(a) = theirs.attachments.get_mut("att-2") {
        a.partner_id = Some("P-1002".to_owned());
    }
    assert_eq!(
        fields(validate_claim(&claim(), &rules, today, &theirs)),
        vec![pair("materials.summary_attachment", "attachment_owner")]
    );
    let mut extra = claim();
    extra["materials"]["lead_list"] = json!("att-404");
    assert_eq!(
        fields(validate_claim(&extra, &rules, today, &known())),
        vec![pair("materials.lead_list", "attachment")],
        "optional materials are attachments too"
    );
}

#[test]
fn invoices_name_their_uploaded_files() {
    let claimed: Decimal = "100.00".parse().expect("decimal");
    let mut data = invoices(&[("special", "100.00")]);
    data["invoices"][0]["attachment"] = json!("att-404");
    assert_eq!(
        fields(validate_invoices(
            &data,
            claimed,
            &MdfRules::default(),
            &known()
        )),
        vec![pair("invoices[0].attachment", "attachment")]
    );
}

#[test]
fn a_held_activity_keeps_the_applications_name_and_a_claim_names_the_linked_one() {
    let held = validate_activity_held(&json!({ "marketing_activity_id": "mkt-1" }), &usage())
        .expect("held");
    assert_eq!(held["name"], "Cloud day Fuzhou");
    assert_eq!(held["linked"], true);
    assert_eq!(
        fields(validate_activity_held(
            &json!({ "marketing_activity_id": "mkt-1", "name": "Renamed" }),
            &usage()
        )),
        vec![pair("name", "unchanged")]
    );
    assert_eq!(
        fields(validate_activity_held(&json!({}), &usage())),
        vec![pair("marketing_activity_id", "required")]
    );
    let mut named = claim();
    named["marketing_activity_id"] = json!("mkt-2");
    assert_eq!(
        check_claim_linked(&named, Some(&held))
            .map(|e| e.rule)
            .as_deref(),
        Some("linked")
    );
    named["marketing_activity_id"] = json!("mkt-1");
    assert_eq!(check_claim_linked(&named, Some(&held)), None);
    assert_eq!(
        check_claim_linked(&named, None),
        None,
        "nothing held, nothing to match"
    );
}

#[test]
fn an_activity_starts_inside_an_open_quota_window() {
    let rules = MdfRules {
        window: ("02-05".to_owned(), "12-31".to_owned()),
        ..MdfRules::default()
    };
    let mut early = usage();
    early["activity"]["planned_start"] = json!("2026-02-04");
    early["activity"]["planned_end"] = json!("2026-02-04");
    assert_eq!(
        fields(validate_usage(
            &early,
            &rules,
            &cn(),
            day("2026-01-02"),
            &known()
        )),
        vec![pair("activity.planned_start", "window")]
    );
    early["activity"]["planned_start"] = json!("2026-02-05");
    early["activity"]["planned_end"] = json!("2026-02-05");
    assert!(validate_usage(&early, &rules, &cn(), day("2026-01-02"), &known()).is_ok());
    // In 2027 the 2026 window is closed, whatever the reason given for lateness.
    let mut late = usage();
    late["late_reason"] = json!("forgot");
    assert_eq!(
        fields(validate_usage(
            &late,
            &rules,
            &cn(),
            day("2027-01-04"),
            &known()
        )),
        vec![pair("activity.planned_start", "window_closed")]
    );
    assert!(validate_usage(&late, &rules, &cn(), day("2026-12-31"), &known()).is_ok());
}
