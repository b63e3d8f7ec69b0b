//! What the benches read off: percentiles of a sample of durations, and this process's memory
//! as /proc tells it.

use std::time::Duration;

/// The `p` percentile (nearest rank) of `sorted`, in milliseconds; 0 for an empty sample.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A memory line of /proc/self/status (`VmRSS`: resident now, `VmHWM`: the peak), in MiB.
pub fn memory_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
