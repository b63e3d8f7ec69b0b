use serde_json::json;

use super::validate::{is_email, money, uscc_problem};
use super::*;

/// The shipped defaults, so every test also checks that the config file says what the
/// seeds say.
const DEFAULTS_TOML: &str = include_str!("../../../../config/programme.toml");

#[derive(Deserialize)]
struct ProgrammeFile {
    onboarding: OnboardingRules,
}

fn rules() -> OnboardingRules {
    toml::from_str::<ProgrammeFile>(DEFAULTS_TOML)
        .expect("default onboarding rules parse")
        .onboarding
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).expect("valid date")
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

/// An agent exactly at every threshold: inclusive bounds must pass.
fn agent() -> Value {
    json!({
        "partner_id": "p-agent",
        "company": {
            "name": "福州示例科技有限公司",
            "uscc": "91350100M000100Y43",
            "registered_capital": "1000000.00",
            "established_on": "2024-06-30",
            "address": "福州市鼓楼区"
        },
        "partner_type": "agent",
        "contacts": [{ "name": "王敏", "email": "wang.min@example.cn", "phone": "13800138000" }],
        "headcount": { "total": 20, "technical": 2 },
        "exam_passers": 3,
        "deposit_paid": "10000.00",
        "documents": [
            { "kind": "business_licence", "file_name": "licence.pdf" },
            { "kind": "bank_account_proof", "file_name": "bank.png" }
        ],
        "submitted_by": "u-wang"
    })
}

fn integration() -> Value {
    json!({
        "partner_id": "p-int",
        "company": {
            "name": "深圳集成服务有限公司",
            "uscc": "91440300708461136T",
            "registered_capital": "5000000",
            "currency": "CNY",
            "established_on": "2020-01-15"
        },
        "partner_type": "integration",
        "contacts": [{ "name": "李雷", "email": "li@example.com", "phone": "+86 139-1234-5678" }],
        "headcount": { "total": 20, "technical": 3, "sales": 5 },
        "certified_staff": 3,
        "documents": [
            { "kind": "business_licence", "file_name": "licence.pdf" },
            { "kind": "bank_account_proof", "file_name": "bank.jpg" }
        ],
        "submitted_by": "u-li"
    })
}

fn development() -> Value {
    json!({
        "partner_id": "p-dev",
        "company": {
            "name": "北京开发有限公司",
            "uscc": "91110000600037341L",
            "registered_capital": "10000000.00",
            "established_on": "2018-03-01"
        },
        "partner_type": "development",
        "contacts": [{ "name": "韩梅梅", "email": "han@example.org", "phone": "+8615012345678" }],
        "headcount": { "total": 40, "rnd": 20, "delivery": 10 },
        "certified_staff": 5,
        "software_copyrights": 1,
        "documents": [
            { "kind": "Business_Licence", "file_name": "licence.pdf" },
            { "kind": "bank_account_proof", "file_name": "bank.png" }
        ],
        "submitted_by": "u-han"
    })
}

fn set(mut app: Value, pointer: &str, value: Value) -> Value {
    *app.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer} exists")) = value;
    app
}

fn put(mut app: Value, pointer: &str, key: &str, value: Value) -> Value {
    let obj = app
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .expect("object");
    obj.insert(key.to_owned(), value);
    app
}

fn remove(mut app: Value, pointer: &str, key: &str) -> Value {
    let obj = app
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .expect("object");
    obj.remove(key);
    app
}

#[track_caller]
fn failures(app: &Value, rules: &OnboardingRules) -> Vec<(String, String)> {
    match validate(app, rules, today()) {
        Ok(_) => panic!("expected the application to be refused"),
        Err(errors) => {
            for e in &errors {
                assert!(!e.message.is_empty(), "{e} has no message");
            }
            errors.into_iter().map(|e| (e.field, e.rule)).collect()
        }
    }
}

fn pair(field: &str, rule: &str) -> (String, String) {
    (field.to_owned(), rule.to_owned())
}

