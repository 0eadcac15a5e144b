//! Fixtures the RADIUS fuzz tests and the coverage-guided fuzz target share: two client
//! networks (one requiring Message-Authenticator, one not), the [`Shared`] state the UDP loop
//! hands to [`server::handle`] (core unreachable but the channel up, empty cache) and signed
//! requests of every kind.

use super::attributes::AttributeType;
use super::authenticator::{hide_user_password, sign_request};
use super::challenge::Challenges;
use super::config::RadiusConfig;
use super::duplicates::ReplyCache;
use super::metrics::RadiusMetrics;
use super::packet::{Code, Packet};
use super::request::Port;
use super::{Shared, server};
use crate::core_api::CoreApi;
use crate::credential_cache::CredentialCache;
use redoubt_outpost_proto::config::*;
use serde_json::json;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The secret of the client network that requires Message-Authenticator (10.0.0.0/8).
pub(crate) const STRICT: &[u8] = b"strict-secret";
/// The secret of the client network that does not (192.168.0.0/16).
pub(crate) const LAX: &[u8] = b"lax-secret-0";

/// Two RADIUS providers, strict and lax, with reply rules; an empty directory.
pub(crate) fn snapshot() -> ConfigSnapshot {
    let provider = |id: i64, secret: &[u8], network: &str, require: bool| ProviderConfig {
        id,
        name: format!("radius-{id}"),
        kind: OutpostKind::Radius,
        settings: json!({
            "shared_secret": String::from_utf8_lossy(secret),
            "client_networks": [network],
            "require_message_authenticator": require,
            "reply_rules": [{"vlan": "10", "class": "c",
                "vendor_attributes": [{"vendor_id": 9, "type": 1, "value": "x"}]}],
        }),
        application: None,
    };
    ConfigSnapshot {
        revision: 1,
        config: OutpostConfig {
            sessions: None,
            outpost: OutpostInfo {
                id: 1,
                name: "radius".into(),
                kind: OutpostKind::Radius,
                settings: json!({}),
            },
            providers: vec![
                provider(1, STRICT, "10.0.0.0/8", true),
                provider(2, LAX, "192.168.0.0/16", false),
            ],
            directory: Some(Directory {
                users: vec![],
                groups: vec![],
            }),
        },
    }
}

/// What every request shares, over [`snapshot`]; checks that reach the core fail at once.
pub(crate) fn shared() -> Arc<Shared> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = RadiusMetrics::register(&prometheus::Registry::new())
        .expect("metrics register on a fresh registry");
    // Nothing listens on port 9 of the loopback: checks that reach the core fail at once.
    let core = CoreApi::new(reqwest::Client::new(), "http://127.0.0.1:9", "token");
    // The channel counts as up, so Status-Server is answered and fuzzed too.
    let contact = crate::core_contact::CoreContact::default();
    contact.channel(true);
    let clock: redoubt_outpost_proto::clock::SharedClock = Arc::new(
        redoubt_outpost_proto::clock::ManualClock::new(1_800_000_000),
    );
    Arc::new(Shared {
        config: RwLock::new(Arc::new(RadiusConfig::build(Arc::new(snapshot()), false))),
        cache: CredentialCache::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
            clock.clone(),
        ),
        events: crate::event_queue::for_tests(core.clone()),
        clock,
        locks: crate::lock_book::LockBook::new(std::sync::Arc::new(
            redoubt_outpost_proto::clock::ManualClock::new(1_800_000_000),
        )),
        core,
        metrics,
        challenges: Challenges::default(),
        replies: ReplyCache::default(),
        contact,
        drop_log: server::DropLog::default(),
    })
}

/// Signed requests of every kind, for `secret`.
pub(crate) fn seeds(secret: &[u8]) -> Vec<(Port, Vec<u8>)> {
    let authenticator = [0x42; 16];
    let mut pap = Packet::new(Code::AccessRequest, 1, authenticator);
    pap.push(AttributeType::UserName, b"alice".to_vec());
    pap.push(
        AttributeType::UserPassword,
        hide_user_password(b"alice-password;123456", secret, &authenticator),
    );
    pap.push(AttributeType::NasIdentifier, b"switch-1".to_vec());
    pap.push(
        AttributeType::CallingStationId,
        b"00-11-22-33-44-55".to_vec(),
    );
    pap.push(AttributeType::ProxyState, b"proxy".to_vec());
    let mut answer = pap.clone();
    answer.identifier = 2;
    answer.push(AttributeType::State, vec![7; 16]);
    let mut chap = Packet::new(Code::AccessRequest, 3, authenticator);
    chap.push(AttributeType::UserName, b"bob".to_vec());
    chap.push(AttributeType::ChapPassword, vec![1; 17]);
    let mut accounting = Packet::new(Code::AccountingRequest, 4, [0; 16]);
    accounting.push(AttributeType::AcctStatusType, 1u32.to_be_bytes().to_vec());
    accounting.push(AttributeType::UserName, b"alice".to_vec());
    accounting.push(AttributeType::AcctSessionId, b"S1".to_vec());
    accounting.push(AttributeType::AcctInputOctets, 9u32.to_be_bytes().to_vec());
    let status = Packet::new(Code::StatusServer, 5, authenticator);
    let sign = |p: Packet| sign_request(p, secret).expect("seed signs");
    vec![
        (Port::Auth, sign(pap.clone())),
        (Port::Auth, pap.encode().expect("unsigned")),
        (Port::Auth, sign(answer)),
        (Port::Auth, sign(chap)),
        (Port::Accounting, sign(accounting)),
        (Port::Auth, sign(status.clone())),
        (Port::Accounting, sign(status)),
    ]
}

/// A copy of `base` without its per-request state (retransmissions, challenges, cached
/// credentials, locks, drop log): what a fuzz input starts from, so one input cannot change
/// how the next is answered.
#[cfg(feature = "fuzzing")]
pub(crate) fn fresh(base: &Shared) -> Shared {
    Shared {
        config: RwLock::new(base.config()),
        cache: CredentialCache::new(
            Duration::from_secs(60),
            Duration::from_secs(600),
            base.clock.clone(),
        ),
        locks: crate::lock_book::LockBook::new(base.clock.clone()),
        core: base.core.clone(),
        metrics: base.metrics.clone(),
        challenges: Challenges::default(),
        replies: ReplyCache::default(),
        contact: base.contact.clone(),
        events: base.events.clone(),
        clock: base.clock.clone(),
        drop_log: server::DropLog::default(),
    }
}
