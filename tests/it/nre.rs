//! `nre_milestones` end to end: the panel's quorum, the agreement's schedule granted on the
//! ledger, milestones accepted strictly in order and each paid, the total paid to the fen.

use partnerflow::harness::Harness;
use partnerflow_core::machine::Actor;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::on_both_backends;

const ACCOUNT: &str = "nre:P-1001:NRE-7";

fn application(proposal: &str) -> Value {
    json!({
        "partner_id": "P-1001", "project_id": "NRE-7", "project_name": "Data lake migration",
        "contacts": [{ "name": "Zhang San", "email": "zhang.san@partner1001.example", "phone": "13900001001" }],
        "services": { "higher_order": ["GaussDB", "ModelArts", "DWS"], "key": ["CCE"] },
        "value_statement": "Moves 40 TB of analytics to the cloud.",
        "attachments": [proposal], "declaration_accepted": true
    })
}

async fn decide(
    h: &Harness,
    id: Uuid,
    who: &str,
    decision: &str,
    data: Value,
) -> Result<Value, anyhow::Error> {
    h.decide(id, who, decision, None, data).await
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

async fn at_panel(h: &Harness) -> Uuid {
    let submitter = partnerflow_engine::Submitter {
        actor: Actor {
            id: "P-1001/zhang".to_owned(),
        },
        partner: Some("P-1001".to_owned()),
    };
    let proposal = h
        .upload("P-1001", "nre_milestones", "proposal.pdf", b"%PDF proposal")
        .await
        .expect("upload");
    let (started, _) = h
        .engine
        .start(
            "nre_milestones",
            "NRE-7",
            application(&proposal),
            submitter,
            None,
        )
        .await
        .expect("start");
    let id = started.id;
    h.settle().await.expect("settle");
    decide(h, id, "eco.lin", "approve", Value::Null)
        .await
        .expect("qualified");
    let sow = h
        .upload("P-1001", "nre_milestones", "sow.docx", b"SOW")
        .await
        .expect("upload");
    h.post_event(
        id,
        "sow_submitted",
        json!({ "sow_attachment": sow, "psa_aligned": true }),
        "P-1001/zhang",
    )
    .await
    .expect("sow");
    decide(h, id, "sa.guo", "approve", Value::Null)
        .await
        .expect("technical");
    id
}

async fn milestones_are_paid_in_order_and_add_up_to_the_agreed_total(h: Harness) {
    let id = at_panel(&h).await;
    // The panel: one no does not end it; two yes of three approve.
    decide(&h, id, "expert.an", "approve", Value::Null)
        .await
        .expect("yes");
    decide(&h, id, "expert.bai", "reject", Value::Null)
        .await
        .expect("no");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["business_value_review"]
    );
    let again = decide(&h, id, "expert.an", "approve", Value::Null).await;
    assert!(again.is_err(), "a panel member votes once");
    decide(&h, id, "expert.cao", "approve", Value::Null)
        .await
        .expect("second yes");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["await_agreement"]
    );

    let signed = h
        .upload(
            "P-1001",
            "nre_milestones",
            "agreement.pdf",
            b"%PDF agreement",
        )
        .await
        .expect("upload");
    let refused = h
        .post_event(
            id,
            "agreement_uploaded",
            json!({ "total": "100000.00", "agreement_attachment": signed, "milestones": [{ "ratio": "0.3" }, { "ratio": "0.3" }, { "ratio": "0.3" }] }),
            "integration:crm",
        )
        .await;
    assert!(refused.is_err(), "ratios that do not sum to 1 are refused");
    h.post_event(
        id,
        "agreement_uploaded",
        json!({ "total": "100000.00", "agreement_attachment": signed, "equal_parts": 3 }),
        "integration:crm",
    )
    .await
    .expect("agreement");
    let (b, _) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert_eq!(b.quota, d("100000.00"));

    // Acceptance needs the partner's business-information certification: refused before it,
    // with nothing reserved.
    let uncertified = decide(&h, id, "eco.lin", "accept", json!({ "milestone": 1 }))
        .await
        .expect_err("not certified");
    let rules: Vec<String> = match uncertified.downcast_ref::<partnerflow_engine::Error>() {
        Some(partnerflow_engine::Error::Refused(
            partnerflow_core::machine::Error::InvalidData(fields),
        )) => fields
            .iter()
            .map(|f| format!("{}/{}", f.field, f.rule))
            .collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(rules, vec!["partner_id/business_info_not_certified"]);
    let (b, _) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert_eq!(b.reserved, Decimal::ZERO);
    h.certify_business("P-1001", "P-1001/zhang")
        .await
        .expect("certified");
    // The project's status: the milestone due for acceptance, its amount and SLA clock.
    let nre_only = partnerflow_engine::Listing {
        workflow: Some("nre_milestones"),
        ..partnerflow_engine::Listing::default()
    };
    let listed = h
        .engine
        .partner_status("P-1001", nre_only, 10)
        .await
        .expect("status");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].current_step.as_deref(),
        Some("milestone_acceptance")
    );
    assert_eq!(listed[0].summary["milestone"], 1);
    assert_eq!(listed[0].summary["milestone_amount"], "33333.33");
    assert_eq!(listed[0].summary["milestones"], 3);
    assert_eq!(listed[0].sla_clocks[0].step, "milestone_acceptance");

    for (number, amount) in [(1, "33333.33"), (2, "33333.33"), (3, "33333.34")] {
        let out_of_order = decide(
            &h,
            id,
            "eco.lin",
            "accept",
            json!({ "milestone": number + 1 }),
        )
        .await;
        assert!(
            out_of_order.is_err(),
            "milestone {} before {number}",
            number + 1
        );
        decide(&h, id, "eco.lin", "accept", json!({ "milestone": number }))
            .await
            .expect("accepted");
        let (b, _) = h.engine.ledger_account(ACCOUNT).await.expect("account");
        assert_eq!(b.reserved, d(amount), "milestone {number} reserved");
        decide(
            &h,
            id,
            "P-1001/zhang",
            "submit",
            json!({ "invoice_number": format!("NRE-7-{number}") }),
        )
        .await
        .expect("invoiced");
        decide(&h, id, "finance.xu", "approve", Value::Null)
            .await
            .expect("invoice approved");
        decide(&h, id, "finance.xu", "approve", Value::Null)
            .await
            .expect("paid");
    }
    let v = h.view(id).await.expect("view");
    assert_eq!(v.status, "completed");
    let (b, entries) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert_eq!(
        (b.consumed, b.reserved, b.available()),
        (d("100000.00"), d("0"), d("0"))
    );
    let paid: Vec<Decimal> = entries
        .iter()
        .filter(|e| e.movement == "consume")
        .map(|e| e.amount)
        .collect();
    assert_eq!(paid, vec![d("33333.33"), d("33333.33"), d("33333.34")]);
    // Each milestone is a payable of its own, paid in full.
    let ledger = h.engine.partner_ledger("P-1001").await.expect("ledger");
    let payables: Vec<(String, &str, Decimal)> = ledger
        .payables
        .iter()
        .map(|p| (p.payable.clone(), p.status, p.paid))
        .collect();
    assert_eq!(
        payables,
        vec![
            (format!("nre:{id}:1"), "paid", d("33333.33")),
            (format!("nre:{id}:2"), "paid", d("33333.33")),
            (format!("nre:{id}:3"), "paid", d("33333.34")),
        ]
    );
    assert_eq!(ledger.payments.len(), 3);
}
on_both_backends!(
    milestones_are_paid_in_order_and_add_up_to_the_agreed_total,
    shanghai(2026, 3, 2, 10, 0)
);

