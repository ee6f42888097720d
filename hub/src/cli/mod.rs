//! Command-line parsing and the commands' entry points.

mod admin;
mod court;
mod demo;
mod duplicates;
mod mapping;
mod report;
mod token;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hub::config::{ProcessEnv, Settings};
use hub::pii::redact_url;

/// The integration hub of the social-governance centres: agency records in,
/// one ordered, deduplicated ticket stream out to the governance platform.
#[derive(Parser, Debug)]
#[command(name = "hub", version, about, long_about = None, after_help = "Start with `hub demo`; `hub <command> --help` tells more.")]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// How log lines are written: `text` (coloured only on a terminal) or
    /// `json`, one object a line, for a log collector.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "HUB_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
struct ConfigArg {
    /// The TOML config file (default: ./hub.toml if present, else the
    /// built-in four-agency configuration; `hub check` prints it).
    /// HUB_* environment variables override it.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the hub until SIGTERM or Ctrl-C.
    Run(ConfigArg),
    /// Validate a config file and print every mistake with file, line and
    /// column; without --config, print and check the built-in configuration.
    Check {
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run the whole system on this machine for a while: hub, platform
    /// simulator and simulated sources, on an embedded SQLite file.
    Demo(demo::DemoArgs),
    /// Changes the platform refused (400/422): list, show, replay.
    #[command(subcommand, name = "deadletters")]
    DeadLetters(admin::DeadLetterCommand),
    /// Records that could not be mapped: list, show, replay.
    #[command(subcommand)]
    Quarantine(admin::QuarantineCommand),
    /// The courts: agreed cases waiting for their document; move a feed past a bad page.
    #[command(subcommand, visible_alias = "courts")]
    Court(court::CourtCommand),
    /// Status messages on their way back to the agencies: list (waiting or refused).
    #[command(subcommand)]
    Feedback(admin::FeedbackCommand),
    /// The platform's status callbacks: list, show (those held for a person too).
    #[command(subcommand)]
    Callbacks(admin::CallbackCommand),
    /// Tickets: show one with its sources, revisions, history and duplicate decisions.
    #[command(subcommand, visible_alias = "tickets")]
    Ticket(admin::TicketCommand),
    /// Cross-channel duplicates: list, show, confirm, reject, unmerge, evaluate.
    #[command(subcommand)]
    Duplicates(duplicates::DuplicatesCommand),
    /// Counts of tickets, deliveries, dead letters and quarantine; the oldest pending changes.
    Status(ConfigArg),
    /// The monthly analysis (每月分析研判) as a self-contained HTML file and CSV.
    Report(report::ReportArgs),
    /// The figures' aggregates: rebuild them from the stored tickets.
    #[command(subcommand)]
    Stats(report::StatsCommand),
    /// Tokens for the admin API and the screen: make one, or hash one for the config.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Mapping files: try one on sample records.
    #[command(subcommand)]
    Mapping(mapping::MappingCommand),
}

pub fn init_logging(cli: &Cli) {
    // The demo prints its own progress; the hub's log would drown it.
    let quiet = matches!(cli.command, Command::Demo(_));
    let default = match cli.verbose {
        // rumqttd logs every client that goes away as an error, lapin every
        // failed passive declare (the demo waits for queues with them).
        // Details left out of tickets are counted in its summary instead.
        0 if quiet => "warn,sqlx=warn,rumqttd=off,lapin=off,hub::intake=error",
        // lapin logs each passive declare that finds nothing (how the AMQP
        // connector checks for an agency's exchange) as a closed channel;
        // the connector reports its own failures.
        0 => "info,sqlx=warn,rumqttd=warn,lapin::channel=off",
        1 => "debug,sqlx=warn,hyper=info,reqwest=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        // Colour codes only where a person reads them: in a file, a pipe or
        // journald they are noise that breaks grep (NO_COLOR turns them off
        // on a terminal too).
        LogFormat::Text => logs.with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

/// Whether log lines get colour codes: on a terminal, unless NO_COLOR is set
/// (to anything but the empty string, as no-color.org says).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The settings `hub run` serves with: everything checked, the platform's
/// token included.
fn load_to_serve(config: &ConfigArg) -> anyhow::Result<Settings> {
    load_with(config, &ProcessEnv)
}

/// The settings an admin command reads the store with: the same file and
/// environment, but no platform token asked for, since these commands never
/// speak to the platform.
fn load(config: &ConfigArg) -> anyhow::Result<Settings> {
    load_with(config, &hub::config::AdminEnv(&ProcessEnv))
}

fn load_with(config: &ConfigArg, env: &dyn hub::config::Env) -> anyhow::Result<Settings> {
    let path = config.config.clone().or_else(hub::config::default_path);
    let settings = match &path {
        Some(p) => Settings::load(p, env),
        None => Settings::builtin(env),
    };
    settings.map_err(|e| anyhow::anyhow!("the configuration is not valid:\n{e}"))
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(c) => {
            let settings = load_to_serve(&c)?;
            run(settings).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => match check(config.as_deref()) {
            Ok((shown, s)) => {
                for w in &s.warnings {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: valid ({} source{}; store {}; platform {})",
                    shown,
                    s.sources.len(),
                    if s.sources.len() == 1 { "" } else { "s" },
                    redact_url(&s.database_url),
                    redact_url(&s.platform.url)
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} error{} found", errors.0.len(), if errors.0.len() == 1 { "" } else { "s" });
                Ok(ExitCode::from(2))
            }
        },
        Command::Demo(args) => demo::run(args).await,
        Command::DeadLetters(cmd) => admin::deadletters(cmd).await,
        Command::Quarantine(cmd) => admin::quarantine(cmd).await,
        Command::Court(cmd) => court::run(cmd).await,
        Command::Ticket(cmd) => admin::ticket(cmd).await,
        Command::Callbacks(cmd) => admin::callbacks(cmd).await,
        Command::Feedback(cmd) => admin::feedback(cmd).await,
        Command::Duplicates(cmd) => duplicates::run(cmd).await,
        Command::Report(args) => report::run(args).await,
        Command::Stats(cmd) => report::stats(cmd).await,
        Command::Token(cmd) => token::run(cmd),
        Command::Status(c) => admin::status(&load(&c)?).await,
        Command::Mapping(cmd) => mapping::run(cmd),
    }
}

/// Loads the given config file, or prints the built-in configuration and
/// loads that; returns how to name it and the settings.
fn check(config: Option<&std::path::Path>) -> Result<(String, Settings), hub::config::ConfigErrors> {
    match config {
        Some(path) => Settings::load(path, &ProcessEnv).map(|s| (path.display().to_string(), s)),
        None => {
            println!("{}", hub::config::builtin_text(&ProcessEnv));
            Settings::builtin(&ProcessEnv).map(|s| ("the built-in configuration".to_string(), s))
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    for w in &settings.warnings {
        tracing::warn!("WARNING: {w}");
    }
    // Listen for signals before starting: a SIGTERM that arrives while the
    // store opens must still mean a graceful stop, not the default kill.
    // From the line below on, it does.
    let signal = shutdown_signal();
    tracing::info!(
        store = %redact_url(&settings.database_url),
        platform = %redact_url(&settings.platform.url),
        sources = settings.sources.len(),
        "starting the hub"
    );
    let hub = hub::Hub::start(settings).await.context("the hub could not start")?;
    let died = tokio::select! {
        _ = signal => None,
        died = hub.died() => Some(died),
    };
    match died {
        None => {
            tracing::info!("stopping: no new records; finishing commits and requests in flight");
            hub.shutdown().await;
            tracing::info!("stopped");
            Ok(())
        }
        Some(died) => {
            // What is left still stops in order; bounded, as a part is broken.
            tracing::error!(error = %died, "stopping: finishing what the other parts have in flight");
            if tokio::time::timeout(std::time::Duration::from_secs(30), hub.shutdown()).await.is_err() {
                tracing::error!("the other parts did not stop within 30 s");
            }
            Err(died.into())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when the future is first polled.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(super::colour(true, None));
        assert!(!super::colour(false, None));
        assert!(!super::colour(true, Some("1".into())));
        assert!(super::colour(true, Some("".into())));
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
