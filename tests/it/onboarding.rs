//! partner_onboarding end to end (PRODUCT §1.1, §2, §3).

use partnerflow::harness::{Harness, application, shanghai};
use partnerflow_core::machine;
use partnerflow_engine::Error;
use serde_json::{Value, json};

use crate::helpers::{kinds, templates_to, times_of};
use crate::on_both_backends;

async fn refused_application_names_every_failing_field_and_stores_nothing(h: Harness) {
    let mut bad = application("P-9001", "integration", "P-9001/a");
    bad["company"]["registered_capital"] = json!("4999999.99");
    bad["headcount"] = json!({ "total": 19, "technical": 2, "sales": 4 });
    bad["certified_staff"] = json!(2);
    bad["contacts"][0]["phone"] = json!("12345");
    let Err(Error::Invalid(fields)) = h.apply(bad).await else {
        panic!("expected a validation refusal")
    };
    let named: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
    for field in [
        "company.registered_capital",
        "headcount.total",
        "headcount.technical",
        "headcount.sales",
        "certified_staff",
        "contacts[0].phone",
    ] {
        assert!(named.contains(&field), "{field} not named in {named:?}");
    }
    assert!(
        h.engine
            .instances(partnerflow_engine::Listing::default(), 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing may be stored"
    );
}
on_both_backends!(
    refused_application_names_every_failing_field_and_stores_nothing,
    shanghai(2025, 9, 1, 9, 0)
);

async fn complete_application_is_approved_automatically_and_the_partner_notified(h: Harness) {
    let id = h
        .apply(application("P-9002", "development", "P-9002/a"))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.current_steps, vec!["contract"]);
    assert!(
        !kinds(&v).contains(&"task_opened".to_owned()),
        "no human review for a clean application"
    );
    let to_partner = templates_to(&v, "p-9002@partner.example");
    assert_eq!(
        to_partner,
        vec!["onboarding.submitted", "onboarding.approved"]
    );
    assert_eq!(
        v.notifications
            .iter()
            .filter(|n| n.channel == "sms")
            .count(),
        2,
        "submission and decision go by SMS too"
    );
}
on_both_backends!(
    complete_application_is_approved_automatically_and_the_partner_notified,
    shanghai(2025, 9, 1, 9, 0)
);

fn declared(partner: &str) -> Value {
    let mut app = application(partner, "agent", &format!("{partner}/a"));
    app["sensitive_relationship_declared"] = json!(true);
    app
}

async fn manual_review_approves_rejects_with_reason_and_returns(h: Harness) {
    let approve = h.apply(declared("P-9003")).await.expect("start");
    let reject = h.apply(declared("P-9004")).await.expect("start");
    let ret = h.apply(declared("P-9005")).await.expect("start");
    h.settle().await.expect("settle");
    assert_eq!(
        h.view(approve).await.expect("view").current_steps,
        vec!["qualification_review"]
    );

    h.decide(approve, "cm.li", "approve", None, Value::Null)
        .await
        .expect("approve");
    assert_eq!(
        h.view(approve).await.expect("view").current_steps,
        vec!["contract"]
    );

    let err = h
        .decide(reject, "cm.li", "reject", None, Value::Null)
        .await
        .expect_err("reason required");
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::Refused(machine::Error::ReasonRequired(_)))
        ),
        "{err}"
    );
    assert_eq!(
        h.view(reject).await.expect("view").current_steps,
        vec!["qualification_review"],
        "a refused decision changes nothing"
    );
    h.decide(
        reject,
        "cm.li",
        "reject",
        Some("deposit not paid"),
        Value::Null,
    )
    .await
    .expect("reject");
    let v = h.view(reject).await.expect("view");
    assert_eq!(v.status, "rejected");
    assert!(templates_to(&v, "p-9004@partner.example").contains(&"onboarding.rejected".to_owned()));

    h.decide(
        ret,
        "cm.chen",
        "return",
        Some("bank proof is unreadable"),
        Value::Null,
    )
    .await
    .expect("return");
    let v = h.view(ret).await.expect("view");
    assert_eq!(v.current_steps, vec!["await_resubmission"]);
    assert!(templates_to(&v, "p-9005@partner.example").contains(&"onboarding.returned".to_owned()));
}
on_both_backends!(
    manual_review_approves_rejects_with_reason_and_returns,
    shanghai(2025, 9, 1, 9, 0)
);

