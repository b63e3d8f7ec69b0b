use chrono::TimeZone;
use serde_json::json;

use super::*;

fn keys() -> AuditKeys {
    AuditKeys::new([(1, vec![7; 32]), (2, vec![9; 32])]).expect("keys")
}

fn events() -> Vec<Event> {
    let at = chrono::Utc
        .with_ymd_and_hms(2025, 10, 9, 1, 0, 0)
        .single()
        .expect("valid");
    (0..3)
        .map(|i| Event {
            kind: format!("k{i}"),
            actor: "system".to_owned(),
            at,
            payload: json!({ "i": i }),
        })
        .collect()
}

/// Tags `events` with the given key version each; returns the tags.
fn chain(keys: &AuditKeys, events: &[Event], versions: &[u32]) -> Vec<String> {
    let mut prev = GENESIS.to_owned();
    events
        .iter()
        .zip(versions)
        .enumerate()
        .map(|(i, (e, v))| {
            prev = keys.tag(*v, &prev, "inst", i as u64 + 1, e).expect("key");
            prev.clone()
        })
        .collect()
}

fn check(
    keys: &AuditKeys,
    events: &[Event],
    tags: &[String],
    versions: &[u32],
    head: (u64, &str),
) -> Result<(), u64> {
    verify(
        keys,
        "inst",
        events.iter().enumerate().map(|(i, e)| Link {
            seq: i as u64 + 1,
            event: e,
            tag: &tags[i],
            key_version: versions[i],
        }),
        Head {
            event_count: head.0,
            last_tag: head.1,
        },
    )
}

#[test]
fn editing_an_event_breaks_the_chain_from_there() {
    let keys = keys();
    let mut events = events();
    let versions = [1, 1, 2];
    let tags = chain(&keys, &events, &versions);
    assert_eq!(
        check(&keys, &events, &tags, &versions, (3, &tags[2])),
        Ok(())
    );
    events[1].payload = json!({ "i": 99 });
    assert_eq!(
        check(&keys, &events, &tags, &versions, (3, &tags[2])),
        Err(2)
    );
}

#[test]
fn deleting_the_newest_events_is_caught_by_the_head() {
    let keys = keys();
    let events = events();
    let versions = [2, 2, 2];
    let tags = chain(&keys, &events, &versions);
    // The last event deleted: what is left verifies link by link, but not against the head.
    assert_eq!(
        check(
            &keys,
            &events[..2],
            &tags[..2],
            &versions[..2],
            (3, &tags[2])
        ),
        Err(3)
    );
}

#[test]
fn a_database_writer_without_the_key_cannot_recompute_the_chain() {
    let keys = keys();
    let mut events = events();
    let versions = [2, 2, 2];
    let tags = chain(&keys, &events, &versions);
    // Someone edits an event and recomputes every tag with a key of their own.
    events[0].actor = "mallory".to_owned();
    let forger = AuditKeys::new([(2, vec![1; 32])]).expect("keys");
    let forged = chain(&forger, &events, &versions);
    assert_eq!(
        check(&keys, &events, &forged, &versions, (3, &forged[2])),
        Err(1)
    );
    // Nor does the unkeyed construction pass for a keyed chain.
    let unkeyed = chain(&keys, &events, &[0, 0, 0]);
    assert_eq!(
        check(&keys, &events, &unkeyed, &versions, (3, &unkeyed[2])),
        Err(1)
    );
    let _ = tags;
}

#[test]
fn an_unknown_key_version_does_not_verify() {
    let keys = keys();
    let events = events();
    let tags = chain(&keys, &events, &[1, 1, 1]);
    let only_two = AuditKeys::new([(2, vec![9; 32])]).expect("keys");
    assert_eq!(
        check(&only_two, &events, &tags, &[1, 1, 1], (3, &tags[2])),
        Err(1)
    );
}

#[test]
fn keys_are_checked() {
    assert_eq!(AuditKeys::new([]).err(), Some(KeyError::None));
    assert_eq!(
        AuditKeys::new([(0, vec![0; 32])]).err(),
        Some(KeyError::Reserved(0))
    );
    assert_eq!(
        AuditKeys::new([(1, vec![0; 8])]).err(),
        Some(KeyError::Short(1))
    );
    assert_eq!(
        AuditKeys::new([(1, vec![0; 32]), (1, vec![1; 32])]).err(),
        Some(KeyError::Duplicate(1))
    );
    assert_eq!(keys().current(), 2, "the highest version tags new events");
    assert!(
        !format!("{:?}", keys()).contains("[7"),
        "secrets stay out of Debug"
    );
}
