//! Text reports for the terminal: a partner's ledger (balances, postings, payables, payments),
//! as `partnerflow ledger --partner` and the demo print it, and a partner's instances with
//! their SLA clocks (`partnerflow status --partner`).

use std::fmt::Write;

use partnerflow_engine::{InstanceStatus, PartnerLedger};

fn local(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The partner's ledger as lines of text.
pub fn partner_ledger(l: &PartnerLedger) -> String {
    let mut out = String::new();
    if l.accounts.is_empty() {
        let _ = writeln!(out, "{} has no ledger accounts", l.partner);
        return out;
    }
    for a in &l.accounts {
        let b = &a.balance;
        let _ = writeln!(
            out,
            "── {} · quota {} + supplements {} − reserved {} − consumed {} = available {} {:?} ──",
            a.account, b.quota, b.supplements, b.reserved, b.consumed, a.available, b.currency
        );
        for e in l.postings.iter().filter(|e| e.account == a.account) {
            let _ = writeln!(
                out,
                "  {}  {:<10} {:>12} {}  {} {}",
                local(e.at),
                e.movement,
                e.amount,
                e.currency,
                e.step.as_deref().unwrap_or("-"),
                e.payable.as_deref().unwrap_or(""),
            );
        }
    }
    if !l.payables.is_empty() {
        let _ = writeln!(out, "── payables ──");
        for p in &l.payables {
            let paid_at = p.paid_at.map(local).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<48} {:<8} owed {:>12} paid {:>12} {} {paid_at}",
                p.payable, p.status, p.owed, p.paid, p.currency
            );
        }
    }
    out
}

/// A partner's instances, one per line, each open task's clock beneath.
/// `partnerflow status`: the service at a glance.
pub fn overview(
    g: &partnerflow_store::gauges::Gauges,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let mut out = String::new();
    let age = g.oldest_pending.map_or_else(
        || "-".to_owned(),
        |t| format!("{} s", (now - t).num_seconds().max(0)),
    );
    let _ = writeln!(
        out,
        "outbox backlog   {} (oldest {age}), {} waiting in the queue",
        g.backlog, g.queued
    );
    let _ = writeln!(out, "due timers       {}", g.due_timers);
    let _ = writeln!(out, "failed instances {}", g.failed_instances);
    let _ = writeln!(
        out,
        "open tasks       {}",
        g.tasks.iter().map(|t| t.1).sum::<i64>()
    );
    for (role, open, overdue) in &g.tasks {
        let _ = writeln!(out, "  {role:<20} {open:>6} open, {overdue:>6} overdue");
    }
    out
}

pub fn partner_status(partner: &str, listed: &[InstanceStatus]) -> String {
    let mut out = String::new();
    if listed.is_empty() {
        let _ = writeln!(out, "{partner} has no instances");
    }
    for i in listed {
        let summary: Vec<String> = i.summary.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "{} {} {} · {} at {} · {}",
            i.workflow_id,
            i.business_key,
            i.id,
            i.status,
            i.current_step.as_deref().unwrap_or("-"),
            summary.join(" ")
        );
        for c in &i.sla_clocks {
            let _ = writeln!(
                out,
                "    task {} ({}) due {} · {}% of the SLA used{}{}",
                c.step,
                c.role,
                local(c.due_at),
                c.percent_used,
                if c.overdue { " · overdue" } else { "" },
                if c.escalation_level > 0 {
                    format!(" · escalated (level {})", c.escalation_level)
                } else {
                    String::new()
                }
            );
        }
    }
    out
}
