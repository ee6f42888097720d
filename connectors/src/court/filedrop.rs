//! File-drop mode: older installations drop `*.xml` files (renamed from
//! `*.xml.part` once complete) into a directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::pipeline::{PageCtx, PageEnd, defect_record, pause, run_page};
use crate::{CancellationToken, Connector, ConnectorError, Intake, IntakeError};

#[derive(Clone, Debug)]
pub struct FileDropConfig {
    /// The watched directory; `done/` and `rejected/` are created inside it.
    pub dir: PathBuf,
    /// The source system name in the hub (`court`).
    pub system: String,
    /// How often the directory is scanned.
    pub interval: Duration,
    pub chunk_size: usize,
    pub max_case_bytes: usize,
    /// How much of a bad file is kept in its defect record.
    pub max_defect_bytes: usize,
}

impl FileDropConfig {
    pub fn new(dir: impl Into<PathBuf>, system: impl Into<String>) -> Self {
        FileDropConfig {
            dir: dir.into(),
            system: system.into(),
            interval: Duration::from_secs(10),
            chunk_size: 100,
            max_case_bytes: 1024 * 1024,
            max_defect_bytes: 8 * 1024 * 1024,
        }
    }
}

pub struct FileDropConnector {
    config: FileDropConfig,
}

impl FileDropConnector {
    pub fn new(config: FileDropConfig) -> Self {
        FileDropConnector { config }
    }
}

impl Connector for FileDropConnector {
    fn name(&self) -> &str {
        &self.config.system
    }

    fn run(
        self: Box<Self>,
        intake: Intake,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), ConnectorError>> {
        Box::pin(async move {
            let cfg = &self.config;
            for sub in ["done", "rejected"] {
                fs::create_dir_all(cfg.dir.join(sub)).map_err(|e| ConnectorError {
                    connector: cfg.system.clone(),
                    message: format!("cannot create {}/{sub}: {e}", cfg.dir.display()),
                })?;
            }
            tracing::info!(dir = %cfg.dir.display(), "court file drop: watching");
            while !shutdown.is_cancelled() {
                match pending_files(&cfg.dir) {
                    Ok(files) => {
                        for path in files {
                            if shutdown.is_cancelled() {
                                break;
                            }
                            match self.process(&intake, &shutdown, &path).await {
                                Ok(()) => {}
                                Err(IntakeError::ShuttingDown) => return Ok(()),
                                Err(e) => {
                                    tracing::warn!(file = %file_name(&path), error = %e,
                                        "court file drop: the hub did not commit; the file stays for a retry");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(dir = %cfg.dir.display(), error = %e, "court file drop: cannot list"),
                }
                if !pause(&shutdown, cfg.interval).await {
                    break;
                }
            }
            Ok(())
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Complete `*.xml` files, oldest first.
pub(crate) fn pending_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_xml = path.extension().is_some_and(|e| e == "xml");
        if !is_xml || !entry.file_type()?.is_file() {
            continue;
        }
        let modified = entry.metadata()?.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        files.push((modified, path));
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

impl FileDropConnector {
    /// Processes one file. `Err` means the hub did not commit: the file stays.
    async fn process(&self, intake: &Intake, shutdown: &CancellationToken, path: &Path) -> Result<(), IntakeError> {
        let cfg = &self.config;
        let name = file_name(path);
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "court file drop: cannot open");
                return Ok(());
            }
        };
        let ctx = PageCtx {
            intake,
            shutdown,
            system: &cfg.system,
            court: None,
            extra_meta: vec![("file".to_string(), name.clone())],
            chunk_size: cfg.chunk_size,
            max_case_bytes: cfg.max_case_bytes,
        };
        match run_page(&ctx, std::io::BufReader::new(file), |_| None).await {
            PageEnd::Committed { cases, .. } => {
                move_to(path, &cfg.dir.join("done").join(&name));
                tracing::info!(file = %name, cases, "court file drop: done");
                Ok(())
            }
            PageEnd::Defect(reason) => {
                let (raw, total) = read_prefix(path, cfg.max_defect_bytes);
                let record = defect_record(
                    &cfg.system,
                    None,
                    raw.clone(),
                    raw.len() == total,
                    total,
                    &reason,
                    &ctx.extra_meta,
                    None,
                );
                intake.submit_page(vec![record], None).await?;
                let rejected = cfg.dir.join("rejected");
                if let Err(e) = fs::write(rejected.join(format!("{name}.reason")), format!("{reason}\n")) {
                    tracing::warn!(file = %name, error = %e, "court file drop: cannot write the reason file");
                }
                move_to(path, &rejected.join(&name));
                tracing::warn!(file = %name, %reason, "court file drop: rejected");
                Ok(())
            }
            PageEnd::Intake(e) => Err(e),
            PageEnd::Cancelled => Err(IntakeError::ShuttingDown),
        }
    }
}

fn read_prefix(path: &Path, max: usize) -> (Vec<u8>, usize) {
    let total = fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0);
    let mut raw = Vec::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(max as u64).read_to_end(&mut raw);
    }
    let total = total.max(raw.len());
    (raw, total)
}

fn move_to(from: &Path, to: &Path) {
    if let Err(e) = fs::rename(from, to) {
        tracing::warn!(file = %file_name(from), error = %e, "court file drop: cannot move the file");
    }
}
