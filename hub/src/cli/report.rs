//! `hub report --month 2026-11`: the monthly analysis, written as
//! `report-2026-11.html` (self-contained) and `report-2026-11.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{ConfigArg, admin::open, load};
use hub::stats::report;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The month, `YYYY-MM` (matters received in it).
    #[arg(long, value_name = "YYYY-MM")]
    pub month: String,
    /// Only a county's or township's matters (its division code).
    #[arg(long, value_name = "CODE")]
    pub region: Option<String>,
    /// Where to write the two files (the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let region = args
        .region
        .as_deref()
        .map(hub::api::auth::Scope::parse_area)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--region: {e}"))?
        .and_then(|s| s.prefix().map(str::to_string));
    let store = open(&load(&args.config)?).await?;
    let bar = super::admin::progress(report::STEPS, &format!("report {}", args.month));
    let gathered = report::gather(&store, &args.month, region, |step| {
        bar.set_message(step.to_string());
        bar.inc(1);
    })
    .await;
    bar.finish_and_clear();
    let r = match gathered {
        Ok(r) => r,
        Err(hub::store::StoreError::Invalid(why)) => {
            eprintln!("{why}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e).context("cannot read the figures"),
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let html = args.out.join(format!("report-{}.html", r.month));
    let csv = args.out.join(format!("report-{}.csv", r.month));
    std::fs::write(&html, r.html()).with_context(|| format!("cannot write {}", html.display()))?;
    std::fs::write(&csv, r.csv()).with_context(|| format!("cannot write {}", csv.display()))?;
    println!("{} matters received in {}; written {} and {}", r.total.received, r.month, html.display(), csv.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand, Debug)]
pub enum StatsCommand {
    /// Count every stored ticket in the figures again (after an upgrade
    /// from a version that kept none); counting twice changes nothing.
    Rebuild {
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub async fn stats(cmd: StatsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StatsCommand::Rebuild { config } => {
            let store = open(&load(&config)?).await?;
            let bar = super::admin::progress(store.summary().await?.tickets.max(0) as u64, "counting tickets");
            let n = store.rebuild_statistics(|page| bar.inc(page as u64)).await?;
            bar.finish_and_clear();
            println!("{n} tickets counted in the figures");
        }
    }
    Ok(ExitCode::SUCCESS)
}
