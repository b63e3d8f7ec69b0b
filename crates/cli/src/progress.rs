//! Progress of long runs (`import`, `settle`, `bench`): a bar with rate and ETA on a
//! terminal, and a plain line every few seconds when stderr is not one (a CI log, a file).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain progress line is written.
const EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    bar: indicatif::ProgressBar,
    /// Set when stderr is not a terminal: when the last plain line was written.
    plain: Option<Mutex<Instant>>,
    what: &'static str,
}

impl Progress {
    /// A bar of `len` units; `template` is indicatif's (the plain lines say
    /// `<what>: <pos>/<len> · <msg> · ETA <eta>`).
    pub fn new(len: u64, template: &str, what: &'static str) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            indicatif::ProgressBar::new(len)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_length(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            plain: (!terminal).then(|| Mutex::new(Instant::now())),
            what,
        }
    }

    pub fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }

    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        self.line(false);
    }

    pub fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
        self.line(false);
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        self.line(false);
    }

    pub fn finish_and_clear(&self) {
        self.line(true);
        self.bar.finish_and_clear();
    }

    fn line(&self, last: bool) {
        let Some(at) = &self.plain else { return };
        let mut at = at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !last && at.elapsed() < EVERY {
            return;
        }
        *at = Instant::now();
        let len = self.bar.length().unwrap_or(0);
        eprintln!(
            "{}: {}/{len} · {} · ETA {}s",
            self.what,
            self.bar.position(),
            self.bar.message(),
            self.bar.eta().as_secs()
        );
    }
}
