//! Providers: the protocol settings of an application, validated before they reach the store.

use super::{ObjectKind, Store, StoreError, Tx, limit};
use crate::model::{ListParams, Page, Provider, ProviderKind};
use sqlx::Row;
use sqlx::any::AnyRow;

const PROVIDER_COLUMNS: &str = "id, name, kind, settings, created_at, updated_at";

fn provider_from_row(row: &AnyRow) -> Result<Provider, StoreError> {
    let kind: String = row.try_get("kind")?;
    let settings: String = row.try_get("settings")?;
    Ok(Provider {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: kind
            .parse()
            .map_err(|e| StoreError::Invalid(format!("stored provider: {e}")))?,
        settings: serde_json::from_str(&settings).unwrap_or_default(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates a provider with settings already validated for its kind.
    pub async fn create_provider(
        &self,
        name: &str,
        kind: ProviderKind,
        settings: &serde_json::Value,
    ) -> Result<Provider, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO providers (name, kind, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(name)
        .bind(kind.as_str())
        .bind(settings.to_string())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "provider name"))?;
        self.record_change(&mut tx, ObjectKind::Provider, id, "create")
            .await?;
        let provider = fetch_provider(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(provider)
    }

    /// One provider by id.
    pub async fn provider(&self, id: i64) -> Result<Provider, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("provider"))?;
        provider_from_row(&row)
    }

    /// A page of providers, filtered by a term in the name.
    pub async fn list_providers(&self, params: &ListParams) -> Result<Page<Provider>, StoreError> {
        let pattern = params.like_pattern();
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM providers WHERE ($1 = '%' OR LOWER(name) LIKE $1 ESCAPE '\\')",
        )
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers WHERE ($1 = '%' OR LOWER(name) LIKE $1 ESCAPE '\\') \
             ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(limit(params.page_size))
        .bind(params.offset())
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(provider_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            page: params.page,
            page_size: params.page_size,
        })
    }

    /// Replaces a provider's name and settings (the kind never changes).
    pub async fn update_provider(
        &self,
        id: i64,
        name: &str,
        settings: &serde_json::Value,
    ) -> Result<Provider, StoreError> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE providers SET name = $1, settings = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(settings.to_string())
        .bind(self.now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "provider name"))?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound("provider"));
        }
        self.record_change(&mut tx, ObjectKind::Provider, id, "update")
            .await?;
        let provider = fetch_provider(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(provider)
    }

    /// Deletes a provider; applications lose their binding, outposts stop serving it.
    pub async fn delete_provider(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE applications SET provider_id = NULL WHERE provider_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM providers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("provider"));
        }
        self.record_change(&mut tx, ObjectKind::Provider, id, "delete")
            .await?;
        self.commit(tx).await
    }

    /// Number of providers, for metrics.
    pub async fn count_providers(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM providers")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn fetch_provider(tx: &mut Tx, id: i64) -> Result<Provider, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("provider"))?;
    provider_from_row(&row)
}
