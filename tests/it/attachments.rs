//! Uploads streamed into the content-addressed attachment store: the rules refuse before or
//! while the bytes arrive, and a refused upload leaves no file behind.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use partnerflow::harness::{Harness, shanghai};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::{Api, OPERATOR};

/// Every file under `dir`, temporary ones included.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn upload(uri: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("authorization", OPERATOR)
        .body(body)
        .expect("request")
}

async fn uploads_are_checked_streamed_and_kept_once(database_url: String) {
    let dir = std::env::temp_dir().join(format!("pf-attachments-{}", uuid::Uuid::now_v7()));
    let store_dir = dir.clone();
    let h = Harness::with_settings(&database_url, shanghai(2026, 3, 2, 10, 0), move |s| {
        s.paths.attachments = store_dir;
    })
    .await
    .expect("harness");
    let api = Api::new(&h);
    let refused = |answer: &(StatusCode, Value), rule: &str| {
        assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);
        assert_eq!(
            answer.1["error"]["details"][0]["rule"], rule,
            "{}",
            answer.1
        );
    };

    let wrong = api
        .call(upload(
            "/v1/attachments?screen=mdf_claim&filename=setup.exe",
            Body::from("MZ"),
        ))
        .await;
    refused(&wrong, "extension");
    let forbidden = api
        .call(upload(
            "/v1/attachments?screen=mdf_claim&filename=a%7Cb.pdf",
            Body::from("%PDF"),
        ))
        .await;
    refused(&forbidden, "forbidden_character");
    assert!(files(&dir).is_empty(), "nothing written for a refused name");

    // 50 MB + 1 byte, in 1 MB pieces: refused when the last byte arrives, the 50 MB written so
    // far removed.
    let mb = vec![7u8; 1024 * 1024];
    let mut pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..50).map(|_| Ok(mb.clone())).collect();
    pieces.push(Ok(vec![7u8]));
    let too_big = api
        .call(upload(
            "/v1/attachments?screen=mdf_claim&filename=photos.zip",
            Body::from_stream(futures::stream::iter(pieces)),
        ))
        .await;
    refused(&too_big, "max_bytes");
    assert!(files(&dir).is_empty(), "no file left: {:?}", files(&dir));

    // Exactly 50 MB is accepted, stored under its SHA-256, once however often it is sent.
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = (0..50).map(|_| Ok(mb.clone())).collect();
    let (status, first) = api
        .call(upload(
            "/v1/attachments?screen=mdf_claim&filename=photos.zip",
            Body::from_stream(futures::stream::iter(pieces)),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let mut hash = Sha256::new();
    for _ in 0..50 {
        hash.update(&mb);
    }
    let sha = hex::encode(hash.finalize());
    assert_eq!(first["sha256"], sha.as_str());
    assert_eq!(first["size"], 50 * 1024 * 1024);
    let (status, small) = api
        .call(upload(
            "/v1/attachments?screen=mdf_claim&filename=invoice.pdf",
            Body::from("%PDF-1.7 invoice"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{small}");
    let (status, again) = api
        .call(upload(
            "/v1/attachments?screen=mdf_claim&filename=invoice-copy.pdf",
            Body::from("%PDF-1.7 invoice"),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["sha256"], small["sha256"]);
    assert_ne!(again["id"], small["id"], "each upload is recorded");
    let stored = files(&dir);
    assert_eq!(
        stored.len(),
        2,
        "two distinct files, kept once each: {stored:?}"
    );
    let path = h
        .engine
        .attachment_path(small["sha256"].as_str().expect("sha"));
    assert_eq!(
        std::fs::read(&path).expect("stored file"),
        b"%PDF-1.7 invoice"
    );
    let recorded = h
        .engine
        .attachment(small["id"].as_str().expect("id"))
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(
        (recorded.uploaded_by.as_str(), recorded.filename.as_str()),
        ("ops.he", "invoice.pdf")
    );

    // Signed by a partner's portal: verified over the streamed body; a signature made for
    // other bytes keeps nothing.
    let body = b"%PDF-1.7 partner photos".to_vec();
    let uri = "/v1/attachments?screen=mdf_claim&filename=photos.pdf";
    let signed_upload = |signed_body: &[u8]| {
        let signature = partnerflow_api::sign(
            &crate::http::secret_of("portal-p1001"),
            h.now().timestamp(),
            partnerflow_api::SignedRequest {
                method: "POST",
                path: uri,
                idempotency_key: "upload-1",
                body: signed_body,
            },
        );
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(partnerflow_api::INTEGRATION_HEADER, "portal-p1001")
            .header(partnerflow_api::SIGNATURE_HEADER, signature)
            .header("idempotency-key", "upload-1")
            .body(Body::from(body.clone()))
            .expect("request")
    };
    let good = signed_upload(&body);
    let forged = signed_upload(b"%PDF-1.7 something else");
    let before = files(&dir).len();
    let (status, answer) = api.call(forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(
        files(&dir).len(),
        before,
        "a refused signature keeps nothing"
    );
    let (status, answer) = api.call(good).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let recorded = h
        .engine
        .attachment(answer["id"].as_str().expect("id"))
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(recorded.uploaded_by, "integration:portal-p1001");
    assert_eq!(recorded.partner_id.as_deref(), Some("P-1001"));

    // An application that names the upload: its evidence bundle lists the attachment.
    let photos = answer["id"].as_str().expect("id").to_owned();
    let application = json!({
        "partner_id": "P-1001", "project_id": "NRE-A", "project_name": "Data lake",
        "services": { "higher_order": ["GaussDB", "ModelArts", "DWS"], "key": ["CCE"] },
        "value_statement": "Moves analytics to the cloud.", "attachments": [photos],
        "declaration_accepted": true
    });
    let submitter = partnerflow_engine::Submitter {
        actor: partnerflow_core::machine::Actor {
            id: "P-1001/zhang".to_owned(),
        },
        partner: Some("P-1001".to_owned()),
    };
    let (started, _) = h
        .engine
        .start("nre_milestones", "NRE-A", application, submitter, None)
        .await
        .expect("start");
    let bundle = h.engine.evidence(started.id).await.expect("evidence");
    let listed: Vec<&str> = bundle.attachments.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(listed, vec![photos.as_str()]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_streamed_and_kept_once_on_sqlite() {
    uploads_are_checked_streamed_and_kept_once(crate::helpers::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_checked_streamed_and_kept_once_on_postgres() {
    if !crate::services::postgres("uploads_are_checked_streamed_and_kept_once_on_postgres") {
        return;
    }
    uploads_are_checked_streamed_and_kept_once(crate::helpers::postgres_url().await).await;
}
