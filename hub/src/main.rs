//! `hub`: the integration hub's command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    hub::prefer_small_pages();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

/// `hub run` exits 0 after SIGTERM or Ctrl-C, 1 when it cannot start (the
/// message says why), and 70 (EX_SOFTWARE) when intake or the dispatcher
/// died while it ran: a bug, after which a fresh start is the cure, so a
/// service manager should start it again (systemd: `Restart=on-failure`).
/// `hub check` exits 2 for an invalid configuration.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<hub::app::supervise::Died>().is_some() { ExitCode::from(70) } else { ExitCode::FAILURE }
}
