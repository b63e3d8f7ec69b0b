use super::*;
use crate::rebate::policy::Policy;

const POLICY: &str = r#"
id = "base-monthly"
version = 1
effective_from = "2026-01-01"
partner_invoice_rate = "0.03"
[[families]]
family = "compute"
tiers = [{ from = "0", rate = "0.05" }, { from = "100000.00", rate = "0.10" }]
[[families]]
family = "marketplace"
rate = "0.10"
[[families]]
family = "domains"
strategy = "performance_no_rebate"
[[families]]
family = "support"
strategy = "no_performance_no_rebate"
"#;

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn sum(family: &str, segment: usize, amount: &str, kind: LineKind) -> Sum {
    Sum {
        family: family.to_owned(),
        segment,
        tax_rate: d("0.06"),
        kind,
        amount: d(amount),
        count: 1,
    }
}

fn run(
    sums: &[Sum],
    segments: &[&Policy],
    earlier: &BTreeMap<(Period, String), EarlierRate>,
) -> Computed {
    let ctx = Context {
        segments,
        partner_type: None,
        invoice_rate: None,
        earlier,
    };
    compute(sums, &ctx)
}

#[test]
fn the_seeds_line_85_at_10_percent_grossed_up_at_3_percent_is_8_26() {
    let p = Policy::parse("p", POLICY).expect("policy");
    let c = run(
        &[sum("marketplace", 0, "85.00", LineKind::Current)],
        &[&p],
        &BTreeMap::new(),
    );
    assert_eq!(
        c.lines[0].amount,
        d("8.26"),
        "85.00 / 1.06 × 10 % × 1.03 = 8.2594"
    );
    assert_eq!(c.lines[0].rate, d("0.10"));
    assert_eq!(c.total, d("8.26"));
    // Its amount without the partner's 3 % invoice tax: 8.26 / 1.03 = 8.0194 → 8.02.
    assert_eq!(c.lines[0].amount_excl, d("8.02"));
    assert_eq!(
        without_tax(d("3.10"), d("0.03")),
        d("3.01"),
        "the seeds' 3.10 incl. at 3 %"
    );
}

#[test]
fn a_line_is_rounded_once_with_bankers_rounding() {
    // 24.645 / 1.06 × 10 % × 1.00 = 2.325 exactly → 2.32, not 2.33.
    let p = Policy::parse("p", &POLICY.replace("\"0.03\"", "\"0\"")).expect("policy");
    let mut s = sum("marketplace", 0, "24.645", LineKind::Current);
    s.tax_rate = d("0.06");
    let c = run(&[s], &[&p], &BTreeMap::new());
    assert_eq!(c.lines[0].performance, d("23.25"));
    assert_eq!(c.lines[0].amount, d("2.32"));
    // Two sums of one family and segment are one line, rounded once: 2 × 1.1625 = 2.325.
    let halves = [
        sum("marketplace", 0, "12.3225", LineKind::Current),
        sum("marketplace", 0, "12.3225", LineKind::Current),
    ];
    let c = run(&halves, &[&p], &BTreeMap::new());
    assert_eq!((c.lines.len(), c.lines[0].amount), (1, d("2.32")));
}

#[test]
fn refunds_net_within_the_month_and_the_tier_follows_the_net() {
    let p = Policy::parse("p", POLICY).expect("policy");
    // 106,000.00 incl. = 100,000.00 net reaches tier 2; a refund of 10,600.00 brings it below.
    let reached = run(
        &[sum("compute", 0, "106000.00", LineKind::Current)],
        &[&p],
        &BTreeMap::new(),
    );
    assert_eq!(
        (reached.lines[0].tier, reached.lines[0].rate),
        (2, d("0.10"))
    );
    let refunded = run(
        &[
            sum("compute", 0, "106000.00", LineKind::Current),
            sum("compute", 0, "-10600.00", LineKind::Current),
        ],
        &[&p],
        &BTreeMap::new(),
    );
    assert_eq!(refunded.lines.len(), 1, "one line: the refund nets");
    assert_eq!(
        (refunded.lines[0].tier, refunded.lines[0].rate),
        (1, d("0.05"))
    );
    // 90,000.00 × 5 % × 1.03 = 4,635.00
    assert_eq!(refunded.lines[0].amount, d("4635.00"));
}

#[test]
fn a_refund_of_a_settled_month_is_a_negative_line_at_that_months_rate() {
    let p = Policy::parse("p", POLICY).expect("policy");
    let october: Period = "2026-10".parse().expect("period");
    let earlier = BTreeMap::from([(
        (october, "compute".to_owned()),
        EarlierRate {
            rate: d("0.10"),
            tier: 2,
            policy_id: "base-monthly".to_owned(),
            policy_version: 1,
        },
    )]);
    let c = run(
        &[
            sum("compute", 0, "1060.00", LineKind::Current),
            sum(
                "compute",
                0,
                "-530.00",
                LineKind::Clawback { original: october },
            ),
        ],
        &[&p],
        &earlier,
    );
    assert_eq!(c.lines.len(), 2);
    let clawback = &c.lines[1];
    assert_eq!(clawback.kind, LineKind::Clawback { original: october });
    // −500.00 × 10 % × 1.03 = −51.50, at October's tier-2 rate; the month's own line is at 5 %.
    assert_eq!((clawback.rate, clawback.amount), (d("0.10"), d("-51.50")));
    assert_eq!(c.lines[0].amount, d("51.50"));
    assert_eq!(c.total, Decimal::ZERO);
}

#[test]
fn a_policy_change_mid_month_prices_each_segment_by_its_version() {
    let v1 = Policy::parse("v1", POLICY).expect("v1");
    let v2 = Policy::parse(
        "v2",
        &POLICY
            .replace("version = 1", "version = 2")
            .replace("rate = \"0.10\"", "rate = \"0.20\""),
    )
    .expect("v2");
    let c = run(
        &[
            sum("marketplace", 0, "106.00", LineKind::Current),
            sum("marketplace", 1, "106.00", LineKind::Current),
        ],
        &[&v1, &v2],
        &BTreeMap::new(),
    );
    let by_version: Vec<(u32, Decimal)> = c
        .lines
        .iter()
        .map(|l| (l.policy_version, l.amount))
        .collect();
    // 100.00 × 10 % × 1.03 = 10.30; 100.00 × 20 % × 1.03 = 20.60.
    assert_eq!(by_version, vec![(1, d("10.30")), (2, d("20.60"))]);
}

#[test]
fn families_without_rebate_earn_nothing_and_those_without_performance_are_left_out() {
    let p = Policy::parse("p", POLICY).expect("policy");
    let c = run(
        &[
            sum("domains", 0, "500.00", LineKind::Current),
            sum("support", 0, "500.00", LineKind::Current),
        ],
        &[&p],
        &BTreeMap::new(),
    );
    assert_eq!(c.lines.len(), 1);
    assert_eq!(
        (c.lines[0].family.as_str(), c.lines[0].amount),
        ("domains", d("0.00"))
    );
}
