//! The demo's second act, in 2026: an MDF activity submitted late (with its reason), held and
//! linked, claimed with its uploaded materials for less than budgeted, invoiced and paid; an NRE project through its 2-of-3 panel and
//! three milestones, the last paid late. Ends with the ledger.

use anyhow::Result;
use partnerflow_core::machine::Actor;
use serde_json::{Value, json};
use uuid::Uuid;

use super::print_timeline;
use crate::harness::{Harness, shanghai};

fn p1001() -> partnerflow_engine::Submitter {
    partnerflow_engine::Submitter {
        actor: Actor {
            id: "P-1001/zhang".to_owned(),
        },
        partner: Some("P-1001".to_owned()),
    }
}

fn contact() -> Value {
    json!([{ "name": "Zhang San", "email": "zhang.san@partner1001.example", "phone": "13900001001" }])
}

/// Uploads a file for P-1001's portal; its attachment id.
async fn upload(h: &Harness, screen: &str, filename: &str) -> Result<String> {
    h.upload("P-1001", screen, filename, filename.as_bytes())
        .await
}

async fn start(h: &Harness, workflow: &str, key: &str, input: Value) -> Result<Uuid> {
    let (started, _) = h.engine.start(workflow, key, input, p1001(), None).await?;
    h.settle().await?;
    Ok(started.id)
}

