use super::*;

struct Known;

impl Registry for Known {
    fn has_handler(&self, name: &str) -> bool {
        ["work", "verify_business", "auto_screen"].contains(&name)
    }
    fn has_validator(&self, name: &str) -> bool {
        name == "check"
    }
}

const GOOD: &str = r#"
id = "flow"
version = 3
start = "a"
[[steps]]
id = "a"
kind = "automated"
handler = "work"
on.done = "review"
[[steps]]
id = "review"
kind = "human"
role = "legal"
sla = "10WD"
escalations = [{ at = "10WD", to = "escalation_target" }, { at = "15WD", to = "programme_director" }]
breach = "15WD"
on.approve = "end"
on.reject = { to = "end", notify = [{ to = "partner", template = "x.rejected", channels = ["email", "sms"] }] }
[[steps]]
id = "end"
kind = "end"
"#;

fn parse(text: &str) -> Result<WorkflowDefinition, Vec<DefinitionError>> {
    WorkflowDefinition::parse("flows/flow.toml", text, None, &Known)
}

#[track_caller]
fn rules(text: &str) -> Vec<(Option<String>, &'static str)> {
    parse(text)
        .expect_err("must be refused")
        .into_iter()
        .map(|e| (e.step, e.rule))
        .collect()
}

#[test]
fn a_valid_definition_parses_with_default_ladders() {
    let def = parse(GOOD).expect("valid");
    assert_eq!((def.id.as_str(), def.version), ("flow", 3));
    let StepKind::Human(h) = &def.steps["review"].kind else {
        panic!("human step")
    };
    assert_eq!(h.sla, Span::WorkingDays(10));
    assert_eq!(
        h.reminders,
        vec![Span::PercentOfSla(50), Span::PercentOfSla(80)]
    );
    assert_eq!(h.breach, Span::WorkingDays(15));
    assert_eq!(h.reason_required.iter().collect::<Vec<_>>(), vec!["reject"]);
    assert_eq!(
        def.steps["review"].on["reject"].notify[0].channels,
        vec![Channel::Email, Channel::Sms]
    );
}

#[test]
fn an_unknown_target_step_is_refused_naming_file_and_step() {
    let errs = parse(&GOOD.replace("on.approve = \"end\"", "on.approve = \"archive\""))
        .expect_err("refused");
    assert_eq!(errs[0].file, "flows/flow.toml");
    assert_eq!(
        (errs[0].step.as_deref(), errs[0].rule),
        (Some("review"), "unknown-target")
    );
    assert!(errs[0].to_string().contains("archive"), "{}", errs[0]);
}

#[test]
fn an_unreachable_step_is_refused() {
    let text = format!("{GOOD}\n[[steps]]\nid = \"orphan\"\nkind = \"end\"\n");
    assert_eq!(
        rules(&text),
        vec![(Some("orphan".to_owned()), "unreachable")]
    );
}

#[test]
fn an_unknown_handler_is_refused() {
    assert_eq!(
        rules(&GOOD.replace("handler = \"work\"", "handler = \"wrok\"")),
        vec![(Some("a".to_owned()), "unknown-handler")]
    );
}

#[test]
fn a_human_step_without_an_sla_is_refused() {
    assert_eq!(
        rules(&GOOD.replace("sla = \"10WD\"\n", "")),
        vec![(Some("review".to_owned()), "missing-sla")]
    );
}

#[test]
fn money_is_never_approved_by_silence() {
    let text = GOOD.replace(
        "breach = \"15WD\"",
        "breach = \"15WD\"\nmoves_money = true\nsilence = \"auto_confirm\"",
    );
    assert_eq!(
        rules(&text),
        vec![(Some("review".to_owned()), "money-by-silence")]
    );
}

#[test]
fn every_decision_needs_a_transition_and_several_problems_are_reported_together() {
    let text = GOOD.replace("on.reject = { to = \"end\", notify = [{ to = \"partner\", template = \"x.rejected\", channels = [\"email\", \"sms\"] }] }", "").replace("handler = \"work\"", "handler = \"nope\"");
    let got = rules(&text);
    assert!(
        got.contains(&(Some("review".to_owned()), "missing-transition")),
        "{got:?}"
    );
    assert!(
        got.contains(&(Some("a".to_owned()), "unknown-handler")),
        "{got:?}"
    );
}

