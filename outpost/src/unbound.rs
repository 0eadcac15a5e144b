//! LDAP and RADIUS providers bound to no application. The core refuses every credential check
//! for such a provider (a user may use a provider only through its application), so an outpost
//! serving one refuses every bind or Access-Request: that is a misconfiguration to report, not
//! a state to serve silently. [`unbound_providers`] finds them in a configuration (pure);
//! [`UnboundReport`] logs each one once, with the fix, and keeps
//! `redoubt_outpost_unbound_providers` current.

use prometheus::{IntGauge, Registry};
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostConfig, OutpostKind, ProviderConfig};
use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// The providers of `config` that check credentials (LDAP, RADIUS) and are bound to no
/// application.
pub fn unbound_providers(config: &OutpostConfig) -> Vec<&ProviderConfig> {
    config
        .providers
        .iter()
        .filter(|p| matches!(p.kind, OutpostKind::Ldap | OutpostKind::Radius))
        .filter(|p| p.application.is_none())
        .collect()
}

/// The log line for an unbound provider, naming the fix.
pub fn unbound_message(provider: &ProviderConfig) -> String {
    format!(
        "{kind} provider {name:?} (id {id}) is bound to no application, so the core refuses every \
         credential check for it; bind it: redoubt-core applications create SLUG --name NAME --provider {id}",
        kind = provider.kind.as_str(),
        name = provider.name,
        id = provider.id,
    )
}

/// Reports unbound providers: the gauge, and one warning per provider each time it becomes
/// unbound.
#[derive(Debug)]
pub struct UnboundReport {
    gauge: IntGauge,
    warned: Mutex<BTreeSet<i64>>,
}

impl UnboundReport {
    /// Registers `redoubt_outpost_unbound_providers` in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let gauge = IntGauge::new(
            "redoubt_outpost_unbound_providers",
            "LDAP and RADIUS providers of this outpost bound to no application (every credential check for them is refused)",
        )?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(Self {
            gauge,
            warned: Mutex::new(BTreeSet::new()),
        })
    }

    /// Looks at a newly applied configuration; returns the lines it logged.
    pub fn observe(&self, snapshot: &ConfigSnapshot) -> Vec<String> {
        let unbound = unbound_providers(&snapshot.config);
        self.gauge
            .set(i64::try_from(unbound.len()).unwrap_or(i64::MAX));
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        let now: BTreeSet<i64> = unbound.iter().map(|p| p.id).collect();
        // A provider bound again is warned about again if it is later unbound.
        warned.retain(|id| now.contains(id));
        let mut lines = Vec::new();
        for provider in unbound {
            if warned.insert(provider.id) {
                let line = unbound_message(provider);
                tracing::warn!(provider = %provider.name, "{line}");
                lines.push(line);
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redoubt_outpost_proto::config::{ApplicationInfo, OutpostInfo};

    fn provider(id: i64, kind: OutpostKind, bound: bool) -> ProviderConfig {
        ProviderConfig {
            id,
            name: format!("p{id}"),
            kind,
            settings: serde_json::json!({}),
            application: bound.then(|| ApplicationInfo {
                id: 100 + id,
                slug: format!("a{id}"),
                name: format!("A{id}"),
                launch_url: String::new(),
                group_ids: Vec::new(),
            }),
        }
    }

    fn snapshot(providers: Vec<ProviderConfig>) -> ConfigSnapshot {
        ConfigSnapshot {
            revision: 1,
            config: OutpostConfig {
                outpost: OutpostInfo {
                    id: 1,
                    name: "o".into(),
                    kind: OutpostKind::Radius,
                    settings: serde_json::json!({}),
                },
                providers,
                directory: None,
                sessions: None,
            },
        }
    }

    #[test]
    fn only_credential_providers_without_an_application_count() {
        let s = snapshot(vec![
            provider(1, OutpostKind::Radius, false),
            provider(2, OutpostKind::Radius, true),
            provider(3, OutpostKind::Ldap, false),
            provider(4, OutpostKind::Proxy, false),
            provider(5, OutpostKind::Rac, false),
        ]);
        let ids: Vec<i64> = unbound_providers(&s.config).iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn the_message_names_the_fix() {
        let line = unbound_message(&provider(7, OutpostKind::Ldap, false));
        assert!(line.contains("ldap provider \"p7\" (id 7)"), "{line}");
        assert!(
            line.ends_with("redoubt-core applications create SLUG --name NAME --provider 7"),
            "{line}"
        );
    }

    #[test]
    fn each_unbinding_is_logged_once_and_counted() {
        let registry = Registry::new();
        let report = UnboundReport::register(&registry).expect("register");
        let unbound = snapshot(vec![provider(1, OutpostKind::Radius, false)]);
        assert_eq!(report.observe(&unbound).len(), 1);
        assert_eq!(report.gauge.get(), 1);
        assert!(report.observe(&unbound).is_empty(), "logged once");
        let bound = snapshot(vec![provider(1, OutpostKind::Radius, true)]);
        assert!(report.observe(&bound).is_empty());
        assert_eq!(report.gauge.get(), 0);
        assert_eq!(
            report.observe(&unbound).len(),
            1,
            "unbound again: logged again"
        );
    }
}
