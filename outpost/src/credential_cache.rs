//! Warm credentials: a successful check is remembered as a keyed hash (HMAC-SHA256 under a
//! random per-process key) of provider, username and password, so the next bind or
//! Access-Request with the same password is answered in microseconds without the core.
//!
//! An entry is *fresh* for `fresh` after the core said yes; after that the core is asked again,
//! and only if it cannot be reached is the entry used *offline*, for up to `offline` after the
//! core's last yes. Entries are dropped the moment the core pushes something that could change
//! the verdict: a new credential epoch (password or TOTP change), a disabled or deleted user,
//! a changed group membership, a changed provider or application binding. Users who must give a
//! TOTP code are never cached: every code is single-use and only the core can check it.
//!
//! Keys are never persisted: an outpost that restarts while the core is unreachable serves its
//! directory from state but needs the core for binds again.

use crate::apply::ChangeSummary;
use hmac::{Hmac, Mac};
use redoubt_outpost_proto::config::{ConfigSnapshot, DirectoryUser};
use redoubt_outpost_proto::credentials::VerifiedUser;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Most entries held; beyond it the oldest half is dropped.
const MAX_ENTRIES: usize = 200_000;

/// What the cache knows about a password.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Confirmed by the core within the fresh period: accept without asking.
    Fresh(Arc<VerifiedUser>),
    /// Confirmed earlier: accept only if the core cannot be reached.
    Offline(Arc<VerifiedUser>),
    /// Nothing usable: ask the core.
    Miss,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    provider_id: i64,
    username: String,
}

struct Entry {
    digest: [u8; 32],
    verified_at: Instant,
    user: Arc<VerifiedUser>,
    /// The directory's view of the user when the core said yes.
    epoch: i64,
    group_ids: Vec<i64>,
}

