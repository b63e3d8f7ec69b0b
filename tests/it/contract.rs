//! contract_signing as a child of onboarding (PRODUCT §1.2): countersign SLA, renewal, suspension.

use partnerflow::harness::{Harness, application, shanghai};
use partnerflow_core::machine;
use partnerflow_engine::Error;
use serde_json::{Value, json};

use crate::helpers::{templates_to, times_of};
use crate::on_both_backends;

async fn countersign_escalates_at_10_working_days_and_breaches_at_15(h: Harness) {
    // Partner signs Mon 22 Sep 2025 10:00; National Day (1–8 Oct) is not counted.
    let id = h
        .apply(application("P-1001", "agent", "P-1001/zhang"))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    h.decide(
        id,
        "P-1001/zhang",
        "sign",
        None,
        json!({ "method": "paper", "tracking_number": "SF1234567890" }),
    )
    .await
    .expect("sign");
    let child = h.children(id).await.expect("children")[0];
    h.advance_to(shanghai(2025, 10, 31, 0, 0))
        .await
        .expect("advance");
    let c = h.view(child).await.expect("view");
    assert_eq!(c.current_steps, vec!["countersign"]);
    // 22 Sep 10:00 + 10 WD: 14 h + 23–26, 28 (make-up Sun), 29, 30 Sep, 9, 10 Oct + 10 h on Sat 11 Oct.
    assert_eq!(
        times_of(&c, "escalated"),
        vec!["2025-10-11 10:00", "2025-10-17 10:00"]
    );
    assert_eq!(times_of(&c, "sla_breached"), vec!["2025-10-17 10:00"]);
    assert!(
        templates_to(&c, "zhou.yan@vendor.example").contains(&"task.escalated".to_owned()),
        "legal escalates to the legal lead"
    );
    h.decide(id, "legal.sun", "approve", None, Value::Null)
        .await
        .expect("countersign");
    let c = h.view(child).await.expect("view");
    assert_eq!(c.status, "completed");
    assert_eq!(
        c.data["steps"]["archive"]["signature"]["tracking_number"],
        json!("SF1234567890")
    );
    assert_eq!(
        c.data["steps"]["archive"]["expires_at"],
        json!("2025-12-31T15:59:59Z")
    );
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["assessment_period"]
    );
}
on_both_backends!(
    countersign_escalates_at_10_working_days_and_breaches_at_15,
    shanghai(2025, 9, 22, 10, 0)
);

async fn partner_reminded_at_7_14_21_days_and_request_expires_after_30(h: Harness) {
    let id = h
        .apply(application("P-1003", "agent", "P-1003/wu"))
        .await
        .expect("start");
    h.advance_to(shanghai(2025, 10, 5, 9, 0))
        .await
        .expect("advance");
    let child = h.children(id).await.expect("children")[0];
    let c = h.view(child).await.expect("view");
    assert_eq!(
        times_of(&c, "reminder"),
        vec!["2025-09-08 09:00", "2025-09-15 09:00", "2025-09-22 09:00"]
    );
    assert_eq!(c.status, "expired");
    assert_eq!(times_of(&c, "silence_applied"), vec!["2025-10-01 09:00"]);
    assert_eq!(h.view(id).await.expect("view").status, "withdrawn");
}
on_both_backends!(
    partner_reminded_at_7_14_21_days_and_request_expires_after_30,
    shanghai(2025, 9, 1, 9, 0)
);

async fn certify(h: &Harness, partner: &str, user: &str) -> uuid::Uuid {
    let id = h
        .apply(application(partner, "agent", user))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    h.sign_contract(id, user).await.expect("sign");
    id
}

async fn renewal_starts_on_1_december_and_an_unrenewed_partner_is_suspended_on_31_december(
    h: Harness,
) {
    let renews = certify(&h, "P-1001", "P-1001/zhang").await;
    let lapses = certify(&h, "P-1004", "P-1004/qian").await;
    h.advance_to(shanghai(2025, 11, 5, 9, 0))
        .await
        .expect("advance");
    for id in [renews, lapses] {
        h.decide(id, "cm.li", "pass", None, Value::Null)
            .await
            .expect("pass");
    }
    h.advance_to(shanghai(2025, 11, 30, 23, 59))
        .await
        .expect("advance");
    assert_eq!(
        h.view(renews).await.expect("view").current_steps,
        vec!["certified"]
    );
    h.advance_to(shanghai(2025, 12, 1, 0, 0))
        .await
        .expect("advance");
    for id in [renews, lapses] {
        let v = h.view(id).await.expect("view");
        assert_eq!(v.current_steps, vec!["renewal"]);
        assert_eq!(
            times_of(&v, "child_started").last().map(String::as_str),
            Some("2025-12-01 00:00")
        );
    }
    h.advance_to(shanghai(2025, 12, 10, 10, 0))
        .await
        .expect("advance");
    h.sign_contract(renews, "P-1001/zhang")
        .await
        .expect("renew");
    h.advance_to(shanghai(2025, 12, 30, 23, 0))
        .await
        .expect("advance");
    assert_eq!(
        h.view(lapses).await.expect("view").status,
        "running",
        "not suspended before 31 Dec"
    );
    h.advance_to(shanghai(2026, 1, 1, 0, 0))
        .await
        .expect("advance");
    let r = h.view(renews).await.expect("view");
    assert_eq!(r.current_steps, vec!["certified"]);
    assert_eq!(
        r.data["steps"]["renew_certificate"]["valid_to"],
        json!("2026-12-31T15:59:59Z")
    );
    let l = h.view(lapses).await.expect("view");
    assert_eq!(l.status, "suspended");
    assert_eq!(times_of(&l, "finished"), vec!["2025-12-31 00:00"]);
    assert!(
        templates_to(&l, "li.na@vendor.example").contains(&"partner.suspended".to_owned()),
        "channel managers are told"
    );
}
on_both_backends!(
    renewal_starts_on_1_december_and_an_unrenewed_partner_is_suspended_on_31_december,
    shanghai(2025, 8, 1, 9, 0)
);

