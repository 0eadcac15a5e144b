//! Shared state of the HTTP handlers.

use crate::auth::credentials::CredentialChecker;
use crate::auth::password::PasswordHasherArgon2;
use crate::auth::seal::Sealer;
use crate::metrics::Metrics;
use crate::store::Store;
use std::sync::Arc;

/// Everything a handler may need; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub checker: CredentialChecker,
    pub hasher: Arc<PasswordHasherArgon2>,
    /// Seals TOTP secrets at rest.
    pub sealer: Sealer,
    /// Seals RAC endpoint credentials at rest (`crate::rac::credentials`).
    pub rac_sealer: Sealer,
    pub metrics: Arc<Metrics>,
    /// The outpost control channel.
    pub hub: Arc<crate::channel::ChannelHub>,
    /// Login pages and the OIDC provider: session sealing, signing keys, settings.
    pub web: crate::web::WebContext,
}

impl AppState {
    /// Hashes a password off the async executor.
    pub async fn hash_password(&self, password: String) -> Result<String, super::ApiError> {
        self.hasher
            .hash_async(password)
            .await
            .map_err(|e| super::ApiError::internal(&e))
    }
}
