//! API tokens: only the SHA-256 of each secret is stored.

use super::{ObjectKind, Store, StoreError, Tx};
use crate::model::{ApiToken, TokenKind};
use sqlx::Row;
use sqlx::any::AnyRow;

const TOKEN_COLUMNS: &str =
    "id, kind, user_id, outpost_id, description, expires_at, created_at, last_used_at";

/// How often at most the `last_used_at` stamp of a token is written, in seconds.
const LAST_USED_GRANULARITY: i64 = 60;

fn token_from_row(row: &AnyRow) -> Result<ApiToken, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Invalid(format!("stored token kind `{kind}`")))?,
        user_id: row.try_get("user_id")?,
        outpost_id: row.try_get("outpost_id")?,
        description: row.try_get("description")?,
        expires_at: row.try_get("expires_at")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// A token row found by its hash, with the hash to compare in constant time.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token: ApiToken,
    pub secret_hash: String,
    /// For admin tokens: whether the owning user is still active.
    pub owner_active: bool,
    pub owner_username: Option<String>,
}

pub(super) struct NewToken<'a> {
    pub secret_hash: &'a str,
    pub kind: TokenKind,
    pub user_id: Option<i64>,
    pub outpost_id: Option<i64>,
    pub description: &'a str,
    pub expires_at: Option<i64>,
    pub now: i64,
}

pub(super) async fn insert_token(tx: &mut Tx, new: &NewToken<'_>) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO api_tokens (secret_hash, kind, user_id, outpost_id, description, expires_at, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(new.secret_hash)
    .bind(new.kind.as_str())
    .bind(new.user_id)
    .bind(new.outpost_id)
    .bind(new.description)
    .bind(new.expires_at)
    .bind(new.now)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| StoreError::from_sqlx(e, "token"))
}

impl Store {
    /// Creates an admin token owned by `user_id`.
    pub async fn create_admin_token(
        &self,
        user_id: i64,
        secret_hash: &str,
        description: &str,
        expires_at: Option<i64>,
    ) -> Result<ApiToken, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let id = insert_token(
            &mut tx,
            &NewToken {
                secret_hash,
                kind: TokenKind::Admin,
                user_id: Some(user_id),
                outpost_id: None,
                description,
                expires_at,
                now,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Invalid(_) => StoreError::NotFound("user"),
            other => other,
        })?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        self.commit(tx).await?;
        token_from_row(&row)
    }

    /// The token whose secret hashes to `secret_hash`.
    pub async fn token_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.kind, t.user_id, t.outpost_id, t.description, t.expires_at, \
             t.created_at, t.last_used_at, t.secret_hash, u.is_active AS owner_active, \
             u.username AS owner_username \
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.secret_hash = $1",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let owner_active: Option<bool> = match row.try_get::<Option<bool>, _>("owner_active") {
            Ok(v) => v,
            Err(_) => row
                .try_get::<Option<i64>, _>("owner_active")?
                .map(|v| v != 0),
        };
        Ok(Some(TokenRecord {
            token: token_from_row(&row)?,
            secret_hash: row.try_get("secret_hash")?,
            owner_active: owner_active.unwrap_or(true),
            owner_username: row.try_get("owner_username")?,
        }))
    }

    /// Stamps a token as used now, at most once a minute.
    pub async fn touch_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let now = self.now();
        if token
            .last_used_at
            .is_some_and(|t| now - t < LAST_USED_GRANULARITY)
        {
            return Ok(());
        }
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(token.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every token, newest first (secrets are never readable).
    pub async fn list_tokens(&self, kind: Option<TokenKind>) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 = '' OR kind = $1) ORDER BY id DESC"
        )))
        .bind(kind.map(TokenKind::as_str).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// One token by id.
    pub async fn token(&self, id: i64) -> Result<ApiToken, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("token"))?;
        token_from_row(&row)
    }

    /// Revokes a token at once.
    pub async fn delete_token(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("token"));
        }
        self.record_change(&mut tx, ObjectKind::Token, id, "delete")
            .await?;
        self.commit(tx).await
    }
}
