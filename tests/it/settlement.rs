//! Monthly rebate settlement end to end: transactions imported once (a bad file refused whole),
//! a period settled once per partner whatever re-runs, statements computed from the policy
//! with hand-checked figures, and the statement workflow from publication to payment.

use std::collections::BTreeSet;

use partnerflow::harness::Harness;
use partnerflow_core::rebate::{Period, SettlementRules};
use partnerflow_settlement::Settlement;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both_backends;

pub(crate) const HEADER: &str = "source,order_id,partner_id,customer_id,product,family,amount,currency,tax_rate,kind,booked_at,original_order_id";

pub(crate) fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

pub(crate) fn settlement(h: &Harness, rules: SettlementRules) -> Settlement {
    let settings =
        partnerflow::settings::Settings::load(std::path::Path::new("config")).expect("settings");
    let policies = partnerflow::app::policies(&settings).expect("policies");
    Settlement::new(h.engine.clone(), "default", rules, policies)
}

pub(crate) async fn import(
    h: &Harness,
    rows: &[&str],
) -> partnerflow_settlement::import::ImportReport {
    let text = format!("{HEADER}\n{}\n", rows.join("\n"));
    try_import(h, &text, false).await.expect("import")
}

pub(crate) async fn try_import(
    h: &Harness,
    text: &str,
    skip_invalid: bool,
) -> partnerflow_settlement::Result<partnerflow_settlement::import::ImportReport> {
    let mut progress = |_: u64, _: u64| {};
    let opts = partnerflow_settlement::import::Options {
        skip_invalid,
        rejects: None,
        timezone: chrono_tz::Asia::Shanghai,
        progress: &mut progress,
    };
    partnerflow_settlement::import::csv(h.engine.store(), text.as_bytes(), opts, h.now()).await
}

async fn transactions(h: &Harness) -> i64 {
    let mut conn = h.engine.store().acquire().await.expect("conn");
    partnerflow_store::transactions::count(&mut conn)
        .await
        .expect("count")
}

async fn a_file_with_a_bad_row_is_refused_whole_and_a_second_import_imports_nothing(h: Harness) {
    let good = "crm,O-1,P-1001,C-1,ecs.c7,compute,106.00,CNY,0.06,purchase,2026-11-03 10:00:00,";
    let bad = "crm,O-2,P-1001,C-1,ecs.c7,compute,12.345,CNY,0.06,purchase,2026-11-31 10:00:00,";
    let text = format!("{HEADER}\n{good}\n{bad}\n");
    let refused = try_import(&h, &text, false).await.expect_err("refused");
    let message = refused.to_string();
    assert!(message.contains("row 3 amount"), "{message}");
    assert!(message.contains("row 3 booked_at"), "{message}");
    assert_eq!(transactions(&h).await, 0, "nothing imported");
    // Skipping bad rows imports the rest and writes the bad one to the reject report.
    let mut rejects = Vec::new();
    let mut progress = |_: u64, _: u64| {};
    let opts = partnerflow_settlement::import::Options {
        skip_invalid: true,
        rejects: Some(&mut rejects),
        timezone: chrono_tz::Asia::Shanghai,
        progress: &mut progress,
    };
    let report =
        partnerflow_settlement::import::csv(h.engine.store(), text.as_bytes(), opts, h.now())
            .await
            .expect("skip invalid");
    assert_eq!((report.rows, report.imported, report.rejected), (2, 1, 1));
    assert_eq!(report.errors[0].row, 3);
    let written = String::from_utf8(rejects).expect("utf-8");
    assert!(written.starts_with("3,amount,"), "{written}");
    assert!(written.contains("3,booked_at,"), "{written}");
    // The same file again: its good row is recorded already.
    let again = try_import(&h, &text, true).await.expect("again");
    assert_eq!((again.imported, again.duplicates), (0, 1));
    assert_eq!(transactions(&h).await, 1);
    // A file that repeats an order, and names one recorded already, imports each new order once.
    let repeat = "crm,O-3,P-1001,C-1,ecs.c7,compute,50.00,CNY,0.06,purchase,2026-11-04 10:00:00,";
    let text = format!("{HEADER}\n{good}\n{repeat}\n{repeat}\n");
    let report = try_import(&h, &text, false).await.expect("repeats");
    assert_eq!((report.rows, report.imported, report.duplicates), (3, 1, 2));
    assert_eq!(transactions(&h).await, 2);
    // A header without a required column refuses the file at row 1.
    let no_amount = "source,order_id\ncrm,O-9\n";
    let refused = try_import(&h, no_amount, false).await.expect_err("header");
    assert!(refused.to_string().contains("row 1"), "{refused}");
}
on_both_backends!(
    a_file_with_a_bad_row_is_refused_whole_and_a_second_import_imports_nothing,
    shanghai(2026, 12, 2, 10, 0)
);

