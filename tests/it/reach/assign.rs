//! An operator reassigns an open task: audited under the operator, the new assignee is told
//! (and gets the links), reminders follow the assignee, and someone who may not decide the
//! task cannot be given it.

use axum::http::{Method, StatusCode};
use partnerflow::harness::shanghai;
use serde_json::json;

use super::mail::{declared, harness, settings, tokens};
use super::receivers::SmtpSink;
use crate::http::Api;

#[tokio::test]
async fn an_operator_reassigns_an_open_task_to_someone_who_may_decide_it() {
    if !SmtpSink::available("an_operator_reassigns_an_open_task") {
        return;
    }
    let sink = SmtpSink::start(None);
    let h = harness(settings(sink.port, None, ""), shanghai(2026, 3, 2, 10, 0)).await;
    let api = Api::new(&h);
    let id = h.apply(declared("P-9501", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    let (task, _) = h.open_task(id).await.expect("task").expect("open task");

    let (status, err) = api
        .operator(
            Method::POST,
            &format!("/v1/tasks/{task}/assign"),
            Some(json!({ "person": "legal.sun" })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "legal.sun does not hold channel_manager: {err}"
    );
    let (status, err) = api
        .operator(
            Method::POST,
            &format!("/v1/tasks/{task}/assign"),
            Some(json!({ "person": "" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    let before = sink.to("chen.jie@vendor.example").len();
    let (status, body) = api
        .operator(
            Method::POST,
            &format!("/v1/tasks/{task}/assign"),
            Some(json!({ "person": "cm.chen" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    h.settle().await.expect("settle");
    let chen = sink.to("chen.jie@vendor.example");
    assert_eq!(chen.len(), before + 1, "the new assignee is told");
    assert_eq!(
        tokens(chen.last().expect("mail")).len(),
        3,
        "with the links"
    );
    let v = h.view(id).await.expect("view");
    let event = v
        .timeline
        .iter()
        .find(|e| e.event.kind == "task_reassigned")
        .expect("audited");
    assert_eq!(event.event.actor, "ops.he");
    assert_eq!(event.event.payload["to"], json!("cm.chen"));
    assert_eq!(
        v.tasks
            .iter()
            .find(|t| t.status == "open")
            .and_then(|t| t.assignee.clone())
            .as_deref(),
        Some("cm.chen")
    );

    // The 50 % reminder goes to the assignee only.
    let li_before = sink.to("li.na@vendor.example").len();
    h.advance_to(h.now() + chrono::Duration::days(2))
        .await
        .expect("reminder");
    let reminders = |address: &str| {
        sink.to(address)
            .into_iter()
            .filter(|m| m.contains("提醒"))
            .count()
    };
    assert!(
        reminders("chen.jie@vendor.example") >= 1,
        "the assignee is reminded"
    );
    assert_eq!(
        sink.to("li.na@vendor.example").len(),
        li_before,
        "the other holder is not"
    );
}

/// The shipped directory with a queue address for `channel_manager`, in a file of its own.
fn directory_with_queue() -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/directory.toml"
    ))
    .expect("directory");
    let with_queue = shipped.replacen(
        "[roles.channel_manager]\n",
        "[roles.channel_manager]\nqueue = { name = \"Channel review queue\", email = \"cm-queue@vendor.example\", locale = \"en\" }\n",
        1,
    );
    assert_ne!(
        shipped, with_queue,
        "the shipped directory has a channel_manager role"
    );
    let path = std::env::temp_dir().join(format!("pf-directory-{}.toml", uuid::Uuid::now_v7()));
    std::fs::write(&path, with_queue).expect("write");
    path
}

#[tokio::test]
async fn a_new_task_goes_to_the_roles_queue_not_to_every_holder() {
    if !SmtpSink::available("a_new_task_goes_to_the_roles_queue") {
        return;
    }
    let sink = SmtpSink::start(None);
    let mut s = settings(sink.port, None, "");
    s.paths.directory = directory_with_queue();
    let h = harness(s, shanghai(2026, 3, 2, 10, 0)).await;
    h.apply(declared("P-9502", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    let queue = sink.to("cm-queue@vendor.example");
    assert_eq!(queue.len(), 1, "the queue is told");
    assert!(
        queue[0].contains("Subject: New task"),
        "in the queue's language: {}",
        queue[0]
    );
    assert!(
        sink.to("li.na@vendor.example").is_empty(),
        "holders are not"
    );
    assert!(
        sink.to("chen.jie@vendor.example").is_empty(),
        "holders are not"
    );
}

#[tokio::test]
async fn a_missing_template_stops_start_up_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("pf-templates-{}", uuid::Uuid::now_v7()));
    for locale in ["zh-CN", "en"] {
        std::fs::create_dir_all(dir.join(locale)).expect("dir");
        for entry in std::fs::read_dir(format!(
            "{}/../../config/templates/{locale}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("templates")
        .flatten()
        {
            std::fs::copy(entry.path(), dir.join(locale).join(entry.file_name())).expect("copy");
        }
    }
    std::fs::remove_file(dir.join("en/mdf.paid.j2")).expect("remove");
    std::fs::write(dir.join("zh-CN/task.reminder.j2"), "{% block subject %}{{ task.dua_at }}{% endblock %}{% block body %}x{% endblock %}{% block sms %}x{% endblock %}").expect("write");
    let url = crate::helpers::sqlite_url();
    let templates = dir.clone();
    let err =
        partnerflow::harness::Harness::with_settings(&url, shanghai(2026, 3, 2, 10, 0), move |s| {
            s.notifications.templates = templates;
        })
        .await
        .expect_err("start-up refuses");
    let text = format!("{err:#}");
    assert!(text.contains("en/mdf.paid.j2 is missing"), "{text}");
    assert!(text.contains("task.dua_at"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_contact_phone_that_is_not_a_number_is_refused_at_submission_naming_the_field() {
    let url = crate::helpers::sqlite_url();
    let h = partnerflow::harness::Harness::new(&url, shanghai(2026, 3, 2, 10, 0))
        .await
        .expect("harness");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/mdf_usage_application.json"
    ))
    .expect("example");
    let mut input: serde_json::Value = serde_json::from_str(&text).expect("json");
    input["contacts"][0]["phone"] = json!("0571-88");
    let submitter = partnerflow_engine::Submitter {
        actor: partnerflow_core::machine::Actor {
            id: "ops.he".to_owned(),
        },
        partner: None,
    };
    let err = h
        .engine
        .start("mdf_claim", "MDF-X", input, submitter, None)
        .await
        .expect_err("refused");
    let partnerflow_engine::Error::Invalid(fields) = err else {
        panic!("{err:?}")
    };
    let phone: Vec<_> = fields
        .iter()
        .filter(|f| f.field == "contacts[0].phone")
        .collect();
    assert_eq!(phone.len(), 1, "named once: {fields:?}");
    assert_eq!(phone[0].rule, "format");
    assert!(
        h.engine
            .instances(partnerflow_engine::Listing::default(), 10)
            .await
            .expect("list")
            .is_empty(),
        "nothing stored"
    );
}
