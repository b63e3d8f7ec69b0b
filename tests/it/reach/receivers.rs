//! What the tests send to: an SMTP server process of the test's own (`tests/support/
//! smtp_sink.py`, aiosmtpd) and an HTTP server in the test that records every request.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};

/// aiosmtpd on a free loopback port, keeping each message as a file.
pub(crate) struct SmtpSink {
    child: Child,
    pub(crate) port: u16,
    dir: PathBuf,
}

impl SmtpSink {
    /// Whether python3 with aiosmtpd is here (`.ci/run` installs it); skips the test otherwise.
    pub(crate) fn available(test: &str) -> bool {
        let found = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        crate::services::program(test, "python3 with aiosmtpd (pip install aiosmtpd)", found)
    }

    pub(crate) fn start(stall_first: Option<f64>) -> Self {
        let dir = std::env::temp_dir().join(format!("pf-smtp-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("sink dir");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/support/smtp_sink.py"
        );
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(&dir);
        if let Some(s) = stall_first {
            cmd.args(["--stall-first", &s.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 tests/support/smtp_sink.py");
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            use std::io::BufRead;
            let _ = std::io::BufReader::new(out).read_line(&mut line);
        }
        let port = line.trim().parse().expect("the sink prints its port");
        SmtpSink { child, port, dir }
    }

    /// Every message received so far, in order, as text.
    pub(crate) fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|b| decode(&String::from_utf8_lossy(&b)))
            .collect()
    }

    pub(crate) fn to(&self, address: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| m.lines().next().is_some_and(|l| l.contains(address)))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The message with its base64 and quoted-printable parts decoded, so tests read the text.
fn decode(raw: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut encoding = "";
    let mut body = String::new();
    let mut in_body = false;
    let flush = |out: &mut String, body: &mut String, encoding: &str| {
        match encoding {
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            "quoted-printable" => out.push_str(&qp(body)),
            _ => out.push_str(body),
        }
        body.clear();
    };
    for line in raw.lines() {
        if line.starts_with("--") {
            flush(&mut out, &mut body, encoding);
            out.push_str(line);
            out.push('\n');
            in_body = false;
            encoding = "";
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if !in_body && lower.starts_with("content-transfer-encoding:") {
            encoding = if lower.contains("base64") {
                "base64"
            } else if lower.contains("quoted-printable") {
                "quoted-printable"
            } else {
                ""
            };
        }
        if !in_body && line.is_empty() {
            in_body = true;
        }
        if in_body {
            body.push_str(line);
            body.push('\n');
        } else if line.starts_with([' ', '\t']) && out.ends_with('\n') {
            // A folded header continues the previous line.
            out.pop();
            out.push_str(&words(line.trim_start()));
            out.push('\n');
        } else {
            out.push_str(&words(line));
            out.push('\n');
        }
    }
    flush(&mut out, &mut body, encoding);
    out
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`) of a header, decoded.
fn words(line: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let tail = &rest[start + 2..];
        let parts: Vec<&str> = tail.splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &parts[2][..end];
        match parts[1].to_ascii_lowercase().as_str() {
            "b" => {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            _ => out.push_str(&qp(&text.replace('_', " "))),
        }
        rest = &parts[2][end + 2..];
        rest = rest
            .strip_prefix(' ')
            .filter(|r| r.starts_with("=?"))
            .unwrap_or(rest);
    }
    out.push_str(rest);
    out
}

fn qp(s: &str) -> String {
    let mut bytes = Vec::new();
    let mut it = s.replace("=\n", "").into_bytes().into_iter().peekable();
    while let Some(b) = it.next() {
        if b == b'=' {
            let h: Vec<u8> = it.by_ref().take(2).collect();
            if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&h), 16) {
                bytes.push(v);
            }
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One request an HTTP receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
}

/// How the receiver answers the n-th request (0-based).
pub(crate) type Answer =
    Arc<dyn Fn(usize, &Received) -> (StatusCode, Option<Duration>) + Send + Sync>;

/// An HTTP server on a free loopback port that records every request and answers as told.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) async fn start(answer: Answer) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            let answer = answer.clone();
            async move {
                let r = Received {
                    path: uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers,
                    body: body.to_vec(),
                };
                let n = {
                    let mut g = seen
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    g.push(r.clone());
                    g.len() - 1
                };
                let (status, delay) = answer(n, &r);
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                status
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            got,
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
