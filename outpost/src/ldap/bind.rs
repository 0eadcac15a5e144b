//! Simple binds and password changes: which user a bind name means, the credential cache, and
//! the core's credential check behind it.
//!
//! Bind names: the full DN `cn=<user>,ou=users,<base>` (also `uid=<user>,ou=users,<base>`,
//! and `cn=`/`uid=` directly under the base), or the bare username, which binds against the
//! outpost's first LDAP provider.

use super::Shared;
use super::dn::{self, Dn};
use super::session::{failure, success};
use super::view::DirectoryView;
use crate::credential_check::{self, Verdict};
use ldap3_proto::proto::{LdapResult, LdapResultCode};
use redoubt_outpost_proto::credentials::{
    ChangePasswordRequest, ChangePasswordResponse, FailureReason, VerifiedUser,
    VerifyCredentialsRequest,
};
use std::net::IpAddr;
use std::sync::Arc;

/// The one message for every failed bind: unknown user, wrong password, missing TOTP code,
/// disabled user and refused application access look the same to the client.
pub const INVALID: &str = "invalid credentials";

/// A bind name resolved to a provider and a username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindName {
    /// Index into the view's providers.
    pub provider: u16,
    pub username: String,
}

impl BindName {
    /// Resolves `name` (a DN or a bare username); `None` when it names no user of any provider.
    pub fn resolve(view: &DirectoryView, name: &str) -> Option<Self> {
        let name = name.trim();
        if name.is_empty() || view.providers.is_empty() {
            return None;
        }
        if !name.contains('=') {
            return Some(Self {
                provider: 0,
                username: canonical_name(view, name),
            });
        }
        let parsed = Dn::parse(name).ok()?;
        let (attr, value) = parsed.rdns.first()?.clone();
        if attr != "cn" && attr != "uid" {
            return None;
        }
        let parent = Dn {
            rdns: parsed.rdns[1..].to_vec(),
        }
        .normalized();
        let provider = view
            .providers
            .iter()
            .position(|p| parent == p.users_norm || parent == p.base_norm)?;
        Some(Self {
            provider: provider as u16,
            username: canonical_name(view, &value),
        })
    }

    /// The user's DN as this directory serves it.
    pub fn canonical_dn(&self, view: &DirectoryView, username: &str) -> String {
        let canonical = view
            .user_by_name(username)
            .map_or(username, |u| view.user(u).username.as_str());
        format!(
            "cn={},{}",
            dn::escape_value(canonical),
            view.provider(self.provider).users_dn()
        )
    }
}

/// The directory's spelling of `name` (DN values match without regard to case), or `name`
/// itself for a user the directory does not hold.
fn canonical_name(view: &DirectoryView, name: &str) -> String {
    view.user_by_name(name)
        .map_or(name, |u| view.user(u).username.as_str())
        .to_owned()
}

/// Checks `password` for `name`: from the cache when fresh, else with the core; with the core
/// unreachable, a cached bind still counts.
pub async fn verify(
    shared: &Shared,
    view: &DirectoryView,
    name: &BindName,
    password: &str,
    peer: IpAddr,
) -> Result<Arc<VerifiedUser>, LdapResult> {
    let provider = view.provider(name.provider);
    let request = VerifyCredentialsRequest {
        provider_id: provider.id,
        username: name.username.clone(),
        password: password.to_owned(),
        totp_code: None,
        source_address: Some(peer.to_string()),
        details: serde_json::Map::new(),
    };
    let find_user = |id| view.user_by_id(id).map(|index| view.user(index));
    let verdict = credential_check::check(
        &shared.cache,
        Some(&shared.locks),
        &shared.core,
        Some(&shared.events),
        &request,
        provider.settings.mfa,
        find_user,
    )
    .await;
    if let Some(cache_use) = verdict.cache_use() {
        shared
            .metrics
            .bind_cache
            .with_label_values(&[cache_use.label()])
            .inc();
    }
    match verdict {
        Verdict::Accepted(user, _) => Ok(user),
        Verdict::Refused(reason) => {
            tracing::debug!(provider = %provider.name, ?reason, %peer, "LDAP bind refused");
            Err(match reason {
                FailureReason::RateLimited => failure(
                    LdapResultCode::InvalidCredentials,
                    "too many failed attempts; try again later",
                ),
                _ => failure(LdapResultCode::InvalidCredentials, INVALID),
            })
        }
        Verdict::Unavailable(error) => {
            tracing::warn!(%error, "LDAP bind cannot be checked: the core is unreachable");
            Err(failure(
                LdapResultCode::Unavailable,
                "passwords cannot be checked right now: the Redoubt core is unreachable",
            ))
        }
        Verdict::CoreError(error) => {
            tracing::error!(%error, "the core refused a credential check");
            Err(failure(
                LdapResultCode::OperationsError,
                "the Redoubt core refused the credential check; see the outpost's log",
            ))
        }
    }
}

/// Changes the password of `name` through the core (RFC 3062 Password Modify).
pub async fn change_password(
    shared: &Shared,
    view: &DirectoryView,
    name: &BindName,
    old_password: String,
    new_password: String,
    peer: IpAddr,
) -> LdapResult {
    let provider = view.provider(name.provider);
    let request = ChangePasswordRequest {
        provider_id: provider.id,
        username: name.username.clone(),
        old_password,
        new_password,
        source_address: Some(peer.to_string()),
    };
    match shared.core.change_password(&request).await {
        Ok(ChangePasswordResponse::Changed) => {
            shared.cache.forget(provider.id, &name.username);
            tracing::info!(provider = %provider.name, user = %name.username, %peer, "password changed over LDAP");
            success()
        }
        Ok(ChangePasswordResponse::Failure { .. }) => {
            failure(LdapResultCode::InvalidCredentials, INVALID)
        }
        Ok(ChangePasswordResponse::Rejected { message }) => {
            failure(LdapResultCode::ConstraintViolation, message)
        }
        Err(error) if error.is_unreachable() => failure(
            LdapResultCode::Unavailable,
            "passwords cannot be changed right now: the Redoubt core is unreachable",
        ),
        Err(error) => {
            tracing::error!(%error, "the core refused a password change");
            failure(
                LdapResultCode::OperationsError,
                "the Redoubt core refused the password change; see the outpost's log",
            )
        }
    }
}