pub(super) async fn scenario(h: &Harness) -> Result<()> {
    h.advance_to(shanghai(2026, 3, 2, 10, 0)).await?;
    println!("── 2026: market development funds and an NRE project for P-1001 ──\n");
    let ops = partnerflow_engine::Submitter {
        actor: Actor {
            id: "ops.he".to_owned(),
        },
        partner: None,
    };
    h.engine
        .start(
            "mdf_quota",
            "MDF-QUOTA-P-1001-2026",
            json!({ "partner_id": "P-1001", "tier": "software_advanced", "year": 2026 }),
            ops,
            None,
        )
        .await?;
    h.settle().await?;

    // An activity on 10 March, applied for on 2 March: fewer than 10 working days ahead.
    let mdf = start(
        h,
        "mdf_claim",
        "MDF-2026-001",
        json!({
            "partner_id": "P-1001", "contacts": contact(),
            "activity": { "name": "Cloud day Fuzhou", "type": "customer_seminar", "city": "Fuzhou",
                          "planned_start": "2026-03-10", "planned_end": "2026-03-10" },
            "targets": { "overview": "30 customer CXOs, 10 leads" },
            "agreement_accepted": true,
            "budget": [{ "item": "venue", "use_mdf": true, "amount": "12000.00" },
                       { "item": "gifts", "use_mdf": false, "amount": "800.00" }],
            "late_reason": "the venue was confirmed only last week"
        }),
    )
    .await?;
    h.advance_to(shanghai(2026, 3, 3, 11, 0)).await?;
    h.decide(mdf, "eco.lin", "approve", None, Value::Null)
        .await?;
    // Held on the marketing platform and linked; then claimed with the uploaded materials.
    h.advance_to(shanghai(2026, 3, 10, 9, 0)).await?;
    h.post_event(
        mdf,
        "activity_held",
        json!({ "marketing_activity_id": "mkt-2026-0310-fz" }),
        "P-1001/zhang",
    )
    .await?;
    h.advance_to(shanghai(2026, 3, 12, 15, 0)).await?;
    let (photos, summary, receipts) = (
        upload(h, "mdf_claim", "photos.zip").await?,
        upload(h, "mdf_claim", "summary.docx").await?,
        upload(h, "mdf_claim", "venue-receipts.pdf").await?,
    );
    h.post_event(
        mdf,
        "claim_submitted",
        json!({
            "marketing_activity_id": "mkt-2026-0310-fz",
            "actual_start": "2026-03-10", "actual_end": "2026-03-10", "attendees": 26,
            "summary": { "overview": "26 CXOs, 7 leads" },
            "actual_costs": [{ "item": "venue", "use_mdf": true, "amount": "9500.00" }],
            "materials": { "activity_photos": photos, "summary_attachment": summary,
                           "third_party_invoices": receipts }
        }),
        "P-1001/zhang",
    )
    .await?;
    h.advance_to(shanghai(2026, 3, 16, 10, 0)).await?;
    h.decide(mdf, "eco.lin", "approve", None, Value::Null)
        .await?;
    let scan = upload(h, "mdf_claim", "FZ-26-0042.pdf").await?;
    let invoices = json!({ "invoices": [{ "number": "FZ-26-0042", "kind": "ordinary", "amount": "10070.00", "attachment": scan }] });
    h.decide(mdf, "P-1001/zhang", "submit", None, invoices)
        .await?;
    h.advance_to(shanghai(2026, 3, 18, 10, 0)).await?;
    h.decide(mdf, "finance.xu", "approve", None, Value::Null)
        .await?;
    h.decide(mdf, "finance.xu", "approve", None, Value::Null)
        .await?;

    // NRE: a 2-of-3 panel, then 300,000.00 in three milestones, the third paid late.
    let proposal = upload(h, "nre_milestones", "proposal.pdf").await?;
    let nre = start(
        h,
        "nre_milestones",
        "NRE-2026-7",
        json!({
            "partner_id": "P-1001", "project_id": "NRE-2026-7", "project_name": "Data lake migration",
            "contacts": contact(),
            "services": { "higher_order": ["GaussDB", "ModelArts", "DWS"], "key": ["CCE"] },
            "value_statement": "Moves 40 TB of analytics to the cloud for three customers.",
            "attachments": [proposal], "declaration_accepted": true
        }),
    )
    .await?;
    h.decide(nre, "eco.lin", "approve", None, Value::Null)
        .await?;
    let sow = upload(h, "nre_milestones", "sow.docx").await?;
    h.post_event(
        nre,
        "sow_submitted",
        json!({ "sow_attachment": sow, "psa_aligned": true }),
        "P-1001/zhang",
    )
    .await?;
    h.decide(nre, "sa.guo", "approve", None, Value::Null)
        .await?;
    h.decide(nre, "expert.an", "approve", None, Value::Null)
        .await?;
    h.decide(
        nre,
        "expert.bai",
        "reject",
        Some("ROI unclear"),
        Value::Null,
    )
    .await?;
    h.decide(nre, "expert.cao", "approve", None, Value::Null)
        .await?;
    let signed = upload(h, "nre_milestones", "agreement-signed.pdf").await?;
    h.post_event(
        nre,
        "agreement_uploaded",
        json!({ "total": "300000.00", "agreement_attachment": signed, "milestones": [
            { "name": "Design", "ratio": "0.3" }, { "name": "Migration", "ratio": "0.3" }, { "name": "Acceptance", "ratio": "0.4" }
        ] }),
        "integration:crm",
    )
    .await?;
    for (number, month, day) in [(1, 5, 4), (2, 7, 6), (3, 9, 4)] {
        h.advance_to(shanghai(2026, month, day, 10, 0)).await?;
        h.decide(
            nre,
            "eco.lin",
            "accept",
            None,
            json!({ "milestone": number }),
        )
        .await?;
        h.decide(
            nre,
            "P-1001/zhang",
            "submit",
            None,
            json!({ "invoice_number": format!("NRE-7-{number}") }),
        )
        .await?;
        h.decide(nre, "finance.xu", "approve", None, Value::Null)
            .await?;
        if number == 3 {
            // Finance pays the last milestone two weeks late: reminders and an escalation.
            h.advance_to(shanghai(2026, month, 22, 10, 0)).await?;
        }
        h.decide(nre, "finance.xu", "approve", None, Value::Null)
            .await?;
        if number == 3 {
            // 120,000.00 is above the four-eyes amount: a second finance approver.
            h.decide(nre, "finance.ma", "approve", None, Value::Null)
                .await?;
        }
    }

    print_timeline(h, "MDF-2026-001", mdf).await?;
    print_timeline(h, "NRE-2026-7", nre).await?;
    print!(
        "{}",
        crate::report::partner_ledger(&h.engine.partner_ledger("P-1001").await?)
    );
    Ok(())
}
