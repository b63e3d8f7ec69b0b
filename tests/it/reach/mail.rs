//! Email and SMS as their providers receive them: the recipient's language, the signed link,
//! the same key on a retry whose answer was lost, fallback to the other channel, quiet hours
//! and delegation.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use partnerflow::app::Providers;
use partnerflow::harness::{Harness, application, shanghai};
use partnerflow::settings::Settings;
use serde_json::{Value, json};

use super::receivers::{Receiver, SmtpSink};

/// Settings with email to `smtp_port` (plain) and SMS to `sms_url`, quiet hours as given.
pub(crate) fn settings(smtp_port: u16, sms_url: Option<&str>, working_hours: &str) -> Settings {
    let mut s = Settings::load(std::path::Path::new("config")).expect("settings");
    let n = &mut s.notifications;
    n.email.provider = "smtp".to_owned();
    n.email.host = "127.0.0.1".to_owned();
    n.email.port = smtp_port;
    n.email.security = "plain".to_owned();
    n.email.from = "partnerflow <noreply@vendor.example>".to_owned();
    n.email.timeout_ms = 2000;
    if let Some(url) = sms_url {
        n.sms.provider = "http".to_owned();
        n.sms.url = url.to_owned();
        n.sms.key = Some("sms-test-key".to_owned());
        n.sms.sign_name = "伙伴计划".to_owned();
        n.sms.timeout_ms = 2000;
    }
    n.working_hours = working_hours.to_owned();
    s
}

pub(crate) async fn harness(s: Settings, start: chrono::DateTime<chrono::Utc>) -> Harness {
    harness_on(&crate::helpers::sqlite_url(), s, start).await
}

/// [`harness`] on the database at `url`.
pub(crate) async fn harness_on(
    url: &str,
    s: Settings,
    start: chrono::DateTime<chrono::Utc>,
) -> Harness {
    let providers = Providers {
        notifier: partnerflow::reach::notifier(&s.notifications).expect("notifier"),
        ..Providers::default()
    };
    Harness::with_providers(
        url,
        start,
        move |x| {
            x.notifications = s.notifications.clone();
            x.webhooks = s.webhooks.clone();
            x.paths.directory = s.paths.directory.clone();
        },
        providers,
    )
    .await
    .expect("harness")
}

/// A partner application that goes to manual review (a declared sensitive relationship).
pub(crate) fn declared(partner: &str, locale: &str) -> Value {
    let mut app = application(partner, "agent", &format!("{partner}/a"));
    app["sensitive_relationship_declared"] = json!(true);
    app["contacts"][0]["locale"] = json!(locale);
    app
}

