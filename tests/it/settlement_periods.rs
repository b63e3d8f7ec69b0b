//! Settlement across periods: a payable below the threshold carried into the next statement,
//! late transactions as adjustments, refunds of a settled month as clawback lines at that
//! month's rate, silence confirming after 5 WD, a policy change mid-month, and missed
//! periods caught up.

use partnerflow::harness::Harness;
use partnerflow_core::rebate::policy::{Policy, PolicySet};
use partnerflow_core::rebate::{Period, SettlementRules};
use partnerflow_settlement::Settlement;
use serde_json::Value;
use uuid::Uuid;

use crate::on_both_backends;
use crate::settlement::{d, import, partners, settlement};

fn period(s: &str) -> Period {
    s.parse().expect("period")
}

async fn statement(
    h: &Harness,
    partner: &str,
    p: &str,
) -> partnerflow_store::settlement::Statement {
    let mut conn = h.engine.store().acquire().await.expect("conn");
    let mut list =
        partnerflow_store::settlement::statements(&mut conn, "default", Some(partner), Some(p), 10)
            .await
            .expect("statements");
    assert_eq!(list.len(), 1, "{partner} {p}");
    list.remove(0)
}

fn instance(s: &partnerflow_store::settlement::Statement) -> Uuid {
    s.instance_id
        .as_deref()
        .expect("started")
        .parse()
        .expect("uuid")
}