/// P-1001 (integration) and P-1002 (development) certified, their types recorded.
pub(crate) async fn partners(h: &Harness) {
    h.certify_business("P-1001", "P-1001/zhang")
        .await
        .expect("P-1001");
    let app = partnerflow::harness::application("P-1002", "development", "P-1002/liu");
    h.apply(app).await.expect("P-1002");
    h.settle().await.expect("settle");
}

fn november() -> Period {
    "2026-11".parse().expect("period")
}

async fn statement_of(
    h: &Harness,
    s: &Settlement,
    partner: &str,
    period: Period,
) -> partnerflow_store::settlement::Statement {
    let mut conn = h.engine.store().acquire().await.expect("conn");
    let mut list = partnerflow_store::settlement::statements(
        &mut conn,
        s.programme(),
        Some(partner),
        Some(&period.to_string()),
        10,
    )
    .await
    .expect("statements");
    assert_eq!(list.len(), 1, "one statement for {partner} {period}");
    list.remove(0)
}

async fn a_month_is_settled_once_per_partner_with_hand_checked_figures(h: Harness) {
    partners(&h).await;
    import(
        &h,
        &[
            // P-1001, compute: 127,200.00 incl. = 120,000.00 net → tier 2 (10 %), less a refund
            // of 21,200.00 incl. in the month = 100,000.00 net, still tier 2.
            "crm,O-1,P-1001,C-1,ecs,compute,127200.00,CNY,0.06,purchase,2026-11-03 10:00:00,",
            "crm,O-2,P-1001,C-1,ecs,compute,-21200.00,CNY,0.06,refund,2026-11-20 10:00:00,O-1",
            // Database 10,600.00 incl. = 10,000.00 at 20 % × 1.06 = 2,120.00.
            "crm,O-3,P-1001,C-2,rds,database,10600.00,CNY,0.06,purchase,2026-11-05 10:00:00,",
            // P-1002, development: database at 40 %: 1,060.00 → 1,000.00 × 40 % × 1.06 = 424.00.
            "crm,O-4,P-1002,C-3,rds,database,1060.00,CNY,0.06,purchase,2026-11-30 23:59:59,",
            // December: not in November's statement.
            "crm,O-5,P-1002,C-3,rds,database,5000.00,CNY,0.06,purchase,2026-12-01 00:00:00,",
        ],
    )
    .await;
    let s = settlement(&h, SettlementRules::default());
    let refused = s
        .settle("2026-12".parse().expect("period"), &mut |_| {})
        .await;
    assert!(refused.is_err(), "December is not over");
    // Two runs of the period at once: one run, one statement per partner.
    let (mut quiet_a, mut quiet_b) = (|_| {}, |_| {});
    let (a, b) = tokio::join!(
        s.settle(november(), &mut quiet_a),
        s.settle(november(), &mut quiet_b)
    );
    let (run, other) = (a.expect("settle"), b.expect("concurrent settle"));
    assert_eq!(run.id, other.id, "one run of the period");
    assert_eq!((run.status.as_str(), run.statements), ("finished", 2));
    let p1 = statement_of(&h, &s, "P-1001", november()).await;
    let amounts: Vec<(String, String, u64)> = p1
        .lines
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["family"].as_str().unwrap_or("").to_owned(),
                l["amount"].as_str().unwrap_or("").to_owned(),
                l["tier"].as_u64().unwrap_or(9),
            )
        })
        .collect();
    // 100,000.00 × 10 % × 1.06 = 10,600.00
    assert_eq!(
        amounts,
        vec![
            ("compute".to_owned(), "10600.00".to_owned(), 2),
            ("database".to_owned(), "2120.00".to_owned(), 0)
        ]
    );
    assert_eq!(p1.total, d("12720.00"));
    let p2 = statement_of(&h, &s, "P-1002", november()).await;
    assert_eq!(
        p2.total,
        d("424.00"),
        "the development partner's database rate"
    );
    assert_eq!(run.total, d("13144.00"));
    // Run again: nothing new, the same figures.
    let again = s.settle(november(), &mut |_| {}).await.expect("re-run");
    assert_eq!(
        (again.id.as_str(), again.statements, again.total),
        (run.id.as_str(), 2, d("13144.00"))
    );
    let mut conn = h.engine.store().acquire().await.expect("conn");
    let all = partnerflow_store::settlement::statements(&mut conn, "default", None, None, 100)
        .await
        .expect("all");
    assert_eq!(all.len(), 2);
    drop(conn);
    h.settle().await.expect("settle");
    let workflows = h
        .engine
        .instances(
            partnerflow_engine::Listing {
                workflow: Some("rebate_settlement"),
                ..Default::default()
            },
            10,
        )
        .await
        .expect("instances");
    assert_eq!(workflows.len(), 2, "one statement workflow per partner");
    let id: Uuid = p1
        .instance_id
        .as_deref()
        .expect("started")
        .parse()
        .expect("uuid");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["partner_reconcile"]
    );
    // The line explained: its policy, tier and the transactions it came from.
    let why = s.explain(&p1.id, 1).await.expect("explain").expect("line");
    assert!(
        why.formula.contains("base-monthly v1, tier 2"),
        "{}",
        why.formula
    );
    let orders: BTreeSet<String> = why
        .transactions
        .iter()
        .map(|t| t.order_id.clone())
        .collect();
    assert_eq!(orders, BTreeSet::from(["O-1".to_owned(), "O-2".to_owned()]));
}
on_both_backends!(
    a_month_is_settled_once_per_partner_with_hand_checked_figures,
    shanghai(2026, 12, 10, 2, 0)
);

