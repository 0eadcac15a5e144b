//! The OpenID Connect provider's state: signing keys (private halves sealed), authorization
//! codes, refresh tokens and issued access tokens. Codes and refresh tokens are stored only as
//! SHA-256 hashes; single use is one atomic compare-and-set, and a second use revokes every
//! token issued from the same exchange (its family).

use super::{Store, StoreError};
use crate::model::{Provider, ProviderKind};
use sqlx::Row;
use sqlx::any::AnyRow;

/// A signing key as stored.
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub id: i64,
    pub kid: String,
    pub algorithm: String,
    pub private_sealed: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// An authorization code to store.
#[derive(Debug, Clone)]
pub struct NewAuthorizationCode<'a> {
    pub code_hash: &'a str,
    pub provider_id: i64,
    pub client_id: &'a str,
    pub user_id: i64,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub session_id: &'a str,
    pub auth_time_ms: i64,
    pub expires_at: i64,
}

/// A stored authorization code.
#[derive(Debug, Clone)]
pub struct AuthorizationCodeRow {
    pub provider_id: i64,
    pub client_id: String,
    pub user_id: i64,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub session_id: String,
    pub auth_time_ms: i64,
    pub family_id: Option<String>,
    pub expires_at: i64,
}

/// What presenting an authorization code did.
#[derive(Debug, Clone)]
pub enum CodeUse {
    /// First use: the code is now spent and `family_id` names the tokens issued from it.
    Fresh(AuthorizationCodeRow),
    /// The code was already used; everything issued from it has been revoked.
    Reused,
    /// No such code.
    Unknown,
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub family_id: &'a str,
    pub provider_id: i64,
    pub client_id: &'a str,
    pub user_id: i64,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub session_id: &'a str,
    pub auth_time_ms: i64,
    pub expires_at: i64,
}

/// A stored refresh token.
#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub family_id: String,
    pub provider_id: i64,
    pub client_id: String,
    pub user_id: i64,
    pub scope: String,
    pub nonce: Option<String>,
    pub session_id: String,
    pub auth_time_ms: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone)]
pub enum RefreshUse {
    /// It was current: it is now rotated out and the caller issues a successor.
    Fresh(RefreshTokenRow),
    /// It was already rotated out (or revoked): the whole family has been revoked.
    Reused,
    /// No such token.
    Unknown,
}

