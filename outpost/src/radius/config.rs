//! The RADIUS view of a configuration snapshot: the outpost's RADIUS providers with their
//! parsed settings, the client-network table, and the pushed directory (for the cache's
//! eviction rules). Rebuilt on every applied change; cheap, the directory is shared.

use super::clients::ClientTable;
use redoubt_outpost_proto::config::{ConfigSnapshot, DirectoryUser, OutpostKind};
use redoubt_outpost_proto::provider::RadiusProviderSettings;
use std::sync::Arc;

/// One RADIUS provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: i64,
    pub name: String,
    pub settings: RadiusProviderSettings,
}

impl Provider {
    /// The shared secret's octets.
    pub fn secret(&self) -> &[u8] {
        self.settings.shared_secret.expose().as_bytes()
    }
}

/// Providers, clients and directory as of one snapshot.
#[derive(Debug)]
pub struct RadiusConfig {
    pub providers: Vec<Provider>,
    pub clients: ClientTable,
    pub snapshot: Arc<ConfigSnapshot>,
}

impl RadiusConfig {
    /// Builds the view; `announce` logs what is served (on start and when providers change).
    pub fn build(snapshot: Arc<ConfigSnapshot>, announce: bool) -> Self {
        let mut providers = Vec::new();
        for provider in &snapshot.config.providers {
            if provider.kind != OutpostKind::Radius {
                continue;
            }
            let settings =
                serde_json::from_value::<RadiusProviderSettings>(provider.settings.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|s| s.validate().map(|()| s).map_err(|e| e.to_string()));
            match settings {
                Ok(settings) => {
                    if announce {
                        if settings.require_message_authenticator {
                            tracing::info!(provider = %provider.name, networks = ?settings.client_networks, "RADIUS provider served");
                        } else {
                            tracing::warn!(provider = %provider.name, networks = ?settings.client_networks,
                                "RADIUS provider accepts Access-Requests without Message-Authenticator: \
                                 vulnerable to BlastRADIUS (CVE-2024-3596); turn require_message_authenticator \
                                 back on once the NAS sends it");
                        }
                    }
                    providers.push(Provider {
                        id: provider.id,
                        name: provider.name.clone(),
                        settings,
                    });
                }
                Err(error) => tracing::error!(provider = %provider.name, %error,
                    "RADIUS provider settings are unusable; its clients get no answer"),
            }
        }
        if announce && providers.is_empty() {
            tracing::warn!(
                "this RADIUS outpost serves no RADIUS provider: add one to the outpost in the core"
            );
        }
        let clients = ClientTable::build(
            providers
                .iter()
                .map(|p| p.settings.client_networks.as_slice()),
        );
        Self {
            providers,
            clients,
            snapshot,
        }
    }

    /// A user of the pushed directory by id.
    pub fn find_user(&self, id: i64) -> Option<&DirectoryUser> {
        let users = &self.snapshot.config.directory.as_ref()?.users;
        users
            .binary_search_by_key(&id, |u| u.id)
            .ok()
            .map(|i| &users[i])
    }
}