async fn the_statement_workflow_confirms_invoices_and_pays(h: Harness) {
    partners(&h).await;
    import(
        &h,
        &["crm,O-1,P-1001,C-1,rds,database,31800.00,CNY,0.06,purchase,2026-11-03 10:00:00,"],
    )
    .await;
    let s = settlement(&h, SettlementRules::default());
    s.settle(november(), &mut |_| {}).await.expect("settle");
    h.settle().await.expect("settle");
    let st = statement_of(&h, &s, "P-1001", november()).await;
    // 30,000.00 × 20 % × 1.06 = 6,360.00
    assert_eq!(st.payable, d("6360.00"));
    let id: Uuid = st
        .instance_id
        .as_deref()
        .expect("started")
        .parse()
        .expect("uuid");
    // A dispute names existing lines; channel ops corrects line 1; the partner confirms.
    let bad = h
        .decide(
            id,
            "P-1001/zhang",
            "dispute",
            Some("wrong"),
            json!({ "lines": [7] }),
        )
        .await;
    assert!(bad.is_err(), "line 7 does not exist");
    h.decide(
        id,
        "P-1001/zhang",
        "dispute",
        Some("O-1 was 32,860.00"),
        json!({ "lines": [1] }),
    )
    .await
    .expect("dispute");
    h.decide(
        id,
        "ops.he",
        "resolve",
        Some("order O-1 corrected"),
        json!({ "corrections": [{ "n": 1, "amount": "6572.00" }] }),
    )
    .await
    .expect("corrected");
    // The console's settlement page counts the disputed statement.
    let api = crate::http::Api::new(&h);
    let login = axum::http::Request::post("/ui/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("token=dev-operator-token"))
        .expect("request");
    let (_, headers, _) = api.raw(login).await;
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session")
        .to_owned();
    let page = axum::http::Request::get("/ui/settlement?period=2026-11")
        .header("cookie", cookie)
        .body(axum::body::Body::empty())
        .expect("request");
    let (status, _, page) = api.raw(page).await;
    assert_eq!(status.as_u16(), 200, "{page}");
    assert!(page.contains(r#"<span id="disputes">1</span>"#), "{page}");
    assert!(page.contains("P-1001"), "{page}");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["partner_reconcile"]
    );
    h.decide(id, "P-1001/zhang", "confirm", None, Value::Null)
        .await
        .expect("confirm");
    let account = "rebate:P-1001:2026-11";
    let (b, _) = h.engine.ledger_account(account).await.expect("account");
    assert_eq!(b.quota, d("6572.00"), "the corrected payable is granted");
    // A special invoice must be for the payable exactly.
    let scan = h
        .upload("P-1001", "mdf_claim", "invoice.pdf", b"%PDF")
        .await
        .expect("upload");
    let invoice = |amount: &str| json!({ "kind": "special", "number": "R-1", "amount": amount, "attachment": scan });
    assert!(
        h.decide(id, "P-1001/zhang", "submit", None, invoice("6571.99"))
            .await
            .is_err()
    );
    h.decide(id, "P-1001/zhang", "submit", None, invoice("6572.00"))
        .await
        .expect("invoice");
    h.decide(id, "finance.xu", "approve", None, Value::Null)
        .await
        .expect("invoice approved");
    h.decide(id, "finance.xu", "approve", None, Value::Null)
        .await
        .expect("payout approved");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.status, "paid");
    let (b, _) = h.engine.ledger_account(account).await.expect("account");
    assert_eq!((b.consumed, b.reserved), (d("6572.00"), d("0")));
}
on_both_backends!(
    the_statement_workflow_confirms_invoices_and_pays,
    shanghai(2026, 12, 10, 2, 0)
);
