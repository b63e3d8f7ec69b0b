//! The operator console in a real browser: headless Chromium driven through WebDriver
//! (chromedriver, fantoccini) against the console served on a loopback port. An operator signs
//! in, finds the scenario's overdue task on the inbox, opens its instance, reads the timeline,
//! reassigns the task and resumes a failed instance; every page answers 200; a form without
//! its CSRF token is refused; no page is shown without a session.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use partnerflow::harness::{Harness, shanghai};
use partnerflow_core::machine::Actor;
use serde_json::json;

use crate::reach::mail::declared;

struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<Driver> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !crate::services::program(
        "the console browser test",
        "chromedriver and chromium (Debian chromium chromium-driver)",
        found,
    ) {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver { child, port })
}

async fn browser(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"] }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

/// The console of `h`, served on a loopback port; its base URL.
async fn serve(h: &Harness) -> String {
    let settings =
        partnerflow::settings::Settings::load(std::path::Path::new("config")).expect("settings");
    let router = partnerflow_api::router(partnerflow_api::AppState {
        engine: h.engine.clone(),
        auth: Arc::new(partnerflow::app::auth_config(&settings)),
        metrics: None,
        clock: h.clock.clone(),
        settlement: Some(crate::settlement::settlement(
            h,
            partnerflow_core::rebate::SettlementRules::default(),
        )),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .text()
        .await
        .expect("text")
}

/// The text of `css` once `expected` holds for it, or its last text after ten seconds. A click
/// that submits a form or follows a link returns before the next page is there: the element may
/// still be the old page's, or go stale while it is read.
async fn text_when(c: &Client, css: &str, expected: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if expected(&text) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test]
async fn an_operator_works_the_inbox_and_an_instance_in_a_real_browser() {
    let Some(driver) = chromedriver() else { return };
    // The reference step writes a run log into a directory that does not exist yet: its
    // instance fails until the directory is there.
    let log_dir = std::env::temp_dir().join(format!("pf-console-{}", uuid::Uuid::now_v7()));
    let run_log = log_dir.join("run.log");
    let url = crate::helpers::sqlite_url();
    let h = Harness::with_settings(&url, shanghai(2026, 3, 2, 10, 0), move |s| {
        s.paths.extra_workflows = vec![
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/reference"),
        ];
        s.engine.reference_run_log = Some(run_log);
        s.notifications.working_hours = String::new();
    })
    .await
    .expect("harness");
    let onboarding = h.apply(declared("P-9601", "zh-CN")).await.expect("apply");
    let submitter = partnerflow_engine::Submitter {
        actor: Actor {
            id: "ops.he".to_owned(),
        },
        partner: None,
    };
    let (failing, _) = h
        .engine
        .start("reference_approval", "ref-1", json!({}), submitter, None)
        .await
        .expect("start");
    // An instance whose job was lost (its outbox row deleted): nothing will move it.
    let submitter = partnerflow_engine::Submitter {
        actor: Actor {
            id: "ops.he".to_owned(),
        },
        partner: None,
    };
    let (lost, _) = h
        .engine
        .start("reference_approval", "ref-lost", json!({}), submitter, None)
        .await
        .expect("start");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from outbox where instance_id = '{}'",
        lost.id
    )))
    .execute(&h.engine.store().pool)
    .await
    .expect("lose the job");
    h.advance_to(shanghai(2026, 3, 6, 10, 0))
        .await
        .expect("the review is overdue by Friday");
    assert_eq!(h.view(failing.id).await.expect("view").status, "failed");
    let base = serve(&h).await;
    let c = browser(driver.port).await;

    // No page without a session.
    c.goto(&format!("{base}/ui/operations"))
        .await
        .expect("goto");
    assert!(
        c.current_url()
            .await
            .expect("url")
            .as_str()
            .ends_with("/ui/login")
    );
    c.find(Locator::Id("token"))
        .await
        .expect("token")
        .send_keys("not-a-token")
        .await
        .expect("type");
    c.find(Locator::Id("sign-in"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    assert!(
        !text_when(&c, "#error", |t| !t.is_empty()).await.is_empty(),
        "a wrong token is refused"
    );
    c.find(Locator::Id("token"))
        .await
        .expect("token")
        .send_keys("dev-operator-token")
        .await
        .expect("type");
    c.find(Locator::Id("sign-in"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    // Signed in once the form's answer has led away from the sign-in page.
    for _ in 0..200 {
        let url = c.current_url().await.expect("url");
        if !url.as_str().ends_with("/ui/login") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The overdue task is on the inbox, red.
    c.goto(&format!("{base}/ui?filter=overdue"))
        .await
        .expect("inbox");
    let Ok(row) = c.find(Locator::Css("#tasks tr.sla-100")).await else {
        panic!("no overdue row on {}", c.source().await.unwrap_or_default());
    };
    assert!(
        row.text()
            .await
            .expect("text")
            .contains("qualification_review")
    );
    row.find(Locator::Css("a.open-instance"))
        .await
        .expect("link")
        .click()
        .await
        .expect("open");
    assert!(
        text_when(&c, "#instance-title", |t| t.contains("P-9601"))
            .await
            .contains("P-9601")
    );
    let timeline = text(&c, "#timeline").await;
    assert_eq!(text(&c, "#partner-link").await, "P-9601");
    for kind in ["started", "task_opened", "escalated"] {
        assert!(
            timeline.contains(kind),
            "{kind} on the timeline: {timeline}"
        );
    }

    // Reassign the task.
    c.find(Locator::Css("#assign-person option[value='cm.chen']"))
        .await
        .expect("cm.chen")
        .click()
        .await
        .expect("select");
    c.find(Locator::Id("assign"))
        .await
        .expect("assign")
        .click()
        .await
        .expect("click");
    assert_eq!(
        text_when(&c, "#instance-tasks td.assignee", |t| t == "cm.chen").await,
        "cm.chen"
    );
    let v = h.view(onboarding).await.expect("view");
    let event = v
        .timeline
        .iter()
        .find(|e| e.event.kind == "task_reassigned")
        .expect("audited");
    assert_eq!(event.event.actor, "ops.he");

    // The inbox by person: the assignee sees the task, someone without the role does not.
    c.goto(&format!("{base}/ui?person=cm.chen"))
        .await
        .expect("inbox");
    assert!(text(&c, "#tasks").await.contains("qualification_review"));
    c.goto(&format!("{base}/ui?person=legal.sun"))
        .await
        .expect("inbox");
    assert!(!text(&c, "#tasks").await.contains("qualification_review"));
    c.goto(&format!("{base}/ui/instances/{onboarding}"))
        .await
        .expect("back");

    // A form stripped of its CSRF token is refused, and changes nothing.
    c.execute(
        "const f = document.querySelector('form[action$=\"/cancel\"]'); f.querySelector('input[name=csrf]').remove(); f.querySelector('input[name=reason]').value = 'x'; f.submit();",
        vec![],
    )
    .await
    .expect("submit without csrf");
    assert!(c.source().await.expect("source").contains("403"));
    assert_eq!(h.view(onboarding).await.expect("view").status, "running");

    // Resume the failed instance once its cause is fixed.
    std::fs::create_dir_all(&log_dir).expect("fix the cause");
    c.goto(&format!("{base}/ui/operations"))
        .await
        .expect("operations");
    assert!(text(&c, "#failed").await.contains("reference_approval"));
    // The instance whose job was lost is listed as stuck, and an operator cancels it.
    assert!(text(&c, "#stuck").await.contains("ref-lost"));
    c.execute(
        "const f = document.querySelector('#stuck form'); f.querySelector('input[name=reason]').value = 'job lost'; f.submit();",
        vec![],
    )
    .await
    .expect("cancel the stuck instance");
    for _ in 0..100 {
        if h.view(lost.id).await.expect("view").status == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(h.view(lost.id).await.expect("view").status, "cancelled");
    c.goto(&format!("{base}/ui/instances/{}", failing.id))
        .await
        .expect("failed instance");
    c.find(Locator::Id("resume"))
        .await
        .expect("resume")
        .click()
        .await
        .expect("click");
    // The click returns before the form's answer: wait for the resume to commit.
    for _ in 0..100 {
        if h.view(failing.id).await.expect("view").status == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.settle().await.expect("settle");
    c.refresh().await.expect("reload");
    assert_eq!(text(&c, "#status").await, "running");
    assert_eq!(text(&c, "#step").await, "approval");
    let resumed = h.view(failing.id).await.expect("view");
    assert_eq!(
        resumed
            .timeline
            .iter()
            .find(|e| e.event.kind == "resumed")
            .map(|e| e.event.actor.clone())
            .as_deref(),
        Some("ops.he")
    );

    // Every page of the scenario answers 200 (a template error would be a 500).
    let cookie = c
        .get_named_cookie("pf_session")
        .await
        .expect("session cookie");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in [
        "/ui".to_owned(),
        "/ui?filter=escalated".to_owned(),
        "/ui/operations".to_owned(),
        format!("/ui/instances/{onboarding}"),
        format!("/ui/instances/{}", failing.id),
        format!("/ui/instances/{onboarding}/evidence"),
        "/ui/partners/P-9601".to_owned(),
        "/ui/settlement".to_owned(),
        "/ui/settlement?period=2026-02".to_owned(),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", format!("pf_session={}", cookie.value()))
            .send()
            .await
            .expect("page");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    // The partner page lists the onboarding with its step.
    c.goto(&format!("{base}/ui/partners/P-9601"))
        .await
        .expect("partner");
    let page = c.source().await.expect("source");
    assert!(
        page.contains("id=\"partner-instances\"") && page.contains("qualification_review"),
        "{page}"
    );
    c.close().await.expect("close");
}
