//! The embedded outpost: a proxy outpost that runs inside the core process, so a single-machine
//! install protects web applications without deploying anything else (on by default,
//! `embedded_outpost.enabled = false` turns it off).
//!
//! It is an ordinary outpost record named [`EMBEDDED_OUTPOST_NAME`]: administrators attach proxy
//! providers to it like to any other. Its token is derived from the secret key, so every core
//! replica computes the same one and none is ever stored in plain or shown. It runs the same
//! outpost runtime and proxy code as `redoubt-outpost`, connected to this core over loopback.

use crate::auth::token;
use crate::model::ProviderKind;
use crate::secret_key::SecretKey;
use crate::store::outposts::OutpostFields;
use crate::store::{Store, StoreError};

/// Name of the embedded outpost's record.
pub const EMBEDDED_OUTPOST_NAME: &str = "embedded";

/// The embedded outpost's identity.
#[derive(Clone)]
pub struct EmbeddedIdentity {
    pub outpost_id: i64,
    /// The token it authenticates with (derived, never stored in plain).
    pub token: String,
}

impl std::fmt::Debug for EmbeddedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedIdentity")
            .field("outpost_id", &self.outpost_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The embedded outpost's token: the same on every replica sharing the secret key.
pub fn derived_token(secret: &SecretKey) -> String {
    format!(
        "{}{}",
        token::TOKEN_PREFIX,
        data_encoding::BASE32_NOPAD
            .encode(&secret.derive("embedded-outpost-token"))
            .to_lowercase()
    )
}

/// Finds or creates the embedded outpost and makes sure its derived token is valid. Safe to run
/// on every start and on several replicas at once.
pub async fn ensure(store: &Store, secret: &SecretKey) -> Result<EmbeddedIdentity, StoreError> {
    let token = derived_token(secret);
    let hash = token::hash(&token);
    let outpost = match store.outpost_by_name(EMBEDDED_OUTPOST_NAME).await? {
        Some(outpost) => outpost,
        None => {
            let settings = serde_json::json!({ "embedded": true });
            let created = store
                .create_outpost(
                    &OutpostFields {
                        name: EMBEDDED_OUTPOST_NAME,
                        kind: ProviderKind::Proxy,
                        settings: &settings,
                        provider_ids: &[],
                    },
                    &hash,
                )
                .await;
            match created {
                Ok(outpost) => {
                    tracing::info!(
                        outpost_id = outpost.id,
                        "created the embedded proxy outpost; attach proxy providers to it to protect applications through the core"
                    );
                    outpost
                }
                // Another replica created it first.
                Err(StoreError::Conflict(_)) => store
                    .outpost_by_name(EMBEDDED_OUTPOST_NAME)
                    .await?
                    .ok_or(StoreError::NotFound("outpost"))?,
                Err(e) => return Err(e),
            }
        }
    };
    if outpost.kind != ProviderKind::Proxy {
        return Err(StoreError::Invalid(format!(
            "the outpost named `{EMBEDDED_OUTPOST_NAME}` is a {} outpost; rename it or set embedded_outpost.enabled = false",
            outpost.kind
        )));
    }
    store.ensure_outpost_token(outpost.id, &hash).await?;
    Ok(EmbeddedIdentity {
        outpost_id: outpost.id,
        token,
    })
}
