//! The credential check: password (and TOTP code), active user, application access and the
//! brute-force limit, with an audit event for every attempt.
//!
//! Failures are reported to the caller as a small set of reasons that do not help an attacker
//! (unknown user, wrong password and disabled user are all `InvalidCredentials`); the event log
//! keeps the precise cause for administrators.

use super::lockout::{Counts, Decision, Locked, LockoutPolicy};
use super::password::PasswordHasherArgon2;
use super::seal::Sealer;
use super::totp;
use crate::model::{Application, Group, NewEvent, Outcome, User};
use crate::store::{Store, StoreError};
use serde_json::json;
use std::sync::Arc;

/// The audit action of a credential check; failures of it feed the brute-force limit.
pub const ACTION_CREDENTIAL_CHECK: &str = "credential_check";
/// The audit action of a correct password that still needs a TOTP code.
pub const ACTION_CREDENTIAL_CHALLENGE: &str = "credential_challenge";
/// The audit action of an attempt refused by a lock: counted by no rule, so refused attempts
/// neither extend a lock nor count as failures.
pub const ACTION_CREDENTIAL_REFUSED: &str = "credential_refused";

/// One attempt to verify a user's credentials.
#[derive(Debug, Clone)]
pub struct CredentialRequest<'a> {
    pub username: &'a str,
    /// The password, optionally followed by `;123456` when `totp_code` is absent.
    pub password: &'a str,
    pub totp_code: Option<&'a str>,
    /// The address of the end client as the caller saw it.
    pub source_address: &'a str,
    /// Whether a user with a TOTP device must give a code here.
    pub require_mfa: bool,
    /// Who asks (`outpost:ldap-1`, `login`), for the event log.
    pub actor: &'a str,
    /// The application the user wants, if any: its bound groups decide access.
    pub application: Option<&'a Application>,
    /// Extra context for the event (provider id, NAS identifier, ...).
    pub context: serde_json::Value,
}

/// Why a check failed, as told to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFailure {
    /// Unknown user, wrong password, wrong or replayed code, or disabled user.
    InvalidCredentials,
    /// The password was right; a TOTP code is needed too.
    MfaRequired,
    /// The user may not use this application.
    AccessDenied,
    /// The (source, user) pair is locked, or the source sprays many users.
    RateLimited,
}

impl CheckFailure {
    /// The stable reason code of the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidCredentials => "invalid_credentials",
            Self::MfaRequired => "mfa_required",
            Self::AccessDenied => "access_denied",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// A failed check: the reason for the caller, or a storage failure.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("credential check failed: {}", .0.code())]
    Failed(CheckFailure),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user whose credentials checked out, with every group they belong to (nesting resolved).
#[derive(Debug, Clone)]
pub struct VerifiedUser {
    pub user: User,
    pub groups: Vec<Group>,
    /// A TOTP code was checked (and consumed): the verdict holds for this request only.
    pub used_totp: bool,
}

/// Runs credential checks against the store.
#[derive(Clone)]
pub struct CredentialChecker {
    store: Store,
    hasher: Arc<PasswordHasherArgon2>,
    sealer: Sealer,
    policy: LockoutPolicy,
}

impl std::fmt::Debug for CredentialChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialChecker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The sealing context of a user's TOTP secret: a sealed secret only opens for its own user.
pub fn totp_seal_context(user_id: i64) -> Vec<u8> {
    format!("totp:user:{user_id}").into_bytes()
}

/// Whether a user in `groups` may use `application`: no bound group means everyone may.
pub fn has_application_access(application: &Application, groups: &[Group]) -> bool {
    application.group_ids.is_empty()
        || groups
            .iter()
            .any(|group| application.group_ids.contains(&group.id))
}

impl CredentialChecker {
    /// A checker over `store`.
    pub fn new(
        store: Store,
        hasher: Arc<PasswordHasherArgon2>,
        sealer: Sealer,
        policy: LockoutPolicy,
    ) -> Self {
        Self {
            store,
            hasher,
            sealer,
            policy,
        }
    }

    /// Verifies `request`; records one event whatever the result.
    pub async fn check(&self, request: &CredentialRequest<'_>) -> Result<VerifiedUser, CheckError> {
        let now = self.store.now();
        let counts = match self.check_limits(request, now).await {
            Ok(counts) => counts,
            Err(refused) => return self.finish(request, Err(refused), None, now).await,
        };
        let evaluation = self.evaluate(request, now).await;
        self.finish(request, evaluation, Some(counts), now).await
    }

