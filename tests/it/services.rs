//! Whether the servers a test needs are there. On a machine with only Rust, tests that need
//! PostgreSQL, Redis or the server binaries say so in one line and pass without running;
//! with `PARTNERFLOW_REQUIRE_SERVICES=1` (which `.ci/run` sets) a missing server fails them.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The admin URL of the PostgreSQL server the tests use.
pub(crate) fn postgres_admin() -> String {
    std::env::var("PARTNERFLOW_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The URL of the Redis server the tests use.
pub(crate) fn redis_url() -> String {
    std::env::var("PARTNERFLOW_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `host:port` of a `scheme://[user@]host:port/…` URL.
fn address(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    Some(rest.split(['/', '?']).next()?.to_owned())
}

fn answers(url: &str) -> bool {
    address(url)
        .and_then(|a| a.to_socket_addrs().ok())
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// True when the test may go on: every `(service, url)` answers. Otherwise the test is skipped
/// with one line on the terminal, or fails when services are required.
pub(crate) fn available(test: &str, needs: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = needs
        .iter()
        .filter(|(_, url)| !answers(url))
        .map(|(service, url)| format!("{service} at {url}"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(" and ");
    if std::env::var("PARTNERFLOW_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{test} needs {what}, which is not reachable (PARTNERFLOW_REQUIRE_SERVICES=1)");
    }
    // Straight to the terminal: the test harness captures only the print macros.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: needs {what}; start it (or point PARTNERFLOW_TEST_PG / PARTNERFLOW_TEST_REDIS_URL at one) to run it"
    );
    false
}

/// PostgreSQL, for a test named `test`.
pub(crate) fn postgres(test: &str) -> bool {
    available(test, &[("PostgreSQL", &postgres_admin())])
}

/// PostgreSQL and Redis, for a test named `test`.
pub(crate) fn postgres_and_redis(test: &str) -> bool {
    available(
        test,
        &[("PostgreSQL", &postgres_admin()), ("Redis", &redis_url())],
    )
}

/// A program on the PATH or at a path, for tests that start servers of their own.
pub(crate) fn program(test: &str, name: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("PARTNERFLOW_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{test} needs {name}, which is not installed (PARTNERFLOW_REQUIRE_SERVICES=1)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: needs {name}, which is not installed"
    );
    false
}
