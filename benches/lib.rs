//! Shared bits of the benchmarks: resident memory and CPU time of a
//! process, and a table printer that puts each figure beside its baseline.

use std::time::Duration;

/// Resident set size of a process in MiB, from /proc (Linux).
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmRSS:")
}

/// What a phase of this process cost: CPU time of all its threads (user and
/// system, `getrusage(RUSAGE_SELF)`) and its peak resident set size.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu: Duration,
    /// The process's peak RSS in MiB during the phase (`VmHWM` after it was
    /// reset at the start); `None` where the peak cannot be reset (not Linux).
    pub peak_rss_mib: Option<f64>,
}

impl Usage {
    /// CPU milliseconds per record.
    pub fn cpu_ms_per(&self, records: usize) -> f64 {
        self.cpu.as_secs_f64() * 1e3 / records.max(1) as f64
    }
}

/// Measures a phase of this process: [`Meter::start`] before, [`Meter::stop`] after.
pub struct Meter {
    cpu: Duration,
    peak_reset: bool,
}

impl Meter {
    /// Notes the CPU time so far and resets the peak RSS (`/proc/self/clear_refs`, Linux ≥ 4.0).
    pub fn start() -> Meter {
        let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Meter { cpu: process_cpu(), peak_reset }
    }

    pub fn stop(&self) -> Usage {
        let peak_rss_mib = if self.peak_reset { status_mib(std::process::id(), "VmHWM:") } else { None };
        Usage { cpu: process_cpu().saturating_sub(self.cpu), peak_rss_mib }
    }
}

/// CPU time (user and system) of this process so far, every thread.
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given, which is as large as it expects.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded, so it filled the struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A `kB` line of /proc/{pid}/status in MiB.
fn status_mib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()?;
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

/// A table with two baselines: the hub, then each baseline in its own column.
pub fn header3(title: &str, baselines: [&str; 2]) {
    println!("\n## {title}\n");
    println!("| {:<44} | {:>16} | {:>16} | {:>16} | note", "measure", "hub", baselines[0], baselines[1]);
    println!("|{}|{}|{}|{}|------", "-".repeat(46), "-".repeat(18), "-".repeat(18), "-".repeat(18));
}

pub fn row3(what: &str, values: [String; 3], note: &str) {
    let [hub, first, second] = values;
    println!("| {what:<44} | {hub:>16} | {first:>16} | {second:>16} | {note}");
}