/// Renewal from 20 December: the partner's signing deadline (30 CD) lies beyond the 31 December
/// suspension, so the renewal request is still open when the partner is suspended.
fn renewal_on_20_december(settings: &mut partnerflow::settings::Settings) {
    let text = include_str!("../../config/programme.toml").to_owned()
        + "\n[workflows.partner_onboarding.steps.certified]\nuntil = \"12-20\"\n";
    let path = std::env::temp_dir().join(format!("pf-programme-{}.toml", uuid::Uuid::now_v7()));
    std::fs::write(&path, text).expect("write programme");
    settings.paths.programme = path;
}

async fn a_suspended_partner_gets_no_further_signing_reminder_and_cannot_sign(h: Harness) {
    let lapses = certify(&h, "P-1004", "P-1004/qian").await;
    h.advance_to(shanghai(2025, 11, 5, 9, 0))
        .await
        .expect("advance");
    h.decide(lapses, "cm.li", "pass", None, Value::Null)
        .await
        .expect("pass");
    h.advance_to(shanghai(2025, 12, 20, 9, 0))
        .await
        .expect("advance");
    let renewal = *h
        .children(lapses)
        .await
        .expect("children")
        .last()
        .expect("renewal");
    let (task, step) = h.open_task(renewal).await.expect("task").expect("open");
    assert_eq!(step, "partner_sign");
    h.advance_to(shanghai(2026, 1, 31, 9, 0))
        .await
        .expect("advance");
    assert_eq!(h.view(lapses).await.expect("view").status, "suspended");
    let r = h.view(renewal).await.expect("view");
    assert_eq!(r.status, "cancelled", "{:?}", crate::helpers::kinds(&r));
    assert_eq!(
        times_of(&r, "reminder"),
        vec!["2025-12-27 00:00"],
        "no reminder after the suspension"
    );
    assert!(r.pending_timers.is_empty(), "{:?}", r.pending_timers);
    assert!(r.tasks.iter().all(|t| t.status != "open"));
    let reminders_sent = r
        .notifications
        .iter()
        .filter(|n| n.template == "task.reminder")
        .count();
    let sig = json!({ "method": "paper", "tracking_number": "SF1234567890" });
    let late = h
        .engine
        .decide(
            task,
            "sign",
            None,
            partnerflow_core::machine::Actor {
                id: "P-1004/qian".to_owned(),
            },
            sig,
            None,
        )
        .await;
    assert!(
        matches!(
            late,
            Err(partnerflow_engine::Error::Refused(
                partnerflow_core::machine::Error::TaskClosed(_)
            ))
        ),
        "{late:?}"
    );
    h.advance_to(shanghai(2026, 3, 1, 9, 0))
        .await
        .expect("advance");
    let r = h.view(renewal).await.expect("view");
    assert_eq!(
        r.notifications
            .iter()
            .filter(|n| n.template == "task.reminder")
            .count(),
        reminders_sent
    );
}
on_both_backends!(
    a_suspended_partner_gets_no_further_signing_reminder_and_cannot_sign,
    shanghai(2025, 8, 1, 9, 0),
    super::renewal_on_20_december
);

async fn reviewers_need_the_role_may_not_approve_their_own_item_and_closed_tasks_refuse(
    h: Harness,
) {
    let mut app = application("P-1002", "agent", "cm.li");
    app["sensitive_relationship_declared"] = json!(true);
    let id = h.apply(app).await.expect("start");
    h.settle().await.expect("settle");
    let (task, _) = h.open_task(id).await.expect("task").expect("open");
    let actor = |id: &str| machine::Actor { id: id.to_owned() };
    let refused = |r: Result<Value, Error>| match r {
        Err(Error::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let e = refused(
        h.engine
            .decide(
                task,
                "approve",
                None,
                actor("analyst.ma"),
                Value::Null,
                None,
            )
            .await,
    );
    assert!(matches!(e, machine::Error::RoleMissing { .. }), "{e}");
    let e = refused(
        h.engine
            .decide(task, "approve", None, actor("cm.li"), Value::Null, None)
            .await,
    );
    assert!(matches!(e, machine::Error::OwnItem(_)), "{e}");
    let e = refused(
        h.engine
            .decide(task, "escalate", None, actor("cm.chen"), Value::Null, None)
            .await,
    );
    assert!(matches!(e, machine::Error::UnknownDecision { .. }), "{e}");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["qualification_review"],
        "refusals change nothing"
    );
    h.engine
        .decide(task, "approve", None, actor("cm.chen"), Value::Null, None)
        .await
        .expect("approve");
    let e = refused(
        h.engine
            .decide(
                task,
                "reject",
                Some("late".to_owned()),
                actor("cm.chen"),
                Value::Null,
                None,
            )
            .await,
    );
    assert!(matches!(e, machine::Error::TaskClosed(_)), "{e}");
}
on_both_backends!(
    reviewers_need_the_role_may_not_approve_their_own_item_and_closed_tasks_refuse,
    shanghai(2025, 9, 1, 9, 0)
);
