//! Reads resources from a file or folder of YAML/JSON, and notices when they change.
//!
//! Reading and fingerprinting are plain functions; [`watch`] polls them, which works the
//! same on every filesystem (including ConfigMap mounts, where files are swapped by
//! symlink) and costs nothing measurable for configuration-sized folders.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::ingest::{self, Document, Errors};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {errors}")]
    Invalid { path: PathBuf, errors: Errors },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The files of a config path: the file itself, or every `*.yaml`, `*.yml` and `*.json`
/// under the folder (recursively, hidden entries skipped), sorted by path.
pub fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let p = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The contents of every file of a config path, in path order.
pub fn read(path: &Path) -> Result<Vec<(PathBuf, String)>> {
    files(path)?
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(&p)
                .map(|text| (p.clone(), text))
                .map_err(|source| Error::Io { path: p, source })
        })
        .collect()
}

/// A hash of the files' names and contents: it changes exactly when they do.
pub fn fingerprint(files: &[(PathBuf, String)]) -> String {
    let mut h = Sha256::new();
    for (p, text) in files {
        h.update(p.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Parses every file into documents, naming the file in any error.
pub fn parse(files: &[(PathBuf, String)]) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (path, text) in files {
        let parsed = ingest::parse_documents(text).map_err(|errors| Error::Invalid {
            path: path.clone(),
            errors,
        })?;
        docs.extend(parsed);
    }
    Ok(docs)
}

/// Calls `on_change` with the documents of `path` once at the start and then every
/// time its files change (or start or stop being readable), checking every `interval`.
pub async fn watch<F: Future<Output = ()>>(
    path: PathBuf,
    interval: Duration,
    mut on_change: impl FnMut(Result<Vec<Document>>) -> F,
) {
    let mut last: Option<String> = None;
    loop {
        // Reading and parsing the files is blocking work: off the async workers.
        let (key, docs) = crate::desired::blocking({
            let path = path.clone();
            let last = last.clone();
            move || {
                let read = read(&path);
                let key = match &read {
                    Ok(files) => fingerprint(files),
                    Err(e) => format!("unreadable: {e}"),
                };
                let changed = last.as_ref() != Some(&key);
                (key, changed.then(|| read.and_then(|files| parse(&files))))
            }
        })
        .await;
        if let Some(docs) = docs {
            on_change(docs).await;
            last = Some(key);
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_yields_yaml_and_json_files_sorted_and_skips_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["b.yaml", "a.json", "sub/c.yml", "notes.txt", ".hidden.yaml"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.json", "b.yaml", "sub/c.yml"]);
    }

    #[test]
    fn fingerprint_changes_with_content_only() {
        let a = vec![(PathBuf::from("x.yaml"), "kind: A".to_string())];
        let b = vec![(PathBuf::from("x.yaml"), "kind: B".to_string())];
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn missing_path_is_an_io_error_naming_it() {
        let err = read(Path::new("/nonexistent/coalmine.yaml")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/coalmine.yaml"),
            "{err}"
        );
    }
}
