//! Shared bits of the benchmarks: resident memory of a process, and a table
//! printer that puts each figure beside its baseline.

use std::time::Duration;

/// Resident set size of a process in MiB, from /proc (Linux).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

pub fn row(what: &str, value: String, baseline: String, note: &str) {
    println!("| {what:<44} | {value:>16} | {baseline:>16} | {note}");
}

pub fn header(title: &str) {
    println!("\n## {title}\n");
    println!("| {:<44} | {:>16} | {:>16} | note", "measure", "hub", "baseline");
    println!("|{}|{}|{}|------", "-".repeat(46), "-".repeat(18), "-".repeat(18));
}
