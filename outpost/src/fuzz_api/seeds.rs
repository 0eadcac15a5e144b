//! The seed inputs of every fuzz target: a handful of valid inputs each, built from the same
//! fixtures the targets run against, committed under `fuzz/corpus/<target>/seed-NN`. The test
//! below fails when the committed files and these drift apart;
//! `REDOUBT_WRITE_FUZZ_SEEDS=1 cargo test -p redoubt-outpost --features fuzzing fuzz_seeds`
//! (or `scripts/fuzz --write-seeds`) writes them again.

use super::cookies::ProxyCookieTarget;
use crate::radius::fixtures::{LAX, STRICT};
use redoubt_outpost_proto::control::{ChangeItem, ChangeSet, CoreMessage, Hello, OutpostMessage};
use serde_json::json;

/// `(target, seeds)` for every fuzz target, in the layout each target reads.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("settings", settings()),
        ("ldap_request", ldap_request()),
        ("radius_packet", radius_packet()),
        ("control_message", control_message()),
        ("cookies", cookies()),
        ("forwarded_headers", forwarded_headers()),
    ]
}

fn tagged(tag: u8, body: impl AsRef<[u8]>) -> Vec<u8> {
    let mut input = vec![tag];
    input.extend_from_slice(body.as_ref());
    input
}

fn settings() -> Vec<Vec<u8>> {
    let providers = [
        json!({"base_dn": "dc=example,dc=com", "search_group_id": 10}),
        json!({"shared_secret": "0123456789abcdef", "client_networks": ["10.0.0.0/8", "2001:db8::/32"],
               "require_message_authenticator": true,
               "reply_rules": [{"group_id": 10, "vlan": "10", "class": "staff",
                   "vendor_attributes": [{"vendor_id": 9, "type": 1, "value": "shell:priv-lvl=15"}]}]}),
        json!({"mode": "forward_domain", "external_host": "https://auth.corp.example",
               "cookie_domain": ".corp.example", "skip_path_regex": ["^/health$"]}),
        json!({"external_host": "https://rac.example.com",
               "endpoints": [{"name": "Build server", "host": "10.0.0.5:3389", "group_ids": [10],
                              "clipboard": "both", "width": 1280, "height": 720}]}),
        json!({"client_id": "wiki", "client_type": "confidential",
               "redirect_uris": ["https://wiki.example.com/callback"],
               "post_logout_redirect_uris": ["https://wiki.example.com/"]}),
    ];
    let mut seeds: Vec<Vec<u8>> = (0u8..)
        .zip(providers)
        .map(|(kind, settings)| tagged(kind, settings.to_string()))
        .collect();
    seeds.push(tagged(
        5,
        "url = \"https://redoubt.example.com,https://core-b.example.com\"\ntoken = \"t0ken\"\n\
         log_level = \"info\"\n[listen]\nmetrics = \"127.0.0.1:9300\"\n[limits]\nmax_connections = 100\n\
         [proxy]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n",
    ));
    seeds.push(tagged(
        6,
        "REDOUBT_URL=https://redoubt.example.com\nREDOUBT_TOKEN=t0ken\nREDOUBT_LOG_FORMAT=json\n\
         REDOUBT_LIMITS__LDAP_MAX_CONNECTIONS=10\nREDOUBT_LISTEN__LDAP=0.0.0.0:3389\n\
         credential_cache_seconds=60\n",
    ));
    seeds
}

fn ldap_request() -> Vec<Vec<u8>> {
    use crate::ldap::fixtures::{encode, seeds};
    let mut inputs: Vec<Vec<u8>> = seeds().into_iter().map(encode).collect();
    // A connection's worth: an anonymous bind, a search and an unbind in one stream.
    let stream = [0, 4, inputs.len() - 1]
        .iter()
        .filter_map(|i| inputs.get(*i))
        .flatten()
        .copied()
        .collect();
    inputs.push(stream);
    inputs
}

fn radius_packet() -> Vec<Vec<u8>> {
    use crate::radius::fixtures::seeds;
    use crate::radius::request::Port;
    let mut inputs = Vec::new();
    for (client, secret) in [(0u8, STRICT), (2, LAX)] {
        for (port, datagram) in seeds(secret) {
            let port_bit = u8::from(port == Port::Accounting);
            inputs.push(tagged(client | port_bit, datagram));
        }
    }
    inputs
}

