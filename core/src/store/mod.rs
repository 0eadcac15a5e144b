//! Storage: one connection pool over SQLite (the embedded default) or PostgreSQL, the migrations
//! of both, and the typed queries of the core.
//!
//! Queries are written once in the SQL both engines accept (numbered `$n` parameters, `RETURNING`,
//! `BIGINT` seconds for time, JSON kept as text) and run through sqlx's `Any` driver. Each backend
//! has its own migration history under `core/migrations/`.
//!
//! Every write an outpost cares about appends to the `changes` table in the same transaction; its
//! `revision` is the monotonic configuration revision the control channel pushes from.

mod applications;
mod changes;
mod directory;
mod error;
mod events;
mod groups;
mod instances;
mod lockouts;
pub mod oidc;
pub mod outposts;
mod providers;
pub mod rac;
mod secret_fingerprint;
mod sessions;
mod tokens;
mod users;

pub use changes::{CHANGE_CHANNEL, ObjectKind};
pub use directory::DirectoryEntry;
pub use error::StoreError;
pub use instances::InstanceRecord;
pub use lockouts::PairLock;
pub use sessions::SESSION_KEY_GENERATIONS_KEPT;
pub use tokens::TokenRecord;
pub use users::{Credentials, TotpSecretRow};

use crate::clock::SharedClock;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Which database engine the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Invalid(format!(
                "unsupported database URL scheme in `{}`: use sqlite:// or postgres://",
                redact_url(url)
            )))
        }
    }
}

/// The URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("********"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => url.split('@').next_back().unwrap_or_default().to_owned(),
    }
}

/// Options for opening the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl StoreOptions {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clock: SharedClock,
    /// Woken after every committed write transaction in this process.
    changed: Arc<Notify>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// An open write transaction.
pub type Tx = Transaction<'static, sqlx::Any>;

impl Store {
    /// Opens the pool and checks the database answers. Does not migrate.
    pub async fn connect(options: &StoreOptions, clock: SharedClock) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = Backend::from_url(&options.url)?;
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite serialises writers anyway; a few readers are plenty.
                Backend::Sqlite => options.max_connections.min(8),
                Backend::Postgres => options.max_connections,
            })
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout);
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .connect(&options.url)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "database"))?;
        Ok(Self {
            pool,
            backend,
            clock,
            changed: Arc::new(Notify::new()),
        })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Whether the schema holds every migration this build knows.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        let expected = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").iter().count(),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").iter().count(),
        };
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "migration"))?;
        Ok(usize::try_from(applied).unwrap_or(0) >= expected)
    }

    /// A cheap round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "database"))?;
        Ok(())
    }

    /// The engine in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for callers that need a raw connection (PostgreSQL notifications).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The injected clock (the embedded outpost reads it too).
    pub fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// Seconds since the epoch, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Milliseconds since the epoch from the injected clock: login times, ordered against
    /// session revocations.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front, so a transaction
    /// that reads before it writes cannot fail half-way with `SQLITE_BUSY`.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        tx.map_err(|e| StoreError::from_sqlx(e, "transaction"))
    }

    /// Commits `tx`.
    pub async fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        tx.commit()
            .await
            .map_err(|e| StoreError::from_sqlx(e, "transaction"))?;
        self.changed.notify_one();
        Ok(())
    }

    /// Resolves after a write committed in this process (a permit is kept if nobody waits).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Parses a JSON object kept as text; a corrupt value reads as empty rather than failing a list.
pub(crate) fn parse_attributes(text: &str) -> crate::model::Attributes {
    serde_json::from_str(text).unwrap_or_default()
}

/// Converts a page size to a SQL `LIMIT`.
pub(crate) fn limit(page_size: u32) -> i64 {
    i64::from(page_size)
}
