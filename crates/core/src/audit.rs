//! The per-instance audit chain: each event's hash covers the previous hash, so any edit or
//! deletion of a stored event breaks every hash after it.

use sha2::{Digest, Sha256};

use crate::machine::Event;

/// The hash before the first event of an instance.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hash of `event` at position `seq`, chained to `prev`.
pub fn chain_hash(prev: &str, instance_id: &str, seq: u64, event: &Event) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(instance_id.as_bytes());
    h.update(b"\n");
    h.update(seq.to_le_bytes());
    h.update(event.kind.as_bytes());
    h.update(b"\n");
    h.update(event.actor.as_bytes());
    h.update(b"\n");
    h.update(event.at.timestamp_micros().to_le_bytes());
    h.update(event.payload.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Recomputes a stored chain; returns the sequence number of the first event that does not match.
pub fn verify<'a>(
    instance_id: &str,
    events: impl IntoIterator<Item = (u64, &'a Event, &'a str)>,
) -> Result<(), u64> {
    let mut prev = GENESIS.to_owned();
    for (seq, event, stored) in events {
        let h = chain_hash(&prev, instance_id, seq, event);
        if h != stored {
            return Err(seq);
        }
        prev = h;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn editing_an_event_breaks_the_chain_from_there() {
        let at = chrono::Utc
            .with_ymd_and_hms(2025, 10, 9, 1, 0, 0)
            .single()
            .expect("valid");
        let mut events: Vec<Event> = (0..3)
            .map(|i| Event {
                kind: format!("k{i}"),
                actor: "system".to_owned(),
                at,
                payload: json!({ "i": i }),
            })
            .collect();
        let mut prev = GENESIS.to_owned();
        let mut hashes = vec![];
        for (i, e) in events.iter().enumerate() {
            prev = chain_hash(&prev, "inst", i as u64 + 1, e);
            hashes.push(prev.clone());
        }
        let check = |events: &[Event]| {
            verify(
                "inst",
                events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (i as u64 + 1, e, hashes[i].as_str())),
            )
        };
        assert_eq!(check(&events), Ok(()));
        events[1].payload = json!({ "i": 99 });
        assert_eq!(check(&events), Err(2));
    }
}