/// The signed-link tokens in a message, by decision (`approve` → token).
pub(crate) fn tokens(message: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in message.lines() {
        if let Some(at) = line.find("/l/") {
            let token: String = line[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let label = line[..at]
                .trim()
                .trim_end_matches(['：', ':'])
                .rsplit(' ')
                .next()
                .unwrap_or("")
                .to_owned();
            if token.len() == 22 && !out.iter().any(|(_, t)| *t == token) {
                out.push((label, token));
            }
        }
    }
    out
}

fn monday_morning() -> chrono::DateTime<chrono::Utc> {
    shanghai(2026, 3, 2, 10, 0)
}

#[tokio::test]
async fn email_reaches_the_smtp_server_in_each_recipients_language_with_signed_links() {
    if !SmtpSink::available("email_reaches_the_smtp_server") {
        return;
    }
    let sink = SmtpSink::start(None);
    let h = harness(settings(sink.port, None, ""), monday_morning()).await;
    h.apply(declared("P-9101", "en")).await.expect("apply");
    h.settle().await.expect("settle");

    // The partner's contact reads English, the reviewer (zh-CN by default) Chinese.
    let partner = sink.to("p-9101@partner.example");
    assert_eq!(partner.len(), 1, "{partner:?}");
    assert!(
        partner[0].contains("Subject: Onboarding application received: P-9101"),
        "{}",
        partner[0]
    );
    assert!(partner[0].contains("Dear Contact,"), "{}", partner[0]);
    assert!(
        partner[0].contains("Content-Type: text/html"),
        "multipart with HTML: {}",
        partner[0]
    );
    let reviewer = sink.to("li.na@vendor.example");
    assert_eq!(reviewer.len(), 1, "task.assigned once: {reviewer:?}");
    let mail = &reviewer[0];
    assert!(mail.contains("Subject: 新待办"), "{mail}");
    assert!(mail.contains("Li Na，您好"), "{mail}");
    assert!(mail.contains("Message-ID: <"), "{mail}");
    // A link per decision of the step, each 22 characters.
    let links = tokens(mail);
    assert_eq!(links.len(), 3, "approve, reject, return: {links:?}\n{mail}");
    // The link works: its page answers, and the decision goes through it (see links.rs).
    let api = crate::http::Api::new(&h);
    let (status, _, page) = api
        .raw(
            axum::http::Request::get(format!("/l/{}", links[0].1))
                .body(axum::body::Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("qualification_review"), "{page}");
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_retried_under_the_same_key_and_message_id() {
    if !SmtpSink::available("a_send_whose_answer_was_lost") {
        return;
    }
    // The SMTP server stores the first message and answers too late; the SMS provider takes
    // the first request and answers too late.
    let sink = SmtpSink::start(Some(3.0));
    let sms = Receiver::start(Arc::new(|n, _| {
        (
            StatusCode::OK,
            (n == 0).then_some(Duration::from_millis(1500)),
        )
    }))
    .await;
    let mut s = settings(sink.port, Some(&sms.url), "");
    s.notifications.email.timeout_ms = 700;
    s.notifications.sms.timeout_ms = 500;
    let h = harness(s, monday_morning()).await;
    let id = h.apply(declared("P-9102", "zh-CN")).await.expect("apply");
    h.settle().await.expect("first attempt");
    h.advance_to(h.now() + chrono::Duration::minutes(5))
        .await
        .expect("retries");

    let mails = sink.to("p-9102@partner.example");
    let v = h.view(id).await.expect("view");
    assert_eq!(
        mails.len(),
        2,
        "sent again after the lost answer: {:?}",
        v.notifications
    );
    let ids: Vec<&str> = mails
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Message-ID:")))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "the same Message-ID both times");

    let requests: Vec<_> = sms
        .received()
        .into_iter()
        .filter(|r| r.json()["phone_number"] == "+8613900009999")
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let key = requests[0].header("idempotency-key");
    assert!(!key.is_empty());
    assert_eq!(
        requests[1].header("idempotency-key"),
        key,
        "the same key both times"
    );
    let body = requests[1].json();
    assert_eq!(body["idempotency_key"], json!(key));
    assert_eq!(body["template_id"], json!("onboarding.submitted"));
    assert_eq!(body["sign_name"], json!("伙伴计划"));
    assert_eq!(body["template_params"]["business_key"], json!("P-9102"));
    assert!(
        body["content"]
            .as_str()
            .is_some_and(|c| c.contains("P-9102")),
        "{body}"
    );
    assert_eq!(requests[1].header("authorization"), "Bearer sms-test-key");

    // Both are recorded as sent once, after two calls; nothing more is sent on later work.
    let v = h.view(id).await.expect("view");
    let to_partner: Vec<_> = v
        .notifications
        .iter()
        .filter(|n| n.recipient == "partner:P-9102")
        .collect();
    assert_eq!(to_partner.len(), 2, "{to_partner:?}");
    assert!(
        to_partner
            .iter()
            .all(|n| n.status == "sent" && n.attempts == 2),
        "{to_partner:?}"
    );
    h.advance_to(h.now() + chrono::Duration::hours(1))
        .await
        .expect("later");
    assert_eq!(sink.to("p-9102@partner.example").len(), 2);
    assert_eq!(
        sms.received()
            .iter()
            .filter(|r| r.json()["phone_number"] == "+8613900009999")
            .count(),
        2
    );
}

#[tokio::test]
async fn email_down_is_retried_then_falls_back_to_sms_and_the_failure_is_recorded() {
    let sms = Receiver::start(Arc::new(|_, _| (StatusCode::OK, None))).await;
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let h = harness(settings(closed, Some(&sms.url), ""), monday_morning()).await;
    let id = h.apply(declared("P-9103", "zh-CN")).await.expect("apply");
    h.advance_to(h.now() + chrono::Duration::minutes(30))
        .await
        .expect("retries");

    let v = h.view(id).await.expect("view");
    let email = v
        .notifications
        .iter()
        .find(|n| n.recipient == "cm.li" && n.channel == "email" && n.template == "task.assigned")
        .expect("the email intent is recorded");
    assert_eq!(email.status, "failed", "{email:?}");
    assert!(email.attempts >= 2, "retried before giving up: {email:?}");
    assert!(
        email
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("SMTP")),
        "{email:?}"
    );
    let fallback = v
        .notifications
        .iter()
        .find(|n| n.fallback_for.as_deref() == Some(email.key.as_str()))
        .expect("a fallback names the email it stands in for");
    assert_eq!(
        (fallback.channel.as_str(), fallback.status.as_str()),
        ("sms", "sent")
    );
    let got: Vec<_> = sms
        .received()
        .into_iter()
        .filter(|r| r.json()["phone_number"] == "+8613800000003")
        .collect();
    assert_eq!(got.len(), 1, "one SMS to Li Na instead of the email");
    assert_eq!(got[0].json()["template_id"], json!("task.assigned"));
    assert!(
        got[0].json()["content"]
            .as_str()
            .is_some_and(|c| c.contains("/l/")),
        "the SMS carries the links"
    );
}

#[tokio::test]
async fn quiet_hours_hold_a_message_until_the_recipients_working_hours() {
    if !SmtpSink::available("quiet_hours_hold_a_message") {
        return;
    }
    let sink = SmtpSink::start(None);
    // Monday 20:00 in Shanghai: outside 09:00-18:00.
    let h = harness(
        settings(sink.port, None, "09:00-18:00"),
        shanghai(2026, 3, 2, 20, 0),
    )
    .await;
    h.apply(declared("P-9104", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    assert!(
        sink.to("p-9104@partner.example").is_empty(),
        "nothing at 20:00"
    );
    h.advance_to(shanghai(2026, 3, 3, 8, 59))
        .await
        .expect("night");
    assert!(
        sink.to("p-9104@partner.example").is_empty(),
        "nothing before 09:00"
    );
    h.advance_to(shanghai(2026, 3, 3, 9, 1))
        .await
        .expect("morning");
    assert_eq!(
        sink.to("p-9104@partner.example").len(),
        1,
        "delivered when the working day begins"
    );
    assert_eq!(sink.to("li.na@vendor.example").len(), 1);
}

#[tokio::test]
async fn a_delegate_receives_new_tasks_and_may_decide_them_while_the_owner_is_copied() {
    if !SmtpSink::available("a_delegate_receives_new_tasks") {
        return;
    }
    let sink = SmtpSink::start(None);
    let h = harness(settings(sink.port, None, ""), monday_morning()).await;
    let api = crate::http::Api::new(&h);
    let now = h.now();
    // Bad input names the field and stores nothing.
    let (status, err) = api
        .operator(axum::http::Method::POST, "/v1/delegations", Some(json!({ "person": "cm.li", "delegate": "nobody", "starts_at": now, "ends_at": now + chrono::Duration::days(7) })))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(
        err["error"]["details"][0]["field"],
        json!("delegate"),
        "{err}"
    );
    for (person, delegate) in [("cm.li", "legal.sun"), ("lead.zhao", "director.wang")] {
        let (status, body) = api
            .operator(axum::http::Method::POST, "/v1/delegations", Some(json!({ "person": person, "delegate": delegate, "starts_at": now, "ends_at": now + chrono::Duration::days(30) })))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let id = h.apply(declared("P-9105", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    let delegate = sink.to("sun.min@vendor.example");
    assert_eq!(delegate.len(), 1, "the delegate gets the task");
    assert_eq!(tokens(&delegate[0]).len(), 3, "with links to decide it");
    let owner = sink.to("li.na@vendor.example");
    assert_eq!(owner.len(), 1, "the owner is copied");
    assert!(tokens(&owner[0]).is_empty(), "a copy carries no links");

    // The escalation at 100 % of the SLA goes to the escalation target's delegate, copying
    // the target.
    h.advance_to(h.now() + chrono::Duration::days(6))
        .await
        .expect("escalate");
    let escalated = |address: &str| {
        sink.to(address)
            .into_iter()
            .filter(|m| m.contains("待办升级"))
            .count()
    };
    assert!(
        escalated("wang.fang@vendor.example") >= 1,
        "the delegate of the escalation target"
    );
    assert!(
        escalated("zhao.lei@vendor.example") >= 1,
        "the escalation target, copied"
    );

    // The delegate decides as themselves; the audit shows who.
    h.decide(id, "legal.sun", "approve", None, Value::Null)
        .await
        .expect("the delegate decides");
    let v = h.view(id).await.expect("view");
    let decision = v
        .timeline
        .iter()
        .find(|e| e.event.kind == "decision")
        .expect("decision");
    assert_eq!(decision.event.actor, "legal.sun");
    assert_eq!(
        decision.event.payload["on_behalf_of"],
        json!("cm.li"),
        "the audit shows both"
    );
}