#[test]
fn default_rules_file_carries_the_seed_thresholds() {
    let r = rules();
    assert_eq!(r.currency, "CNY");
    assert_eq!(r.deposit_check, RuleStrength::Soft);
    assert_eq!(r.micro_deposit_attempts, 3);
    let a = &r.agent;
    assert_eq!(a.min_registered_capital, dec("1000000"));
    assert_eq!(
        (
            a.min_company_age_years,
            a.min_staff,
            a.min_technical,
            a.min_exam_passers
        ),
        (1, 20, 2, 3)
    );
    assert_eq!(a.deposit, dec("10000"));
    let i = &r.integration;
    assert_eq!(i.min_registered_capital, dec("5000000"));
    assert_eq!(
        (
            i.min_company_age_years,
            i.min_staff,
            i.min_technical,
            i.min_sales,
            i.min_certified_staff
        ),
        (1, 20, 3, 5, 3)
    );
    assert_eq!(i.deposit, Decimal::ZERO);
    let d = &r.development;
    assert_eq!(d.min_registered_capital, dec("10000000"));
    assert_eq!(
        (
            d.min_company_age_years,
            d.min_staff,
            d.min_rnd,
            d.min_delivery,
            d.min_certified_staff
        ),
        (1, 40, 20, 10, 5)
    );
    assert_eq!(d.min_software_copyrights, 1);
    for t in [a, i, d] {
        assert_eq!(
            t.required_documents,
            ["business_licence", "bank_account_proof"]
        );
    }
}

#[test]
fn misspelt_threshold_key_is_refused_instead_of_disabling_the_rule() {
    let bad = DEFAULTS_TOML.replace("min_exam_passers = 3", "min_exam_pasers = 3");
    assert!(toml::from_str::<ProgrammeFile>(&bad).is_err());
}

#[test]
fn agent_at_every_threshold_is_accepted_and_normalised() {
    let app = validate(&agent(), &rules(), today()).expect("valid agent");
    assert_eq!(app.partner_type, PartnerType::Agent);
    assert_eq!(app.company.registered_capital, dec("1000000.00"));
    assert_eq!(app.company.currency, "CNY");
    assert_eq!(app.deposit_paid, dec("10000"));
    assert_eq!(
        app.primary_contact().map(|c| c.email.as_str()),
        Some("wang.min@example.cn")
    );
    assert_eq!(
        app.headcount,
        Headcount {
            total: 20,
            technical: 2,
            ..Headcount::default()
        }
    );
}

#[test]
fn integration_at_every_threshold_is_accepted() {
    let app = validate(&integration(), &rules(), today()).expect("valid integration partner");
    assert_eq!(app.contacts[0].phone, "+8613912345678");
    assert_eq!(app.deposit_paid, Decimal::ZERO);
}

#[test]
fn development_at_every_threshold_is_accepted() {
    let app = validate(&development(), &rules(), today()).expect("valid development partner");
    assert_eq!(app.contacts[0].phone, "+8615012345678");
    assert_eq!(app.software_copyrights, 1);
}

/// Breaks one threshold per row (JSON pointer, value, expected rule) of an otherwise
/// passing application; that threshold alone must be reported, on the pointed-at field.
#[track_caller]
fn refuse_each(passing: fn() -> Value, rows: &[(&str, Value, &str)]) {
    let r = rules();
    for (pointer, value, rule) in rows {
        let field = pointer.trim_start_matches('/').replace('/', ".");
        let app = set(passing(), pointer, value.clone());
        assert_eq!(
            failures(&app, &r),
            vec![pair(&field, rule)],
            "{pointer} = {value}"
        );
    }
}

#[test]
fn agent_below_each_threshold_is_refused() {
    refuse_each(
        agent,
        &[
            (
                "/company/registered_capital",
                json!("999999.99"),
                "min_registered_capital",
            ),
            (
                "/company/established_on",
                json!("2024-07-01"),
                "min_company_age",
            ),
            ("/headcount/total", json!(19), "min_staff"),
            ("/headcount/technical", json!(1), "min_technical"),
            ("/exam_passers", json!(2), "min_exam_passers"),
        ],
    );
}

#[test]
fn integration_partner_below_each_threshold_is_refused() {
    refuse_each(
        integration,
        &[
            (
                "/company/registered_capital",
                json!("4999999.99"),
                "min_registered_capital",
            ),
            (
                "/company/established_on",
                json!("2024-07-01"),
                "min_company_age",
            ),
            ("/headcount/total", json!(19), "min_staff"),
            ("/headcount/technical", json!(2), "min_technical"),
            ("/headcount/sales", json!(4), "min_sales"),
            ("/certified_staff", json!(2), "min_certified_staff"),
        ],
    );
}

#[test]
fn development_partner_below_each_threshold_is_refused() {
    refuse_each(
        development,
        &[
            (
                "/company/registered_capital",
                json!("9999999.99"),
                "min_registered_capital",
            ),
            (
                "/company/established_on",
                json!("2024-07-01"),
                "min_company_age",
            ),
            ("/headcount/total", json!(39), "min_staff"),
            ("/headcount/rnd", json!(19), "min_rnd"),
            ("/headcount/delivery", json!(9), "min_delivery"),
            ("/certified_staff", json!(4), "min_certified_staff"),
            ("/software_copyrights", json!(0), "min_software_copyrights"),
        ],
    );
}

