//! Control-channel messages: the input is one WebSocket text message, decoded as the outpost
//! decodes the core's messages ([`CoreMessage`]) and as the core decodes the outpost's
//! ([`OutpostMessage`]). A snapshot replaces the held configuration and a change set is applied
//! on top of it ([`apply_changes`]), as the runtime does; then every protocol module's view is
//! built from the result (LDAP directory, RADIUS clients, proxy state, the credential cache's
//! and lock book's reactions, unbound providers).
//!
//! Invariants: no panic; a decoded message encodes and decodes to itself (messages holding
//! floating-point numbers excepted: JSON does not carry them exactly); after a change set the
//! directory's users and groups are still strictly ordered by id, which `apply_changes`
//! relies on for its binary searches.

use crate::apply::{ChangeSummary, apply_changes};
use crate::credential_cache::CredentialCache;
use crate::ldap::view::DirectoryView;
use crate::lock_book::LockBook;
use crate::proxy::state::ProxyState;
use crate::radius::config::RadiusConfig;
use crate::unbound::UnboundReport;
use redoubt_outpost_proto::clock::{ManualClock, SharedClock};
use redoubt_outpost_proto::config::ConfigSnapshot;
use redoubt_outpost_proto::control::{CoreMessage, OutpostMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// The control target's fixed state: the configuration held before each message.
pub struct ControlTarget {
    held: ConfigSnapshot,
    cache: CredentialCache,
    locks: LockBook,
    unbound: UnboundReport,
}

impl Default for ControlTarget {
    fn default() -> Self {
        let clock: SharedClock = Arc::new(ManualClock::new(1_800_000_000));
        Self {
            held: held(),
            cache: CredentialCache::new(
                Duration::from_secs(60),
                Duration::from_secs(600),
                clock.clone(),
            ),
            locks: LockBook::new(clock),
            unbound: UnboundReport::register(&prometheus::Registry::new())
                .expect("metrics register on a fresh registry"),
        }
    }
}

impl ControlTarget {
    /// Decodes `bytes` both ways and applies what the core could send.
    pub fn run(&self, bytes: &[u8]) {
        let _ = decode_round_trip::<OutpostMessage>(bytes);
        let Some(message) = decode_round_trip::<CoreMessage>(bytes) else {
            return;
        };
        let (next, summary) = match message {
            CoreMessage::Welcome { .. } => return,
            CoreMessage::Snapshot(snapshot) => (snapshot, ChangeSummary::snapshot()),
            CoreMessage::Changes(set) => {
                let mut next = self.held.clone();
                let summary = apply_changes(&mut next.config, &set.items);
                next.revision = set.revision;
                if let Some(directory) = &next.config.directory {
                    assert!(
                        directory.users.windows(2).all(|w| w[0].id < w[1].id),
                        "users stay ordered by id after {:?}",
                        set.items
                    );
                    assert!(
                        directory.groups.windows(2).all(|w| w[0].id < w[1].id),
                        "groups stay ordered by id after {:?}",
                        set.items
                    );
                }
                (next, summary)
            }
        };
        let next = Arc::new(next);
        self.locks.record(&summary.locks);
        self.cache.apply(&next, &summary);
        self.unbound.observe(&next);
        drop(DirectoryView::build(next.clone()));
        drop(RadiusConfig::build(next.clone(), false));
        drop(ProxyState::build(&next, &["http://core:9000".to_owned()]));
    }
}

/// `bytes` as a `T`, checking that it survives encoding and decoding again.
fn decode_round_trip<T>(bytes: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let message: T = serde_json::from_slice(bytes).ok()?;
    let text = serde_json::to_string(&message).expect("a decoded message encodes");
    let again: T = match serde_json::from_str(&text) {
        Ok(again) => again,
        Err(error) => panic!("an encoded message does not decode ({error}): {text}"),
    };
    let exact = serde_json::to_value(&message).is_ok_and(|value| !holds_float(&value));
    if exact {
        assert_eq!(again, message, "a message survives a round trip: {text}");
    }
    Some(message)
}

fn holds_float(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(items) => items.iter().any(holds_float),
        serde_json::Value::Object(map) => map.values().any(holds_float),
        _ => false,
    }
}

/// What the outpost holds before each message: the LDAP fixture's directory and provider,
/// the RADIUS fixture's providers (ids 11 and 12) and the proxy fixture's (21 to 23) with its
/// session keys and revocations.
pub(crate) fn held() -> ConfigSnapshot {
    let mut held = crate::ldap::fixtures::snapshot();
    let radius = crate::radius::fixtures::snapshot();
    let proxy = crate::proxy::fixtures::sample_snapshot();
    for (offset, providers) in [(10, radius.config.providers), (20, proxy.config.providers)] {
        held.config
            .providers
            .extend(providers.into_iter().map(|mut provider| {
                provider.id += offset;
                provider
            }));
    }
    held.config.sessions = proxy.config.sessions;
    held
}