fn kinds(s: &partnerflow_store::settlement::Statement) -> Vec<(String, String)> {
    s.lines
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["kind"].as_str().unwrap_or("").to_owned(),
                l["amount"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn a_payable_below_the_threshold_is_carried_into_the_next_statement(h: Harness) {
    partners(&h).await;
    // Marketplace at 10 %, no sales tax: 9,433.87 × 10 % × 1.06 = 999.99022 → 999.99.
    import(
        &h,
        &["crm,O-1,P-1001,C-1,mkt,marketplace,9433.87,CNY,0,purchase,2026-10-05 10:00:00,"],
    )
    .await;
    let s = settlement(&h, SettlementRules::default());
    h.advance_to(partnerflow::harness::shanghai(2026, 11, 10, 3, 0))
        .await
        .expect("advance");
    s.settle(period("2026-10"), &mut |_| {})
        .await
        .expect("October");
    h.settle().await.expect("settle");
    let october = statement(&h, "P-1001", "2026-10").await;
    assert_eq!(october.payable, d("999.99"));
    let id = instance(&october);
    h.decide(id, "P-1001/zhang", "confirm", None, Value::Null)
        .await
        .expect("confirm");
    assert_eq!(
        h.view(id).await.expect("view").status,
        "carried",
        "999.99 is below 1,000.00"
    );
    // November: 106.00 of database (100.00 × 20 % × 1.06 = 21.20) plus the carry.
    import(
        &h,
        &["crm,O-2,P-1001,C-1,rds,database,106.00,CNY,0.06,purchase,2026-11-05 10:00:00,"],
    )
    .await;
    h.advance_to(partnerflow::harness::shanghai(2026, 12, 10, 3, 0))
        .await
        .expect("advance");
    s.settle(period("2026-11"), &mut |_| {})
        .await
        .expect("November");
    let november = statement(&h, "P-1001", "2026-11").await;
    assert_eq!(
        (november.total, november.carried_in, november.payable),
        (d("21.20"), d("999.99"), d("1021.19"))
    );
    let october = statement(&h, "P-1001", "2026-10").await;
    assert_eq!(
        october.carried_into.as_deref(),
        Some("2026-11"),
        "taken in once"
    );
    h.settle().await.expect("settle");
    h.decide(
        instance(&november),
        "P-1001/zhang",
        "confirm",
        None,
        Value::Null,
    )
    .await
    .expect("confirm");
    assert_eq!(
        h.view(instance(&november))
            .await
            .expect("view")
            .current_steps,
        vec!["await_invoice"]
    );
    // An ordinary invoice for the payable is paid at 94 %: 1,021.19 × 0.94 = 959.9186 → 959.92.
    let scan = h
        .upload("P-1001", "mdf_claim", "invoice.pdf", b"%PDF")
        .await
        .expect("upload");
    let ordinary = serde_json::json!({ "kind": "ordinary", "number": "R-2", "amount": "1021.19",
                                       "attachment": scan, "consent_to_deduction": true });
    h.decide(
        instance(&november),
        "P-1001/zhang",
        "submit",
        None,
        ordinary,
    )
    .await
    .expect("ordinary invoice");
    let v = h.view(instance(&november)).await.expect("view");
    assert_eq!(
        v.data["steps"]["await_invoice"]["data"]["payout_amount"],
        "959.92"
    );
}
on_both_backends!(
    a_payable_below_the_threshold_is_carried_into_the_next_statement,
    shanghai(2026, 10, 1, 10, 0)
);

async fn late_transactions_and_refunds_of_a_settled_month_land_in_the_next(h: Harness) {
    partners(&h).await;
    // October: 1,060,000.00 of compute = 1,000,000.00 net reaches tier 3 (15 %).
    import(
        &h,
        &["crm,O-1,P-1001,C-1,ecs,compute,1060000.00,CNY,0.06,purchase,2026-10-05 10:00:00,"],
    )
    .await;
    let s = settlement(&h, SettlementRules::default());
    h.advance_to(partnerflow::harness::shanghai(2026, 11, 10, 3, 0))
        .await
        .expect("advance");
    s.settle(period("2026-10"), &mut |_| {})
        .await
        .expect("October");
    assert_eq!(
        statement(&h, "P-1001", "2026-10").await.total,
        d("159000.00")
    );
    // Imported after October was settled: an October order (late), a November refund of the
    // October order, and a November purchase.
    import(
        &h,
        &[
            "crm,O-2,P-1001,C-1,ecs,compute,10600.00,CNY,0.06,purchase,2026-10-30 10:00:00,",
            "crm,O-3,P-1001,C-1,ecs,compute,-106000.00,CNY,0.06,refund,2026-11-12 10:00:00,O-1",
            "crm,O-4,P-1001,C-1,ecs,compute,10600.00,CNY,0.06,purchase,2026-11-13 10:00:00,",
        ],
    )
    .await;
    h.advance_to(partnerflow::harness::shanghai(2026, 12, 10, 3, 0))
        .await
        .expect("advance");
    s.settle(period("2026-11"), &mut |_| {})
        .await
        .expect("November");
    let november = statement(&h, "P-1001", "2026-11").await;
    // November's own 10,000.00 net at tier 1 (5 %) × 1.06 = 530.00; the late October order at
    // October's 15 %: 1,590.00; the refund of October's order at 15 %: −100,000.00 → −15,900.00.
    assert_eq!(
        kinds(&november),
        vec![
            ("current".to_owned(), "530.00".to_owned()),
            ("adjustment".to_owned(), "1590.00".to_owned()),
            ("clawback".to_owned(), "-15900.00".to_owned()),
        ]
    );
    assert_eq!(november.total, d("-13780.00"));
    // October's statement is untouched, and not settled again.
    assert_eq!(
        statement(&h, "P-1001", "2026-10").await.total,
        d("159000.00")
    );
    h.settle().await.expect("settle");
    h.decide(
        instance(&november),
        "P-1001/zhang",
        "confirm",
        None,
        Value::Null,
    )
    .await
    .expect("confirm");
    assert_eq!(
        h.view(instance(&november)).await.expect("view").status,
        "carried",
        "a negative statement is carried against what comes"
    );
}
on_both_backends!(
    late_transactions_and_refunds_of_a_settled_month_land_in_the_next,
    shanghai(2026, 10, 1, 10, 0)
);

async fn silence_confirms_a_statement_after_5_working_days(h: Harness) {
    partners(&h).await;
    import(
        &h,
        &["crm,O-1,P-1001,C-1,rds,database,31800.00,CNY,0.06,purchase,2026-09-20 10:00:00,"],
    )
    .await;
    let s = settlement(&h, SettlementRules::default());
    // Published on Friday 9 October, after National Day: Saturday 10 October is a make-up
    // working day, so the 5th working day ends on Thursday 15 October.
    h.advance_to(partnerflow::harness::shanghai(2026, 10, 9, 10, 0))
        .await
        .expect("advance");
    s.settle(period("2026-09"), &mut |_| {})
        .await
        .expect("September");
    h.settle().await.expect("settle");
    let st = statement(&h, "P-1001", "2026-09").await;
    let id = instance(&st);
    let due = h.view(id).await.expect("view").tasks[0].due_at;
    h.advance_to(due - chrono::Duration::minutes(1))
        .await
        .expect("advance");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["partner_reconcile"]
    );
    h.advance_to(due + chrono::Duration::minutes(1))
        .await
        .expect("advance");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["await_invoice"],
        "confirmed by silence at {due}"
    );
    assert_eq!(
        due,
        partnerflow::harness::shanghai(2026, 10, 15, 10, 0),
        "5 WD after Friday 9 October 10:00, counting the make-up Saturday"
    );
}
on_both_backends!(
    silence_confirms_a_statement_after_5_working_days,
    shanghai(2026, 9, 1, 10, 0)
);

