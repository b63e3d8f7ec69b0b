use serde_json::{Value, json};

use super::*;

fn amounts(v: &Value) -> Vec<String> {
    v["schedule"]
        .as_array()
        .expect("schedule")
        .iter()
        .map(|m| m["amount"].as_str().expect("amount").to_owned())
        .collect()
}

fn known() -> RecordFacts {
    RecordFacts::for_partner("P-1001").with_upload("att-1")
}

/// An agreement payload with its signed document attached.
fn agreement(mut payload: Value) -> Result<Value, Vec<FieldError>> {
    payload["agreement_attachment"] = json!("att-1");
    validate_agreement(&payload, &known())
}

fn rules_of(r: Result<Value, Vec<FieldError>>) -> Vec<(String, String)> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.field, e.rule))
        .collect()
}

#[test]
fn ratios_are_rounded_per_milestone_and_the_last_takes_the_remainder() {
    let s = agreement(json!({ "total": "7.75", "milestones": [
        { "name": "Design", "ratio": "0.3" }, { "name": "Build", "ratio": "0.3" }, { "name": "Accept", "ratio": "0.4" }
    ] }))
    .expect("schedule");
    // 7.75 × 0.3 = 2.325 → 2.32 (banker's rounding, twice); 7.75 − 4.64 = 3.11.
    assert_eq!(amounts(&s), vec!["2.32", "2.32", "3.11"]);
    assert_eq!(s["count"], 3);
}

#[test]
fn three_equal_parts_of_100000_sum_exactly_to_100000() {
    let s = agreement(json!({ "total": "100000.00", "equal_parts": 3 })).expect("schedule");
    assert_eq!(amounts(&s), vec!["33333.33", "33333.33", "33333.34"]);
    let sum: Decimal = amounts(&s)
        .iter()
        .map(|a| a.parse::<Decimal>().expect("amount"))
        .sum();
    assert_eq!(sum, "100000.00".parse::<Decimal>().expect("total"));
}

#[test]
fn a_schedule_whose_ratios_or_amounts_do_not_add_up_is_refused() {
    assert_eq!(
        rules_of(agreement(json!({ "total": "100.00", "milestones": [
            { "ratio": "0.3" }, { "ratio": "0.3" }, { "ratio": "0.3" }
        ] }))),
        vec![("milestones".to_owned(), "sum".to_owned())]
    );
    assert_eq!(
        rules_of(agreement(json!({ "total": "100.00", "milestones": [
            { "amount": "50.00" }, { "amount": "49.99" }
        ] }))),
        vec![("milestones".to_owned(), "sum".to_owned())]
    );
    assert_eq!(
        rules_of(agreement(json!({ "total": "100.00", "milestones": [
            { "amount": "50.00" }, { "ratio": "0.5" }
        ] }))),
        vec![("milestones".to_owned(), "one_form".to_owned())]
    );
    let exact = agreement(json!({ "total": "100.00", "milestones": [
        { "amount": "50.00" }, { "amount": "50.00" }
    ] }))
    .expect("amounts that add up");
    assert_eq!(amounts(&exact), vec!["50.00", "50.00"]);
}

fn application() -> Value {
    json!({
        "partner_id": "P-1001", "project_id": "NRE-7", "project_name": "Data lake migration",
        "services": { "higher_order": ["GaussDB", "ModelArts", "DWS"], "key": ["CCE"] },
        "value_statement": "Moves 40 TB of analytics to the cloud.",
        "attachments": ["att-1"], "declaration_accepted": true
    })
}

#[test]
fn an_application_needs_three_higher_order_and_one_key_service_and_a_short_value_text() {
    let ok = validate_application(&application(), &NreRules::default(), &known()).expect("valid");
    assert_eq!(ok["ledger_account"], "nre:P-1001:NRE-7");
    let mut bad = application();
    bad["services"]["higher_order"] = json!(["GaussDB", "ModelArts"]);
    bad["services"]["key"] = json!([]);
    bad["value_statement"] = json!("值".repeat(1001));
    bad["declaration_accepted"] = json!(false);
    let got = rules_of(validate_application(&bad, &NreRules::default(), &known()));
    for expected in [
        ("services.higher_order", "min_higher_order_services"),
        ("services.key", "min_key_services"),
        ("value_statement", "max_chars"),
        ("declaration_accepted", "accepted"),
    ] {
        assert!(
            got.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {got:?}"
        );
    }
    let mut exactly = application();
    exactly["value_statement"] = json!("值".repeat(1000));
    assert!(
        validate_application(&exactly, &NreRules::default(), &known()).is_ok(),
        "1,000 characters, not bytes"
    );
}
