//! Fixtures the proxy's unit tests, its fuzz tests and the coverage-guided fuzz targets share:
//! session keys, a session, and a [`ProxyState`] with one provider of each mode (proxy,
//! forward for a single application, forward for a domain) and two revocations.

use super::session::Session;
use super::state::ProxyState;
use data_encoding::BASE64URL_NOPAD;
use redoubt_outpost_proto::config::*;
use redoubt_outpost_proto::session::{SessionConfig, SessionKey, SessionRevocation};
use serde_json::json;

/// Key generation `id`, 32 bytes of `byte`.
pub(crate) fn key(id: u32, byte: u8) -> SessionKey {
    SessionKey {
        id,
        key: BASE64URL_NOPAD.encode(&[byte; 32]),
    }
}

/// Alice's session (user 7, sid `sid1`), expiring at `exp` (Unix seconds).
pub(crate) fn session(exp: i64) -> Session {
    Session {
        sid: "sid1".into(),
        user_id: 7,
        username: "alice".into(),
        name: "Alice".into(),
        email: "alice@example.com".into(),
        groups: vec!["admins".into(), "staff".into()],
        auth_time_ms: 1_000,
        iat: 1,
        exp,
        jwt: Some("a.b.c".into()),
        upstream_authorization: None,
    }
}

/// A proxy outpost's snapshot with these providers (id, settings), keys 2 and 1, and two
/// revocations (one sign-out of user 7, every session of user 8 before 500 ms).
pub(crate) fn snapshot(providers: Vec<(i64, serde_json::Value)>) -> ConfigSnapshot {
    ConfigSnapshot {
        revision: 5,
        config: OutpostConfig {
            outpost: OutpostInfo {
                id: 1,
                name: "proxy".into(),
                kind: OutpostKind::Proxy,
                settings: json!({}),
            },
            providers: providers
                .into_iter()
                .map(|(id, settings)| ProviderConfig {
                    id,
                    name: format!("p{id}"),
                    kind: OutpostKind::Proxy,
                    settings,
                    application: None,
                })
                .collect(),
            directory: None,
            sessions: Some(SessionConfig {
                keys: vec![key(2, 2), key(1, 1)],
                revocations: vec![
                    SessionRevocation {
                        user_id: 7,
                        session_id: Some("gone".into()),
                        revoked_at_ms: 10,
                    },
                    SessionRevocation {
                        user_id: 8,
                        session_id: None,
                        revoked_at_ms: 500,
                    },
                ],
                core_public_url: Some("https://id.example.com/".into()),
            }),
        },
    }
}

/// The snapshot of [`sample`].
pub(crate) fn sample_snapshot() -> ConfigSnapshot {
    snapshot(vec![
        (
            1,
            json!({"mode": "proxy", "external_host": "https://app.example.com",
                   "internal_host": "http://127.0.0.1:8080/", "skip_path_regex": ["^/public/", "^/health$"]}),
        ),
        (
            2,
            json!({"mode": "forward_single", "external_host": "https://single.example.com:8443"}),
        ),
        (
            3,
            json!({"mode": "forward_domain", "external_host": "https://auth.corp.example",
                   "cookie_domain": ".corp.example"}),
        ),
    ])
}

/// The state over three providers: 1 proxies `app.example.com` to `127.0.0.1:8080` (skipping
/// `/public/` and `/health`), 2 forward-authenticates `single.example.com:8443`, 3 the domain
/// `.corp.example`.
pub(crate) fn sample() -> ProxyState {
    let (state, warnings) = ProxyState::build(&sample_snapshot(), &["http://core:9000".to_owned()]);
    assert!(
        warnings.is_empty(),
        "the sample state builds cleanly: {warnings:?}"
    );
    state
}