    /// The second step of an interactive login: an earlier [`check`](Self::check) of the same
    /// user answered `MfaRequired`, and `request.totp_code` now carries the code (the password
    /// is not asked again). Same limits and events as a full check.
    pub async fn check_second_factor(
        &self,
        request: &CredentialRequest<'_>,
    ) -> Result<VerifiedUser, CheckError> {
        let now = self.store.now();
        let counts = match self.check_limits(request, now).await {
            Ok(counts) => counts,
            Err(refused) => return self.finish(request, Err(refused), None, now).await,
        };
        let evaluation = self.evaluate_second_factor(request, now).await;
        self.finish(request, evaluation, Some(counts), now).await
    }

    /// Records the event of an attempt; a counted failure that locks its pair is pushed to
    /// outposts (`counts` are those read before the attempt).
    async fn finish(
        &self,
        request: &CredentialRequest<'_>,
        evaluation: Result<VerifiedUser, Evaluation>,
        counts: Option<Counts>,
        now: i64,
    ) -> Result<VerifiedUser, CheckError> {
        match evaluation {
            Ok(verified) => {
                self.record(request, Outcome::Success, ACTION_CREDENTIAL_CHECK, "ok")
                    .await?;
                Ok(verified)
            }
            Err(Evaluation::Failed(failure, detail)) => {
                let action = if failure == CheckFailure::MfaRequired {
                    ACTION_CREDENTIAL_CHALLENGE
                } else {
                    ACTION_CREDENTIAL_CHECK
                };
                self.record(request, Outcome::Failure, action, detail)
                    .await?;
                if action == ACTION_CREDENTIAL_CHECK
                    && let Some(counts) = counts
                {
                    self.lock_if_due(request, counts, now).await?;
                }
                Err(CheckError::Failed(failure))
            }
            Err(Evaluation::Refused(locked)) => {
                self.record(
                    request,
                    Outcome::Failure,
                    ACTION_CREDENTIAL_REFUSED,
                    locked.detail(),
                )
                .await?;
                Err(CheckError::Failed(CheckFailure::RateLimited))
            }
            Err(Evaluation::Store(error)) => Err(CheckError::Store(error)),
        }
    }

    /// Records a lock when this failure (one more than `counts` saw) locks the pair, or makes
    /// the source a sprayer (then for every user at it, for at most the window: outposts only
    /// stop answering it from their caches, the core stays the judge).
    async fn lock_if_due(
        &self,
        request: &CredentialRequest<'_>,
        counts: Counts,
        now: i64,
    ) -> Result<(), StoreError> {
        let failures = counts.pair_failures.saturating_add(1);
        if let Some(until) = self.policy.pair_locked_until(failures, Some(now)) {
            tracing::info!(
                user = request.username,
                source = request.source_address,
                failures,
                until,
                "credential checks locked for this user at this source"
            );
            self.store
                .record_lockout(request.username, request.source_address, until)
                .await?;
        }
        let sprayed_before = self
            .policy
            .sprays(counts.source_failed_users, counts.source_succeeded_users);
        let may_spray_now = !self
            .policy
            .sprays(counts.source_failed_users.saturating_add(1), 0);
        if request.source_address.is_empty() || sprayed_before || may_spray_now {
            return Ok(());
        }
        let after = self
            .store
            .lockout_counts(
                ACTION_CREDENTIAL_CHECK,
                request.username,
                request.source_address,
                self.policy.window_start(now),
            )
            .await?;
        if self
            .policy
            .sprays(after.source_failed_users, after.source_succeeded_users)
        {
            tracing::warn!(
                source = request.source_address,
                users = after.source_failed_users,
                "credential checks refused for this source: it tries many users"
            );
            let until = now.saturating_add(self.policy.window_seconds);
            self.store
                .record_lockout("", request.source_address, until)
                .await?;
        }
        Ok(())
    }

    async fn evaluate_second_factor(
        &self,
        request: &CredentialRequest<'_>,
        now: i64,
    ) -> Result<VerifiedUser, Evaluation> {
        use CheckFailure::*;
        let Some(credentials) = self.store.credentials(request.username).await? else {
            return Err(Evaluation::Failed(InvalidCredentials, "unknown_user"));
        };
        let user = credentials.user;
        if !user.is_active {
            return Err(Evaluation::Failed(InvalidCredentials, "inactive_user"));
        }
        let secrets = self.store.totp_secrets(user.id).await?;
        if secrets.is_empty() {
            return Err(Evaluation::Failed(InvalidCredentials, "no_totp_device"));
        }
        let code = request.totp_code.unwrap_or_default();
        self.consume_code(&user, &secrets, code, now).await?;
        let groups = self.store.effective_groups(user.id).await?;
        if let Some(application) = request.application
            && !has_application_access(application, &groups)
        {
            return Err(Evaluation::Failed(AccessDenied, "not_in_bound_group"));
        }
        Ok(VerifiedUser {
            user,
            groups,
            used_totp: true,
        })
    }