/// A stored access token (the JWT itself is not kept).
#[derive(Debug, Clone)]
pub struct AccessTokenRow {
    pub family_id: String,
    pub client_id: String,
    pub user_id: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

const CODE_COLUMNS: &str = "provider_id, client_id, user_id, redirect_uri, scope, nonce, \
    code_challenge, session_id, auth_time_ms, family_id, expires_at";
const REFRESH_COLUMNS: &str = "family_id, provider_id, client_id, user_id, scope, nonce, \
    session_id, auth_time_ms, created_at, expires_at, rotated_at, revoked_at";

fn code_from_row(row: &AnyRow) -> Result<AuthorizationCodeRow, sqlx::Error> {
    Ok(AuthorizationCodeRow {
        provider_id: row.try_get("provider_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        session_id: row.try_get("session_id")?,
        auth_time_ms: row.try_get("auth_time_ms")?,
        family_id: row.try_get("family_id")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn refresh_from_row(row: &AnyRow) -> Result<RefreshTokenRow, sqlx::Error> {
    Ok(RefreshTokenRow {
        family_id: row.try_get("family_id")?,
        provider_id: row.try_get("provider_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        session_id: row.try_get("session_id")?,
        auth_time_ms: row.try_get("auth_time_ms")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        rotated_at: row.try_get("rotated_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Every signing key, newest first.
    pub async fn oidc_signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kid, algorithm, private_sealed, public_jwk, created_at, retired_at \
             FROM oidc_signing_keys ORDER BY id DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRow {
                    id: row.try_get("id")?,
                    kid: row.try_get("kid")?,
                    algorithm: row.try_get("algorithm")?,
                    private_sealed: row.try_get("private_sealed")?,
                    public_jwk: row.try_get("public_jwk")?,
                    created_at: row.try_get("created_at")?,
                    retired_at: row.try_get("retired_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Adds a signing key as the current one. With `retire_current`, the keys current so far
    /// are retired now (a rotation); without, it is only added when there is no current key
    /// (first use), and `false` says another caller got there first.
    pub async fn add_oidc_signing_key(
        &self,
        kid: &str,
        algorithm: &str,
        private_sealed: &str,
        public_jwk: &str,
        retire_current: bool,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        if retire_current {
            sqlx::query("UPDATE oidc_signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                .bind(now)
                .execute(&mut *tx)
                .await?;
        } else {
            let current: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM oidc_signing_keys WHERE retired_at IS NULL",
            )
            .fetch_one(&mut *tx)
            .await?;
            if current > 0 {
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO oidc_signing_keys (kid, algorithm, private_sealed, public_jwk, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(kid)
        .bind(algorithm)
        .bind(private_sealed)
        .bind(public_jwk)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "signing key"))?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Deletes keys retired before `before`.
    pub async fn prune_oidc_signing_keys(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM oidc_signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Every OIDC provider, in one query.
    pub async fn oidc_providers(&self) -> Result<Vec<Provider>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, settings, created_at, updated_at FROM providers \
             WHERE kind = $1 ORDER BY id",
        )
        .bind(ProviderKind::Oidc.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let settings: String = row.try_get("settings")?;
                Ok(Provider {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    kind: ProviderKind::Oidc,
                    settings: serde_json::from_str(&settings).unwrap_or_default(),
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Stores an authorization code.
    pub async fn add_authorization_code(
        &self,
        new: &NewAuthorizationCode<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oidc_authorization_codes (code_hash, provider_id, client_id, user_id, \
             redirect_uri, scope, nonce, code_challenge, session_id, auth_time_ms, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(new.code_hash)
        .bind(new.provider_id)
        .bind(new.client_id)
        .bind(new.user_id)
        .bind(new.redirect_uri)
        .bind(new.scope)
        .bind(new.nonce)
        .bind(new.code_challenge)
        .bind(new.session_id)
        .bind(new.auth_time_ms)
        .bind(self.now())
        .bind(new.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "authorization code"))?;
        Ok(())
    }

    /// Spends an authorization code, starting token family `family_id`. A code presented a
    /// second time revokes the family its first use started.
    pub async fn use_authorization_code(
        &self,
        code_hash: &str,
        family_id: &str,
    ) -> Result<CodeUse, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE oidc_authorization_codes SET used_at = $1, family_id = $2 \
             WHERE code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .bind(code_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CODE_COLUMNS} FROM oidc_authorization_codes WHERE code_hash = $1"
        )))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CodeUse::Unknown);
        };
        let code = code_from_row(&row)?;
        if updated == 1 {
            self.commit(tx).await?;
            return Ok(CodeUse::Fresh(code));
        }
        if let Some(family) = &code.family_id {
            revoke_family_in(&mut tx, family, now).await?;
        }
        self.commit(tx).await?;
        Ok(CodeUse::Reused)
    }

    /// Stores a refresh token.
    pub async fn add_refresh_token(&self, new: &NewRefreshToken<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oidc_refresh_tokens (token_hash, family_id, provider_id, client_id, \
             user_id, scope, nonce, session_id, auth_time_ms, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(new.token_hash)
        .bind(new.family_id)
        .bind(new.provider_id)
        .bind(new.client_id)
        .bind(new.user_id)
        .bind(new.scope)
        .bind(new.nonce)
        .bind(new.session_id)
        .bind(new.auth_time_ms)
        .bind(self.now())
        .bind(new.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "refresh token"))?;
        Ok(())
    }

    /// A refresh token by its hash, whatever its state.
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFRESH_COLUMNS} FROM oidc_refresh_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(refresh_from_row).transpose()?)
    }

    /// Rotates a refresh token out. Presenting one already rotated out or revoked revokes its
    /// whole family.
    pub async fn use_refresh_token(&self, token_hash: &str) -> Result<RefreshUse, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE oidc_refresh_tokens SET rotated_at = $1 \
             WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {REFRESH_COLUMNS} FROM oidc_refresh_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshUse::Unknown);
        };
        let token = refresh_from_row(&row)?;
        if updated == 1 {
            self.commit(tx).await?;
            return Ok(RefreshUse::Fresh(token));
        }
        revoke_family_in(&mut tx, &token.family_id, now).await?;
        self.commit(tx).await?;
        Ok(RefreshUse::Reused)
    }

    /// Revokes every refresh and access token of a family.
    pub async fn revoke_token_family(&self, family_id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        revoke_family_in(&mut tx, family_id, self.now()).await?;
        self.commit(tx).await
    }

    /// Records an issued access token (deleted with its provider).
    pub async fn add_access_token(
        &self,
        jti: &str,
        family_id: &str,
        provider_id: i64,
        client_id: &str,
        user_id: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oidc_access_tokens (jti, family_id, provider_id, client_id, user_id, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(jti)
        .bind(family_id)
        .bind(provider_id)
        .bind(client_id)
        .bind(user_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "access token"))?;
        Ok(())
    }

    /// An issued access token by its `jti`.
    pub async fn access_token(&self, jti: &str) -> Result<Option<AccessTokenRow>, StoreError> {
        let row = sqlx::query(
            "SELECT family_id, client_id, user_id, expires_at, revoked_at \
             FROM oidc_access_tokens WHERE jti = $1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AccessTokenRow {
                family_id: row.try_get("family_id")?,
                client_id: row.try_get("client_id")?,
                user_id: row.try_get("user_id")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Revokes one access token (kept until it would have expired).
    pub async fn revoke_access_token(&self, jti: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE oidc_access_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(jti)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes one refresh token (not its family).
    pub async fn revoke_refresh_token(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE oidc_refresh_tokens SET revoked_at = $1 \
             WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(self.now())
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes codes and tokens that expired before `before`.
    pub async fn prune_oidc_tokens(&self, before: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for table in [
            "oidc_authorization_codes",
            "oidc_refresh_tokens",
            "oidc_access_tokens",
        ] {
            deleted += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE expires_at < $1"
            )))
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(deleted)
    }
}

async fn revoke_family_in(tx: &mut super::Tx, family_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE oidc_refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE oidc_access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
