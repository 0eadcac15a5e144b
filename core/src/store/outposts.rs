//! Outposts, the providers they serve, and their tokens' lifecycle.

use super::applications::ensure_provider_exists;
use super::tokens::{NewToken, insert_token};
use super::{ObjectKind, Store, StoreError, Tx, limit};
use crate::model::{ListParams, Outpost, Page, ProviderKind, TokenKind};
use sqlx::Row;
use sqlx::any::AnyRow;

const OUTPOST_COLUMNS: &str = "id, name, kind, settings, created_at, updated_at";

fn outpost_from_row(row: &AnyRow, provider_ids: Vec<i64>) -> Result<Outpost, StoreError> {
    let kind: String = row.try_get("kind")?;
    let settings: String = row.try_get("settings")?;
    Ok(Outpost {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: kind
            .parse()
            .map_err(|e| StoreError::Invalid(format!("stored outpost: {e}")))?,
        settings: serde_json::from_str(&settings).unwrap_or_default(),
        provider_ids,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Fields of an outpost to create or replace.
#[derive(Debug, Clone)]
pub struct OutpostFields<'a> {
    pub name: &'a str,
    pub kind: ProviderKind,
    pub settings: &'a serde_json::Value,
    pub provider_ids: &'a [i64],
}

impl Store {
    /// Creates an outpost, its provider links and its token in one transaction, so a crash
    /// never leaves an outpost without a token or a token without an outpost.
    pub async fn create_outpost(
        &self,
        fields: &OutpostFields<'_>,
        token_hash: &str,
    ) -> Result<Outpost, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outposts (name, kind, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(fields.name)
        .bind(fields.kind.as_str())
        .bind(fields.settings.to_string())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "outpost name"))?;
        link_providers(&mut tx, id, fields.kind, fields.provider_ids).await?;
        insert_token(
            &mut tx,
            &NewToken {
                secret_hash: token_hash,
                kind: TokenKind::Outpost,
                user_id: None,
                outpost_id: Some(id),
                description: &format!("service identity of outpost {}", fields.name),
                expires_at: None,
                now,
            },
        )
        .await?;
        self.record_change(&mut tx, ObjectKind::Outpost, id, "create")
            .await?;
        let outpost = fetch_outpost(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(outpost)
    }

    /// One outpost by id.
    pub async fn outpost(&self, id: i64) -> Result<Outpost, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTPOST_COLUMNS} FROM outposts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound("outpost"))?;
        let providers = provider_ids(&mut conn, id).await?;
        outpost_from_row(&row, providers)
    }

    /// A page of outposts, filtered by a term in the name.
    pub async fn list_outposts(&self, params: &ListParams) -> Result<Page<Outpost>, StoreError> {
        let pattern = params.like_pattern();
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outposts WHERE ($1 = '%' OR LOWER(name) LIKE $1 ESCAPE '\\')",
        )
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTPOST_COLUMNS} FROM outposts WHERE ($1 = '%' OR LOWER(name) LIKE $1 ESCAPE '\\') \
             ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(limit(params.page_size))
        .bind(params.offset())
        .fetch_all(&mut *conn)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            items.push(outpost_from_row(row, provider_ids(&mut conn, id).await?)?);
        }
        Ok(Page {
            items,
            total,
            page: params.page,
            page_size: params.page_size,
        })
    }

    /// Replaces an outpost's name, settings and providers (its kind never changes).
    pub async fn update_outpost(
        &self,
        id: i64,
        fields: &OutpostFields<'_>,
    ) -> Result<Outpost, StoreError> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE outposts SET name = $1, settings = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(fields.name)
        .bind(fields.settings.to_string())
        .bind(self.now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "outpost name"))?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound("outpost"));
        }
        sqlx::query("DELETE FROM outpost_providers WHERE outpost_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        link_providers(&mut tx, id, fields.kind, fields.provider_ids).await?;
        self.record_change(&mut tx, ObjectKind::Outpost, id, "update")
            .await?;
        let outpost = fetch_outpost(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(outpost)
    }

    /// Deletes an outpost and its tokens.
    pub async fn delete_outpost(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM outposts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("outpost"));
        }
        self.record_change(&mut tx, ObjectKind::Outpost, id, "delete")
            .await?;
        self.commit(tx).await
    }

    /// Replaces every token of an outpost with one new token, atomically: the old token stops
    /// working the moment this commits.
    pub async fn rotate_outpost_token(&self, id: i64, token_hash: &str) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let outpost = fetch_outpost(&mut tx, id).await?;
        sqlx::query("DELETE FROM api_tokens WHERE outpost_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_token(
            &mut tx,
            &NewToken {
                secret_hash: token_hash,
                kind: TokenKind::Outpost,
                user_id: None,
                outpost_id: Some(id),
                description: &format!("service identity of outpost {}", outpost.name),
                expires_at: None,
                now,
            },
        )
        .await?;
        self.record_change(&mut tx, ObjectKind::Token, id, "rotate")
            .await?;
        self.commit(tx).await
    }

    /// The outpost named `name`, if there is one.
    pub async fn outpost_by_name(&self, name: &str) -> Result<Option<Outpost>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM outposts WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => match self.outpost(id).await {
                Ok(outpost) => Ok(Some(outpost)),
                Err(StoreError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// Adds a token with `token_hash` to the outpost unless it already has it; other tokens stay.
    /// Idempotent, so several core replicas may call it at once for the embedded outpost.
    pub async fn ensure_outpost_token(
        &self,
        outpost_id: i64,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let outpost = fetch_outpost(&mut tx, outpost_id).await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM api_tokens WHERE secret_hash = $1 AND outpost_id = $2",
        )
        .bind(token_hash)
        .bind(outpost_id)
        .fetch_optional(&mut *tx)
        .await?;
        if existing.is_none() {
            insert_token(
                &mut tx,
                &NewToken {
                    secret_hash: token_hash,
                    kind: TokenKind::Outpost,
                    user_id: None,
                    outpost_id: Some(outpost_id),
                    description: &format!("service identity of outpost {}", outpost.name),
                    expires_at: None,
                    now,
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StoreError::Conflict("the embedded outpost's token"),
                other => other,
            })?;
        }
        self.commit(tx).await
    }

    /// Whether `provider_id` is served by outpost `outpost_id`.
    pub async fn outpost_serves(
        &self,
        outpost_id: i64,
        provider_id: i64,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT provider_id FROM outpost_providers WHERE outpost_id = $1 AND provider_id = $2",
        )
        .bind(outpost_id)
        .bind(provider_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Number of outposts, for metrics.
    pub async fn count_outposts(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outposts")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn link_providers(
    tx: &mut Tx,
    outpost_id: i64,
    kind: ProviderKind,
    provider_ids: &[i64],
) -> Result<(), StoreError> {
    for &provider_id in provider_ids {
        ensure_provider_exists(tx, provider_id).await?;
        let provider_kind: String = sqlx::query_scalar("SELECT kind FROM providers WHERE id = $1")
            .bind(provider_id)
            .fetch_one(&mut **tx)
            .await?;
        if provider_kind != kind.as_str() {
            return Err(StoreError::Invalid(format!(
                "provider_ids: provider {provider_id} is a {provider_kind} provider, \
                 but this is a {kind} outpost"
            )));
        }
        sqlx::query(
            "INSERT INTO outpost_providers (outpost_id, provider_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(outpost_id)
        .bind(provider_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn provider_ids(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT provider_id FROM outpost_providers WHERE outpost_id = $1 ORDER BY provider_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

async fn fetch_outpost(tx: &mut Tx, id: i64) -> Result<Outpost, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OUTPOST_COLUMNS} FROM outposts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("outpost"))?;
    let providers = provider_ids(&mut *tx, id).await?;
    outpost_from_row(&row, providers)
}
