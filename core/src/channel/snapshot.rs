//! Full configurations of an outpost: what `GET /api/v1/outpost/config` and a snapshot carry.

use super::convert;
use crate::session_keys::SessionKeyring;
use crate::store::{Store, StoreError};
use redoubt_outpost_proto::config::{ConfigSnapshot, Directory, OutpostConfig, ProviderConfig};
use redoubt_outpost_proto::session::SessionConfig;

/// The providers an outpost serves, with their applications.
pub(crate) async fn providers(
    store: &Store,
    provider_ids: &[i64],
) -> Result<Vec<ProviderConfig>, StoreError> {
    let mut out = Vec::with_capacity(provider_ids.len());
    for id in provider_ids {
        let provider = match store.provider(*id).await {
            Ok(p) => p,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let application = store.application_for_provider(provider.id).await?;
        out.push(convert::provider(provider, application));
    }
    Ok(out)
}

/// The whole configuration of `outpost_id`. The revision is read first, so the configuration is
/// at least as new as it; later changes are replayed on top, which is harmless (upserts).
pub async fn build(
    store: &Store,
    keyring: &SessionKeyring,
    public_url: Option<&str>,
    outpost_id: i64,
) -> Result<ConfigSnapshot, StoreError> {
    let revision = store.current_revision().await?;
    let outpost = store.outpost(outpost_id).await?;
    let providers = providers(store, &outpost.provider_ids).await?;
    let info = convert::outpost(outpost);
    let directory = if info.kind.needs_directory() {
        let users = store
            .directory_users()
            .await?
            .into_iter()
            .map(convert::user)
            .collect();
        let groups = store
            .all_groups()
            .await?
            .into_iter()
            .map(convert::group)
            .collect();
        Some(Directory { users, groups })
    } else {
        None
    };
    let sessions = if info.kind.needs_directory() {
        None
    } else {
        let generations = store.session_key_generations().await?;
        let revocations = store
            .active_session_revocations()
            .await?
            .into_iter()
            .map(convert::revocation)
            .collect();
        Some(SessionConfig {
            keys: keyring.for_outpost(outpost_id, &generations),
            revocations,
            core_public_url: public_url.map(str::to_owned),
        })
    };
    Ok(ConfigSnapshot {
        revision,
        config: OutpostConfig {
            outpost: info,
            providers,
            directory,
            sessions,
        },
    })
}
