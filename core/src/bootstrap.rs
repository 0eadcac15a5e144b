//! First start: on an empty database, an `admin` user in the superuser group `admins`, with the
//! password from `REDOUBT_BOOTSTRAP_PASSWORD` or a generated one (printed once and written to a
//! 0600 file in the data dir). `REDOUBT_BOOTSTRAP_TOKEN` creates an admin API token with exactly
//! that value, once.

use crate::auth::password::PasswordHasherArgon2;
use crate::auth::token;
use crate::model::{NewGroup, NewUser};
use crate::secret_key::write_private_file;
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the file holding a generated admin password.
pub const CREDENTIALS_FILE: &str = "bootstrap-credentials.txt";
/// Username of the first administrator.
pub const ADMIN_USERNAME: &str = "admin";
/// Lifetime of the bootstrap token: the longest an admin API token may live (365 days).
pub const BOOTSTRAP_TOKEN_SECONDS: i64 = 365 * 86_400;
/// Name of the superuser group.
pub const ADMIN_GROUP: &str = "admins";

/// What bootstrap did.
#[derive(Debug, Default)]
pub struct BootstrapOutcome {
    /// Set when the admin user was created in this start.
    pub admin_created: bool,
    /// The generated password (only when none was configured), to print once.
    pub generated_password: Option<String>,
    /// Where the generated password was written.
    pub credentials_file: Option<PathBuf>,
    /// Whether the bootstrap token was created in this start.
    pub token_created: bool,
}

/// Why bootstrap failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing the bootstrap password failed: {0}")]
    Hash(String),
    #[error("REDOUBT_BOOTSTRAP_PASSWORD is too short: use at least 8 characters")]
    PasswordTooShort,
    #[error("REDOUBT_BOOTSTRAP_TOKEN is too short: use at least 32 random characters")]
    TokenTooShort,
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("no randomness available: {0}")]
    Random(getrandom::Error),
}

/// Runs bootstrap; safe to call on every start and from several replicas at once.
pub async fn run(
    store: &Store,
    hasher: Arc<PasswordHasherArgon2>,
    data_dir: &Path,
    configured_password: &str,
    configured_token: &str,
) -> Result<BootstrapOutcome, BootstrapError> {
    let mut outcome = BootstrapOutcome::default();
    if !configured_token.is_empty() && configured_token.len() < 32 {
        return Err(BootstrapError::TokenTooShort);
    }
    if store.count_users().await? == 0 {
        let (password, generated) = if configured_password.is_empty() {
            (generate_password()?, true)
        } else if configured_password.chars().count() < 8 {
            return Err(BootstrapError::PasswordTooShort);
        } else {
            (configured_password.to_owned(), false)
        };
        let hash = hasher
            .hash_async(password.clone())
            .await
            .map_err(|e| BootstrapError::Hash(e.to_string()))?;
        match create_admin(store, &hash).await {
            Ok(()) => {
                outcome.admin_created = true;
                if generated {
                    let path = data_dir.join(CREDENTIALS_FILE);
                    let contents = format!("username: {ADMIN_USERNAME}\npassword: {password}\n");
                    write_private_file(&path, contents.as_bytes()).map_err(|source| {
                        BootstrapError::Write {
                            path: path.display().to_string(),
                            source,
                        }
                    })?;
                    outcome.generated_password = Some(password);
                    outcome.credentials_file = Some(path);
                }
            }
            // Another replica bootstrapped at the same moment.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !configured_token.is_empty() {
        let hash = token::hash(configured_token);
        if store.token_by_hash(&hash).await?.is_none() {
            if let Some(admin) = store.credentials(ADMIN_USERNAME).await? {
                match store
                    .create_admin_token(
                        admin.user.id,
                        &hash,
                        "bootstrap token",
                        store.now().checked_add(BOOTSTRAP_TOKEN_SECONDS),
                    )
                    .await
                {
                    Ok(_) => outcome.token_created = true,
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                tracing::warn!(
                    "REDOUBT_BOOTSTRAP_TOKEN is set but there is no `admin` user to own it"
                );
            }
        }
    }
    Ok(outcome)
}

async fn create_admin(store: &Store, hash: &str) -> Result<(), StoreError> {
    let group = match store
        .create_group(&NewGroup {
            name: ADMIN_GROUP.into(),
            is_superuser: true,
            ..Default::default()
        })
        .await
    {
        Ok(group) => group,
        Err(StoreError::Conflict(_)) => {
            let page = store
                .list_groups(&crate::model::ListParams {
                    search: Some(ADMIN_GROUP.into()),
                    page: 1,
                    page_size: 10,
                })
                .await?;
            page.items
                .into_iter()
                .find(|g| g.name == ADMIN_GROUP)
                .ok_or(StoreError::NotFound("group"))?
        }
        Err(e) => return Err(e),
    };
    let user = store
        .create_user(
            &NewUser {
                username: ADMIN_USERNAME.into(),
                name: "Administrator".into(),
                is_active: true,
                ..Default::default()
            },
            Some(hash),
        )
        .await?;
    store.add_group_member(group.id, user.id).await
}

/// A random password of 24 characters from an unambiguous alphabet (about 140 bits).
fn generate_password() -> Result<String, BootstrapError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(BootstrapError::Random)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}
