//! Warm credentials: a successful check is remembered as a keyed hash (HMAC-SHA256) of provider,
//! username and password, so the next bind or Access-Request with the same password is answered
//! in microseconds without the core.
//!
//! An entry is *fresh* for `fresh` after the core said yes; after that the core is asked again,
//! and only if it cannot be reached is the entry used *offline*, for up to `offline` after the
//! core's last yes. Times are wall-clock seconds from the injected clock, so the windows hold
//! across a restart. Entries are dropped the moment the core pushes something that could change
//! the verdict: a new credential epoch (password or TOTP change), a disabled or deleted user,
//! a changed group membership, a changed provider or application binding. Users who must give a
//! TOTP code are never cached: every code is single-use and only the core can check it.
//!
//! A cache made by [`crate::credential_store`] keeps its key and entries in the state dir, so an
//! outpost restarted while the core is unreachable still accepts warm passwords; every change
//! wakes its writer ([`CredentialCache::changed`]).

use crate::apply::ChangeSummary;
use hmac::{Hmac, Mac};
use redoubt_outpost_proto::clock::SharedClock;
use redoubt_outpost_proto::config::{ConfigSnapshot, DirectoryUser};
use redoubt_outpost_proto::credentials::VerifiedUser;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

/// Most entries held; beyond it the oldest half is dropped.
const MAX_ENTRIES: usize = 100_000;
/// An entry stamped this far in the future (the clock was set back) is not trusted.
const CLOCK_SLACK_SECONDS: i64 = 300;

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
    /// When the core said yes, in seconds since the epoch.
    verified_at: i64,
    user: Arc<VerifiedUser>,
    /// The directory's view of the user when the core said yes.
    epoch: i64,
    group_ids: Vec<i64>,
}

/// One entry as the state dir keeps it: the keyed digest, never a password or a hash from the
/// core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub provider_id: i64,
    /// Lowercased.
    pub username: String,
    /// HMAC-SHA256 under the cache key, hex.
    pub digest: String,
    pub verified_at: i64,
    pub user: VerifiedUser,
    pub epoch: i64,
    pub group_ids: Vec<i64>,
}

struct Inner {
    key: [u8; 32],
    fresh: i64,
    offline: i64,
    clock: SharedClock,
    entries: Mutex<HashMap<Key, Entry>>,
    /// Moves on with every applied change, so a verdict the core gave before a change cannot
    /// be cached after the change evicted it.
    generation: AtomicU64,
    /// Woken on every change of the entries, when they are persisted.
    changed: Notify,
}

/// The cache; cheap to clone (clones share the entries).
#[derive(Clone)]
pub struct CredentialCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("fresh", &self.inner.fresh)
            .field("offline", &self.inner.offline)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

