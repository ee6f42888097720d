//! The agencies the demo plays: hotline and petition bureau over RabbitMQ
//! (when it answers), grid workers' terminals over the embedded MQTT
//! broker, and a court's mediation feed over HTTP. Each reports what it
//! sent, for the reconciliation.

use std::time::Duration;

use anyhow::Context;
use simulators::agencies::amqp::{Agency, AmqpAgency, Tally};
use simulators::agencies::court::{CourtFeedServer, FeedEncoding, FeedFaults};
use simulators::agencies::terminal::{FleetTally, TerminalFleet};
use tokio::task::JoinHandle;

/// The court the demo's feed belongs to.
pub const COURT: &str = "吉0402";

/// Names for one run: exchanges and queues on a shared RabbitMQ must not
/// meet another run's.
#[derive(Clone, Debug)]
pub struct RunNames {
    pub prefix: String,
}

impl RunNames {
    pub fn new() -> Self {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        RunNames { prefix: format!("demo-{}-{stamp}", std::process::id()) }
    }
    pub fn exchange(&self, agency: Agency) -> String {
        format!("{}.{}", self.prefix, agency.default_exchange())
    }
    pub fn queue(&self, source: &str) -> String {
        format!("{}.hub.{source}", self.prefix)
    }
    /// The agency's feedback exchange, as the run's mapping copies name it.
    pub fn feedback_exchange(&self, agency: Agency) -> String {
        format!("{}.{}", self.prefix, agency.feedback_exchange())
    }
    /// The queue the agency hears its feedback through.
    pub fn feedback_queue(&self, agency: Agency) -> String {
        format!("{}.agency.{}", self.prefix, agency.feedback_exchange())
    }
}

/// Terminals in the demo's fleet.
pub const WORKERS: u32 = 40;

/// The demo's fleet of grid workers' terminals.
pub fn fleet(names: &RunNames, faults: bool) -> TerminalFleet {
    TerminalFleet {
        seed: 13,
        topic_root: "grid".into(),
        disconnect_share: if faults { 0.02 } else { 0.0 },
        client_prefix: format!("{}-terminal", names.prefix),
    }
}

/// What each agency sent, once it is done.
#[derive(Debug, Default)]
pub struct Sent {
    pub hotline: Option<Tally>,
    pub petition: Option<Tally>,
    pub terminal: Option<FleetTally>,
    /// Changes in the court's feed log.
    pub court_changes: u64,
}

/// The running agencies.
pub struct Agencies {
    hotline: Option<JoinHandle<anyhow::Result<Tally>>>,
    petition: Option<JoinHandle<anyhow::Result<Tally>>>,
    terminal: JoinHandle<anyhow::Result<FleetTally>>,
    court_task: JoinHandle<()>,
    pub court: CourtFeedServer,
}

/// How the agencies send.
#[derive(Clone, Debug)]
pub struct Load {
    pub rate: f64,
    pub duration: Duration,
    pub bad_share: f64,
    pub faults: bool,
}

/// Starts the court feed server (before the hub, which polls it).
pub async fn court_feed(faults: bool) -> anyhow::Result<CourtFeedServer> {
    let court = CourtFeedServer::bind("127.0.0.1:0", COURT, FeedEncoding::Utf8, 2024, 10)
        .await
        .context("cannot start the court feed simulator")?;
    if faults {
        court.set_faults(FeedFaults { throttle_share: 0.05, unavailable_share: 0.02 });
    }
    Ok(court)
}

