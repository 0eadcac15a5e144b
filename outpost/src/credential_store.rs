//! The credential cache kept in the state dir, so warm passwords survive a restart while the
//! core is unreachable (within `credential_offline_seconds`, measured on the injected clock):
//! `credentials.key` (the random HMAC key, 0600) and `credentials.jsonl` (0600: a header line,
//! then one keyed digest per line, newest first, at most [`MAX_FILE_BYTES`]). Never a password
//! and never a hash from the core; but with both files an attacker can test guesses at HMAC
//! speed, so the state dir is as sensitive as a password file (README, "Offline").
//!
//! Changes are written in batches (at most one atomic rewrite per [`WRITE_DELAY`]) and once
//! more when the outpost stops. A file written for another core or token is ignored.

use crate::credential_cache::{CredentialCache, StoredEntry};
use crate::module::ModuleContext;
use crate::state::write_private;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The key file's name in the state dir.
pub const KEY_FILE: &str = "credentials.key";
/// The entries file's name in the state dir.
pub const CACHE_FILE: &str = "credentials.jsonl";
/// The largest entries file; the oldest entries are left out beyond it.
pub const MAX_FILE_BYTES: usize = 32 << 20;
/// Changes are gathered this long before the file is rewritten.
pub const WRITE_DELAY: Duration = Duration::from_secs(1);
/// The `format` marker of the header line.
const FORMAT: &str = "redoubt-outpost-credentials";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    core_url: String,
    token_fingerprint: String,
}

/// Where one outpost identity keeps its credential cache.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
    /// The core's URLs (replicas of one core), as `state::StateStore` keeps them.
    core_urls: Vec<String>,
    fingerprint: String,
}

impl CredentialStore {
    /// The store of `token` at the core `core_urls` lists in `dir`.
    pub fn new(dir: &Path, core_urls: &[String], token: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            core_urls: core_urls
                .iter()
                .map(|url| url.trim_end_matches('/').to_owned())
                .collect(),
            fingerprint: crate::state::fingerprint(token),
        }
    }

    /// The key in the state dir, made (and saved) on first use.
    pub fn load_or_create_key(&self) -> std::io::Result<[u8; 32]> {
        let path = self.dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Some(key) = data_encoding::HEXLOWER
                    .decode(text.trim().as_bytes())
                    .ok()
                    .and_then(|k| <[u8; 32]>::try_from(k).ok())
                {
                    return Ok(key);
                }
                tracing::warn!(path = %path.display(), "replacing an unreadable credential cache key; cached passwords from before are lost");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        write_private(&path, data_encoding::HEXLOWER.encode(&key).as_bytes())?;
        // Entries under an older key can never match again.
        let _ = std::fs::remove_file(self.dir.join(CACHE_FILE));
        Ok(key)
    }

    /// Whether a file written for `written_for` (a comma-separated URL list) is this core's:
    /// replicas may be added or removed, so one URL in common is enough.
    fn same_core(&self, written_for: &str) -> bool {
        written_for
            .split(',')
            .any(|url| self.core_urls.iter().any(|u| u == url.trim()))
    }

    /// The saved entries, if the file is this identity's; a reason is logged otherwise.
    pub fn load(&self) -> Vec<StoredEntry> {
        let path = self.dir.join(CACHE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring the credential cache: cannot read it: {e}");
                return Vec::new();
            }
        };
        let mut lines = text.lines();
        let header: Option<Header> = lines.next().and_then(|l| serde_json::from_str(l).ok());
        let Some(header) = header else {
            tracing::warn!(path = %path.display(), "ignoring the credential cache: not a credential cache file");
            return Vec::new();
        };
        if header.format != FORMAT
            || header.version != VERSION
            || !self.same_core(&header.core_url)
            || header.token_fingerprint != self.fingerprint
        {
            tracing::warn!(path = %path.display(), "ignoring the credential cache: written for another core, token or version");
            return Vec::new();
        }
        lines
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Rewrites the file with `entries` (newest first), up to [`MAX_FILE_BYTES`].
    pub fn save(&self, entries: &[StoredEntry]) -> std::io::Result<()> {
        let header = Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            core_url: self.core_urls.join(","),
            token_fingerprint: self.fingerprint.clone(),
        };
        let mut bytes = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        for entry in entries {
            let line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
            if bytes.len() + line.len() + 1 > MAX_FILE_BYTES {
                tracing::warn!(
                    kept = entries.len(),
                    "the credential cache file is full; the oldest entries are kept in memory only"
                );
                break;
            }
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
        }
        write_private(&self.dir.join(CACHE_FILE), &bytes)
    }
}