impl CredentialCache {
    /// An empty cache under a random key, held in memory only; `fresh` of zero disables it.
    pub fn new(fresh: Duration, offline: Duration, clock: SharedClock) -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // Without a key there is no safe cache: keep nothing.
            return Self::with_key(key, Duration::ZERO, Duration::ZERO, clock);
        }
        Self::with_key(key, fresh, offline, clock)
    }

    /// An empty cache under `key` (which must be secret and random).
    pub fn with_key(key: [u8; 32], fresh: Duration, offline: Duration, clock: SharedClock) -> Self {
        let fresh = seconds(fresh);
        Self {
            inner: Arc::new(Inner {
                key,
                fresh,
                offline: seconds(offline).max(fresh),
                clock,
                entries: Mutex::default(),
                generation: AtomicU64::new(0),
                changed: Notify::new(),
            }),
        }
    }

    /// Whether anything is ever cached.
    pub fn enabled(&self) -> bool {
        self.inner.fresh > 0
    }

    /// The current generation: read it before asking the core, pass it to [`Self::remember`].
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves after the entries changed (for the writer that persists them).
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    fn touched(&self) {
        self.inner.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.inner
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn digest(&self, provider_id: i64, username: &str, password: &str) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.inner.key) else {
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

    /// How old an entry stamped `verified_at` is now; `None` when it is from the future.
    fn age(&self, verified_at: i64) -> Option<i64> {
        let age = self.inner.clock.now().saturating_sub(verified_at);
        (age >= -CLOCK_SLACK_SECONDS).then_some(age.max(0))
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
        match self.age(entry.verified_at) {
            Some(age) if age < self.inner.fresh => Lookup::Fresh(entry.user.clone()),
            Some(age) if age < self.inner.offline => Lookup::Offline(entry.user.clone()),
            _ => Lookup::Miss,
        }
    }

    /// Remembers that the core accepted `password` for `directory_user` at `provider_id`.
    /// Users who must give TOTP codes are not remembered, and nothing is remembered if a change
    /// was applied since `seen_generation` (the verdict may predate it).
    #[allow(clippy::too_many_arguments)]
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
        if self.inner.generation.load(Ordering::Acquire) != seen_generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            Self::drop_oldest_half(&mut entries);
        }
        entries.insert(
            Self::key_of(provider_id, username),
            Entry {
                digest,
                verified_at: self.inner.clock.now(),
                user,
                epoch: directory_user.credential_epoch,
                group_ids: directory_user.group_ids.clone(),
            },
        );
        drop(entries);
        self.touched();
    }

    fn drop_oldest_half(entries: &mut HashMap<Key, Entry>) {
        let mut ages: Vec<i64> = entries.values().map(|e| e.verified_at).collect();
        ages.sort_unstable();
        if let Some(cutoff) = ages.get(ages.len() / 2).copied() {
            entries.retain(|_, e| e.verified_at > cutoff);
        }
    }

    /// Forgets `username` at `provider_id` (after the core said no).
    pub fn forget(&self, provider_id: i64, username: &str) {
        let removed = self
            .lock()
            .remove(&Self::key_of(provider_id, username))
            .is_some();
        if removed {
            self.touched();
        }
    }

    /// The entries still usable offline, newest first, as the state dir keeps them.
    pub fn export(&self) -> Vec<StoredEntry> {
        let entries = self.lock();
        let mut out: Vec<StoredEntry> = entries
            .iter()
            .filter(|(_, e)| {
                self.age(e.verified_at)
                    .is_some_and(|a| a < self.inner.offline)
            })
            .map(|(key, e)| StoredEntry {
                provider_id: key.provider_id,
                username: key.username.clone(),
                digest: data_encoding::HEXLOWER.encode(&e.digest),
                verified_at: e.verified_at,
                user: (*e.user).clone(),
                epoch: e.epoch,
                group_ids: e.group_ids.clone(),
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.verified_at));
        out
    }

    /// Takes entries back from the state dir (those still inside the offline window, made
    /// under this cache's key). Check them against the directory with [`Self::apply`] next.
    pub fn import(&self, stored: Vec<StoredEntry>) -> usize {
        if !self.enabled() {
            return 0;
        }
        let mut entries = self.lock();
        let mut taken = 0;
        for entry in stored {
            if entries.len() >= MAX_ENTRIES {
                break;
            }
            let Some(digest) = data_encoding::HEXLOWER
                .decode(entry.digest.as_bytes())
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
            else {
                continue;
            };
            if self
                .age(entry.verified_at)
                .is_none_or(|a| a >= self.inner.offline)
            {
                continue;
            }
            entries.insert(
                Self::key_of(entry.provider_id, &entry.username),
                Entry {
                    digest,
                    verified_at: entry.verified_at,
                    user: Arc::new(entry.user),
                    epoch: entry.epoch,
                    group_ids: entry.group_ids,
                },
            );
            taken += 1;
        }
        taken
    }

    /// Drops what `summary` may have invalidated, judged against the new `config`. Returns how
    /// many entries were dropped.
    pub fn apply(&self, config: &ConfigSnapshot, summary: &ChangeSummary) -> usize {
        if summary.is_empty() {
            // Nothing that could change a verdict: checks in flight may still be remembered.
            return 0;
        }
        let dropped = self.evict(config, summary);
        if dropped > 0 {
            self.touched();
        }
        dropped
    }

    fn evict(&self, config: &ConfigSnapshot, summary: &ChangeSummary) -> usize {
        let mut entries = self.lock();
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
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
    use redoubt_outpost_proto::clock::ManualClock;
    use redoubt_outpost_proto::config::{
        Directory, OutpostConfig, OutpostInfo, OutpostKind, ProviderConfig,
    };

    const NOW: i64 = 1_800_000_000;

    fn cache_at(clock: &ManualClock) -> CredentialCache {
        CredentialCache::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
            Arc::new(clock.clone()),
        )
    }

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
        let cache = cache_at(&ManualClock::new(NOW));
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
        let cache = cache_at(&ManualClock::new(NOW));
        let mut user = directory_user(1, vec![]);
        user.has_totp = true;
        cache.remember(3, "alice", "secret;123456", verified(), &user, true, 0);
        assert!(cache.is_empty());
        cache.remember(3, "alice", "secret", verified(), &user, false, 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn epoch_status_and_group_changes_evict_other_changes_keep() {
        let cache = cache_at(&ManualClock::new(NOW));
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
        let cache = cache_at(&ManualClock::new(NOW));
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
        let clock = ManualClock::new(NOW);
        let cache = cache_at(&clock);
        let user = directory_user(1, vec![]);
        cache.remember(3, "alice", "pw", verified(), &user, true, 0);
        clock.advance(60);
        assert!(matches!(cache.lookup(3, "alice", "pw"), Lookup::Offline(_)));
        clock.advance(539);
        assert!(matches!(cache.lookup(3, "alice", "pw"), Lookup::Offline(_)));
        clock.advance(1);
        assert_eq!(cache.lookup(3, "alice", "pw"), Lookup::Miss);
    }

    #[test]
    fn entries_carried_over_keep_their_time_and_need_the_same_key() {
        let clock = ManualClock::new(NOW);
        let key = [7u8; 32];
        let make = |key| {
            CredentialCache::with_key(
                key,
                Duration::from_secs(60),
                Duration::from_secs(600),
                Arc::new(clock.clone()),
            )
        };
        let before = make(key);
        before.remember(
            3,
            "Alice",
            "pw",
            verified(),
            &directory_user(1, vec![]),
            true,
            0,
        );
        clock.advance(100);
        let stored = before.export();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].verified_at, NOW);
        let text = serde_json::to_string(&stored).expect("json");
        assert!(!text.contains("pw\""), "no password is stored: {text}");

        let after = make(key);
        assert_eq!(after.import(stored.clone()), 1);
        assert!(matches!(after.lookup(3, "alice", "pw"), Lookup::Offline(_)));
        assert_eq!(after.lookup(3, "alice", "other"), Lookup::Miss);
        let other_key = make([8u8; 32]);
        other_key.import(stored.clone());
        assert_eq!(other_key.lookup(3, "alice", "pw"), Lookup::Miss);

        clock.advance(500);
        assert!(before.export().is_empty(), "expired entries are not kept");
        assert_eq!(make(key).import(stored), 0);
    }
}
