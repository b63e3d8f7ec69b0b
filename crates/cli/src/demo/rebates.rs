//! The demo's third act: September 2026's rebates. The billing system's transactions are
//! imported, the month is settled on the 10th of October at 02:00, P-1001 confirms its
//! statement and invoices it, P-1004 says nothing and its statement is confirmed by silence
//! after 5 working days; P-1001 is paid.

use anyhow::Result;
use partnerflow_core::rebate::Period;
use serde_json::{Value, json};

use crate::harness::{Harness, shanghai};

const TRANSACTIONS: &str = "source,order_id,partner_id,customer_id,product,family,amount,currency,tax_rate,kind,booked_at,original_order_id
billing,SEP-0001,P-1001,CUST-88,ecs.c7.large,compute,127200.00,CNY,0.06,purchase,2026-09-03 10:15:00,
billing,SEP-0002,P-1001,CUST-88,ecs.c7.large,compute,-21200.00,CNY,0.06,refund,2026-09-20 16:40:00,SEP-0001
billing,SEP-0003,P-1001,CUST-91,rds.mysql,database,10600.00,CNY,0.06,purchase,2026-09-05 09:00:00,
billing,SEP-0004,P-1004,CUST-12,rds.pg,database,5300.00,CNY,0.06,purchase,2026-09-29 23:59:59,
";

pub(super) async fn scenario(h: &Harness) -> Result<()> {
    println!("── October 2026: September's rebates ──\n");
    let mut progress = |_: u64, _: u64| {};
    let opts = partnerflow_settlement::import::Options {
        skip_invalid: false,
        rejects: None,
        timezone: chrono_tz::Asia::Shanghai,
        progress: &mut progress,
    };
    let report = partnerflow_settlement::import::csv(
        h.engine.store(),
        TRANSACTIONS.as_bytes(),
        opts,
        h.now(),
    )
    .await?;
    println!(
        "imported {} transactions from the billing system",
        report.imported
    );
    let settings = crate::settings::Settings::load(std::path::Path::new("config"))?;
    let settlement = crate::app::settlement(&settings, &h.engine)?;
    h.advance_to(shanghai(2026, 10, 10, 2, 0)).await?;
    let period: Period = "2026-09".parse().map_err(anyhow::Error::msg)?;
    let run = settlement.settle(period, &mut |_| {}).await?;
    h.settle().await?;
    println!(
        "settled {}: {} statements, total {}\n",
        run.period, run.statements, run.total
    );
    let mut conn = h.engine.store().acquire().await?;
    let statements = partnerflow_store::settlement::statements(
        &mut conn,
        settlement.programme(),
        None,
        Some("2026-09"),
        10,
    )
    .await?;
    drop(conn);
    for s in &statements {
        println!(
            "  {} · total {} · payable {}",
            s.partner_id, s.total, s.payable
        );
        for l in s.lines.as_array().into_iter().flatten() {
            println!(
                "    line {} {:<10} {:<8} tier {} rate {:<5} net {:>12} → {}",
                l["n"],
                l["family"].as_str().unwrap_or(""),
                l["kind"].as_str().unwrap_or(""),
                l["tier"],
                l["rate"].as_str().unwrap_or(""),
                l["performance"].as_str().unwrap_or(""),
                l["amount"].as_str().unwrap_or("")
            );
        }
    }
    let instance = |partner: &str| -> Result<uuid::Uuid> {
        let id = statements
            .iter()
            .find(|s| s.partner_id == partner)
            .and_then(|s| s.instance_id.clone())
            .ok_or_else(|| anyhow::anyhow!("no statement workflow for {partner}"))?;
        Ok(id.parse()?)
    };
    let p1001 = instance("P-1001")?;
    h.advance_to(shanghai(2026, 10, 12, 10, 0)).await?;
    h.decide(p1001, "P-1001/zhang", "confirm", None, Value::Null)
        .await?;
    let payable = statements
        .iter()
        .find(|s| s.partner_id == "P-1001")
        .map(|s| s.payable.to_string())
        .unwrap_or_default();
    let scan = h
        .upload(
            "P-1001",
            "mdf_claim",
            "rebate-invoice.pdf",
            b"%PDF rebate invoice",
        )
        .await?;
    h.decide(
        p1001,
        "P-1001/zhang",
        "submit",
        None,
        json!({ "kind": "special", "number": "44031234", "amount": payable, "attachment": scan }),
    )
    .await?;
    h.advance_to(shanghai(2026, 10, 13, 10, 0)).await?;
    h.decide(p1001, "finance.xu", "approve", None, Value::Null)
        .await?;
    h.decide(p1001, "finance.ma", "approve", None, Value::Null)
        .await?;
    // P-1004 says nothing: its statement is confirmed after 5 working days.
    h.advance_to(shanghai(2026, 10, 20, 10, 0)).await?;
    println!();
    for s in &statements {
        let v = h.view(instance(&s.partner_id)?).await?;
        let at = match v.status.as_str() {
            "running" => format!("running, at {}", v.current_steps.join(", ")),
            done => done.to_owned(),
        };
        println!("  {} statement: {at}", s.partner_id);
    }
    println!();
    super::print_timeline(h, "P-1001 rebate 2026-09", p1001).await?;
    Ok(())
}
