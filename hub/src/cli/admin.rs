//! Commands for the people who look after the hub: dead letters,
//! quarantine, tickets, status. Personal data is masked on screen unless
//! asked for with `--reveal`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hub::config::Settings;
use hub::store::Store;

use super::{ConfigArg, load};

#[derive(Subcommand, Debug)]
pub enum DeadLetterCommand {
    /// List the open dead letters (`--all` includes replayed ones).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        all: bool,
    },
    /// Show one dead letter: the platform's answer and the change it refused.
    Show {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        /// Show personal data unmasked.
        #[arg(long)]
        reveal: bool,
    },
    /// Send a dead letter's ticket again once the cause is fixed (on the
    /// platform's side, or in the body given with --body), as its newest revision.
    Replay {
        /// The dead letter (or --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every open dead letter, oldest first, with progress on stderr.
        #[arg(long, conflicts_with = "body")]
        all: bool,
        #[command(flatten)]
        config: ConfigArg,
        /// A corrected ticket (JSON) at the ticket's current revision (`hub
        /// deadletters show` prints it); it is written to the ticket and sent as
        /// the next revision.
        #[arg(long, value_name = "FILE")]
        body: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// List the open quarantined records (`--all` includes replayed ones),
    /// oldest first, a page at a time.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        all: bool,
        /// Records listed at most.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// List from after this id (the last one of the page before).
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Show one quarantined record: the reason and the record as received.
    Show {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        /// Show the payload unmasked.
        #[arg(long)]
        reveal: bool,
    },
    /// Run a quarantined record through the current mappings again.
    Replay {
        /// The record (or --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every open record (of one source with --system), oldest first,
        /// with progress on stderr: after a mapping was fixed.
        #[arg(long)]
        all: bool,
        #[arg(long, requires = "all", value_name = "SOURCE")]
        system: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum TicketCommand {
    /// Open tickets whose deadline is near (reminded) or past (overdue), the soonest first.
    Due {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show a ticket, its sources and its revisions.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CallbackCommand {
    /// The platform's callbacks the hub kept, newest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Only those held for a person (unknown ticket or status, unreadable).
        #[arg(long)]
        open: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One callback: what it said and what the hub did with it.
    Show {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        /// Show the body unmasked.
        #[arg(long)]
        reveal: bool,
    },
    /// Apply a held callback again, as received (after the hub learnt its
    /// status, or its ticket was restored); held again if it still cannot be.
    Replay {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Close a held callback without applying it.
    Dismiss {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub async fn callbacks(cmd: CallbackCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CallbackCommand::List { config, open: only_open, limit } => {
            let store = open(&load(&config)?).await?;
            let list = store.callbacks(only_open, limit).await?;
            if list.is_empty() {
                println!("no callbacks{}", if only_open { " waiting for a person" } else { "" });
            }
            for c in list {
                println!(
                    "#{} {} {} ticket {} {} -> {}{}",
                    c.id,
                    time(c.received_at),
                    c.event_id,
                    c.ticket_id.as_deref().unwrap_or("-"),
                    c.status.as_deref().unwrap_or("-"),
                    c.outcome,
                    c.reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
        }
        CallbackCommand::Show { id, config, reveal } => {
            let store = open(&load(&config)?).await?;
            let c = store.callback(id).await?;
            println!("callback #{} event {} received {}", c.id, c.event_id, time(c.received_at));
            println!("ticket {} status {}", c.ticket_id.as_deref().unwrap_or("-"), c.status.as_deref().unwrap_or("-"));
            if let Some(at) = c.at {
                println!("at {}", time(at));
            }
            println!("outcome {} ({})", c.outcome, c.state);
            if let Some(r) = &c.reason {
                println!("reason: {r}");
            }
            let text = String::from_utf8_lossy(&c.body);
            println!("body:\n{}", if reveal { text.into_owned() } else { hub::pii::mask_payload(&text) });
        }
        CallbackCommand::Replay { id, config } => {
            let store = open(&load(&config)?).await?;
            return Ok(match store.replay_callback(id).await? {
                hub::store::CallbackOutcome::Held { reason } => {
                    eprintln!("callback #{id} is still held: {reason}");
                    ExitCode::FAILURE
                }
                done => {
                    println!("callback #{id} {}", done.label());
                    ExitCode::SUCCESS
                }
            });
        }
        CallbackCommand::Dismiss { id, config } => {
            open(&load(&config)?).await?.dismiss_callback(id).await?;
            println!("callback #{id} dismissed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn open(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::open(&settings.database_url)
        .await
        .with_context(|| format!("cannot open the store {}", super::redact_url(&settings.database_url)))?;
    // A replayed record that reopens a matter tells its origins, as in `hub run`.
    store.set_feedback_plan(hub::feedback::Plan::of(settings));
    Ok(store)
}

/// A progress bar on stderr for work over many items (hidden when stderr
/// is not a terminal).
pub(super) fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

pub(super) fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&hub::ticket::beijing()).format("%Y-%m-%d %H:%M:%S%:z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A change (ticket JSON) as stored for the platform, for the screen: its
/// personal fields masked unless `reveal`, and the masker that knows them,
/// for the platform's answer, which may quote them.
fn masked_change(body: &str, reveal: bool) -> (serde_json::Value, hub::pii::Masker) {
    let mut value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| serde_json::Value::String(body.to_string()));
    let masker = hub::pii::Masker::of_ticket(&value);
    if !reveal {
        masker.apply(&mut value);
    }
    (value, masker)
}

pub async fn deadletters(cmd: DeadLetterCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DeadLetterCommand::List { config, all } => {
            let store = open(&load(&config)?).await?;
            let list = store.dead_letters(all).await?;
            if list.is_empty() {
                println!("no {}dead letters", if all { "" } else { "open " });
            } else {
                println!(
                    "{:>6}  {:<32}  {:>4}  {:>6}  {:<8}  {:<25}  answer",
                    "id", "ticket", "rev", "status", "state", "at"
                );
                for d in list {
                    let (_, masker) = masked_change(&d.body, false);
                    let answer: String = masker.text(&d.response).chars().take(60).collect();
                    println!(
                        "{:>6}  {:<32}  {:>4}  {:>6}  {:<8}  {:<25}  {}",
                        d.id,
                        d.ticket_id,
                        d.revision,
                        d.status_code,
                        d.state,
                        time(d.created_at),
                        answer.replace('\n', " ")
                    );
                }
            }
        }
        DeadLetterCommand::Show { id, config, reveal } => {
            let store = open(&load(&config)?).await?;
            let d = store.dead_letter(id).await?;
            println!("dead letter {}: ticket {} revision {} ({})", d.id, d.ticket_id, d.revision, d.state);
            println!("refused at {} with {} after {} attempt(s)", time(d.created_at), d.status_code, d.attempts);
            println!("idempotency key: {}", d.idempotency_key);
            let (body, masker) = masked_change(&d.body, reveal);
            let answer = if reveal { d.response.clone() } else { masker.text(&d.response) };
            println!("platform's answer:\n  {answer}");
            println!("change:\n{}", serde_json::to_string_pretty(&body)?);
            // A replay sends the ticket as it is now: show that when it has moved on.
            let now = store.ticket(&d.ticket_id).await?.ticket;
            if now.revision != d.revision {
                let (now_body, _) = masked_change(&serde_json::to_string(&now)?, reveal);
                println!(
                    "the ticket has moved on to revision {}; a correction (--body) starts from it:\n{}",
                    now.revision,
                    serde_json::to_string_pretty(&now_body)?
                );
            }
        }
        DeadLetterCommand::Replay { id: None, all: true, config, .. } => {
            let store = open(&load(&config)?).await?;
            let open_letters = store.dead_letters(false).await?;
            let bar = progress(open_letters.len() as u64, "replaying dead letters");
            let mut failed = 0;
            for d in &open_letters {
                if let Err(e) = store.replay_dead_letter(d.id, None).await {
                    failed += 1;
                    bar.suspend(|| eprintln!("dead letter {}: {e}", d.id));
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            println!("{} dead letter(s) queued again, {failed} could not be", open_letters.len() - failed);
            return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        DeadLetterCommand::Replay { id, config, body, .. } => {
            let Some(id) = id else { anyhow::bail!("give a dead letter's id, or --all") };
            let store = open(&load(&config)?).await?;
            let body = match body {
                Some(path) => {
                    Some(std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?)
                }
                None => None,
            };
            let r = store.replay_dead_letter(id, body.as_deref()).await?;
            println!(
                "dead letter {id} queued again as revision {} of ticket {} (key {}); a running hub sends it within seconds",
                r.revision, r.ticket_id, r.idempotency_key
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn quarantine(cmd: QuarantineCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QuarantineCommand::List { config, all, limit, after } => {
            let store = open(&load(&config)?).await?;
            let limit = limit.max(1);
            let list = store.quarantined_page(all, after, limit).await?;
            if list.is_empty() {
                println!("no {}quarantined records", if all { "" } else { "open " });
            } else {
                println!("{:>6}  {:<12}  {:<8}  {:<25}  {:>9}  reason", "id", "source", "state", "received", "bytes");
                let last = list.last().map(|q| q.id).unwrap_or(after);
                let full = list.len() as i64 == limit;
                for q in list {
                    println!(
                        "{:>6}  {:<12}  {:<8}  {:<25}  {:>9}  {}",
                        q.id,
                        q.system,
                        q.state,
                        time(q.received_at),
                        q.payload_bytes,
                        hub::pii::scrub(&q.reason)
                    );
                }
                if full {
                    println!("(more may follow: --after {last})");
                }
            }
        }
        QuarantineCommand::Show { id, config, reveal } => {
            let store = open(&load(&config)?).await?;
            let q = store.quarantined_record(id).await?;
            println!("quarantined record {} from `{}` ({})", q.id, q.system, q.state);
            println!("reason: {}", if reveal { q.reason.clone() } else { hub::pii::scrub(&q.reason) });
            println!(
                "received {} as {}{}",
                time(q.received_at),
                q.content_type,
                q.encoding.map(|e| format!("; {e}")).unwrap_or_default()
            );
            println!("transport: {}", q.metadata);
            let text = match hub::mapping::decode_text(&q.payload, None) {
                Ok(t) => t.into_owned(),
                Err(_) => format!(
                    "({} bytes, not UTF-8; shown as lossy text)\n{}",
                    q.payload.len(),
                    String::from_utf8_lossy(&q.payload)
                ),
            };
            println!("payload:\n{}", if reveal { text } else { hub::pii::mask_payload(&text) });
        }
        QuarantineCommand::Replay { id: None, all: true, system, config } => {
            let settings = load(&config)?;
            let store = open(&settings).await?;
            let mappings = hub::sources::mappings(&settings);
            let entries: Vec<_> = store
                .quarantined(false)
                .await?
                .into_iter()
                .filter(|q| system.as_deref().is_none_or(|s| s == q.system))
                .collect();
            let bar = progress(entries.len() as u64, "replaying quarantine");
            let (mut stored, mut still) = (0, 0);
            for q in &entries {
                let record = store.quarantined_record(q.id).await?.record();
                let item = hub::intake::prepare(&record, &mappings, &settings.intake);
                match store.resolve_quarantine(q.id, &item).await? {
                    hub::store::StoredOutcome::Quarantined { .. } => still += 1,
                    _ => stored += 1,
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            println!("{stored} record(s) replayed, {still} still do not map (hub quarantine list)");
            return Ok(if still == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        QuarantineCommand::Replay { id, config, .. } => {
            let Some(id) = id else { anyhow::bail!("give a record's id, or --all") };
            let settings = load(&config)?;
            let store = open(&settings).await?;
            let q = store.quarantined_record(id).await?;
            let record = q.record();
            let mappings = hub::sources::mappings(&settings);
            let item = hub::intake::prepare(&record, &mappings, &settings.intake);
            match store.resolve_quarantine(id, &item).await? {
                hub::store::StoredOutcome::Quarantined { reason, .. } => {
                    println!("record {id} still does not map: {reason}");
                    return Ok(ExitCode::from(1));
                }
                outcome => println!("record {id} replayed: {}", outcome.label()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ticket(cmd: TicketCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TicketCommand::Due { config, limit } => {
            let store = open(&load(&config)?).await?;
            let due = store.due_tickets(limit).await?;
            if due.is_empty() {
                println!("no open ticket is due soon or overdue");
            }
            for d in due {
                let state = if d.overdue_at.is_some() { "OVERDUE " } else { "due soon" };
                println!("{state} {} due {}", d.ticket_id, time(d.due_at));
            }
        }
        TicketCommand::Show { id, config, reveal } => {
            let store = open(&load(&config)?).await?;
            let t = store.ticket(&id).await?;
            println!(
                "ticket {} revision {} (platform has revision {})",
                t.ticket.ticket_id, t.ticket.revision, t.delivered_revision
            );
            for s in &t.ticket.sources {
                println!(
                    "  source {} {} {} v{} received {}",
                    s.channel,
                    s.system,
                    s.record_id,
                    s.version,
                    s.received_at.to_rfc3339()
                );
            }
            for (rev, cause, at) in &t.revisions {
                println!("  revision {rev}: {cause} at {}", time(*at));
            }
            if let Some(of) = &t.ticket.duplicate_of {
                println!("  duplicate of ticket {of}");
            }
            if let Some(h) = store.handling(&id).await? {
                println!(
                    "  on the platform: {}, department {}, due {}{}",
                    h.status.map_or("-", |s| s.as_str()),
                    h.department.as_deref().unwrap_or("-"),
                    h.due_at.map_or_else(|| "-".to_string(), |d| d.format("%Y-%m-%d %H:%M").to_string()),
                    if h.reopened > 0 { format!(", reopened {} time(s)", h.reopened) } else { String::new() }
                );
            }
            for e in store.ticket_events(&id).await? {
                println!("  {} {}: {}", time(e.at), e.kind, e.detail);
            }
            for f in store.feedback_of(&id).await? {
                let state = if f.state == "dead" { "refused for good" } else { "waiting" };
                println!(
                    "  {} feedback: {} of {} {state} ({} attempt(s)){}",
                    time(f.created_at),
                    f.destination,
                    f.status,
                    f.attempts,
                    f.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
            for l in store.duplicate_links_of(&id).await? {
                let what = if l.other_id == l.ticket_id {
                    format!("{} {} joined this ticket", l.system, l.record_id)
                } else if l.ticket_id == id {
                    format!("possibly the same matter as ticket {}", l.other_id)
                } else {
                    format!("ticket {} is possibly the same matter", l.ticket_id)
                };
                println!("  duplicate #{} {} (score {:.2}): {what}", l.id, l.state, l.score);
                for r in &l.reasons {
                    println!("      {r}");
                }
            }
            let mut ticket = serde_json::to_value(&t.ticket)?;
            if !reveal {
                hub::pii::mask_ticket(&mut ticket);
            }
            println!("{}", serde_json::to_string_pretty(&ticket)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open(settings).await?;
    let s = store.summary().await?;
    println!("tickets: {}  revisions: {}  delivered: {}", s.tickets, s.revisions, s.delivered_revisions);
    println!(
        "waiting for the platform: {}  dead letters: {}  quarantined: {}",
        s.pending, s.dead_letters, s.quarantined
    );
    for (system, outcome, n) in store.record_counts().await? {
        println!("  {system:<12} {outcome:<12} {n}");
    }
    let head = store.outbox_head(5).await?;
    if !head.is_empty() {
        println!("oldest pending changes:");
        for (id, ticket, rev, attempts, err) in head {
            println!("  #{id} {ticket} r{rev} attempts {attempts} {}", err.unwrap_or_default());
        }
    }
    let depths = store.feedback_depths().await?;
    if !depths.is_empty() {
        println!("status messages waiting for their agency:");
        for (destination, n) in depths {
            println!("  {destination:<12} {n}");
        }
    }
    let dead = store.feedback_entries(true, 1000).await?.len();
    if dead > 0 {
        println!("status messages refused for good: {dead} (hub feedback list --dead)");
    }
    let held = store.callbacks(true, 1000).await?.len();
    if held > 0 {
        println!("platform callbacks held for a person: {held} (hub callbacks list --open)");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum FeedbackCommand {
    /// Status messages waiting for their agency (or refused for good), oldest first.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Only those an agency refused for good, with its answer.
        #[arg(long)]
        dead: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub async fn feedback(cmd: FeedbackCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FeedbackCommand::List { config, dead, limit } => {
            let store = open(&load(&config)?).await?;
            let list = store.feedback_entries(dead, limit).await?;
            if list.is_empty() {
                println!("no status messages {}", if dead { "refused" } else { "waiting" });
            }
            for e in list {
                println!(
                    "#{} {} {} ticket {} {} ({} attempt(s)){}",
                    e.id,
                    time(e.created_at),
                    e.destination,
                    e.ticket_id,
                    e.status,
                    e.attempts,
                    e.last_error.map(|r| format!(" {}: {r}", e.state)).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
