//! `hub mapping test`: what a mapping file makes of sample records, before
//! it goes live; `hub mapping export`: the shipped mappings, to adapt.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use connectors::{ContentType, RawRecord};
use hub::mapping::{DeclarativeMapper, Mappings};

#[derive(Subcommand, Debug)]
pub enum MappingCommand {
    /// Print the canonical ticket each sample becomes (personal data masked), or the precise errors.
    Test {
        /// The mapping file, or `builtin:hotline` (petition, court, terminal) for a shipped one.
        #[arg(long, value_name = "FILE")]
        mapping: PathBuf,
        /// Sample records (JSON or XML, as the agency sends them).
        #[arg(required = true, value_name = "SAMPLE")]
        samples: Vec<PathBuf>,
        /// Transport metadata, as a connector would set it: `--meta routing_key=order.revoked`.
        #[arg(long, value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// An MQTT topic (`grid/220402/W0412/report`): sets topic, county, worker_id and kind.
        #[arg(long)]
        topic: Option<String>,
        /// The declared content encoding (`utf-8`, `gb18030`).
        #[arg(long)]
        encoding: Option<String>,
        /// Show personal data unmasked.
        #[arg(long)]
        reveal: bool,
    },
    /// Write the shipped mapping files and code tables into DIR, to adapt
    /// them for an agency; nothing there is overwritten.
    Export {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(cmd: MappingCommand) -> anyhow::Result<ExitCode> {
    let (mapping, samples, meta, topic, encoding, reveal) = match cmd {
        MappingCommand::Test { mapping, samples, meta, topic, encoding, reveal } => {
            (mapping, samples, meta, topic, encoding, reveal)
        }
        MappingCommand::Export { dir } => {
            let written = hub::mapping::shipped::export(&dir).context("cannot export the shipped mappings")?;
            println!("wrote {} files under {}:", written.len(), dir.display());
            for agency in hub::mapping::shipped::AGENCIES {
                println!("  {}", dir.join(format!("{agency}.toml")).display());
            }
            println!(
                "point a source at one with `mapping = \"{}/hotline.toml\"` (paths are relative to the config file)",
                dir.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let loaded = match mapping.to_str().and_then(|m| m.strip_prefix("builtin:")) {
        Some(agency) => hub::mapping::shipped::mapper(agency).unwrap_or_else(|| {
            Err(hub::mapping::declarative::MappingErrors(vec![hub::mapping::declarative::MappingError {
                origin: mapping.display().to_string(),
                line: None,
                column: None,
                message: format!(
                    "no shipped mapping `{agency}` (shipped: {})",
                    hub::mapping::shipped::AGENCIES.join(", ")
                ),
            }]))
        }),
        None => DeclarativeMapper::load(&mapping),
    };
    let mapper = loaded.map_err(|e| anyhow::anyhow!("the mapping is not valid:\n{e}"))?;
    let system = mapper.name().to_string();
    let mut mappings = Mappings::new();
    mappings.insert(system.clone(), Arc::new(mapper));
    let mut failed = 0;
    for sample in &samples {
        let bytes = std::fs::read(sample).with_context(|| format!("cannot read {}", sample.display()))?;
        let xml = sample.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"));
        let mut record = RawRecord::new(system.clone(), if xml { ContentType::Xml } else { ContentType::Json }, bytes);
        if let Some(e) = &encoding {
            record = record.with_encoding(e.clone());
        }
        if let Some(t) = &topic {
            record = record.with_meta("topic", t.clone());
            if let [_, county, worker, kind] = t.split('/').collect::<Vec<_>>()[..] {
                record = record.with_meta("county", county).with_meta("worker_id", worker).with_meta("kind", kind);
            }
        }
        for kv in &meta {
            let (k, v) = kv.split_once('=').with_context(|| format!("--meta {kv}: write KEY=VALUE"))?;
            record = record.with_meta(k, v);
        }
        match mappings.map(&record) {
            Ok(m) => {
                println!(
                    "{}: {} version {} → ticket ({})",
                    sample.display(),
                    m.record_id,
                    m.version,
                    m.applied.channel
                );
                let mut draft = serde_json::to_value(&m.applied.draft)?;
                if !reveal {
                    hub::pii::mask_ticket(&mut draft);
                }
                println!("{}", serde_json::to_string_pretty(&draft)?);
                for w in &m.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(u) => {
                failed += 1;
                println!("{}: would be quarantined: {}", sample.display(), u.reason);
            }
        }
    }
    if failed > 0 {
        println!("{failed} of {} sample(s) would be quarantined", samples.len());
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