fn policy(version: u32, from: &str, rate: &str) -> Policy {
    let text = format!(
        "id = \"base-monthly\"\nversion = {version}\neffective_from = \"{from}\"\npartner_invoice_rate = \"0\"\n[[families]]\nfamily = \"marketplace\"\nrate = \"{rate}\"\n"
    );
    Policy::parse("test", &text).expect("policy")
}

async fn a_policy_change_mid_month_prices_each_part_by_its_version(h: Harness) {
    partners(&h).await;
    import(
        &h,
        &[
            "crm,O-1,P-1001,C-1,mkt,marketplace,1000.00,CNY,0,purchase,2026-11-15 23:59:59,",
            "crm,O-2,P-1001,C-1,mkt,marketplace,1000.00,CNY,0,purchase,2026-11-16 00:00:00,",
        ],
    )
    .await;
    let set = PolicySet::new(vec![
        policy(1, "2026-01-01", "0.10"),
        policy(2, "2026-11-16", "0.20"),
    ])
    .expect("set");
    let s = Settlement::new(h.engine.clone(), "default", SettlementRules::default(), set);
    s.settle(period("2026-11"), &mut |_| {})
        .await
        .expect("settle");
    let st = statement(&h, "P-1001", "2026-11").await;
    let lines: Vec<(u64, String)> = st
        .lines
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["policy_version"].as_u64().unwrap_or(0),
                l["amount"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![(1, "100.00".to_owned()), (2, "200.00".to_owned())]
    );
}
on_both_backends!(
    a_policy_change_mid_month_prices_each_part_by_its_version,
    shanghai(2026, 12, 10, 3, 0)
);

async fn missed_months_are_caught_up_when_the_service_comes_back(h: Harness) {
    partners(&h).await;
    import(
        &h,
        &[
            "crm,O-1,P-1001,C-1,rds,database,106.00,CNY,0.06,purchase,2026-09-05 10:00:00,",
            "crm,O-2,P-1001,C-1,rds,database,212.00,CNY,0.06,purchase,2026-10-05 10:00:00,",
        ],
    )
    .await;
    let rules = SettlementRules {
        first_period: Some(period("2026-09")),
        ..SettlementRules::default()
    };
    let s = settlement(&h, rules);
    // The service was down on 10 October and 10 November; it is back on 20 November.
    let runs = s.settle_due().await.expect("due");
    let periods: Vec<&str> = runs.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(periods, vec!["2026-09", "2026-10"]);
    assert_eq!(statement(&h, "P-1001", "2026-10").await.total, d("42.40"));
    assert!(
        s.settle_due().await.expect("again").is_empty(),
        "nothing left to catch up"
    );
}
on_both_backends!(
    missed_months_are_caught_up_when_the_service_comes_back,
    shanghai(2026, 11, 20, 10, 0)
);
