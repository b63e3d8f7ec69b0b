//! `partnerflow demo`: a programme's year on a virtual clock, with no configuration and no
//! services — automatic and manual approval, rejection, return and resubmission, a reminder
//! and escalations across the National Day holiday, countersigning, renewal and suspension;
//! then an MDF activity and an NRE project on the ledger (`funds`), and September's rebates
//! settled (`rebates`).

mod funds;
mod rebates;

use anyhow::Result;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Harness, application, shanghai};

pub async fn run() -> Result<()> {
    let db = std::env::temp_dir().join(format!("partnerflow-demo-{}.db", Uuid::now_v7()));
    let h = Harness::new(
        &format!("sqlite:{}", db.display()),
        shanghai(2025, 8, 4, 9, 0),
    )
    .await?;
    let result = scenario(&h).await;
    h.engine.store().pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    result
}

async fn scenario(h: &Harness) -> Result<()> {
    println!(
        "partnerflow demo — programme calendar Asia/Shanghai, clock starts {}\n",
        local(h.now())
    );

    // P-1001: meets every rule, nothing declared → approved automatically; signs; countersigned.
    let auto = h
        .apply(application("P-1001", "agent", "P-1001/zhang"))
        .await?;
    h.settle().await?;
    h.sign_contract(auto, "P-1001/zhang").await?;

    // P-1004: a document is missing → manual review → returned for changes → resubmitted.
    let mut returned_app = application("P-1004", "agent", "P-1004/qian");
    returned_app["documents"] = json!([{ "kind": "business_licence", "file_name": "licence.pdf" }]);
    let returned = h.apply(returned_app).await?;
    h.settle().await?;
    h.advance_to(shanghai(2025, 8, 5, 15, 0)).await?;
    h.decide(
        returned,
        "cm.li",
        "return",
        Some("please upload the bank account proof"),
        Value::Null,
    )
    .await?;
    h.advance_to(shanghai(2025, 8, 8, 10, 0)).await?;
    let fixed = application("P-1004", "agent", "P-1004/qian");
    h.post_event(returned, "application_resubmitted", fixed, "P-1004/qian")
        .await?;
    h.sign_contract(returned, "P-1004/qian").await?;

    // An application failing several hard rules is refused with every field named.
    let mut bad = application("P-1005", "development", "P-1005/x");
    bad["company"]["registered_capital"] = json!("2000000.00");
    bad["headcount"] = json!({ "total": 12 });
    bad["contacts"][0]["email"] = json!("not-an-email");
    match h.apply(bad).await {
        Err(partnerflow_engine::Error::Invalid(fields)) => {
            println!("P-1005 refused at submission (HTTP 422), nothing stored:");
            for f in fields {
                println!("    {:<28} {:<24} {}", f.field, f.rule, f.message);
            }
            println!();
        }
        other => println!("P-1005 unexpectedly: {other:?}\n"),
    }

    // P-1002: declares a sensitive relationship → manual review, submitted on the eve of the
    // National Day holiday (1–8 Oct); reminders and escalations fall due across it.
    h.advance_to(shanghai(2025, 9, 30, 10, 0)).await?;
    let mut sensitive = application("P-1002", "integration", "P-1002/liu");
    sensitive["sensitive_relationship_declared"] = json!(true);
    let manual = h.apply(sensitive).await?;

    // P-1003: development partner with a document missing; rejected with a reason.
    let mut incomplete = application("P-1003", "development", "P-1003/wu");
    incomplete["documents"] = json!([{ "kind": "business_licence", "file_name": "licence.pdf" }]);
    let rejected = h.apply(incomplete).await?;
    h.settle().await?;
    h.decide(
        rejected,
        "cm.chen",
        "reject",
        Some("bank account proof missing after two requests"),
        Value::Null,
    )
    .await?;

    // After the holiday, P-1002 is approved late (after both escalations) and signs.
    h.advance_to(shanghai(2025, 10, 20, 11, 0)).await?;
    h.decide(manual, "cm.li", "approve", None, Value::Null)
        .await?;
    h.sign_contract(manual, "P-1002/liu").await?;

    // Assessment reviews after 3 natural months; certificates valid to 31 Dec.
    h.advance_to(shanghai(2025, 11, 6, 10, 0)).await?;
    h.decide(auto, "cm.li", "pass", None, Value::Null).await?;
    h.advance_to(shanghai(2025, 11, 10, 10, 0)).await?;
    h.decide(returned, "cm.chen", "pass", None, Value::Null)
        .await?;

    // 1 Dec: renewal agreements start. P-1001 renews; P-1004 does not and is suspended on 31 Dec.
    h.advance_to(shanghai(2025, 12, 3, 10, 0)).await?;
    h.sign_contract(auto, "P-1001/zhang").await?;
    h.advance_to(shanghai(2026, 1, 2, 9, 0)).await?;

    for (name, id) in [
        ("P-1001", auto),
        ("P-1002", manual),
        ("P-1003", rejected),
        ("P-1004", returned),
    ] {
        print_timeline(h, name, id).await?;
    }
    funds::scenario(h).await?;
    rebates::scenario(h).await
}

