//! The mapping files and code tables of `mappings/`, compiled into the
//! binary: `hub demo` and `hub run` without a config work from any
//! directory, and `hub mapping export` hands IT staff a copy to adapt.

use std::path::Path;

use super::DeclarativeMapper;
use super::declarative::MappingErrors;

/// One shipped file, by its path under `mappings/`.
#[derive(Clone, Copy, Debug)]
pub struct ShippedFile {
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! shipped {
    ($($path:literal),* $(,)?) => {
        &[$(ShippedFile { path: $path, text: include_str!(concat!("../../../mappings/", $path)) }),*]
    };
}

/// Every shipped file; a test checks that none in `mappings/` is missing.
pub const FILES: &[ShippedFile] = shipped![
    "README.md",
    "hotline.toml",
    "petition.toml",
    "court.toml",
    "terminal.toml",
    "tables/category-kinds.csv",
    "tables/civil-causes.csv",
    "tables/court-causes.csv",
    "tables/court-codes.csv",
    "tables/court-document-types.csv",
    "tables/court-statuses.csv",
    "tables/holidays.csv",
    "tables/hotline-appeal-types.csv",
    "tables/hotline-categories.csv",
    "tables/matter-words.csv",
    "tables/petition-categories.csv",
    "tables/petition-content-classes.csv",
    "tables/petition-purposes.csv",
    "tables/petition-states.csv",
    "tables/platform-categories.csv",
    "tables/regions.csv",
    "tables/terminal-categories.csv",
];

/// The agencies with a shipped mapping, by the name `builtin:NAME` takes.
pub const AGENCIES: &[&str] = &["hotline", "petition", "court", "terminal"];

/// The text of a shipped code table (`regions` → `tables/regions.csv`).
pub fn table(name: &str) -> Option<&'static str> {
    let path = format!("tables/{name}.csv");
    FILES.iter().find(|f| f.path == path).map(|f| f.text)
}

/// The text of one agency's shipped mapping file.
pub fn text(agency: &str) -> Option<&'static str> {
    let path = format!("{agency}.toml");
    FILES.iter().find(|f| f.path == path).map(|f| f.text)
}

/// The shipped mapping of one agency (`hotline`, `petition`, `court`,
/// `terminal`), with the shipped tables; `None` for another name.
pub fn mapper(agency: &str) -> Option<Result<DeclarativeMapper, MappingErrors>> {
    let path = format!("{agency}.toml");
    let file = FILES.iter().find(|f| f.path == path)?;
    Some(DeclarativeMapper::from_shipped(file.text, &format!("(built-in) {path}")))
}

/// Writes every shipped file under `dir` (made if missing), refusing to
/// overwrite a file that is already there. Returns the files written.
pub fn export(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for f in FILES {
        let to = dir.join(f.path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&to)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", to.display())))?;
        std::io::Write::write_all(&mut file, f.text.as_bytes())?;
        written.push(to);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapping_file_and_table_is_shipped() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings");
        let mut on_disk = Vec::new();
        for entry in std::fs::read_dir(&root).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".toml") {
                on_disk.push(name);
            }
        }
        for entry in std::fs::read_dir(root.join("tables")).unwrap() {
            on_disk.push(format!("tables/{}", entry.unwrap().file_name().into_string().unwrap()));
        }
        for path in on_disk {
            assert!(FILES.iter().any(|f| f.path == path), "mappings/{path} is not shipped: add it to FILES");
        }
    }

    #[test]
    fn the_shipped_mappings_load_and_match_the_files() {
        for agency in AGENCIES {
            let shipped = mapper(agency).unwrap().unwrap_or_else(|e| panic!("{agency}: {e}"));
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../mappings/{agency}.toml"));
            let from_disk = DeclarativeMapper::load(&path).unwrap();
            assert_eq!(shipped.name(), from_disk.name());
            assert_eq!(shipped.channel(), from_disk.channel());
        }
        assert!(mapper("nobody").is_none());
    }

    #[test]
    fn export_writes_a_loadable_copy_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("hub-export-{}", uuid::Uuid::new_v4()));
        let written = export(&dir).unwrap();
        assert_eq!(written.len(), FILES.len());
        DeclarativeMapper::load(&dir.join("hotline.toml")).unwrap();
        assert!(export(&dir).is_err(), "a second export must not overwrite");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
