//! Applications and the groups bound to them.

use super::groups::ensure_group_exists;
use super::{ObjectKind, Store, StoreError, Tx, limit};
use crate::model::{Application, ApplicationPatch, ListParams, NewApplication, Page};
use sqlx::Row;
use sqlx::any::AnyRow;

const APP_COLUMNS: &str = "id, slug, name, launch_url, provider_id, created_at, updated_at";

fn app_from_row(row: &AnyRow, group_ids: Vec<i64>) -> Result<Application, sqlx::Error> {
    Ok(Application {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        launch_url: row.try_get("launch_url")?,
        provider_id: row.try_get("provider_id")?,
        group_ids,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Creates an application.
    pub async fn create_application(
        &self,
        new: &NewApplication,
    ) -> Result<Application, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        if let Some(provider) = new.provider_id {
            ensure_provider_exists(&mut tx, provider).await?;
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO applications (slug, name, launch_url, provider_id, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(&new.slug)
        .bind(&new.name)
        .bind(&new.launch_url)
        .bind(new.provider_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "application slug or provider binding"))?;
        self.record_change(&mut tx, ObjectKind::Application, id, "create")
            .await?;
        let app = fetch_application(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(app)
    }

    /// One application by id.
    pub async fn application(&self, id: i64) -> Result<Application, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("application"))?;
        let groups = self.application_group_ids(id).await?;
        Ok(app_from_row(&row, groups)?)
    }

    /// The application a provider serves, if any.
    pub async fn application_for_provider(
        &self,
        provider_id: i64,
    ) -> Result<Option<Application>, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM applications WHERE provider_id = $1")
                .bind(provider_id)
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some(id) => Ok(Some(self.application(id).await?)),
            None => Ok(None),
        }
    }

    /// A page of applications, filtered by a term in slug or name.
    pub async fn list_applications(
        &self,
        params: &ListParams,
    ) -> Result<Page<Application>, StoreError> {
        let pattern = params.like_pattern();
        let filter =
            "($1 = '%' OR LOWER(slug) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $1 ESCAPE '\\')";
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM applications WHERE {filter}"
        )))
        .bind(&pattern)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE {filter} ORDER BY id LIMIT $2 OFFSET $3"
        )))
        .bind(&pattern)
        .bind(limit(params.page_size))
        .bind(params.offset())
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            items.push(app_from_row(row, self.application_group_ids(id).await?)?);
        }
        Ok(Page {
            items,
            total,
            page: params.page,
            page_size: params.page_size,
        })
    }

    /// Applies `patch` to an application.
    pub async fn update_application(
        &self,
        id: i64,
        patch: &ApplicationPatch,
    ) -> Result<Application, StoreError> {
        let mut tx = self.begin().await?;
        let current = fetch_application(&mut tx, id).await?;
        let provider_id = patch.provider_id.unwrap_or(current.provider_id);
        if let Some(provider) = provider_id {
            ensure_provider_exists(&mut tx, provider).await?;
        }
        sqlx::query(
            "UPDATE applications SET slug = $1, name = $2, launch_url = $3, provider_id = $4, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(patch.slug.as_ref().unwrap_or(&current.slug))
        .bind(patch.name.as_ref().unwrap_or(&current.name))
        .bind(patch.launch_url.as_ref().unwrap_or(&current.launch_url))
        .bind(provider_id)
        .bind(self.now())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "application slug or provider binding"))?;
        self.record_change(&mut tx, ObjectKind::Application, id, "update")
            .await?;
        let app = fetch_application(&mut tx, id).await?;
        self.commit(tx).await?;
        Ok(app)
    }

    /// Deletes an application and its group bindings.
    pub async fn delete_application(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM applications WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("application"));
        }
        self.record_change(&mut tx, ObjectKind::Application, id, "delete")
            .await?;
        self.commit(tx).await
    }

    /// Binds a group to an application; binding twice is not an error.
    pub async fn bind_application_group(
        &self,
        app_id: i64,
        group_id: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        fetch_application(&mut tx, app_id).await?;
        ensure_group_exists(&mut tx, group_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO application_groups (application_id, group_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(app_id)
        .bind(group_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            self.record_change(&mut tx, ObjectKind::Application, app_id, "bindings")
                .await?;
        }
        self.commit(tx).await
    }

    /// Removes a group binding from an application.
    pub async fn unbind_application_group(
        &self,
        app_id: i64,
        group_id: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM application_groups WHERE application_id = $1 AND group_id = $2",
        )
        .bind(app_id)
        .bind(group_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            return Err(StoreError::NotFound("group binding"));
        }
        self.record_change(&mut tx, ObjectKind::Application, app_id, "bindings")
            .await?;
        self.commit(tx).await
    }

    async fn application_group_ids(&self, app_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT group_id FROM application_groups WHERE application_id = $1 ORDER BY group_id",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Number of applications, for metrics.
    pub async fn count_applications(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM applications")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn fetch_application(tx: &mut Tx, id: i64) -> Result<Application, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {APP_COLUMNS} FROM applications WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("application"))?;
    let groups: Vec<i64> = sqlx::query_scalar(
        "SELECT group_id FROM application_groups WHERE application_id = $1 ORDER BY group_id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(app_from_row(&row, groups)?)
}

pub(super) async fn ensure_provider_exists(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM providers WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    found.map(|_| ()).ok_or(StoreError::NotFound("provider"))
}