#[test]
fn threshold_message_names_the_value_and_the_minimum() {
    let app = set(agent(), "/company/registered_capital", json!("999999.99"));
    let errors = validate(&app, &rules(), today()).expect_err("below minimum");
    assert!(
        errors[0].message.contains("CNY 999,999.99"),
        "{}",
        errors[0].message
    );
    assert!(
        errors[0].message.contains("CNY 1,000,000.00"),
        "{}",
        errors[0].message
    );
}

#[test]
fn application_failing_several_rules_reports_all_of_them_at_once() {
    let app = remove(agent(), "", "partner_id");
    let app = remove(app, "/company", "uscc");
    let app = set(app, "/company/registered_capital", json!("500000"));
    let app = set(app, "/exam_passers", json!(1));
    let app = set(
        app,
        "/contacts",
        json!([
            { "name": "王敏", "email": "not-an-email", "phone": "13800138000" },
            { "name": "", "email": "b@example.com", "phone": "12345" }
        ]),
    );
    let got = failures(&app, &rules());
    let want = [
        pair("partner_id", "required"),
        pair("company.uscc", "required"),
        pair("contacts[0].email", "format"),
        pair("contacts[1].name", "required"),
        pair("contacts[1].phone", "format"),
        pair("company.registered_capital", "min_registered_capital"),
        pair("exam_passers", "min_exam_passers"),
    ];
    for w in &want {
        assert!(got.contains(w), "missing {w:?} in {got:?}");
    }
    assert_eq!(got.len(), want.len(), "{got:?}");
}

#[test]
fn empty_object_names_every_required_field() {
    let got = failures(&json!({}), &rules());
    for field in [
        "partner_id",
        "company",
        "partner_type",
        "contacts",
        "submitted_by",
    ] {
        assert!(
            got.contains(&pair(field, "required")),
            "{field} not reported in {got:?}"
        );
    }
    assert_eq!(failures(&json!([1]), &rules()), vec![pair("$", "type")]);
}

#[test]
fn ill_typed_fields_are_reported_alongside_missing_ones() {
    let app = set(agent(), "/headcount/total", json!("twenty"));
    let app = put(app, "", "sensitive_relationship_declared", json!("no"));
    let app = remove(app, "/company", "established_on");
    let got = failures(&app, &rules());
    assert!(got.contains(&pair("headcount.total", "type")), "{got:?}");
    assert!(
        got.contains(&pair("sensitive_relationship_declared", "type")),
        "{got:?}"
    );
    assert!(
        got.contains(&pair("company.established_on", "required")),
        "{got:?}"
    );
}

#[test]
fn contacts_must_not_be_empty() {
    let got = failures(&set(agent(), "/contacts", json!([])), &rules());
    assert_eq!(got, vec![pair("contacts", "min_items")]);
}

#[test]
fn uscc_check_character_follows_gb_32100() {
    for valid in [
        "91350100M000100Y43",
        "91110000600037341L",
        "91440300708461136T",
    ] {
        assert_eq!(uscc_problem(valid), None, "{valid}");
    }
    assert_eq!(
        uscc_problem("91350100M000100Y44").map(|p| p.0),
        Some("check_character")
    );
    assert_eq!(
        uscc_problem("911100001000013496").map(|p| p.0),
        Some("check_character")
    );
    assert_eq!(
        uscc_problem("91350100M000100Y4").map(|p| p.0),
        Some("format")
    );
    assert_eq!(
        uscc_problem("91350100I000100Y43").map(|p| p.0),
        Some("format")
    );
    assert_eq!(
        uscc_problem("91AB0100M000100Y43").map(|p| p.0),
        Some("format")
    );
}

#[test]
fn uscc_is_checked_in_validate_and_stored_upper_case() {
    let bad = set(agent(), "/company/uscc", json!("91350100M000100Y44"));
    assert_eq!(
        failures(&bad, &rules()),
        vec![pair("company.uscc", "check_character")]
    );
    let lower = set(agent(), "/company/uscc", json!(" 91350100m000100y43 "));
    let app = validate(&lower, &rules(), today()).expect("lower-case USCC accepted");
    assert_eq!(app.company.uscc, "91350100M000100Y43");
}

