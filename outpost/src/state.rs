//! The persisted configuration: `state.json` in the state dir, written atomically with mode 0600,
//! so an outpost restarts and serves while the core is unreachable. A corrupt file, another
//! format, or a file written for another core or token is ignored with a warning, never applied.

use redoubt_outpost_proto::config::ConfigSnapshot;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `format` marker of the file.
const FORMAT: &str = "redoubt-outpost-state";
/// The file layout version.
const VERSION: u32 = 1;
/// The file name inside the state dir.
pub const STATE_FILE: &str = "state.json";

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: String,
    version: u32,
    /// The core URLs the outpost was configured with, comma-separated.
    core_url: String,
    token_fingerprint: String,
    snapshot: ConfigSnapshot,
}

/// Reads and writes the state of one outpost identity.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    core_urls: Vec<String>,
    fingerprint: String,
}

/// Why the state could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode the state: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A short, non-reversible fingerprint of the token: tells "same identity" without storing it.
pub fn fingerprint(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))[..16].to_owned()
}

impl StateStore {
    /// The state of `token` at the core `core_urls` lists (replicas of one core) in `dir`.
    pub fn new(dir: &Path, core_urls: &[String], token: &str) -> Self {
        Self {
            path: dir.join(STATE_FILE),
            core_urls: core_urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            fingerprint: fingerprint(token),
        }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved snapshot, if there is a usable one; a reason is logged for an unusable one.
    pub fn load(&self) -> Option<ConfigSnapshot> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(
                    "ignoring state file {}: cannot read it: {e}",
                    self.path.display()
                );
                return None;
            }
        };
        match self.check(&text) {
            Ok(snapshot) => Some(snapshot),
            Err(why) => {
                tracing::warn!("ignoring state file {}: {why}", self.path.display());
                None
            }
        }
    }

    fn check(&self, text: &str) -> Result<ConfigSnapshot, String> {
        let file: StateFile = serde_json::from_str(text)
            .map_err(|e| format!("it is not a valid state file ({e})"))?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(format!(
                "unknown format {} version {}",
                file.format, file.version
            ));
        }
        // Replicas were added or removed: the same core as long as one URL is still listed.
        let same_core = file
            .core_url
            .split(',')
            .any(|url| self.core_urls.iter().any(|u| u == url.trim()));
        if !same_core {
            return Err(format!(
                "it was written for the core at {}, not {}",
                file.core_url,
                self.core_urls.join(",")
            ));
        }
        if file.token_fingerprint != self.fingerprint {
            return Err("it was written for another outpost token".to_owned());
        }
        Ok(file.snapshot)
    }

    /// Saves `snapshot` atomically: a private temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, snapshot: &ConfigSnapshot) -> Result<(), StateError> {
        let file = StateFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            core_url: self.core_urls.join(","),
            token_fingerprint: self.fingerprint.clone(),
            snapshot: snapshot.clone(),
        };
        let bytes = serde_json::to_vec(&file)?;
        write_private(&self.path, &bytes).map_err(|source| StateError::Write {
            path: self.path.display().to_string(),
            source,
        })?;
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically and privately: a 0600 temp file beside it, fsync,
/// rename, fsync of the directory. A reader sees the old file or the new one, never a mix.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::config::{OutpostConfig, OutpostInfo, OutpostKind};

    fn snapshot() -> ConfigSnapshot {
        ConfigSnapshot {
            revision: 7,
            config: OutpostConfig {
                sessions: None,
                outpost: OutpostInfo {
                    id: 1,
                    name: "o".into(),
                    kind: OutpostKind::Radius,
                    settings: serde_json::Value::Null,
                },
                providers: vec![],
                directory: None,
            },
        }
    }

    #[test]
    fn round_trip_private_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path(), &["http://core:9000/".to_owned()], "rdt_a");
        assert!(store.load().is_none());
        store.save(&snapshot()).expect("save");
        assert_eq!(store.load(), Some(snapshot()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(store.path()).expect("read");
        assert!(!text.contains("rdt_a"), "the token is never written");
    }

    #[test]
    fn corrupt_or_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path(), &["http://core:9000".to_owned()], "rdt_a");
        store.save(&snapshot()).expect("save");
        assert!(
            StateStore::new(dir.path(), &["http://core:9000".to_owned()], "rdt_b")
                .load()
                .is_none()
        );
        assert!(
            StateStore::new(dir.path(), &["http://other:9000".to_owned()], "rdt_a")
                .load()
                .is_none()
        );
        // A replica added to the list: still the same core.
        let replicas = [
            "http://other:9000".to_owned(),
            "http://core:9000".to_owned(),
        ];
        assert!(
            StateStore::new(dir.path(), &replicas, "rdt_a")
                .load()
                .is_some()
        );
        std::fs::write(
            store.path(),
            b"{\"format\":\"redoubt-outpost-state\",\"version\":1,",
        )
        .expect("write");
        assert!(store.load().is_none());
        std::fs::write(
            store.path(),
            b"{\"format\":\"something-else\",\"version\":9}",
        )
        .expect("write");
        assert!(store.load().is_none());
    }
}
