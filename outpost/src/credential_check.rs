//! The credential check every protocol module makes: the warm cache first, then the core, and
//! with the core unreachable a cached yes still counts within the offline window. LDAP binds and
//! RADIUS Access-Requests both go through [`check`], so they share the eviction rules. Every
//! login answered from the cache (fresh or offline) is queued as a `cached_login` event for the
//! core's log, with the time it happened.

use crate::core_api::{CoreApi, CoreCallError};
use crate::credential_cache::{CredentialCache, Lookup};
use crate::event_queue::EventQueue;
use crate::lock_book::LockBook;
use redoubt_outpost_proto::config::DirectoryUser;
use redoubt_outpost_proto::credentials::{
    CACHED_LOGIN, FailureReason, OFFLINE_REFUSAL, OutpostEvent, VerifiedUser,
    VerifyCredentialsRequest, VerifyCredentialsResponse,
};
use std::sync::Arc;

/// How the cache took part, for the `*_cache_total{result}` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Answered from the cache without the core.
    Hit,
    /// The core was asked.
    Miss,
    /// The core was unreachable and a cached yes was used.
    Offline,
}

impl CacheUse {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Offline => "offline",
        }
    }
}

/// The outcome of a check.
#[derive(Debug)]
pub enum Verdict {
    /// The credentials are good.
    Accepted(Arc<VerifiedUser>, CacheUse),
    /// The core said no.
    Refused(FailureReason),
    /// The core cannot be reached and nothing cached applies.
    Unavailable(CoreCallError),
    /// The core answered without a verdict (refused token, server error).
    CoreError(CoreCallError),
}

impl Verdict {
    /// How the cache took part: `None` when there was no verdict at all.
    pub fn cache_use(&self) -> Option<CacheUse> {
        match self {
            Self::Accepted(_, cache_use) => Some(*cache_use),
            Self::Refused(_) => Some(CacheUse::Miss),
            Self::Unavailable(_) | Self::CoreError(_) => None,
        }
    }
}

/// Checks `request`. `mfa` is the provider's switch (users with TOTP are then never cached);
/// `find_user` finds a user of the pushed directory by id, to remember what the cache entry
/// depends on. Requests carrying a separate `totp_code` bypass the cache, and so do pairs the
/// core locked (`locks`): those go to the core, and are refused when it cannot be reached.
/// Logins answered from the cache are reported through `audit`.
pub async fn check<'a>(
    cache: &CredentialCache,
    locks: Option<&LockBook>,
    core: &CoreApi,
    audit: Option<&EventQueue>,
    request: &VerifyCredentialsRequest,
    mfa: bool,
    find_user: impl Fn(i64) -> Option<&'a DirectoryUser>,
) -> Verdict {
    let (verdict, offline) = ask(cache, locks, core, request, mfa, find_user).await;
    if let Some(queue) = audit {
        match (&verdict, offline) {
            (Verdict::Accepted(user, cache_use @ (CacheUse::Hit | CacheUse::Offline)), _) => {
                queue.enqueue_nowait(cached_login(request, user, *cache_use));
            }
            (Verdict::Refused(_) | Verdict::Unavailable(_), Some(reason)) => {
                queue.enqueue_nowait(offline_refusal(request, reason));
            }
            _ => {}
        }
    }
    verdict
}

/// Why a login was refused while the core was unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineRefusal {
    /// No cached credential matched (never cached, a wrong password, or past
    /// `credential_offline_seconds`).
    NoCachedCredential,
    /// The core had locked this user at this source.
    Locked,
}

impl OfflineRefusal {
    /// The `detail.reason` of the event.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoCachedCredential => "no_cached_credential",
            Self::Locked => "locked",
        }
    }
}

/// The event that reports a login refused while the core was unreachable.
pub fn offline_refusal(request: &VerifyCredentialsRequest, reason: OfflineRefusal) -> OutpostEvent {
    login_event(
        request,
        OFFLINE_REFUSAL,
        &request.username,
        ("reason", reason.label()),
    )
}

/// The event that reports a login answered from the cache: the user by name (as credential
/// checks name them), the client's address and details as the check would have sent them.
pub fn cached_login(
    request: &VerifyCredentialsRequest,
    user: &VerifiedUser,
    cache_use: CacheUse,
) -> OutpostEvent {
    login_event(
        request,
        CACHED_LOGIN,
        &user.username,
        ("cache", cache_use.label()),
    )
}

/// An event about one login attempt: `action` for `username`, from the request's address, with
/// `fact` and the client's details (as the check would have sent them) in `detail`.
fn login_event(
    request: &VerifyCredentialsRequest,
    action: &str,
    username: &str,
    fact: (&str, &str),
) -> OutpostEvent {
    let mut detail = serde_json::Map::new();
    detail.insert(fact.0.into(), fact.1.into());
    if !request.details.is_empty() {
        detail.insert(
            "client".into(),
            serde_json::Value::Object(request.details.clone()),
        );
    }
    OutpostEvent {
        provider_id: request.provider_id,
        action: action.to_owned(),
        username: Some(username.to_owned()),
        source_address: request.source_address.clone(),
        detail,
        id: None,
        occurred_at: None,
    }
}

async fn ask<'a>(
    cache: &CredentialCache,
    locks: Option<&LockBook>,
    core: &CoreApi,
    request: &VerifyCredentialsRequest,
    mfa: bool,
    find_user: impl Fn(i64) -> Option<&'a DirectoryUser>,
) -> (Verdict, Option<OfflineRefusal>) {
    let generation = cache.generation();
    let locked = locks.is_some_and(|book| {
        book.is_locked(
            &request.username,
            request.source_address.as_deref().unwrap_or_default(),
        )
    });
    let cached = if request.totp_code.is_none() && !locked {
        cache.lookup(request.provider_id, &request.username, &request.password)
    } else {
        Lookup::Miss
    };
    if let Lookup::Fresh(user) = cached {
        return (Verdict::Accepted(user, CacheUse::Hit), None);
    }
    let verdict = match core.verify_credentials(request).await {
        Ok(VerifyCredentialsResponse::Success { user }) => {
            let user = Arc::new(user);
            if request.totp_code.is_none()
                && let Some(directory_user) = find_user(user.id)
            {
                cache.remember(
                    request.provider_id,
                    &request.username,
                    &request.password,
                    user.clone(),
                    directory_user,
                    mfa,
                    generation,
                );
            }
            Verdict::Accepted(user, CacheUse::Miss)
        }
        Ok(VerifyCredentialsResponse::Failure { reason }) => {
            cache.forget(request.provider_id, &request.username);
            Verdict::Refused(reason)
        }
        Err(error) if error.is_unreachable() => {
            return match cached {
                Lookup::Offline(user) => (Verdict::Accepted(user, CacheUse::Offline), None),
                _ if locked => (
                    Verdict::Refused(FailureReason::RateLimited),
                    Some(OfflineRefusal::Locked),
                ),
                _ => (
                    Verdict::Unavailable(error),
                    Some(OfflineRefusal::NoCachedCredential),
                ),
            };
        }
        Err(error) => Verdict::CoreError(error),
    };
    (verdict, None)
}