async fn two_panel_rejections_of_three_reject_the_project(h: Harness) {
    let id = at_panel(&h).await;
    decide(&h, id, "expert.an", "reject", Value::Null)
        .await
        .expect("no");
    assert_eq!(h.view(id).await.expect("view").status, "running");
    decide(&h, id, "expert.bai", "reject", Value::Null)
        .await
        .expect("second no");
    assert_eq!(h.view(id).await.expect("view").status, "rejected");
    let (b, entries) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert!(
        entries.is_empty() && b.quota == Decimal::ZERO,
        "nothing was granted"
    );
}
on_both_backends!(
    two_panel_rejections_of_three_reject_the_project,
    shanghai(2026, 3, 2, 10, 0)
);

async fn a_milestone_payout_above_the_four_eyes_amount_needs_two_finance_approvers(h: Harness) {
    let id = at_panel(&h).await;
    for expert in ["expert.an", "expert.bai"] {
        decide(&h, id, expert, "approve", Value::Null)
            .await
            .expect("yes");
    }
    let signed = h
        .upload(
            "P-1001",
            "nre_milestones",
            "agreement.pdf",
            b"%PDF agreement",
        )
        .await
        .expect("upload");
    h.post_event(
        id,
        "agreement_uploaded",
        json!({ "total": "250000.00", "agreement_attachment": signed, "equal_parts": 2 }),
        "integration:crm",
    )
    .await
    .expect("agreement");
    h.certify_business("P-1001", "P-1001/zhang")
        .await
        .expect("certified");
    decide(&h, id, "eco.lin", "accept", json!({ "milestone": 1 }))
        .await
        .expect("accepted");
    decide(
        &h,
        id,
        "P-1001/zhang",
        "submit",
        json!({ "invoice_number": "NRE-7-1" }),
    )
    .await
    .expect("invoiced");
    decide(&h, id, "finance.xu", "approve", Value::Null)
        .await
        .expect("invoice approved");
    // 125,000.00 is above 100,000.00: one approval is not enough, the same person twice is
    // refused, a second finance approver pays.
    decide(&h, id, "finance.xu", "approve", Value::Null)
        .await
        .expect("first approval");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["payment"]
    );
    let again = decide(&h, id, "finance.xu", "approve", Value::Null).await;
    assert!(again.is_err(), "the same approver twice");
    let (b, _) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert_eq!(b.consumed, Decimal::ZERO, "nothing paid on one approval");
    decide(&h, id, "finance.ma", "approve", Value::Null)
        .await
        .expect("second approval");
    let (b, _) = h.engine.ledger_account(ACCOUNT).await.expect("account");
    assert_eq!(b.consumed, d("125000.00"));
}
on_both_backends!(
    a_milestone_payout_above_the_four_eyes_amount_needs_two_finance_approvers,
    shanghai(2026, 3, 2, 10, 0)
);