async fn returned_application_is_withdrawn_after_30_calendar_days_unless_resubmitted(h: Harness) {
    let late = h.apply(declared("P-9006")).await.expect("start");
    let prompt = h.apply(declared("P-9007")).await.expect("start");
    h.settle().await.expect("settle");
    for id in [late, prompt] {
        h.decide(id, "cm.li", "return", Some("fix the address"), Value::Null)
            .await
            .expect("return");
    }
    h.advance_to(shanghai(2025, 9, 30, 9, 0))
        .await
        .expect("advance");
    let mut fixed = application("P-9007", "agent", "P-9007/a");
    fixed["company"]["address"] = json!("Fuzhou");
    h.post_event(prompt, "application_resubmitted", fixed, "P-9007/a")
        .await
        .expect("resubmit");
    assert_eq!(
        h.view(late).await.expect("view").status,
        "running",
        "day 29: still waiting"
    );
    h.advance_to(shanghai(2025, 10, 1, 9, 0))
        .await
        .expect("advance");
    let v = h.view(late).await.expect("view");
    assert_eq!(v.status, "withdrawn");
    assert_eq!(
        times_of(&v, "timed_out"),
        vec!["2025-10-01 09:00"],
        "30 CD after the return on 1 Sep 09:00"
    );
    let p = h.view(prompt).await.expect("view");
    assert_eq!(
        p.current_steps,
        vec!["contract"],
        "resubmitted without the declaration → approved automatically"
    );
    assert_eq!(
        p.data["input"]["company"]["address"],
        json!("Fuzhou"),
        "the resubmission replaces the application"
    );
}
on_both_backends!(
    returned_application_is_withdrawn_after_30_calendar_days_unless_resubmitted,
    shanghai(2025, 9, 1, 9, 0)
);

async fn review_sla_reminds_at_50_and_80_percent_and_escalates_at_100_and_200_across_national_day(
    h: Harness,
) {
    // Submitted Tue 30 Sep 2025 10:00; 1–8 Oct are holidays, Sat 11 Oct is a make-up working day.
    let id = h.apply(declared("P-9008")).await.expect("start");
    h.advance_to(shanghai(2025, 10, 16, 0, 0))
        .await
        .expect("advance");
    let v = h.view(id).await.expect("view");
    assert_eq!(
        v.tasks[0].due_at,
        shanghai(2025, 10, 11, 10, 0),
        "3 WD: 14 h on 30 Sep, 9 and 10 Oct, 10 h on the make-up Saturday"
    );
    assert_eq!(
        times_of(&v, "reminder"),
        vec!["2025-10-09 22:00", "2025-10-10 19:36"]
    );
    assert_eq!(
        times_of(&v, "escalated"),
        vec!["2025-10-11 10:00", "2025-10-15 10:00"]
    );
    let levels: Vec<Value> = v
        .timeline
        .iter()
        .filter(|e| e.event.kind == "escalated")
        .map(|e| e.event.payload["to"].clone())
        .collect();
    assert_eq!(
        levels,
        vec![
            json!({ "type": "role", "id": "channel_lead" }),
            json!({ "type": "programme_director" })
        ]
    );
    assert!(templates_to(&v, "zhao.lei@vendor.example").contains(&"task.escalated".to_owned()));
    assert!(templates_to(&v, "wang.fang@vendor.example").contains(&"task.escalated".to_owned()));
    assert_eq!(v.sla_clocks[0].escalation_level, 2);
    assert!(v.sla_clocks[0].overdue);
    assert_eq!(v.status, "running", "escalate-only: the task stays open");
}
on_both_backends!(
    review_sla_reminds_at_50_and_80_percent_and_escalates_at_100_and_200_across_national_day,
    shanghai(2025, 9, 30, 10, 0)
);