pub(super) fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

pub(super) async fn print_timeline(h: &Harness, name: &str, id: Uuid) -> Result<()> {
    let v = h.view(id).await?;
    println!("── {name} · {} · status: {} ──", v.workflow_id, v.status);
    for (at, line) in timeline_lines(h, id, 0).await? {
        println!("  {}  {line}", local(at));
    }
    println!();
    Ok(())
}

/// An instance's events and notifications in time order, each child workflow's own lines
/// indented right after the event that started it.
async fn timeline_lines(
    h: &Harness,
    id: Uuid,
    depth: usize,
) -> Result<Vec<(chrono::DateTime<chrono::Utc>, String)>> {
    let v = h.view(id).await?;
    let indent = "    ".repeat(depth);
    let mut entries: Vec<(chrono::DateTime<chrono::Utc>, u8, String, Option<Uuid>)> = Vec::new();
    for e in &v.timeline {
        if let Some(d) = describe(&e.event.kind, &e.event.payload) {
            let child = (e.event.kind == "child_started")
                .then(|| {
                    e.event
                        .payload
                        .get("child")
                        .and_then(Value::as_str)
                        .and_then(|c| c.parse().ok())
                })
                .flatten();
            entries.push((
                e.event.at,
                0,
                format!("{indent}{:<15} {d}", e.event.kind),
                child,
            ));
        }
    }
    for n in &v.notifications {
        let line = format!(
            "{indent}{:<15} {} → {} ({})",
            "notify", n.template, n.address, n.channel
        );
        entries.push((n.sent_at, 1, line, None));
    }
    // Stable: at the same moment, events keep their order and notifications follow them.
    entries.sort_by_key(|(at, rank, _, _)| (*at, *rank));
    let mut lines = Vec::new();
    for (at, _, line, child) in entries {
        lines.push((at, line));
        if let Some(child) = child {
            lines.extend(Box::pin(timeline_lines(h, child, depth + 1)).await?);
        }
    }
    Ok(lines)
}

fn describe(kind: &str, p: &Value) -> Option<String> {
    let s = |k: &str| {
        p.get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    Some(match kind {
        "step_entered" => format!("→ {}", s("step")),
        "step_completed" => format!("{} ⇒ {}", s("step"), s("outcome")),
        "task_opened" => format!(
            "task for {} due {}",
            s("role"),
            s("due_at")
                .parse::<chrono::DateTime<chrono::Utc>>()
                .map_or_else(|_| s("due_at"), local)
        ),
        "decision" => format!(
            "{} {}{}",
            s("step"),
            s("decision"),
            p.get("reason")
                .and_then(Value::as_str)
                .map(|r| format!(" — “{r}”"))
                .unwrap_or_default()
        ),
        "reminder" => format!(
            "{} reminder #{}",
            s("step"),
            p.get("index").and_then(Value::as_u64).map_or(0, |i| i + 1)
        ),
        "escalated" => {
            let to = &p["to"];
            let target = to
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| s_of(to, "type"), |id| format!("role {id}"));
            format!("{} level {} → {target}", s("step"), s("level"))
        }
        "sla_breached" | "timer_elapsed" | "timed_out" => s("step"),
        "silence_applied" => format!("{} {}", s("step"), s("policy")),
        "event_received" => s("event"),
        "finished" => s("status"),
        "child_started" => s("workflow"),
        "child_finished" => s("status"),
        "started" => format!("{} v{}", s("workflow"), s("version")),
        "posting" => format!(
            "ledger {} {} on {}",
            s("movement"),
            s("amount"),
            s("account")
        ),
        "vote_recorded" => format!(
            "vote {} ({} of {} needed, {} against)",
            s("vote"),
            s("approvals"),
            s("needed"),
            s("rejections")
        ),
        "failed" | "step_failed" | "calendar_exceeded" => p.to_string(),
        _ => return None,
    })
}

fn s_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .replace('_', " ")
}
