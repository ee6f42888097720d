//! What the demo prints: progress while it runs, then per source what was
//! sent, stored, quarantined, created, updated and delivered, and the
//! reconciliation of all of it against the simulators' own tallies.

use std::sync::atomic::Ordering;
use std::time::Instant;

use hub::metrics::Metrics;
use hub::store::Store;
use simulators::platform::{CallbackStats, PlatformSim};

use super::agencies::Sent;
use super::told::Back;

/// Distinct records each source must have stored: every message the
/// agency had confirmed, bad ones included (they are kept in quarantine,
/// the same bad bytes once), resends of the same record not counted again.
pub fn expected(sent: &Sent) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for (source, tally) in [("hotline", &sent.hotline), ("petition", &sent.petition)] {
        if let Some(t) = tally {
            out.push((source, t.good_new + t.good_update + t.bad_distinct));
        }
    }
    if let Some(t) = &sent.terminal {
        out.push(("terminal", t.good() + t.bad_distinct));
    }
    out.push(("court", sent.court_changes));
    out
}

fn bad_sent(sent: &Sent, source: &str) -> u64 {
    match source {
        "hotline" => sent.hotline.as_ref().map_or(0, |t| t.bad_distinct),
        "petition" => sent.petition.as_ref().map_or(0, |t| t.bad_distinct),
        "terminal" => sent.terminal.as_ref().map_or(0, |t| t.bad_distinct),
        _ => 0,
    }
}

fn messages_sent(sent: &Sent, source: &str) -> u64 {
    match source {
        "hotline" => sent.hotline.as_ref().map_or(0, |t| t.total()),
        "petition" => sent.petition.as_ref().map_or(0, |t| t.total()),
        "terminal" => sent.terminal.as_ref().map_or(0, |t| t.good() + t.bad + t.resends),
        _ => sent.court_changes,
    }
}

pub async fn progress(hub: &hub::Hub, sim: &PlatformSim, callbacks: &CallbackStats, started: Instant) {
    let depth = hub.store.outbox_depth().await.unwrap_or(-1);
    let mut per_source: std::collections::BTreeMap<String, u64> = Default::default();
    for ((system, _), n) in hub.metrics.records() {
        *per_source.entry(system).or_default() += n;
    }
    let sources: Vec<String> = per_source.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "[{:>4.0}s] in: {}  | delivered {}  waiting {}  retries {}  platform tickets {}  | callbacks {} applied {}{}",
        started.elapsed().as_secs_f64(),
        if sources.is_empty() { "-".to_string() } else { sources.join(", ") },
        hub.metrics.delivered.load(Ordering::Relaxed),
        depth,
        hub.metrics.retried.load(Ordering::Relaxed),
        sim.stats().tickets,
        callbacks.events,
        callbacks.applied,
        if hub.metrics.delivery_paused.load(Ordering::Relaxed) == 1 { "  (platform paused)" } else { "" },
    );
}

/// Prints the summary and the reconciliation; true if it holds.
pub async fn summary(store: &Store, sim: &PlatformSim, metrics: &Metrics, sent: &Sent) -> anyhow::Result<bool> {
    let counts = store.source_counts().await?;
    let totals = store.summary().await?;
    let stats = sim.stats();
    let expected = expected(sent);

    println!(
        "\n{:<10} {:>7} {:>9} {:>11} {:>8} {:>8} {:>7} {:>6} {:>10}",
        "source", "sent", "received", "quarantined", "created", "updated", "merged", "stale", "delivered"
    );
    for (source, _) in &expected {
        let c = counts.get(*source).cloned().unwrap_or_default();
        println!(
            "{source:<10} {:>7} {:>9} {:>11} {:>8} {:>8} {:>7} {:>6} {:>10}",
            messages_sent(sent, source),
            c.received,
            c.quarantined,
            c.created,
            c.updated,
            c.merged,
            c.stale,
            c.delivered
        );
    }
    println!(
        "(sent counts resends; received counts each record and version once; merged: joined another channel's ticket)"
    );
    let possible = store.duplicate_links(Some("possible"), 100_000).await?.len();
    println!("duplicates: {possible} possible duplicates wait for a person (`hub duplicates list` on a kept --db)");
    println!(
        "mapping: {} warnings (details left out: unknown codes mapped to defaults, invalid phone or ID numbers; deadlines past the holiday table)",
        metrics.mapping_warnings.load(Ordering::Relaxed)
    );
    println!(
        "delivery: {} changes delivered, {} retried, {} throttled, {} answered 409; platform: {} tickets, {} changes applied, {} repeated keys absorbed",
        metrics.delivered.load(Ordering::Relaxed),
        metrics.retried.load(Ordering::Relaxed),
        metrics.throttled.load(Ordering::Relaxed),
        metrics.stale_answers.load(Ordering::Relaxed),
        stats.tickets,
        stats.applied,
        stats.duplicate_keys
    );

    let mut checks: Vec<(String, bool)> = Vec::new();
    for (source, n) in &expected {
        let c = counts.get(*source).cloned().unwrap_or_default();
        checks.push((
            format!("{source}: every record sent is stored once ({n} expected, {} stored)", c.received),
            c.received == *n as i64,
        ));
        let bad = bad_sent(sent, source);
        if bad > 0 || c.quarantined > 0 {
            checks.push((
                format!("{source}: every bad record is in quarantine ({bad} distinct sent, {} held)", c.quarantined),
                c.quarantined == bad as i64,
            ));
        }
    }
    if let Some(t) = &sent.terminal {
        checks.push((
            format!("terminal: every message acknowledged ({} left unacknowledged)", t.unacked_at_end),
            t.unacked_at_end == 0,
        ));
    }
    let platform_tickets = sim.tickets();
    let hub_tickets = store.ticket_revisions().await?;
    let mismatched = hub_tickets.iter().filter(|t| !platform_tickets.contains(t)).count();
    checks.push(("nothing waits in the outbox".into(), totals.pending == 0));
    checks.push((
        format!("the platform holds all {} tickets at their last revision", hub_tickets.len()),
        mismatched == 0 && platform_tickets.len() == hub_tickets.len(),
    ));
    checks.push((
        format!(
            "no change applied twice ({} applied = {} revisions - {} dead letters)",
            stats.applied, totals.revisions, totals.dead_letters
        ),
        stats.applied as i64 == totals.revisions - totals.dead_letters,
    ));
    println!("\nreconciliation");
    let ok = print_checks(checks);
    if !ok {
        println!(
            "the reconciliation FAILED: see the lines above (`hub status`, `hub quarantine list` on a kept --db tell more)"
        );
    }
    Ok(ok)
}

/// Prints each check; true if all hold.
fn print_checks(checks: Vec<(String, bool)>) -> bool {
    let mut ok = true;
    for (what, holds) in checks {
        println!("  [{}] {what}", if holds { "ok" } else { "FAILED" });
        ok &= holds;
    }
    ok
}

/// The way back: what the platform reported, what each origin was told
/// and heard, and its reconciliation (`told.rs` says what is expected);
/// true if it holds.
pub fn way_back(back: &Back<'_>) -> bool {
    back.print();
    println!("\nreconciliation of the way back");
    let ok = print_checks(back.checks());
    if !ok {
        println!(
            "the way back FAILED: see the lines above (`hub callbacks list`, `hub ticket show ID` on a kept --db tell more)"
        );
    }
    ok
}