fn control_message() -> Vec<Vec<u8>> {
    let held = super::control::held();
    let directory = held.config.directory.clone().unwrap_or_default();
    let mut alice = directory
        .users
        .first()
        .cloned()
        .expect("the fixture has users");
    alice.id = 4;
    alice.username = "dave".into();
    let mut group = directory
        .groups
        .first()
        .cloned()
        .expect("the fixture has groups");
    group.id = 12;
    group.parent_id = Some(11);
    let provider = held
        .config
        .providers
        .first()
        .cloned()
        .expect("the fixture has providers");
    let changes = ChangeSet {
        from_revision: held.revision,
        revision: held.revision + 1,
        items: vec![
            ChangeItem::UserUpserted { user: alice },
            ChangeItem::UserDeleted { id: 2 },
            ChangeItem::GroupUpserted { group },
            ChangeItem::GroupDeleted { id: 10 },
            ChangeItem::ProviderUpserted { provider },
            ChangeItem::ProviderRemoved { id: 11 },
            ChangeItem::OutpostUpdated {
                outpost: held.config.outpost.clone(),
            },
            ChangeItem::SessionsRevoked {
                revocation: redoubt_outpost_proto::session::SessionRevocation {
                    user_id: 1,
                    session_id: Some("sid1".into()),
                    revoked_at_ms: 1_700_000_000_000,
                },
            },
            ChangeItem::AccessChanged {
                user_ids: vec![1],
                group_ids: vec![11],
            },
            ChangeItem::LockChanged {
                username: "alice".into(),
                source_address: "192.0.2.1".into(),
                locked_until: 1_800_000_600,
            },
        ],
    };
    let core = [
        CoreMessage::Welcome {
            heartbeat_interval_seconds: 10,
            core_version: "0.1.0".into(),
        },
        CoreMessage::Snapshot(held),
        CoreMessage::Changes(changes),
    ];
    let outpost = [
        OutpostMessage::Hello(Hello {
            protocol_version: 1,
            software_version: "0.1.0".into(),
            build: "dev".into(),
            hostname: "outpost-1".into(),
            instance_id: "0123456789abcdef0123456789abcdef".into(),
            revision: Some(1),
        }),
        OutpostMessage::Heartbeat {
            applied_revision: 1,
        },
        OutpostMessage::Ack { revision: 2 },
    ];
    let mut inputs: Vec<Vec<u8>> = core
        .iter()
        .map(|m| serde_json::to_vec(m).expect("messages encode"))
        .collect();
    inputs.extend(
        outpost
            .iter()
            .map(|m| serde_json::to_vec(m).expect("messages encode")),
    );
    inputs
}

fn cookies() -> Vec<Vec<u8>> {
    let target = ProxyCookieTarget::default();
    let header = target
        .genuine()
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    let session = serde_json::to_vec(&crate::proxy::fixtures::session(4_000_000_000))
        .expect("a session encodes");
    // The core's session round trip: user id, login time (ms) and expiry (s) as little-endian
    // 64-bit numbers, then the session id.
    let core_session: Vec<u8> = [7i64, 1_700_000_000_000, 4_000_000_000]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .chain(*b"c2lkMTIzNDU2Nzg5MDEyMw")
        .collect();
    vec![
        // The proxy's cookie header, a plaintext to seal as its session.
        tagged(0, format!("theme=dark; {header}\nlang=\"en\"")),
        tagged(1, session),
        // The core's (`redoubt_session`, sealed `sid|user|auth_time_ms|expires_at`).
        tagged(
            2,
            "redoubt_csrf=abc; __Host-redoubt_session=v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; redoubt_session=\"v1.x\"",
        ),
        tagged(3, core_session),
    ]
}

fn forwarded_headers() -> Vec<Vec<u8>> {
    vec![
        tagged(
            0,
            "x-original-url: https://app.example.com:8443/a/b?c=d\nhost: outpost:9000",
        ),
        tagged(
            1,
            "x-forwarded-proto: https\nx-forwarded-host: App.Example.com\nx-forwarded-uri: /docs?q=1",
        ),
        tagged(
            2,
            "x-forwarded-proto: http, https\nx-forwarded-host: [2001:db8::1]:8080, proxy\nx-forwarded-uri: /",
        ),
        tagged(
            3,
            "host: wiki.corp.example\npath: /wiki/Main_Page?action=edit",
        ),
        tagged(
            4 | 8,
            "x-forwarded-for: 198.51.100.2, 10.0.0.3\nx-real-ip: 1.2.3.4\nforwarded: for=1.2.3.4;proto=http\n\
             x-forwarded-proto: https\nhost: app.example.com",
        ),
        tagged(
            8,
            "x-forwarded-for: 1.2.3.4\nx-forwarded-host: evil.example\nforwarded: for=1.2.3.4\nhost: app.example.com",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
    }

    /// The committed seeds are these; `REDOUBT_WRITE_FUZZ_SEEDS=1` writes them.
    #[test]
    fn fuzz_seeds_are_committed() {
        let write = std::env::var_os("REDOUBT_WRITE_FUZZ_SEEDS").is_some();
        for (target, seeds) in all() {
            assert!(seeds.len() >= 4, "{target} has a handful of seeds");
            let dir = dir(target);
            if write {
                std::fs::create_dir_all(&dir).expect("corpus dir");
            }
            for (i, seed) in seeds.iter().enumerate() {
                let path = dir.join(format!("seed-{i:02}"));
                if write {
                    std::fs::write(&path, seed).expect("write seed");
                }
                let committed = std::fs::read(&path).unwrap_or_default();
                assert!(
                    committed == *seed,
                    "{} differs from the fixtures: run REDOUBT_WRITE_FUZZ_SEEDS=1 cargo test -p \
                     redoubt-outpost --features fuzzing fuzz_seeds",
                    path.display()
                );
            }
        }
    }
}