/// Starts every agency; `amqp_url` is `None` when RabbitMQ does not answer.
pub fn start(
    amqp_url: Option<&str>,
    mqtt_url: &str,
    names: &RunNames,
    court: CourtFeedServer,
    load: &Load,
) -> Agencies {
    let amqp = |agency: Agency, seed: u64| {
        amqp_url.map(|url| {
            let (url, exchange, load) = (url.to_string(), names.exchange(agency), load.clone());
            tokio::spawn(async move {
                AmqpAgency::new(agency, seed).run(&url, &exchange, load.rate, load.duration, load.bad_share).await
            })
        })
    };
    // One seed: some matters reach both, to be merged into one ticket.
    let hotline = amqp(Agency::Hotline, 11);
    let petition = amqp(Agency::Petition, 11);
    let terminal = {
        let fleet = fleet(names, load.faults);
        let (url, load) = (mqtt_url.to_string(), load.clone());
        tokio::spawn(async move { fleet.run(&url, WORKERS, load.rate, load.duration, load.bad_share).await })
    };
    // The court: new cases and cases moving on, about `rate` changes a second.
    let court_task = {
        let (court, load) = (court.clone(), load.clone());
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let per_tick = (load.rate / 2.0).max(1.0) as usize;
            while started.elapsed() < load.duration {
                tick.tick().await;
                court.add_cases(per_tick.div_ceil(2));
                court.advance(per_tick / 2);
            }
        })
    };
    Agencies { hotline, petition, terminal, court_task, court }
}

impl Agencies {
    /// Whether every agency has finished sending.
    pub fn finished(&self) -> bool {
        self.hotline.as_ref().is_none_or(JoinHandle::is_finished)
            && self.petition.as_ref().is_none_or(JoinHandle::is_finished)
            && self.terminal.is_finished()
            && self.court_task.is_finished()
    }

    /// Waits for every agency and collects what they sent.
    pub async fn join(self) -> anyhow::Result<Sent> {
        async fn tally<T>(task: Option<JoinHandle<anyhow::Result<T>>>, what: &str) -> anyhow::Result<Option<T>> {
            match task {
                None => Ok(None),
                Some(t) => Ok(Some(t.await.with_context(|| format!("the {what} simulator panicked"))??)),
            }
        }
        let hotline = tally(self.hotline, "hotline").await.context("the hotline simulator failed")?;
        let petition = tally(self.petition, "petition").await.context("the petition simulator failed")?;
        let terminal = tally(Some(self.terminal), "terminal").await.context("the terminal fleet failed")?;
        self.court_task.await.context("the court simulator panicked")?;
        Ok(Sent { hotline, petition, terminal, court_changes: self.court.changes() as u64 })
    }
}

/// Whether RabbitMQ answers at `url` within a few seconds.
pub async fn rabbitmq_answers(url: &str) -> bool {
    let connect = lapin::Connection::connect(url, lapin::ConnectionProperties::default());
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close(200, "probe".into()).await;
            true
        }
        _ => false,
    }
}

/// Waits until the hub has declared its queue (so that nothing published
/// goes to an exchange with no queue bound yet).
pub async fn wait_for_queue(url: &str, queue: &str) -> anyhow::Result<()> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ch = conn.create_channel().await?;
        let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
        if ch.queue_declare(queue.into(), passive, Default::default()).await.is_ok() {
            let _ = conn.close(200, "ready".into()).await;
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the hub did not declare its queue {queue} in 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages still waiting in `queue`, or `None` if it cannot be asked.
pub async fn queue_depth(url: &str, queue: &str) -> Option<u32> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await.ok()?;
    let ch = conn.create_channel().await.ok()?;
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    let depth = ch.queue_declare(queue.into(), passive, Default::default()).await.ok().map(|q| q.message_count());
    let _ = conn.close(200, "asked".into()).await;
    depth
}

/// Deletes the run's exchanges and queues, the feedback ones included.
pub async fn clean_up(url: &str, names: &RunNames) {
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await else { return };
    let Ok(ch) = conn.create_channel().await else { return };
    for source in ["hotline", "petition"] {
        let queue = names.queue(source);
        for q in [format!("{queue}.dead"), queue.clone()] {
            let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
        }
        let _ = ch.exchange_delete(format!("{queue}.dlx").as_str().into(), Default::default()).await;
    }
    for agency in [Agency::Hotline, Agency::Petition] {
        let _ = ch.queue_delete(names.feedback_queue(agency).as_str().into(), Default::default()).await;
        for exchange in [names.exchange(agency), names.feedback_exchange(agency)] {
            let _ = ch.exchange_delete(exchange.as_str().into(), Default::default()).await;
        }
    }
    let _ = conn.close(200, "demo done".into()).await;
}
