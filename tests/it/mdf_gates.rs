//! What an MDF application and claim are checked against in the record: the partner's other
//! activities (a similar one needs explicit confirmation), its business-information
//! certification (claims wait for it), its own uploads, and the activity it held and linked.

use axum::http::StatusCode;
use partnerflow::harness::Harness;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::Api;
use crate::mdf::{account, after_the_activity, apply, certified, d, grant_and_approve, usage};
use crate::on_both_backends;

fn rules(answer: &Value) -> Vec<String> {
    answer["error"]["details"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|f| {
                    format!(
                        "{}/{}",
                        f["field"].as_str().unwrap_or(""),
                        f["rule"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn a_similar_activity_is_refused_until_the_partner_confirms_it(h: Harness) {
    let api = Api::new(&h);
    let first = grant_and_approve(&h, &api, "8000.00").await;
    // The same seminar in the same city on overlapping dates, under another name.
    let mut again = usage("3000.00");
    again["activity"]["name"] = json!("Fuzhou CXO forum");
    let (status, refused) = apply(&api, "MDF-DUP", again.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(rules(&refused), vec!["confirm_similar/similar_activity"]);
    let message = refused["error"]["details"][0]["message"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("MDF-3 `Cloud day Fuzhou`"), "{message}");
    assert_eq!(
        account(&h).await,
        (d("42000.00"), d("8000.00"), d("0")),
        "nothing reserved for the refused one"
    );
    again["confirm_similar"] = json!(true);
    let (status, started) = apply(&api, "MDF-DUP", again).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    h.settle().await.expect("settle");
    assert_eq!(account(&h).await, (d("39000.00"), d("11000.00"), d("0")));
    // Another city is no duplicate.
    let mut elsewhere = usage("1000.00");
    elsewhere["activity"]["name"] = json!("Xiamen partner day");
    elsewhere["activity"]["city"] = json!("Xiamen");
    let (status, started) = apply(&api, "MDF-XM", elsewhere).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(h.view(first).await.expect("view").status, "running");
}
on_both_backends!(
    a_similar_activity_is_refused_until_the_partner_confirms_it,
    shanghai(2026, 9, 1, 10, 0)
);

/// The correlation of `event` among the instance's open waits.
async fn wait_for(h: &Harness, id: Uuid, event: &str) -> String {
    h.view(id)
        .await
        .expect("view")
        .waits
        .into_iter()
        .find(|w| w.event == event)
        .map(|w| w.correlation)
        .unwrap_or_else(|| panic!("no wait for {event}"))
}

async fn a_claim_needs_certification_own_uploads_and_the_linked_activity(h: Harness) {
    let api = Api::new(&h);
    let id = grant_and_approve(&h, &api, "8000.00").await;
    // Held and linked (optional): recorded, the claim still awaited.
    let held = format!(
        "/v1/instances/{id}/events/activity_held?correlation={}",
        wait_for(&h, id, "activity_held").await
    );
    let (status, answer) = api
        .signed(
            &held,
            "portal-p1001",
            &json!({ "marketing_activity_id": "mkt-7", "name": "Renamed" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(rules(&answer), vec!["name/unchanged"]);
    let (status, answer) = api
        .signed(
            &held,
            "portal-p1001",
            &json!({ "marketing_activity_id": "mkt-7" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let v = h.view(id).await.expect("view");
    assert_eq!(v.current_steps, vec!["await_claim"]);
    assert_eq!(v.data["events"]["activity_held"]["linked"], true);
    assert!(v.timeline.iter().any(|e| e.event.kind == "event_recorded"));

    let (uri, claim) = after_the_activity(&h, id, "6000.00").await;
    let before = account(&h).await;
    // Not certified: refused, nothing moved.
    let (status, refused) = api.signed(&uri, "portal-p1001", &claim).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        rules(&refused),
        vec!["partner_id/business_info_not_certified"]
    );
    certified(&h).await;
    assert_eq!(
        h.engine.standing("P-1001").await.expect("standing")["business_info"],
        "certified"
    );
    // Another partner's upload, an id that names nothing, another activity: each refused.
    let theirs = h
        .upload("P-1002", "mdf_claim", "photos.zip", b"not yours")
        .await
        .expect("upload");
    let mut foreign = claim.clone();
    foreign["materials"]["activity_photos"] = json!(theirs);
    foreign["materials"]["lead_list"] = json!(Uuid::now_v7().to_string());
    let (status, refused) = api.signed(&uri, "portal-p1001", &foreign).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(
        rules(&refused),
        vec![
            "materials.activity_photos/attachment_owner",
            "materials.lead_list/attachment"
        ]
    );
    let mut other = claim.clone();
    other["marketing_activity_id"] = json!("mkt-8");
    let (status, refused) = api.signed(&uri, "portal-p1001", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(rules(&refused), vec!["marketing_activity_id/linked"]);
    assert_eq!(account(&h).await, before, "no refused claim moved money");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["await_claim"]
    );

    let mut linked = claim;
    linked["marketing_activity_id"] = json!("mkt-7");
    let (status, answer) = api.signed(&uri, "portal-p1001", &linked).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    h.settle().await.expect("settle");
    assert_eq!(
        h.view(id).await.expect("view").current_steps,
        vec!["claim_review"]
    );
}
on_both_backends!(
    a_claim_needs_certification_own_uploads_and_the_linked_activity,
    shanghai(2026, 9, 1, 10, 0)
);

async fn changed_business_information_is_recertified_before_anything_is_settled(h: Harness) {
    // An agent declaring a sensitive relationship goes to manual review; returned, resubmitted.
    let mut app = partnerflow::harness::application("P-1002", "agent", "P-1002/liu");
    app["sensitive_relationship_declared"] = json!(true);
    let id = h.apply(app.clone()).await.expect("start");
    h.settle().await.expect("settle");
    let standing = |h: &Harness| {
        let h = h.clone();
        async move { h.engine.standing("P-1002").await.expect("standing") }
    };
    assert_eq!(standing(&h).await["business_info"], "certified");
    h.decide(
        id,
        "cm.li",
        "return",
        Some("licence scan unreadable"),
        Value::Null,
    )
    .await
    .expect("returned");
    // The resubmission is verified again; the standing says so until it passes.
    let wait = wait_for(&h, id, "application_resubmitted").await;
    h.engine
        .post_event(
            id,
            "application_resubmitted",
            &wait,
            app,
            partnerflow_core::machine::Actor {
                id: "P-1002/liu".to_owned(),
            },
            None,
        )
        .await
        .expect("resubmitted");
    assert_eq!(standing(&h).await["business_info"], "recertifying");
    h.settle().await.expect("settle");
    assert_eq!(standing(&h).await["business_info"], "certified");
}
on_both_backends!(
    changed_business_information_is_recertified_before_anything_is_settled,
    shanghai(2026, 9, 1, 10, 0)
);