/// The credential cache of a protocol module: persisted in the state dir when the cache is on
/// and the key can be kept there, else in memory only (with a warning). Loads what an earlier
/// process saved and starts the task that writes changes.
pub fn persistent_cache(context: &ModuleContext) -> CredentialCache {
    let settings = &context.settings;
    let fresh = Duration::from_secs(settings.credential_cache_seconds);
    let offline = Duration::from_secs(settings.credential_offline_seconds);
    if fresh.is_zero() {
        // Caching off: nothing from an earlier configuration stays on disk either.
        for name in [CACHE_FILE, KEY_FILE] {
            match std::fs::remove_file(settings.state_dir.join(name)) {
                Ok(()) => tracing::info!(file = name, "credential cache off: removed its file"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, file = name, "credential cache off, but its file cannot be removed")
                }
            }
        }
        return CredentialCache::new(fresh, offline, context.clock.clone());
    }
    let store = CredentialStore::new(
        &settings.state_dir,
        &settings.core_urls(),
        settings.token.trim(),
    );
    let key = match store.load_or_create_key() {
        Ok(key) => key,
        Err(error) => {
            tracing::warn!(%error, dir = %settings.state_dir.display(), "cannot keep the credential cache key in the state dir; cached passwords will not survive a restart");
            return CredentialCache::new(fresh, offline, context.clock.clone());
        }
    };
    let cache = CredentialCache::with_key(key, fresh, offline, context.clock.clone());
    let loaded = cache.import(store.load());
    if loaded > 0 {
        tracing::info!(
            entries = loaded,
            "cached credentials loaded from the state dir"
        );
    }
    let task = tokio::spawn(write_loop(cache.clone(), store, context.stop.clone()));
    context
        .background
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(task);
    cache
}

/// Rewrites the file after changes, at most once per [`WRITE_DELAY`], and once more at stop.
async fn write_loop(
    cache: CredentialCache,
    store: CredentialStore,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            () = cache.changed() => false,
            () = crate::module::stopped(&mut stop) => true,
        };
        let stopping = stopping
            || tokio::select! {
                () = tokio::time::sleep(WRITE_DELAY) => false,
                () = crate::module::stopped(&mut stop) => true,
            };
        // At stop too: a change may have come with the stop.
        flush(&cache, &store).await;
        if stopping {
            return;
        }
    }
}

async fn flush(cache: &CredentialCache, store: &CredentialStore) {
    let entries = cache.export();
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.save(&entries)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot save the credential cache; it is kept in memory")
        }
        Err(error) => tracing::warn!(%error, "saving the credential cache failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::clock::ManualClock;
    use redoubt_outpost_proto::config::DirectoryUser;
    use redoubt_outpost_proto::credentials::VerifiedUser;
    use std::sync::Arc;

    #[test]
    fn key_and_entries_are_private_and_tied_to_the_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::new(dir.path(), &["http://core:9000".to_owned()], "rdt_a");
        let key = store.load_or_create_key().expect("key");
        assert_eq!(store.load_or_create_key().expect("key again"), key);
        let clock = Arc::new(ManualClock::new(1_800_000_000));
        let cache = CredentialCache::with_key(
            key,
            Duration::from_secs(60),
            Duration::from_secs(600),
            clock.clone(),
        );
        let user = DirectoryUser {
            id: 7,
            username: "alice".into(),
            name: String::new(),
            email: String::new(),
            is_active: true,
            attributes: Default::default(),
            group_ids: vec![],
            credential_epoch: 1,
            has_totp: false,
            created_at: 0,
            updated_at: 0,
        };
        let verified = Arc::new(VerifiedUser {
            id: 7,
            username: "alice".into(),
            name: String::new(),
            email: String::new(),
            groups: vec![],
            attributes: Default::default(),
            used_totp: false,
        });
        cache.remember(3, "alice", "s3cret-pw", verified, &user, true, 0);
        store.save(&cache.export()).expect("save");
        for name in [KEY_FILE, CACHE_FILE] {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(dir.path().join(name))
                    .expect("meta")
                    .permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let text = std::fs::read_to_string(dir.path().join(CACHE_FILE)).expect("read");
        assert!(!text.contains("s3cret-pw"));
        assert!(!text.contains("rdt_a"));
        assert_eq!(store.load().len(), 1);
        assert!(
            CredentialStore::new(dir.path(), &["http://core:9000".to_owned()], "rdt_b")
                .load()
                .is_empty()
        );
        let restarted = CredentialCache::with_key(
            store.load_or_create_key().expect("key"),
            Duration::from_secs(60),
            Duration::from_secs(600),
            clock,
        );
        restarted.import(store.load());
        assert!(matches!(
            restarted.lookup(3, "alice", "s3cret-pw"),
            crate::credential_cache::Lookup::Fresh(_)
        ));
    }
}
