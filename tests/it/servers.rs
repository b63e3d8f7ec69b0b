//! Servers of a test's own, for faults that would disturb every other test on the shared
//! ones: a Redis to FLUSHALL, a PostgreSQL cluster to restart. Started from the machine's
//! `redis-server` and PostgreSQL binaries on free loopback ports, stopped when dropped; a
//! missing binary fails the test loudly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not come up within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A `redis-server` that keeps nothing on disk.
pub(crate) struct OwnRedis {
    child: Child,
    pub(crate) port: u16,
}

impl OwnRedis {
    /// Whether `redis-server` can be started here.
    pub(crate) fn installed() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }

    pub(crate) fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test (Debian package redis-server)");
        wait_until("redis-server", || answers(port));
        OwnRedis { child, port }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster in a temporary directory, trust auth on loopback.
pub(crate) struct OwnPostgres {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
}

/// The newest PostgreSQL binaries of the machine, if any.
fn find_postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// The newest PostgreSQL binaries of the machine.
fn postgres_bin() -> PathBuf {
    find_postgres_bin().expect("PostgreSQL server binaries are needed (/usr/lib/postgresql)")
}

/// Runs a PostgreSQL tool as the `postgres` user when this process is root (the server
/// refuses to run as root), as this user otherwise.
fn as_postgres(tool: &Path) -> Command {
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    }
}

impl OwnPostgres {
    /// Whether a PostgreSQL cluster can be started here.
    pub(crate) fn installed() -> bool {
        find_postgres_bin().is_some()
    }

    pub(crate) fn start() -> Self {
        let bin = postgres_bin();
        let dir = std::env::temp_dir().join(format!("pf-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
        let data = dir.join("data");
        let status = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let pg = OwnPostgres {
            bin,
            dir,
            port: free_port(),
        };
        pg.ctl(&["start"]);
        pg
    }

    fn ctl(&self, action: &[&str]) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let status = as_postgres(&self.bin.join("pg_ctl"))
            .args(action)
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.dir.join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl");
        assert!(status.success(), "pg_ctl {action:?} failed");
        wait_until("PostgreSQL", || answers(self.port));
    }

    /// The admin URL (database `postgres`).
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (every connection is cut) and starts it again.
    pub(crate) fn restart(&self) {
        self.ctl(&["restart"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
