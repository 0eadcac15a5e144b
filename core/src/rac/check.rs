//! What the outpost-facing RAC calls look up before deciding: the calling outpost's RAC provider
//! with its settings and application, and where a user's login stands.

use super::access::Standing;
use crate::model::{Application, Provider, ProviderKind, User};
use crate::store::{Store, StoreError};
use redoubt_outpost_proto::provider::RacProviderSettings;
use redoubt_outpost_proto::rac::RacUser;

/// A RAC provider an outpost serves.
#[derive(Debug, Clone)]
pub struct ServedProvider {
    pub provider: Provider,
    pub settings: RacProviderSettings,
    pub application: Option<Application>,
}

/// The RAC provider `provider_id` if outpost `outpost_id` serves it (`None` otherwise, or when
/// it is gone or its settings do not parse).
pub async fn served_provider(
    store: &Store,
    outpost_id: i64,
    provider_id: i64,
) -> Result<Option<ServedProvider>, StoreError> {
    if !store.outpost_serves(outpost_id, provider_id).await? {
        return Ok(None);
    }
    let provider = match store.provider(provider_id).await {
        Ok(provider) if provider.kind == ProviderKind::Rac => provider,
        Ok(_) | Err(StoreError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    let Ok(settings) = serde_json::from_value::<RacProviderSettings>(provider.settings.clone())
    else {
        tracing::warn!(provider = provider.id, "stored RAC settings do not parse");
        return Ok(None);
    };
    let application = store.application_for_provider(provider.id).await?;
    Ok(Some(ServedProvider {
        provider,
        settings,
        application,
    }))
}

/// The user (if they still exist) and whether their login session stands: active, and no
/// revocation ends it.
pub async fn standing(
    store: &Store,
    user: &RacUser,
) -> Result<(Option<User>, Standing), StoreError> {
    let found = match store.user(user.user_id).await {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => return Ok((None, Standing::Ended)),
        Err(error) => return Err(error),
    };
    let standing = if found.is_active
        && !store
            .session_revoked(found.id, &user.sid, user.auth_time_ms)
            .await?
    {
        Standing::Valid
    } else {
        Standing::Ended
    };
    Ok((Some(found), standing))
}
