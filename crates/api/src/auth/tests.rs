use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;
use partnerflow_core::signature::SignatureError;

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const BODY: &[u8] = br#"{"decision":"approve","reason":null,"actor":{"id":"cm"}}"#;
const PATH: &str = "/v1/tasks/0192f0c4-0000-7000-8000-000000000001/decision";

fn request(body: &[u8]) -> SignedRequest<'_> {
    SignedRequest {
        method: "POST",
        path: PATH,
        idempotency_key: "decide-1",
        body,
    }
}

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn check(header: &str, body: &[u8], keys: &[&str], now: i64) -> Result<(), SignatureError> {
    verify(
        header,
        request(body),
        &secrets(keys),
        now,
        DEFAULT_TOLERANCE_SECS,
    )
}

#[test]
fn a_good_signature_is_accepted() {
    let header = sign("s3cret", NOW, request(BODY));
    assert!(header.starts_with(&format!("t={NOW},v1=")), "{header}");
    assert_eq!(check(&header, BODY, &["s3cret"], NOW), Ok(()));
}

#[test]
fn signing_matches_the_documented_construction() {
    // HMAC-SHA256(secret, "<t>.<METHOD>.<PATH>.<KEY>.<body>"), hex: what a sender in any
    // language computes.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
    mac.update(format!("{NOW}.POST.{PATH}.decide-1.").as_bytes());
    mac.update(BODY);
    let expected = format!("t={NOW},v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(sign("s3cret", NOW, request(BODY)), expected);
}

#[test]
fn a_tampered_body_is_refused() {
    let header = sign("s3cret", NOW, request(BODY));
    let tampered = br#"{"decision":"reject","reason":null,"actor":{"id":"cm"}}"#;
    assert_eq!(
        check(&header, tampered, &["s3cret"], NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_wrong_secret_is_refused() {
    let header = sign("not-the-secret", NOW, request(BODY));
    assert_eq!(
        check(&header, BODY, &["s3cret"], NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_changed_timestamp_is_refused() {
    let header =
        sign("s3cret", NOW, request(BODY)).replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
    assert_eq!(
        check(&header, BODY, &["s3cret"], NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn timestamps_within_tolerance_are_accepted_either_way() {
    for t in [NOW - DEFAULT_TOLERANCE_SECS, NOW + DEFAULT_TOLERANCE_SECS] {
        assert_eq!(
            check(&sign("s3cret", t, request(BODY)), BODY, &["s3cret"], NOW),
            Ok(()),
            "t = now{:+}",
            t - NOW
        );
    }
}

#[test]
fn an_old_timestamp_is_refused() {
    let header = sign("s3cret", NOW - DEFAULT_TOLERANCE_SECS - 1, request(BODY));
    assert_eq!(
        check(&header, BODY, &["s3cret"], NOW),
        Err(SignatureError::OutsideTolerance)
    );
}

#[test]
fn a_future_timestamp_beyond_tolerance_is_refused() {
    let header = sign("s3cret", NOW + DEFAULT_TOLERANCE_SECS + 1, request(BODY));
    assert_eq!(
        check(&header, BODY, &["s3cret"], NOW),
        Err(SignatureError::OutsideTolerance)
    );
}

#[test]
fn the_tolerance_is_configurable() {
    let header = sign("s3cret", NOW - 60, request(BODY));
    assert_eq!(
        verify(&header, request(BODY), &secrets(&["s3cret"]), NOW, 30),
        Err(SignatureError::OutsideTolerance)
    );
    assert_eq!(
        verify(&header, request(BODY), &secrets(&["s3cret"]), NOW, 60),
        Ok(())
    );
}

#[test]
fn extreme_timestamps_do_not_overflow() {
    let header = sign("s3cret", i64::MIN, request(BODY));
    assert_eq!(
        check(&header, BODY, &["s3cret"], i64::MAX),
        Err(SignatureError::OutsideTolerance)
    );
}

#[test]
fn malformed_headers_are_refused() {
    let good = sign("s3cret", NOW, request(BODY));
    let tag = good
        .split_once("v1=")
        .map(|(_, t)| t.to_owned())
        .expect("v1");
    for header in [
        String::new(),
        "garbage".to_owned(),
        format!("v1={tag}"),
        format!("t={NOW}"),
        format!("t=yesterday,v1={tag}"),
        format!("t={NOW},v1=not-hex"),
        format!("t={NOW},t={NOW},v1={tag}"),
        format!("t={NOW};v1={tag}"),
    ] {
        assert_eq!(
            check(&header, BODY, &["s3cret"], NOW),
            Err(SignatureError::Malformed),
            "{header:?}"
        );
    }
}

#[test]
fn the_second_secret_of_a_rotation_is_accepted() {
    let old = sign("old-secret", NOW, request(BODY));
    let new = sign("new-secret", NOW, request(BODY));
    assert_eq!(
        check(&old, BODY, &["old-secret", "new-secret"], NOW),
        Ok(())
    );
    assert_eq!(
        check(&new, BODY, &["old-secret", "new-secret"], NOW),
        Ok(())
    );
    assert_eq!(
        check(&new, BODY, &["old-secret"], NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_sender_mid_rotation_may_send_both_signatures() {
    let old = sign("old-secret", NOW, request(BODY));
    let new_tag = sign("new-secret", NOW, request(BODY))
        .split_once("v1=")
        .map(|(_, t)| t.to_owned())
        .expect("v1");
    let both = format!("{old}, v1={new_tag}");
    assert_eq!(check(&both, BODY, &["new-secret"], NOW), Ok(()));
}

#[test]
fn no_secret_or_an_empty_secret_matches_nothing() {
    let header = sign("", NOW, request(BODY));
    assert_eq!(
        check(&header, BODY, &[""], NOW),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        check(&header, BODY, &[], NOW),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn operator_tokens_match_exactly_and_name_their_operator() {
    let op = |id: &str, token: &str| Operator {
        id: id.to_owned(),
        token: token.to_owned(),
    };
    let operators = vec![op("alice", "alpha-token"), op("bob", "beta-token")];
    let id = |t: &str| operator_for(t, &operators).map(|o| o.id.clone());
    assert_eq!(id("alpha-token").as_deref(), Some("alice"));
    assert_eq!(id("beta-token").as_deref(), Some("bob"));
    assert_eq!(id("alpha-toke"), None);
    assert_eq!(id("alpha-token2"), None);
    assert!(operator_for("", &[op("empty", "")]).is_none());
}

#[test]
fn a_signature_binds_method_path_key_and_body() {
    let header = sign("s3cret", NOW, request(BODY));
    let other_task = "/v1/tasks/0192f0c4-0000-7000-8000-000000000002/decision";
    for (what, changed) in [
        (
            "path",
            SignedRequest {
                path: other_task,
                ..request(BODY)
            },
        ),
        (
            "method",
            SignedRequest {
                method: "PUT",
                ..request(BODY)
            },
        ),
        (
            "key",
            SignedRequest {
                idempotency_key: "decide-2",
                ..request(BODY)
            },
        ),
        (
            "no key",
            SignedRequest {
                idempotency_key: "",
                ..request(BODY)
            },
        ),
        ("body", request(b"{}")),
    ] {
        assert_eq!(
            verify(&header, changed, &secrets(&["s3cret"]), NOW, 300),
            Err(SignatureError::Mismatch),
            "a changed {what} must not verify"
        );
    }
}

#[test]
fn debug_output_hides_secrets_and_tokens() {
    let config = AuthConfig {
        integrations: vec![Integration {
            id: "portal".to_owned(),
            secrets: secrets(&["hunter2"]),
            roles: secrets(&["channel_manager"]),
            events: vec![],
            workflows: vec![],
            reads: vec![Read::Tasks],
            imports: vec![],
            partner: None,
        }],
        operators: vec![Operator {
            id: "alice".to_owned(),
            token: "op-token".to_owned(),
        }],
        tolerance_secs: 300,
    };
    let shown = format!("{config:?}");
    assert!(
        shown.contains("portal") && shown.contains("channel_manager"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("op-token"),
        "{shown}"
    );
}