async fn assessment_period_lasts_three_natural_months_and_the_certificate_runs_to_31_december(
    h: Harness,
) {
    let id = h
        .apply(application("P-1001", "agent", "P-1001/zhang"))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    let err = h
        .decide(
            id,
            "P-1002/liu",
            "sign",
            None,
            json!({ "method": "electronic" }),
        )
        .await
        .expect_err("another partner's user");
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::Refused(machine::Error::RoleMissing { .. }))
        ),
        "{err}"
    );
    h.sign_contract(id, "P-1001/zhang").await.expect("sign");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["assessment_period"]
    );
    h.advance_to(shanghai(2025, 11, 29, 9, 59))
        .await
        .expect("advance");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["assessment_period"],
        "not before 3 natural months"
    );
    h.advance_to(shanghai(2025, 11, 29, 10, 0))
        .await
        .expect("advance");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.current_steps, vec!["assessment_review"]);
    assert_eq!(
        v.tasks.last().map(|t| t.due_at),
        Some(shanghai(2025, 12, 6, 0, 0)),
        "5 WD from Sat 29 Nov: Mon 1 – Fri 5 Dec"
    );
    let err = h
        .decide(id, "cm.li", "fail", None, Value::Null)
        .await
        .expect_err("failing needs a reason");
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::Refused(machine::Error::ReasonRequired(_)))
        ),
        "{err}"
    );
    h.decide(id, "cm.li", "pass", None, Value::Null)
        .await
        .expect("pass");
    let v = h.view(id).await.expect("view");
    let cert = &v.data["steps"]["issue_certificate"];
    assert_eq!(cert["certificate_id"], json!("PF-CERT-2025-P-1001"));
    assert_eq!(
        cert["valid_to"],
        json!("2025-12-31T15:59:59Z"),
        "31 Dec 23:59:59 Asia/Shanghai"
    );
    assert_eq!(v.current_steps, vec!["certified"]);
}
on_both_backends!(
    assessment_period_lasts_three_natural_months_and_the_certificate_runs_to_31_december,
    shanghai(2025, 8, 29, 10, 0)
);

async fn failed_assessment_terminates_the_partner(h: Harness) {
    let id = h
        .apply(application("P-1002", "agent", "P-1002/liu"))
        .await
        .expect("start");
    h.settle().await.expect("settle");
    h.sign_contract(id, "P-1002/liu").await.expect("sign");
    h.advance_to(shanghai(2025, 12, 2, 9, 0))
        .await
        .expect("advance");
    h.decide(
        id,
        "cm.chen",
        "fail",
        Some("no revenue in three months"),
        Value::Null,
    )
    .await
    .expect("fail");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.status, "terminated");
    assert!(
        templates_to(&v, "p-1002@partner.example")
            .contains(&"onboarding.assessment_failed".to_owned())
    );
}
on_both_backends!(
    failed_assessment_terminates_the_partner,
    shanghai(2025, 8, 29, 10, 0)
);

async fn a_resubmission_refreshes_the_contact_and_may_not_change_the_partner(h: Harness) {
    let (id, _) = crate::signatures::under_review(&h, "P-1001", "P-1001/zhang").await;
    crate::signatures::returned(&h, id).await;
    let before = h.view(id).await.expect("view").timeline.len();
    let elsewhere = application("P-1002", "agent", "P-1001/zhang");
    let refused = h
        .post_event(id, "application_resubmitted", elsewhere, "P-1001/zhang")
        .await
        .expect_err("another partner");
    assert!(
        matches!(
            refused.downcast_ref::<partnerflow_engine::Error>(),
            Some(partnerflow_engine::Error::Invalid(fields)) if fields[0].field == "partner_id"
        ),
        "{refused}"
    );
    assert_eq!(h.view(id).await.expect("view").timeline.len(), before);
    let mut fixed = application("P-1001", "agent", "P-1001/zhang");
    fixed["contacts"][0]["email"] = json!("new.contact@partner1001.example");
    h.post_event(id, "application_resubmitted", fixed, "P-1001/zhang")
        .await
        .expect("resubmit");
    let v = h.view(id).await.expect("view");
    assert!(
        templates_to(&v, "new.contact@partner1001.example")
            .contains(&"onboarding.approved".to_owned()),
        "{:?}",
        v.notifications
    );
}
on_both_backends!(
    a_resubmission_refreshes_the_contact_and_may_not_change_the_partner,
    shanghai(2025, 9, 1, 9, 0)
);