/// The cache; cheap to share behind an `Arc`.
pub struct CredentialCache {
    key: [u8; 32],
    fresh: Duration,
    offline: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
    /// Moves on with every applied change, so a verdict the core gave before a change cannot
    /// be cached after the change evicted it.
    generation: AtomicU64,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("fresh", &self.fresh)
            .field("offline", &self.offline)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    /// An empty cache; `fresh` of zero disables it.
    pub fn new(fresh: Duration, offline: Duration) -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without a key there is no safe cache: keep nothing.
            return Self {
                key,
                fresh: Duration::ZERO,
                offline: Duration::ZERO,
                entries: Mutex::default(),
                generation: AtomicU64::new(0),
            };
        }
        Self {
            key,
            fresh,
            offline: offline.max(fresh),
            entries: Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// Whether anything is ever cached.
    pub fn enabled(&self) -> bool {
        !self.fresh.is_zero()
    }

    /// The current generation: read it before asking the core, pass it to [`Self::remember`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn digest(&self, provider_id: i64, username: &str, password: &str) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        mac.update(&provider_id.to_be_bytes());
        mac.update(&(username.len() as u64).to_be_bytes());
        mac.update(username.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn key_of(provider_id: i64, username: &str) -> Key {
        Key {
            provider_id,
            username: username.to_lowercase(),
        }
    }

    /// Looks up `password` for `username` at `provider_id`.
    pub fn lookup(&self, provider_id: i64, username: &str, password: &str) -> Lookup {
        if !self.enabled() {
            return Lookup::Miss;
        }
        let digest = self.digest(provider_id, &username.to_lowercase(), password);
        let entries = self.lock();
        let Some(entry) = entries.get(&Self::key_of(provider_id, username)) else {
            return Lookup::Miss;
        };
        if !bool::from(entry.digest.ct_eq(&digest)) {
            return Lookup::Miss;
        }
        let age = entry.verified_at.elapsed();
        if age < self.fresh {
            Lookup::Fresh(entry.user.clone())
        } else if age < self.offline {
            Lookup::Offline(entry.user.clone())
        } else {
            Lookup::Miss
        }
    }

    /// Remembers that the core accepted `password` for `directory_user` at `provider_id`.
    /// Users who must give TOTP codes are not remembered, and nothing is remembered if a change
    /// was applied since `seen_generation` (the verdict may predate it).
    pub fn remember(
        &self,
        provider_id: i64,
        username: &str,
        password: &str,
        user: Arc<VerifiedUser>,
        directory_user: &DirectoryUser,
        requires_mfa: bool,
        seen_generation: u64,
    ) {
        if !self.enabled() || user.used_totp || (requires_mfa && directory_user.has_totp) {
            return;
        }
        let digest = self.digest(provider_id, &username.to_lowercase(), password);
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != seen_generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            let mut ages: Vec<Instant> = entries.values().map(|e| e.verified_at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            entries.retain(|_, e| e.verified_at > cutoff);
        }
        entries.insert(
            Self::key_of(provider_id, username),
            Entry {
                digest,
                verified_at: Instant::now(),
                user,
                epoch: directory_user.credential_epoch,
                group_ids: directory_user.group_ids.clone(),
            },
        );
    }

    /// Forgets `username` at `provider_id` (after the core said no).
    pub fn forget(&self, provider_id: i64, username: &str) {
        self.lock().remove(&Self::key_of(provider_id, username));
    }

    /// Drops what `summary` may have invalidated, judged against the new `config`. Returns how
    /// many entries were dropped.
    pub fn apply(&self, config: &ConfigSnapshot, summary: &ChangeSummary) -> usize {
        if summary.is_empty() {
            // Nothing that could change a verdict: checks in flight may still be remembered.
            return 0;
        }
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        let before = entries.len();
        if summary.outpost || !summary.groups.is_empty() {
            // Group nesting or the outpost's providers changed: effective access may differ for
            // anyone. Rare, so drop everything rather than work it out.
            entries.clear();
            return before;
        }
        let directory = config.config.directory.as_ref();
        let find = |id: i64| -> Option<&DirectoryUser> {
            let users = &directory?.users;
            users
                .binary_search_by_key(&id, |u| u.id)
                .ok()
                .map(|i| &users[i])
        };
        let providers = &config.config.providers;
        entries.retain(|key, entry| {
            if summary.providers.contains(&key.provider_id)
                || !providers.iter().any(|p| p.id == key.provider_id)
            {
                return false;
            }
            if !summary.snapshot
                && !summary.users.contains(&entry.user.id)
                && !summary.revoked_sessions.contains(&entry.user.id)
            {
                return true;
            }
            if summary.revoked_sessions.contains(&entry.user.id) {
                return false;
            }
            match find(entry.user.id) {
                Some(user) => {
                    user.is_active
                        && user.credential_epoch == entry.epoch
                        && user.group_ids == entry.group_ids
                        && user.username.eq_ignore_ascii_case(&key.username)
                }
                None => false,
            }
        });
        before - entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::config::{
        Directory, OutpostConfig, OutpostInfo, OutpostKind, ProviderConfig,
    };

    fn directory_user(epoch: i64, groups: Vec<i64>) -> DirectoryUser {
        DirectoryUser {
            id: 7,
            username: "Alice".into(),
            name: "Alice".into(),
            email: String::new(),
            is_active: true,
            attributes: Default::default(),
            group_ids: groups,
            credential_epoch: epoch,
            has_totp: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn verified() -> Arc<VerifiedUser> {
        Arc::new(VerifiedUser {
            id: 7,
            username: "Alice".into(),
            name: "Alice".into(),
            email: String::new(),
            groups: vec![],
            attributes: Default::default(),
            used_totp: false,
        })
    }

    fn snapshot(user: DirectoryUser) -> ConfigSnapshot {
        ConfigSnapshot {
            revision: 1,
            config: OutpostConfig {
                sessions: None,
                outpost: OutpostInfo {
                    id: 1,
                    name: "o".into(),
                    kind: OutpostKind::Ldap,
                    settings: serde_json::json!({}),
                },
                providers: vec![ProviderConfig {
                    id: 3,
                    name: "p".into(),
                    kind: OutpostKind::Ldap,
                    settings: serde_json::json!({}),
                    application: None,
                }],
                directory: Some(Directory {
                    users: vec![user],
                    groups: vec![],
                }),
            },
        }
    }

    fn summary_for_user() -> ChangeSummary {
        let mut summary = ChangeSummary::default();
        summary.users.insert(7);
        summary
    }

    #[test]
    fn remembers_only_the_same_password_case_insensitively_by_name() {
        let cache = CredentialCache::new(Duration::from_secs(60), Duration::from_secs(600));
        let user = directory_user(1, vec![2]);
        cache.remember(3, "Alice", "secret", verified(), &user, true, 0);
        assert!(matches!(
            cache.lookup(3, "alice", "secret"),
            Lookup::Fresh(_)
        ));
        assert_eq!(cache.lookup(3, "alice", "Secret"), Lookup::Miss);
        assert_eq!(cache.lookup(4, "alice", "secret"), Lookup::Miss);
        assert_eq!(cache.lookup(3, "bob", "secret"), Lookup::Miss);
    }

    #[test]
    fn totp_users_are_never_cached_when_the_provider_asks_for_codes() {
        let cache = CredentialCache::new(Duration::from_secs(60), Duration::from_secs(600));
        let mut user = directory_user(1, vec![]);
        user.has_totp = true;
        cache.remember(3, "alice", "secret;123456", verified(), &user, true, 0);
        assert!(cache.is_empty());
        cache.remember(3, "alice", "secret", verified(), &user, false, 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn epoch_status_and_group_changes_evict_other_changes_keep() {
        let cache = CredentialCache::new(Duration::from_secs(60), Duration::from_secs(600));
        let user = directory_user(1, vec![2]);
        let remember = || {
            cache.remember(
                3,
                "alice",
                "pw",
                verified(),
                &user,
                true,
                cache.generation(),
            )
        };

        remember();
        let mut renamed_mail = user.clone();
        renamed_mail.email = "a@example.com".into();
        assert_eq!(cache.apply(&snapshot(renamed_mail), &summary_for_user()), 0);

        let mut new_epoch = user.clone();
        new_epoch.credential_epoch = 2;
        assert_eq!(cache.apply(&snapshot(new_epoch), &summary_for_user()), 1);

        remember();
        let mut disabled = user.clone();
        disabled.is_active = false;
        assert_eq!(cache.apply(&snapshot(disabled), &summary_for_user()), 1);

        remember();
        let mut lost_group = user.clone();
        lost_group.group_ids = vec![];
        assert_eq!(
            cache.apply(&snapshot(lost_group), &ChangeSummary::snapshot()),
            1
        );

        remember();
        let mut revoked = summary_for_user();
        revoked.users.clear();
        revoked.revoked_sessions.insert(7);
        assert_eq!(cache.apply(&snapshot(user.clone()), &revoked), 1);

        remember();
        let mut provider = ChangeSummary::default();
        provider.providers.insert(3);
        assert_eq!(cache.apply(&snapshot(user.clone()), &provider), 1);
    }

    #[test]
    fn a_verdict_from_before_a_change_is_not_cached() {
        let cache = CredentialCache::new(Duration::from_secs(60), Duration::from_secs(600));
        let user = directory_user(1, vec![]);
        let seen = cache.generation();
        cache.apply(&snapshot(user.clone()), &summary_for_user());
        cache.remember(3, "alice", "old", verified(), &user, true, seen);
        assert!(cache.is_empty());
        // A verdict that consumed a TOTP code is never remembered, even when the directory
        // does not know yet that the user has TOTP.
        let mut with_code = (*verified()).clone();
        with_code.used_totp = true;
        let seen = cache.generation();
        cache.remember(
            3,
            "alice",
            "pw;123456",
            Arc::new(with_code),
            &user,
            true,
            seen,
        );
        assert!(cache.is_empty());
        // An empty change set (a reconnect) changes no verdict.
        let seen = cache.generation();
        cache.apply(&snapshot(user.clone()), &ChangeSummary::default());
        cache.remember(3, "alice", "pw", verified(), &user, true, seen);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stale_entries_are_offline_only_then_gone() {
        let cache = CredentialCache::new(Duration::from_millis(1), Duration::from_secs(600));
        cache.remember(
            3,
            "alice",
            "pw",
            verified(),
            &directory_user(1, vec![]),
            true,
            0,
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(cache.lookup(3, "alice", "pw"), Lookup::Offline(_)));
        let gone = CredentialCache::new(Duration::from_millis(1), Duration::from_millis(2));
        gone.remember(
            3,
            "alice",
            "pw",
            verified(),
            &directory_user(1, vec![]),
            true,
            0,
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(gone.lookup(3, "alice", "pw"), Lookup::Miss);
    }
}