    /// Reads the counts and applies the policy: refuses a locked pair or a spraying source, and
    /// waits out the per-user slowdown before the password is looked at.
    async fn check_limits(
        &self,
        request: &CredentialRequest<'_>,
        now: i64,
    ) -> Result<Counts, Evaluation> {
        let counts = self
            .store
            .lockout_counts(
                ACTION_CREDENTIAL_CHECK,
                request.username,
                request.source_address,
                self.policy.window_start(now),
            )
            .await?;
        match self.policy.decide(&counts, now) {
            Decision::Refuse(locked) => Err(Evaluation::Refused(locked)),
            Decision::Allow { delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(counts)
            }
        }
    }

    /// Checks `code` against the user's devices and consumes its time step (replay guard).
    async fn consume_code(
        &self,
        user: &User,
        secrets: &[crate::store::TotpSecretRow],
        code: &str,
        now: i64,
    ) -> Result<(), Evaluation> {
        use CheckFailure::*;
        let mut matched = None;
        for device in secrets {
            let Ok(secret) = self
                .sealer
                .open(&device.secret_sealed, &totp_seal_context(user.id))
            else {
                tracing::warn!(
                    device = device.device_id,
                    "TOTP secret does not open under this secret key"
                );
                continue;
            };
            if let Some(step) = totp::verify(&secret, code, now) {
                matched = Some((device.device_id, step));
            }
        }
        let Some((device_id, step)) = matched else {
            return Err(Evaluation::Failed(InvalidCredentials, "wrong_totp_code"));
        };
        if !self.store.consume_totp_step(device_id, step).await? {
            return Err(Evaluation::Failed(InvalidCredentials, "replayed_totp_code"));
        }
        Ok(())
    }

    async fn evaluate(
        &self,
        request: &CredentialRequest<'_>,
        now: i64,
    ) -> Result<VerifiedUser, Evaluation> {
        use CheckFailure::*;

        let credentials = self.store.credentials(request.username).await?;
        let Some(credentials) = credentials.filter(|c| c.password_hash.is_some()) else {
            self.hasher
                .verify_dummy_async(request.password.to_owned())
                .await;
            return Err(Evaluation::Failed(
                InvalidCredentials,
                "unknown_user_or_no_password",
            ));
        };
        let user = credentials.user;
        let secrets = if request.require_mfa {
            self.store.totp_secrets(user.id).await?
        } else {
            Vec::new()
        };
        let (password, code) = match (request.totp_code, secrets.is_empty()) {
            (Some(code), _) => (request.password, Some(code)),
            (None, false) => totp::split_code_suffix(request.password),
            (None, true) => (request.password, None),
        };
        let hash = credentials.password_hash.unwrap_or_default();
        let password_ok = self.hasher.verify_async(password.to_owned(), hash).await;
        if !password_ok {
            return Err(Evaluation::Failed(InvalidCredentials, "wrong_password"));
        }
        if !user.is_active {
            return Err(Evaluation::Failed(InvalidCredentials, "inactive_user"));
        }
        if !secrets.is_empty() {
            let Some(code) = code else {
                return Err(Evaluation::Failed(MfaRequired, "totp_code_missing"));
            };
            self.consume_code(&user, &secrets, code, now).await?;
        }
        let groups = self.store.effective_groups(user.id).await?;
        if let Some(application) = request.application
            && !has_application_access(application, &groups)
        {
            return Err(Evaluation::Failed(AccessDenied, "not_in_bound_group"));
        }
        Ok(VerifiedUser {
            user,
            groups,
            used_totp: !secrets.is_empty(),
        })
    }

    async fn record(
        &self,
        request: &CredentialRequest<'_>,
        outcome: Outcome,
        action: &'static str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut detail = json!({ "reason": reason });
        if let (Some(map), serde_json::Value::Object(context)) =
            (detail.as_object_mut(), &request.context)
        {
            map.extend(context.clone());
        }
        if let Some(app) = request.application {
            detail["application"] = json!(app.slug);
        }
        self.store
            .record_event(&NewEvent {
                actor: request.actor.to_owned(),
                action,
                target: request.username.to_owned(),
                source_address: request.source_address.to_owned(),
                outcome,
                detail,
            })
            .await
    }
}

enum Evaluation {
    Failed(CheckFailure, &'static str),
    /// Refused by a lock before the password was looked at.
    Refused(Locked),
    Store(StoreError),
}

impl From<StoreError> for Evaluation {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}
