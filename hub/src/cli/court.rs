//! The courts: their agreed cases still waiting for the same-day legal
//! document, and moving a feed's cursor past a page that stays bad.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use connectors::court::{META_DEFECT, META_FEED, META_FEED_CURSOR, page_next};

use super::admin::{open, time};
use super::{ConfigArg, load};

#[derive(Subcommand, Debug)]
pub enum CourtCommand {
    /// Agreed cases still without their legal document, the oldest first,
    /// with whether the day's cut-off alarm was raised.
    Pending {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Move a court feed's cursor past a page that cannot be parsed, after
    /// looking at it with `hub quarantine show ID`. The cases on that page
    /// are not taken (a case comes again when it changes): ask the court to
    /// resend those that matter. Refused if the feed is no longer at that
    /// page. A running hub polls from the new cursor at its next attempt.
    Skip {
        /// The quarantined page (`hub quarantine list`).
        id: i64,
        /// Where to go on: the page's own `next` cursor is used when its
        /// beginning can be read; give it here when it cannot.
        #[arg(long, value_name = "CURSOR")]
        to: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub async fn run(cmd: CourtCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CourtCommand::Pending { config } => {
            let store = open(&load(&config)?).await?;
            let pending = store.pending_documents().await?;
            if pending.is_empty() {
                println!("every agreed case has its legal document");
            }
            for p in pending {
                println!(
                    "{} {} ticket {} agreed {}{}",
                    if p.alarmed_at.is_some() { "ALARM  " } else { "waiting" },
                    p.case_no,
                    p.ticket_id,
                    time(p.agreed_at),
                    p.alarmed_at.map(|a| format!(", no document at the cut-off ({})", time(a))).unwrap_or_default()
                );
            }
        }
        CourtCommand::Skip { id, to, config } => {
            let store = open(&load(&config)?).await?;
            let q = store.quarantined_record(id).await?;
            let meta: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&q.metadata).context("the record's transport metadata cannot be read")?;
            let (Some(feed), Some(_)) = (meta.get(META_FEED), meta.get(META_DEFECT)) else {
                anyhow::bail!("quarantined record {id} is not a court feed page that could not be parsed");
            };
            let from = meta.get(META_FEED_CURSOR).map(String::as_str);
            let to = match to.or_else(|| page_next(&q.payload)) {
                Some(to) => to,
                None => anyhow::bail!(
                    "the page does not say where the feed goes on (no readable `next`): give the cursor with --to"
                ),
            };
            store.skip_cursor(feed, from, &to, id).await?;
            println!(
                "{feed}: moved from {} to `{to}`, past quarantined page {id}; a running hub polls from there at its next attempt",
                from.map_or_else(|| "the start".to_string(), |f| format!("`{f}`"))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
