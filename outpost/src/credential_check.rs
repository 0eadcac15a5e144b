//! The credential check every protocol module makes: the warm cache first, then the core, and
//! with the core unreachable a cached yes still counts within the offline window. LDAP binds and
//! RADIUS Access-Requests both go through [`check`], so they share the eviction rules.

use crate::core_api::{CoreApi, CoreCallError};
use crate::credential_cache::{CredentialCache, Lookup};
use crate::lock_book::LockBook;
use redoubt_outpost_proto::config::DirectoryUser;
use redoubt_outpost_proto::credentials::{
    FailureReason, VerifiedUser, VerifyCredentialsRequest, VerifyCredentialsResponse,
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
pub async fn check<'a>(
    cache: &CredentialCache,
    locks: Option<&LockBook>,
    core: &CoreApi,
    request: &VerifyCredentialsRequest,
    mfa: bool,
    find_user: impl Fn(i64) -> Option<&'a DirectoryUser>,
) -> Verdict {
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
        return Verdict::Accepted(user, CacheUse::Hit);
    }
    match core.verify_credentials(request).await {
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
        Err(error) if error.is_unreachable() => match cached {
            Lookup::Offline(user) => Verdict::Accepted(user, CacheUse::Offline),
            _ if locked => Verdict::Refused(FailureReason::RateLimited),
            _ => Verdict::Unavailable(error),
        },
        Err(error) => Verdict::CoreError(error),
    }
}
