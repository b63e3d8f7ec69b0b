//! The payloads in `examples/` are what the README and the walkthrough send: each one named
//! after a validator (`<validator>[.<variant>].json`) passes that validator, so they cannot
//! drift from the rules; the decision examples have a decision's shape.

use partnerflow::settings::Settings;
use partnerflow_core::BusinessCalendar;
use partnerflow_core::handler::ValidationContext;
use partnerflow_core::machine::InstanceState;
use partnerflow_core::validation::RecordFacts;
use serde_json::{Value, json};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// An instance as far as the validators that read one need it: a claim of 5,600.00 approved,
/// milestone 1 due.
fn instance() -> InstanceState {
    let mut state: InstanceState = serde_json::from_value(json!({
        "id": uuid::Uuid::nil(), "workflow_id": "example", "version": 1, "business_key": "k",
        "partner_id": "P-1002", "submitted_by": "P-1002/liu", "party": null, "parent": null,
        "status": { "state": "running" }, "step": "example", "seq": 1, "task": null, "data": {}
    }))
    .expect("instance");
    state.data.insert(
        "events".to_owned(),
        json!({ "claim_submitted": { "claimed_amount": "5600.00" } }),
    );
    state.data.insert(
        "steps".to_owned(),
        json!({ "next_milestone": { "number": 1 } }),
    );
    // A rebate statement of 212.00 with one line, for the statement's decisions.
    state.data.insert(
        "input".to_owned(),
        json!({ "statement_id": "s-1", "programme": "default", "partner_id": "P-1002",
                "period": "2026-11", "total": "212.00", "carried_in": "0", "payable": "212.00",
                "lines": [{ "n": 1, "family": "database", "amount": "212.00" }] }),
    );
    state
}

/// The handlers and validators the shipped settings register.
fn registry() -> partnerflow_core::handler::HandlerRegistry {
    let settings = Settings::load(std::path::Path::new("config")).expect("settings");
    partnerflow::app::registry(&settings, partnerflow::app::Providers::default().payments)
        .expect("registry")
}

fn programme() -> partnerflow_core::programme::Programme {
    partnerflow_core::programme::Programme::parse(include_str!("../../config/programme.toml"))
        .expect("programme")
}

/// The JSON payloads of `examples/`, by name.
fn json_examples() -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(EXAMPLES)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    entries
}

#[test]
fn every_example_passes_its_validator() {
    let registry = registry();
    let programme = programme();
    let calendar = BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai);
    let instance = instance();
    // The examples name their uploads `<attachment id>`, for a certified partner.
    let facts = RecordFacts::for_partner("P-1002")
        .certified()
        .with_upload("<attachment id>");
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    let mut checked = 0;
    for path in json_examples() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let validator = name.split('.').next().unwrap_or_default();
        if validator == "decision" {
            assert!(value["decision"].is_string(), "{name}: a decision");
            assert!(value["actor"]["id"].is_string(), "{name}: names its actor");
            checked += 1;
            continue;
        }
        if validator == "transactions" {
            checked += check_transactions(&value, &name);
            continue;
        }
        let (v, _) = registry
            .get_validator(validator)
            .unwrap_or_else(|| panic!("{name}: no validator `{validator}`"));
        let ctx = ValidationContext {
            programme: &programme,
            calendar: &calendar,
            today,
            instance: Some(&instance),
            facts: &facts,
        };
        if let Err(problems) = v(&value, &ctx) {
            panic!("{name} fails {validator}: {problems:?}");
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} examples");
}

/// Every row of the transaction examples (the JSON batch and the CSV file) passes the import's
/// row rules.
fn check_transactions(batch: &Value, name: &str) -> usize {
    use partnerflow_core::rebate::transactions::{Header, json_fields, parse_row};
    let tz = chrono_tz::Asia::Shanghai;
    let rows = batch["transactions"].as_array().expect("transactions");
    for (i, row) in rows.iter().enumerate() {
        let fields = json_fields(row);
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        if let Err(e) = parse_row(&Header::standard(), &fields, i + 1, tz) {
            panic!("{name} row {}: {e:?}", i + 1);
        }
    }
    let csv = std::fs::read_to_string(format!("{EXAMPLES}/transactions.csv")).expect("csv");
    let mut lines = csv.lines();
    let names: Vec<&str> = lines.next().expect("header").split(',').collect();
    let header = Header::parse(&names).expect("header");
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if let Err(e) = parse_row(&header, &fields, i + 2, tz) {
            panic!("transactions.csv row {}: {e:?}", i + 2);
        }
    }
    1
}

/// The README documents every workflow's input: each field a validator asks for (what it
/// names when given an empty input) and each field of its example appears in the README as
/// `field`, so the README cannot drop a field the code requires.
#[test]
fn the_readme_names_every_field_the_validators_ask_for() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    // Every identifier inside a `code span` or a fenced block of the README.
    let readme = readme.replace("```", "`");
    let named: std::collections::BTreeSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .filter(|w| !w.is_empty())
        .collect();
    let registry = registry();
    let programme = programme();
    let calendar = BusinessCalendar::weekdays_only(chrono_tz::Asia::Shanghai);
    let instance = instance();
    let facts = RecordFacts::for_partner("P-1002").certified();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    let mut missing = Vec::new();
    for path in json_examples() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let validator = name.split('.').next().unwrap_or_default();
        let Some((v, _)) = registry.get_validator(validator) else {
            continue;
        };
        let example: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let mut fields: Vec<String> = example
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let ctx = ValidationContext {
            programme: &programme,
            calendar: &calendar,
            today,
            instance: Some(&instance),
            facts: &facts,
        };
        if let Err(problems) = v(&serde_json::json!({}), &ctx) {
            fields.extend(
                problems
                    .iter()
                    .map(|p| p.field.split(['.', '[']).next().unwrap_or("").to_owned()),
            );
        }
        for f in fields.into_iter().filter(|f| !f.is_empty()) {
            if !named.contains(f.as_str()) && !missing.contains(&(validator.to_owned(), f.clone()))
            {
                missing.push((validator.to_owned(), f));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields the README does not name: {missing:?}"
    );
}