#[test]
fn email_and_phone_formats() {
    for good in ["a@b.cn", "first.last+tag@mail.example.com"] {
        assert!(is_email(good), "{good}");
    }
    for bad in ["a@b", "@b.cn", "a b@c.cn", "a@@b.cn", "a@.cn", "a@b..cn"] {
        assert!(!is_email(bad), "{bad}");
    }
    for (raw, e164) in [
        ("+86 138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
    ] {
        assert_eq!(
            crate::phone::normalize(raw, crate::phone::DEFAULT_COUNTRY_CODE).as_deref(),
            Ok(e164)
        );
    }
    for bad in ["23800138000", "1380013800", "138001380001", "1380013800a"] {
        assert!(
            crate::phone::normalize(bad, crate::phone::DEFAULT_COUNTRY_CODE).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn amounts_must_be_non_negative_strings_with_at_most_two_decimals() {
    let r = rules();
    let cap = "/company/registered_capital";
    let field = "company.registered_capital";
    assert_eq!(
        failures(&set(agent(), cap, json!("-1")), &r),
        vec![pair(field, "negative_amount")]
    );
    assert_eq!(
        failures(&set(agent(), cap, json!("1000000.001")), &r),
        vec![pair(field, "too_many_decimals")]
    );
    assert_eq!(
        failures(&set(agent(), cap, json!("1,000,000")), &r),
        vec![pair(field, "format")]
    );
    assert_eq!(
        failures(&set(agent(), cap, json!(1000000.5)), &r),
        vec![pair(field, "type")]
    );
    assert_eq!(
        failures(&set(agent(), "/deposit_paid", json!("-0.01")), &r),
        vec![pair("deposit_paid", "negative_amount")]
    );
    let trailing = set(agent(), cap, json!("1000000.500"));
    assert!(
        validate(&trailing, &r, today()).is_ok(),
        "trailing zeros are not extra precision"
    );
}

#[test]
fn established_on_must_be_a_past_iso_date() {
    let r = rules();
    let field = "company.established_on";
    let future = set(agent(), "/company/established_on", json!("2025-07-01"));
    assert_eq!(failures(&future, &r), vec![pair(field, "future_date")]);
    let slashed = set(agent(), "/company/established_on", json!("2024/06/30"));
    assert_eq!(failures(&slashed, &r), vec![pair(field, "format")]);
    let unpadded = set(agent(), "/company/established_on", json!("2024-6-30"));
    assert_eq!(failures(&unpadded, &r), vec![pair(field, "format")]);
}

#[test]
fn company_registered_on_29_february_is_one_year_old_on_28_february() {
    let app = set(agent(), "/company/established_on", json!("2024-02-29"));
    let on = NaiveDate::from_ymd_opt(2025, 2, 28).expect("date");
    assert!(validate(&app, &rules(), on).is_ok());
    let day_before = NaiveDate::from_ymd_opt(2025, 2, 27).expect("date");
    assert!(validate(&app, &rules(), day_before).is_err());
}

#[test]
fn foreign_currency_is_refused_without_comparing_amounts() {
    let app = put(agent(), "/company", "currency", json!("USD"));
    let app = set(app, "/company/registered_capital", json!("1"));
    assert_eq!(
        failures(&app, &rules()),
        vec![pair("company.currency", "currency")]
    );
}

#[test]
fn unknown_partner_type_is_refused_and_thresholds_are_skipped() {
    let app = set(agent(), "/partner_type", json!("reseller"));
    let app = set(app, "/exam_passers", json!(0));
    assert_eq!(
        failures(&app, &rules()),
        vec![pair("partner_type", "one_of")]
    );
}

#[test]
fn a_team_larger_than_the_company_is_refused() {
    let app = set(integration(), "/headcount/sales", json!(21));
    assert_eq!(
        failures(&app, &rules()),
        vec![pair("headcount.sales", "exceeds_total")]
    );
}

#[test]
fn unknown_fields_are_tolerated() {
    let app = put(agent(), "", "portal_version", json!("3.2"));
    let app = put(app, "/company", "website", json!("https://example.cn"));
    assert!(validate(&app, &rules(), today()).is_ok());
}

#[test]
fn unpaid_deposit_is_refused_only_when_the_programme_makes_it_hard() {
    let app = set(agent(), "/deposit_paid", json!("9999.99"));
    assert!(validate(&app, &rules(), today()).is_ok(), "soft by default");
    let hard = OnboardingRules {
        deposit_check: RuleStrength::Hard,
        ..rules()
    };
    assert_eq!(
        failures(&app, &hard),
        vec![pair("deposit_paid", "min_deposit")]
    );
    let missing = remove(agent(), "", "deposit_paid");
    assert_eq!(
        failures(&missing, &hard),
        vec![pair("deposit_paid", "min_deposit")]
    );
}

#[test]
fn complete_application_is_approved_automatically() {
    let r = rules();
    for json in [agent(), integration(), development()] {
        let app = validate(&json, &r, today()).expect("valid");
        assert_eq!(
            screen(&app, &r),
            Screening {
                auto_approve: true,
                reasons: vec![]
            }
        );
    }
}

#[test]
fn sensitive_relationship_declaration_goes_to_manual_review() {
    let r = rules();
    let json = put(
        integration(),
        "",
        "sensitive_relationship_declared",
        json!(true),
    );
    let app = validate(&json, &r, today()).expect("declaring is not a refusal");
    let s = screen(&app, &r);
    assert!(!s.auto_approve);
    assert_eq!(s.reasons.len(), 1);
    assert!(
        s.reasons[0].contains("sensitive relationship"),
        "{:?}",
        s.reasons
    );
}

#[test]
fn missing_document_and_unpaid_deposit_are_listed_as_reasons() {
    let r = rules();
    let json = set(
        agent(),
        "/documents",
        json!([{ "kind": "business_licence", "file_name": "l.pdf" }]),
    );
    let json = set(json, "/deposit_paid", json!("5000"));
    let app = validate(&json, &r, today()).expect("soft rules do not refuse");
    let s = screen(&app, &r);
    assert!(!s.auto_approve);
    assert_eq!(s.reasons.len(), 2, "{:?}", s.reasons);
    assert!(
        s.reasons[0].contains("bank_account_proof"),
        "{:?}",
        s.reasons
    );
    assert!(
        s.reasons[1].contains("CNY 5,000.00 paid of CNY 10,000.00"),
        "{:?}",
        s.reasons
    );
}

#[test]
fn micro_deposit_amount_is_deterministic_and_within_range() {
    let a = micro_deposit_amount("91350100M000100Y43", "salt-1");
    assert_eq!(a, micro_deposit_amount(" 91350100m000100y43 ", "salt-1"));
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..2000 {
        let amount = micro_deposit_amount(&format!("9135010{i:011}"), "salt-1");
        assert!(
            (MICRO_DEPOSIT_MIN..=MICRO_DEPOSIT_MAX).contains(&amount),
            "{amount}"
        );
        assert!(amount.scale() == 2, "{amount} is a whole number of fen");
        seen.insert(amount);
    }
    assert_eq!(seen.len(), 99, "every amount from 0.01 to 0.99 occurs");
    let salted = (0..20).any(|i| micro_deposit_amount("91350100M000100Y43", &format!("s{i}")) != a);
    assert!(salted, "the salt changes the amount");
}

#[test]
fn micro_deposit_locks_after_the_third_wrong_attempt() {
    let expected = dec("0.37");
    let mut check = MicroDepositCheck::default();
    assert_eq!(
        check.confirm(expected, dec("0.73"), 3),
        DepositOutcome::Retry { attempts_left: 2 }
    );
    assert_eq!(
        check.confirm(expected, dec("0.36"), 3),
        DepositOutcome::Retry { attempts_left: 1 }
    );
    assert_eq!(
        check.confirm(expected, dec("0.38"), 3),
        DepositOutcome::Locked
    );
    assert!(check.locked);
    assert_eq!(
        check.confirm(expected, expected, 3),
        DepositOutcome::Locked,
        "locked stays locked"
    );
    assert_eq!(check.attempts_used, 3);
}

#[test]
fn micro_deposit_verifies_on_the_right_amount_by_value() {
    let mut check = MicroDepositCheck::default();
    assert_eq!(
        check.confirm(dec("0.50"), dec("0.4"), 3),
        DepositOutcome::Retry { attempts_left: 2 }
    );
    assert_eq!(
        check.confirm(dec("0.50"), dec("0.5"), 3),
        DepositOutcome::Verified
    );
    assert_eq!(
        check.confirm(dec("0.50"), dec("0.1"), 3),
        DepositOutcome::Verified
    );
    assert_eq!(check.attempts_used, 1);
}

#[test]
fn application_round_trips_with_amounts_as_strings() {
    let app = validate(&development(), &rules(), today()).expect("valid");
    let json = serde_json::to_value(&app).expect("serialise");
    assert_eq!(json["company"]["registered_capital"], json!("10000000.00"));
    assert_eq!(json["deposit_paid"], json!("0"));
    assert_eq!(json["partner_type"], json!("development"));
    let back: Application = serde_json::from_value(json).expect("deserialise");
    assert_eq!(back, app);
}

#[test]
fn money_groups_thousands() {
    assert_eq!(money(dec("1000000"), "CNY"), "CNY 1,000,000.00");
    assert_eq!(money(dec("999.5"), "CNY"), "CNY 999.50");
    assert_eq!(money(dec("12345.678"), "CNY"), "CNY 12,345.68");
}
