//! Test databases: a SQLite file in the test's temp dir, or, when `REDOUBT_TEST_DATABASE_URL`
//! names a PostgreSQL server, a fresh database on it per test (dropped afterwards).

use sqlx::Connection;
use std::path::Path;

/// The database a test core runs on.
pub struct TestDatabase {
    /// URL handed to the core.
    pub url: String,
    /// For PostgreSQL: the server URL and the database name to drop.
    postgres: Option<(String, String)>,
}

/// The PostgreSQL server to test against, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("REDOUBT_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

impl TestDatabase {
    /// Creates the database for one test.
    pub async fn create(dir: &Path) -> Self {
        match postgres_url() {
            None => Self {
                url: format!("sqlite://{}?mode=rwc", dir.join("redoubt.db").display()),
                postgres: None,
            },
            Some(server) => {
                let token = redoubt_core::auth::token::generate().expect("randomness");
                // Base32 lowercase: letters and digits 2-7, a valid unquoted identifier.
                let name = format!("redoubt_test_{}", &token[4..24]);
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server}: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&server).expect("database url");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    postgres: Some((server, name)),
                }
            }
        }
    }

    /// The same database again, owned by someone else (not dropped by this handle).
    pub fn shared(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            postgres: None,
        }
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}
