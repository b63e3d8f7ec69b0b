//! The per-instance audit chain: each event's tag covers the previous one, so any edit or
//! deletion of a stored event breaks every tag after it, and the instance keeps the last tag
//! and the event count, so deleting the newest events is caught too.
//!
//! Tags are HMAC-SHA256 under a configured audit key (rotated by version; each event records
//! the version it was tagged with), so a writer with access to the database alone cannot
//! recompute a consistent chain after an edit. Version 0 is the unkeyed SHA-256 chain of
//! events recorded before keys existed.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::machine::Event;

/// The tag before the first event of an instance.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key version of events recorded before the chain was keyed.
pub const UNKEYED: u32 = 0;

/// The shipped development audit key (version 1).
pub const DEVELOPMENT_KEY: &str = "partnerflow-development-audit-key-not-for-production";

/// The audit keys: the current one tags new events, older ones still verify theirs.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKeys {
    current: u32,
    keys: BTreeMap<u32, Vec<u8>>,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a set of audit keys was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("audit.keys is empty: at least one key is needed")]
    None,
    #[error("audit.keys: version {0} is reserved for the unkeyed chain; use 1 or more")]
    Reserved(u32),
    #[error("audit.keys: version {0} appears twice")]
    Duplicate(u32),
    #[error("audit.keys: the secret of version {0} is shorter than 32 bytes")]
    Short(u32),
}

impl AuditKeys {
    /// Keys as `(version, secret)`; the highest version tags new events.
    pub fn new(keys: impl IntoIterator<Item = (u32, Vec<u8>)>) -> Result<Self, KeyError> {
        let mut map = BTreeMap::new();
        for (version, secret) in keys {
            if version == UNKEYED {
                return Err(KeyError::Reserved(version));
            }
            if secret.len() < 32 {
                return Err(KeyError::Short(version));
            }
            if map.insert(version, secret).is_some() {
                return Err(KeyError::Duplicate(version));
            }
        }
        let current = *map.keys().next_back().ok_or(KeyError::None)?;
        Ok(AuditKeys { current, keys: map })
    }

    /// The key every engine uses unless configured otherwise: for development and tests only
    /// (the service refuses to listen beyond loopback with it).
    pub fn development() -> Self {
        let secret = DEVELOPMENT_KEY.as_bytes().to_vec();
        AuditKeys {
            current: 1,
            keys: BTreeMap::from([(1, secret)]),
        }
    }

    /// The key version new events are tagged with.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// The tag of `event` at position `seq`, chained to `prev`, under key `version`; `None`
    /// when that version is not configured.
    pub fn tag(
        &self,
        version: u32,
        prev: &str,
        instance_id: &str,
        seq: u64,
        event: &Event,
    ) -> Option<String> {
        let message = message(prev, instance_id, seq, event);
        if version == UNKEYED {
            return Some(hex::encode(Sha256::digest(&message)));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(self.keys.get(&version)?).ok()?;
        mac.update(&message);
        Some(hex::encode(mac.finalize().into_bytes()))
    }
}

/// What a tag covers: the previous tag, the instance, the position and the event.
fn message(prev: &str, instance_id: &str, seq: u64, event: &Event) -> Vec<u8> {
    let mut m = Vec::with_capacity(256);
    m.extend_from_slice(prev.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(instance_id.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(event.kind.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(event.actor.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(&event.at.timestamp_micros().to_le_bytes());
    m.extend_from_slice(event.payload.to_string().as_bytes());
    m
}

/// One stored event as verification reads it.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub seq: u64,
    pub event: &'a Event,
    pub tag: &'a str,
    pub key_version: u32,
}

/// What the instance row says the chain ends with.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    pub event_count: u64,
    pub last_tag: &'a str,
}

/// Recomputes a stored chain against the instance's head; the sequence number of the first
/// event that does not match (one past the last stored event when events are missing).
pub fn verify<'a>(
    keys: &AuditKeys,
    instance_id: &str,
    links: impl IntoIterator<Item = Link<'a>>,
    head: Head<'_>,
) -> Result<(), u64> {
    let mut prev = GENESIS.to_owned();
    let mut count = 0;
    for link in links {
        count += 1;
        if link.seq != count {
            return Err(count);
        }
        match keys.tag(link.key_version, &prev, instance_id, link.seq, link.event) {
            Some(t) if t == link.tag => prev = t,
            _ => return Err(link.seq),
        }
    }
    if count != head.event_count || prev != head.last_tag {
        return Err(count + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
