//! The way back, in the demo: the platform simulator reports what happens
//! to the tickets it accepts with signed callbacks to the hub's listener,
//! and every agency listens on its back-channel (the hotline and the
//! petition bureau on their feedback exchanges, the terminals on their
//! notify topics; the court tallies the outcomes posted to it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use simulators::agencies::amqp::Agency;
use simulators::agencies::{FeedbackListener, HeardChange, HeardTally, NotifyListener};
use simulators::platform::CallbackConfig;

use super::agencies::{self, RunNames};

/// The shipped mappings written to `dir`, the hotline's and the petition
/// bureau's `[feedback] to` carrying the run's prefix (as their inbound
/// exchanges do), so that two runs on one RabbitMQ do not hear each
/// other's feedback. Returns the directory the mapping files are in.
pub fn write_mappings(dir: &Path, names: &RunNames) -> anyhow::Result<PathBuf> {
    let root = dir.join("mappings");
    for f in hub::mapping::shipped::FILES {
        let path = root.join(f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text =
            match [Agency::Hotline, Agency::Petition].into_iter().find(|a| f.path == format!("{}.toml", source(*a))) {
                Some(agency) => renamed(f.text, agency.feedback_exchange(), &names.feedback_exchange(agency))?,
                None => f.text.to_string(),
            };
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(root)
}

/// The source an AMQP agency's records come in as.
pub fn source(agency: Agency) -> &'static str {
    match agency {
        Agency::Hotline => "hotline",
        Agency::Petition => "petition",
    }
}

/// `text` with its `[feedback] to = "{from}"` line saying `to`.
fn renamed(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let line = format!("to = \"{from}\"");
    anyhow::ensure!(text.contains(&line), "the shipped mapping has no `{line}` to give the run's prefix");
    Ok(text.replace(&line, &format!("to = \"{to}\"")))
}

/// The platform's callbacks in the demo: to the hub's listener, for a
/// third of the tickets it accepts (enough to see every kind of event
/// without doubling the load on two cores), a ticket's events about
/// half a second apart; with faults, the repeats, late events and the
/// forged one of [`CallbackConfig::new`].
pub fn callback_config(hub: std::net::SocketAddr, secret: &str, faults: bool) -> CallbackConfig {
    let mut config = CallbackConfig::new(format!("http://{hub}"), secret);
    config.share = 0.3;
    config.step = Duration::from_millis(500);
    config.concurrency = 8;
    if !faults {
        config.duplicate_share = 0.0;
        config.out_of_order_share = 0.0;
        config.forge_one = false;
    }
    config
}

/// The agencies' ears.
pub struct Ears {
    hotline: Option<FeedbackListener>,
    petition: Option<FeedbackListener>,
    terminal: NotifyListener,
}

/// What each agency heard: counts, and the distinct changes.
pub type Heard = (HeardTally, Vec<HeardChange>);

/// What the agencies heard, once they stopped listening.
#[derive(Debug, Default)]
pub struct HeardBack {
    pub hotline: Option<Heard>,
    pub petition: Option<Heard>,
    pub terminal: Heard,
}

impl HeardBack {
    pub fn of(&self, origin: &str) -> Option<&Heard> {
        match origin {
            "hotline" => self.hotline.as_ref(),
            "petition" => self.petition.as_ref(),
            "terminal" => Some(&self.terminal),
            _ => None,
        }
    }
}

/// Starts listening before anything is sent: a feedback exchange with no
/// queue bound would make the hub's publish unroutable (kept as dead).
pub async fn listen(amqp_url: Option<&str>, mqtt_url: &str, names: &RunNames, faults: bool) -> anyhow::Result<Ears> {
    let amqp = |agency: Agency| async move {
        match amqp_url {
            None => Ok(None),
            Some(url) => {
                FeedbackListener::start(agency, url, &names.feedback_exchange(agency), &names.feedback_queue(agency))
                    .await
                    .map(Some)
            }
        }
    };
    let hotline = amqp(Agency::Hotline).await?;
    let petition = amqp(Agency::Petition).await?;
    let topics = agencies::fleet(names, faults).notify_topics(agencies::WORKERS);
    let terminal = NotifyListener::start(mqtt_url, &format!("{}-terminal-notify", names.prefix), topics)
        .await
        .context("the terminals cannot listen on their notify topics")?;
    Ok(Ears { hotline, petition, terminal })
}

impl Ears {
    /// Distinct changes heard so far, all agencies together.
    fn distinct(&self) -> u64 {
        let amqp = [&self.hotline, &self.petition].into_iter().flatten().map(|l| l.tally().distinct).sum::<u64>();
        amqp + self.terminal.tally().distinct
    }

    /// Waits until nothing new has been heard for a second (at most
    /// `grace`): what the hub has sent is in the brokers, and on its way.
    pub async fn settle(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut last = self.distinct();
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.distinct();
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
        }
    }

    pub async fn stop(self) -> HeardBack {
        let amqp = |l: Option<FeedbackListener>| async move {
            match l {
                Some(l) => Some(l.stop().await),
                None => None,
            }
        };
        HeardBack {
            hotline: amqp(self.hotline).await,
            petition: amqp(self.petition).await,
            terminal: self.terminal.stop().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_copies_carry_the_runs_prefix_on_the_feedback_exchanges() {
        let names = RunNames { prefix: "demo-test-1".into() };
        let dir = std::env::temp_dir().join(format!("hub-demo-maps-{}", uuid::Uuid::new_v4().simple()));
        let root = write_mappings(&dir, &names).unwrap();
        let hotline = std::fs::read_to_string(root.join("hotline.toml")).unwrap();
        assert!(hotline.contains("to = \"demo-test-1.hotline.feedback\""), "{hotline}");
        let petition = std::fs::read_to_string(root.join("petition.toml")).unwrap();
        assert!(petition.contains("to = \"demo-test-1.petition.feedback\""));
        for agency in ["hotline", "petition", "terminal", "court"] {
            hub::mapping::DeclarativeMapper::load(&root.join(format!("{agency}.toml"))).unwrap();
        }
        assert!(root.join("tables/regions.csv").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mapping_without_the_line_is_refused() {
        assert!(renamed("[feedback]\nto = \"x\"\n", "hotline.feedback", "p.hotline.feedback").is_err());
    }
}
