//! `agency-sim`: plays the agencies that feed the hub (hotline and petition
//! over AMQP, grid terminals over MQTT, a court mediation feed over HTTP).
//! Prints the tally as JSON; never prints message bodies.

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use simulators::agencies::{Agency, AmqpAgency, CourtFeedServer, FeedEncoding, TerminalFleet};
use simulators::platform::{parse_duration, parse_rate};

#[derive(Parser, Debug)]
#[command(name = "agency-sim", version)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
    /// Seed of the generated content.
    #[arg(long, default_value_t = 1, global = true)]
    seed: u64,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// 12345 hotline work orders (exchange hotline.orders).
    Hotline(AmqpArgs),
    /// Petition registrations (exchange petition.records).
    Petition(AmqpArgs),
    /// Grid workers' terminals.
    Terminals {
        #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
        url: String,
        #[arg(long, default_value_t = 20)]
        workers: u32,
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        duration: Duration,
        #[arg(long, value_parser = parse_rate, default_value = "0.02")]
        bad_share: f64,
        #[arg(long, default_value = "grid")]
        topic_root: String,
    },
    /// A court mediation feed; adds and advances cases every few seconds.
    Court {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        #[arg(long, default_value = "吉0402")]
        court: String,
        #[arg(long)]
        gb18030: bool,
        #[arg(long, default_value_t = 50)]
        cases: usize,
    },
}

#[derive(clap::Args, Debug)]
struct AmqpArgs {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    url: String,
    #[arg(long)]
    exchange: Option<String>,
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    duration: Duration,
    #[arg(long, value_parser = parse_rate, default_value = "0.02")]
    bad_share: f64,
}

async fn amqp(agency: Agency, seed: u64, a: AmqpArgs) -> Result<()> {
    let exchange = a.exchange.unwrap_or_else(|| agency.default_exchange().to_string());
    let t = AmqpAgency::new(agency, seed).run(&a.url, &exchange, a.rate, a.duration, a.bad_share).await?;
    println!("{}", serde_json::to_string(&t)?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    match args.cmd {
        Cmd::Hotline(a) => amqp(Agency::Hotline, args.seed, a).await,
        Cmd::Petition(a) => amqp(Agency::Petition, args.seed, a).await,
        Cmd::Terminals { url, workers, rate, duration, bad_share, topic_root } => {
            let fleet = TerminalFleet { seed: args.seed, topic_root, ..Default::default() };
            let t = fleet.run(&url, workers, rate, duration, bad_share).await?;
            println!("{}", serde_json::to_string(&t)?);
            Ok(())
        }
        Cmd::Court { listen, court, gb18030, cases } => {
            let enc = if gb18030 { FeedEncoding::Gb18030 } else { FeedEncoding::Utf8 };
            let s = CourtFeedServer::bind(&listen, &court, enc, args.seed, cases).await?;
            eprintln!("court feed on {}/mediation/feed", s.base_url());
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                s.add_cases(1);
                s.advance(2);
            }
        }
    }
}
