//! Signed links through the API: a GET never decides; the POST needs its page's CSRF token;
//! used, expired, tampered links and closed tasks are refused and change nothing; the
//! decision carries the link's evidence.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::mail::{declared, harness, settings, tokens};
use super::receivers::SmtpSink;
use crate::http::Api;
use partnerflow::harness::shanghai;

async fn get(api: &Api, token: &str) -> (StatusCode, Option<String>, String) {
    let (status, headers, page) = api
        .raw(
            Request::get(format!("/l/{token}"))
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").to_owned());
    (status, cookie, page)
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .map(|i| i + 19)
        .unwrap_or(0);
    page[at..].chars().take_while(|c| *c != '"').collect()
}

async fn post(api: &Api, token: &str, cookie: Option<&str>, form: &str) -> (StatusCode, String) {
    let mut req = Request::post(format!("/l/{token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, "MailApp/1.0 (test)");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let (status, _, page) = api
        .raw(req.body(Body::from(form.to_owned())).expect("req"))
        .await;
    (status, page)
}

#[tokio::test]
async fn a_signed_link_decides_once_after_confirmation_and_refuses_everything_else() {
    if !SmtpSink::available("a_signed_link_decides_once") {
        return;
    }
    let sink = SmtpSink::start(None);
    let h = harness(settings(sink.port, None, ""), shanghai(2026, 3, 2, 10, 0)).await;
    let api = Api::new(&h);
    let id = h.apply(declared("P-9201", "zh-CN")).await.expect("apply");
    let late = h.apply(declared("P-9202", "zh-CN")).await.expect("apply");
    h.settle().await.expect("settle");
    let li = sink.to("li.na@vendor.example");
    let for_instance = |business_key: &str| {
        li.iter()
            .find(|m| m.contains(business_key))
            .map(|m| tokens(m))
            .unwrap_or_default()
    };
    let links = for_instance("P-9201");
    let token_of = |links: &[(String, String)], decision: &str| {
        links
            .iter()
            .find(|(l, _)| l.contains(decision))
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("{decision} link in {links:?}"))
    };
    let (approve, reject) = (token_of(&links, "批准"), token_of(&links, "驳回"));

    // Opening the link shows a confirmation page and decides nothing.
    let (status, cookie, page) = get(&api, &approve).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let cookie = cookie.expect("a CSRF cookie");
    assert_eq!(
        h.open_task(id).await.expect("task").map(|t| t.1).as_deref(),
        Some("qualification_review"),
        "a GET never decides"
    );

    // Without the page's CSRF token nothing is decided.
    let (status, _) = post(&api, &approve, None, "csrf=forged").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(&api, &approve, Some(&cookie), "csrf=other").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A tampered token is unknown.
    let mut tampered = approve.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert_eq!(get(&api, &tampered).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        post(
            &api,
            &tampered,
            Some(&cookie),
            &format!("csrf={}", csrf_of(&page))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // The reject link needs a reason: refused without one, and the link is not used up.
    let (status, rcookie, rpage) = get(&api, &reject).await;
    assert_eq!(status, StatusCode::OK);
    let rcookie = rcookie.expect("cookie");
    let (status, page_text) = post(
        &api,
        &reject,
        Some(&rcookie),
        &format!("csrf={}", csrf_of(&rpage)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page_text}");
    assert_eq!(
        get(&api, &reject).await.0,
        StatusCode::OK,
        "a refused decision leaves the link usable"
    );
    assert_eq!(
        h.open_task(id).await.expect("task").map(|t| t.1).as_deref(),
        Some("qualification_review")
    );

    // Confirmed: decided as the person the link was sent to, with the evidence.
    let (status, done) = post(
        &api,
        &approve,
        Some(&cookie),
        &format!("csrf={}", csrf_of(&page)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    h.settle().await.expect("settle");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.current_steps, vec!["contract"]);
    let decision = v
        .timeline
        .iter()
        .find(|e| e.event.kind == "decision")
        .expect("decision");
    assert_eq!(decision.event.actor, "cm.li");
    let evidence = &decision.event.payload["evidence"];
    assert_eq!(evidence["via"], "signed_link", "{evidence}");
    assert_eq!(evidence["user_agent"], "MailApp/1.0 (test)", "{evidence}");
    assert!(
        evidence["ip"].is_string() && evidence["at"].is_string(),
        "{evidence}"
    );

    // Used twice: refused. The other links of the closed task: refused.
    assert_eq!(
        post(
            &api,
            &approve,
            Some(&cookie),
            &format!("csrf={}", csrf_of(&page))
        )
        .await
        .0,
        StatusCode::GONE
    );
    assert_eq!(get(&api, &approve).await.0, StatusCode::GONE);
    assert_eq!(
        get(&api, &reject).await.0,
        StatusCode::CONFLICT,
        "the task is closed"
    );
    let chen = sink.to("chen.jie@vendor.example");
    let chen_links = chen
        .iter()
        .find(|m| m.contains("P-9201"))
        .map(|m| tokens(m))
        .unwrap_or_default();
    assert_eq!(
        get(&api, &token_of(&chen_links, "批准")).await.0,
        StatusCode::CONFLICT
    );
    let decisions = h
        .view(id)
        .await
        .expect("view")
        .timeline
        .iter()
        .filter(|e| e.event.kind == "decision")
        .count();
    assert_eq!(decisions, 1, "nothing else was decided");

    // Expired after 72 hours.
    let late_links = for_instance("P-9202");
    h.advance_to(h.now() + chrono::Duration::hours(73))
        .await
        .expect("later");
    assert_eq!(
        get(&api, &token_of(&late_links, "批准")).await.0,
        StatusCode::GONE
    );
    assert!(
        h.open_task(late).await.expect("task").is_some(),
        "nothing decided"
    );
}
