//! What a configuration means to the RAC module: the RAC providers this outpost serves, with
//! their parsed settings, rebuilt on every applied snapshot or change set.

use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use redoubt_outpost_proto::provider::{RacEndpoint, RacProviderSettings};
use std::collections::HashMap;
use std::sync::Arc;

/// The RAC providers by id.
#[derive(Debug, Default)]
pub struct RacState {
    pub revision: i64,
    pub providers: HashMap<i64, Arc<RacProviderSettings>>,
}

impl RacState {
    /// Builds the state; providers whose settings do not parse or validate are left out (the
    /// sign-in machinery logs them once).
    pub fn build(snapshot: &ConfigSnapshot) -> Self {
        let providers = snapshot
            .config
            .providers
            .iter()
            .filter(|p| p.kind == OutpostKind::Rac)
            .filter_map(|p| {
                let settings: RacProviderSettings =
                    serde_json::from_value(p.settings.clone()).ok()?;
                settings.validate().ok()?;
                Some((p.id, Arc::new(settings)))
            })
            .collect();
        Self {
            revision: snapshot.revision,
            providers,
        }
    }

    /// The endpoint `slug` of provider `provider_id`.
    pub fn endpoint(
        &self,
        provider_id: i64,
        slug: &str,
    ) -> Option<(&Arc<RacProviderSettings>, &RacEndpoint)> {
        let provider = self.providers.get(&provider_id)?;
        Some((provider, provider.endpoint(slug)?))
    }
}