#[test]
fn bad_durations_recipients_and_timers_are_named() {
    assert_eq!(
        rules(&GOOD.replace("sla = \"10WD\"", "sla = \"ten days\"")),
        vec![(Some("review".to_owned()), "bad-duration")]
    );
    assert_eq!(
        rules(&GOOD.replace("to = \"partner\"", "to = \"everyone\"")),
        vec![(Some("review".to_owned()), "bad-recipient")]
    );
    let timer = GOOD.replace(
        "kind = \"automated\"\nhandler = \"work\"\non.done",
        "kind = \"timer\"\nuntil = \"13-01\"\non.elapsed",
    );
    assert!(rules(&timer).contains(&(Some("a".to_owned()), "bad-timer")));
}

#[test]
fn programme_overrides_apply_before_validation() {
    let over: toml::Table = toml::from_str("[flow.steps.review]\nsla = \"4WD\"").expect("toml");
    let def = WorkflowDefinition::parse("f", GOOD, Some(&over), &Known).expect("valid");
    let StepKind::Human(h) = &def.steps["review"].kind else {
        panic!("human step")
    };
    assert_eq!(h.sla, Span::WorkingDays(4));
    assert_ne!(
        def.fingerprint,
        parse(GOOD).expect("valid").fingerprint,
        "an override changes the fingerprint"
    );
    let bad: toml::Table = toml::from_str("[flow.steps.review]\nsla = \"soon\"").expect("toml");
    assert!(
        WorkflowDefinition::parse("f", GOOD, Some(&bad), &Known).is_err(),
        "an override cannot make a definition invalid"
    );
    let ghost: toml::Table = toml::from_str("[flow.steps.ghost]\nsla = \"4WD\"").expect("toml");
    let errs =
        WorkflowDefinition::parse("f", GOOD, Some(&ghost), &Known).expect_err("unknown step");
    assert_eq!(errs[0].rule, "override");
    let other: toml::Table = toml::from_str("[other.steps.review]\nsla = \"soon\"").expect("toml");
    assert!(
        WorkflowDefinition::parse("f", GOOD, Some(&other), &Known).is_ok(),
        "another workflow's overrides do not apply"
    );
}

#[test]
fn the_shipped_definitions_validate() {
    for (file, text) in [
        (
            "partner_onboarding.toml",
            include_str!("../../../../workflows/partner_onboarding.toml"),
        ),
        (
            "contract_signing.toml",
            include_str!("../../../../workflows/contract_signing.toml"),
        ),
        (
            "reference/approval.toml",
            include_str!("../../../../workflows/reference/approval.toml"),
        ),
    ] {
        if let Err(e) = WorkflowDefinition::parse(file, text, None, &AnyNames) {
            panic!("{e:?}");
        }
    }
}

#[test]
fn recorded_standing_and_accepted_events_are_checked() {
    let record = GOOD.replace(
        r#"on.done = "review""#,
        r#"on.done = { to = "review", record = { business_info = "certified" } }"#,
    );
    let def = parse(&record).expect("valid");
    assert_eq!(
        def.steps["a"].on["done"].record["business_info"],
        "certified"
    );
    let bad = GOOD.replace(
        r#"on.done = "review""#,
        r#"on.done = { to = "review", record = { "Business Info" = "ok!" } }"#,
    );
    assert_eq!(rules(&bad), vec![(Some("a".to_owned()), "bad-record")]);
    let accepts = GOOD.replace(
        r#"on.done = "review""#,
        "on.done = \"review\"\naccepts = [{ event = \"held\", validator = \"check\" }]",
    );
    assert_eq!(
        parse(&accepts).expect("valid").steps["a"].accepts[0].event,
        "held"
    );
    let unknown = accepts.replace(r#"validator = "check""#, r#"validator = "nope""#);
    assert_eq!(
        rules(&unknown),
        vec![(Some("a".to_owned()), "unknown-validator")]
    );
    let leaving = accepts.replace(r#"event = "held""#, r#"event = "done""#);
    assert_eq!(
        rules(&leaving),
        vec![(Some("a".to_owned()), "accepted-event")]
    );
}
