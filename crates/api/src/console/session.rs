//! Console sessions: a named operator signs in with their token and gets a signed cookie
//! (`pf_session=<operator>|<expiry>|<hmac>`; HttpOnly, SameSite=Strict, Secure unless the
//! console is reached on loopback). Nothing is kept on the server, so any `serve` process
//! accepts it; the key derives from the configured operator tokens, so changing them ends
//! every session. Every form carries a CSRF token bound to the session.

use axum::http::{HeaderMap, header};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::AppState;

pub(crate) const COOKIE: &str = "pf_session";
/// How long a session lasts.
const HOURS: i64 = 8;

fn key(state: &AppState) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"partnerflow-console-session\0");
    for o in &state.auth.operators {
        h.update(o.id.as_bytes());
        h.update(b"\0");
        h.update(o.token.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_vec()
}

fn mac(state: &AppState, text: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(&key(state))
        .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
    m.update(text.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) operator: String,
    /// The cookie's value, which the CSRF token is bound to.
    value: String,
}

impl Session {
    pub(crate) fn csrf(&self, state: &AppState) -> String {
        mac(state, &format!("csrf|{}", self.value))[..32].to_owned()
    }

    /// Whether a form's token is this session's (constant-time enough: both are MACs).
    pub(crate) fn csrf_ok(&self, state: &AppState, token: &str) -> bool {
        let expected = self.csrf(state);
        expected.len() == token.len()
            && expected
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// The operator whose `token` it is, if any.
pub(crate) fn operator_for_token(state: &AppState, token: &str) -> Option<String> {
    state
        .auth
        .operators
        .iter()
        .find(|o| !o.token.is_empty() && o.token == token)
        .map(|o| o.id.clone())
}

/// The `Set-Cookie` value of a new session for `operator`.
pub(crate) fn issue(state: &AppState, operator: &str, headers: &HeaderMap) -> String {
    let expires = state.clock.now().timestamp() + HOURS * 3600;
    let text = format!("{operator}|{expires}");
    let value = format!("{text}|{}", mac(state, &text));
    format!(
        "{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        HOURS * 3600,
        secure(headers)
    )
}

/// Ends the session in the browser.
pub(crate) fn clear(headers: &HeaderMap) -> String {
    format!(
        "{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure(headers)
    )
}

fn secure(headers: &HeaderMap) -> &'static str {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    if matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
        ""
    } else {
        "; Secure"
    }
}

/// The session of a request, if its cookie is valid, unexpired and its operator still
/// configured.
pub(crate) fn read(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())?;
    let (text, tag) = value.rsplit_once('|')?;
    let (operator, expires) = text.split_once('|')?;
    let expires: i64 = expires.parse().ok()?;
    if mac(state, text) != tag || expires <= state.clock.now().timestamp() {
        return None;
    }
    state.auth.operators.iter().find(|o| o.id == operator)?;
    Some(Session {
        operator: operator.to_owned(),
        value,
    })
}
