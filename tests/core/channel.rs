//! The control channel, core side, driven by a bare protocol client: snapshots, pushed changes,
//! catch-up, closes with reasons, instance state, and replicas sharing PostgreSQL.

use redoubt_outpost_proto::control::{ChangeItem, CloseCode, CoreMessage, OutpostMessage};
use redoubt_tests::channel::{ChannelClient, Received, hello};
use redoubt_tests::{Api, TestCore};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Outpost {
    id: i64,
    token: String,
    provider_id: i64,
}

async fn outpost(core: &TestCore, kind: &str) -> Outpost {
    outpost_named(core, kind, kind).await
}

async fn outpost_named(core: &TestCore, kind: &str, name: &str) -> Outpost {
    let settings = match kind {
        "ldap" => json!({"base_dn": "dc=example,dc=com"}),
        "proxy" => json!({"mode": "forward_single", "external_host": "https://app.example.com"}),
        _ => json!({"shared_secret": "0123456789", "client_networks": ["10.0.0.0/8"]}),
    };
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": format!("{name}-provider"), "kind": kind, "settings": settings}),
        )
        .await
        .expect(201);
    core.api
        .post(
            "/api/v1/applications",
            json!({"slug": format!("{name}-app"), "name": "App", "provider_id": provider["id"]}),
        )
        .await
        .expect(201);
    let created = core
        .api
        .post("/api/v1/outposts", json!({"name": format!("{name}-outpost"), "kind": kind, "provider_ids": [provider["id"]]}))
        .await
        .expect(201);
    Outpost {
        id: created["outpost"]["id"].as_i64().expect("id"),
        token: created["token"].as_str().expect("token").to_owned(),
        provider_id: provider["id"].as_i64().expect("id"),
    }
}

fn close_code(received: Received) -> (u16, String) {
    match received {
        Received::Closed(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Waits for the next change set, skipping nothing; returns it and how long it took.
async fn next_changes(
    client: &mut ChannelClient,
) -> (redoubt_outpost_proto::control::ChangeSet, Duration) {
    let started = Instant::now();
    match client.message().await {
        CoreMessage::Changes(set) => (set, started.elapsed()),
        other => panic!("expected changes, got {other:?}"),
    }
}

#[tokio::test]
async fn snapshot_then_changes_pushed_within_a_second() {
    let core = TestCore::start().await;
    let o = outpost(&core, "ldap").await;
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let CoreMessage::Snapshot(snapshot) = client.handshake(hello("i-1", None)).await else {
        panic!("a new outpost gets a snapshot");
    };
    assert_eq!(snapshot.config.outpost.name, "ldap-outpost");
    assert_eq!(snapshot.config.providers[0].id, o.provider_id);
    assert_eq!(
        snapshot.config.providers[0]
            .application
            .as_ref()
            .map(|a| a.slug.as_str()),
        Some("ldap-app")
    );
    let directory = snapshot
        .config
        .directory
        .as_ref()
        .expect("LDAP outposts get the directory");
    assert!(directory.users.iter().any(|u| u.username == "admin"));
    assert!(
        !serde_json::to_string(&snapshot)
            .expect("json")
            .contains("argon2"),
        "no password hashes"
    );
    client
        .send(&OutpostMessage::Ack {
            revision: snapshot.revision,
        })
        .await;

    let user = core
        .api
        .post("/api/v1/users", json!({"username": "hank"}))
        .await
        .expect(201);
    let (set, elapsed) = next_changes(&mut client).await;
    assert!(elapsed < Duration::from_secs(1), "pushed after {elapsed:?}");
    assert_eq!(set.from_revision, snapshot.revision);
    assert!(
        matches!(&set.items[..], [ChangeItem::UserUpserted { user: u }] if u.username == "hank"),
        "{set:?}"
    );
    client
        .send(&OutpostMessage::Ack {
            revision: set.revision,
        })
        .await;

    // A password change moves the credential epoch; a membership change updates group_ids.
    core.api
        .put(
            &format!("/api/v1/users/{}/password", user["id"]),
            json!({"password": "hank-password"}),
        )
        .await
        .expect(204);
    let (set, _) = next_changes(&mut client).await;
    let ChangeItem::UserUpserted { user: changed } = &set.items[0] else {
        panic!("{set:?}")
    };
    assert_eq!(changed.credential_epoch, 1);
    let group = core
        .api
        .post("/api/v1/groups", json!({"name": "ops"}))
        .await
        .expect(201);
    let _ = next_changes(&mut client).await;
    core.api
        .post(
            &format!("/api/v1/groups/{}/members", group["id"]),
            json!({"user_id": user["id"]}),
        )
        .await
        .expect(204);
    let (set, _) = next_changes(&mut client).await;
    assert!(set.items.iter().any(|i| matches!(i, ChangeItem::UserUpserted { user } if user.group_ids == vec![group["id"].as_i64().expect("id")])), "{set:?}");
    client
        .send(&OutpostMessage::Ack {
            revision: set.revision,
        })
        .await;
    // Editing the provider pushes its new settings.
    core.api
        .patch(
            &format!("/api/v1/providers/{}", o.provider_id),
            json!({"settings": {"base_dn": "dc=corp,dc=example"}}),
        )
        .await
        .expect(200);
    let (set, _) = next_changes(&mut client).await;
    assert!(set.items.iter().any(|i| matches!(i, ChangeItem::ProviderUpserted { provider } if provider.settings["base_dn"] == "dc=corp,dc=example")), "{set:?}");
    client
        .send(&OutpostMessage::Ack {
            revision: set.revision,
        })
        .await;
    client
        .send(&OutpostMessage::Heartbeat {
            applied_revision: set.revision,
        })
        .await;

    // The instance shows up healthy with its version and revision (flushed within a second).
    let path = format!("/api/v1/outposts/{}/instances", o.id);
    let mut instance = Value::Null;
    for _ in 0..40 {
        let list = core.api.get(&path).await.expect(200);
        if list[0]["applied_revision"] == json!(set.revision) {
            instance = list[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(instance["instance_id"], "i-1", "{instance}");
    assert_eq!(instance["healthy"], true);
    assert_eq!(instance["outdated"], false);
    assert_eq!(instance["up_to_date"], true);
    assert_eq!(instance["hostname"], "test-host");
    assert_eq!(instance["remote_address"], "127.0.0.1");
    let events = core
        .api
        .get("/api/v1/events?action=outpost_connect")
        .await
        .expect(200);
    assert_eq!(events["total"], 1);
}

#[tokio::test]
async fn reconnect_catches_up_from_the_held_revision() {
    let core = TestCore::start().await;
    let o = outpost(&core, "ldap").await;
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let CoreMessage::Snapshot(snapshot) = client.handshake(hello("i-1", None)).await else {
        panic!()
    };
    drop(client);
    core.api
        .post("/api/v1/users", json!({"username": "ivy"}))
        .await
        .expect(201);
    core.api
        .post("/api/v1/groups", json!({"name": "ivy-group"}))
        .await
        .expect(201);
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let CoreMessage::Changes(set) = client
        .handshake(hello("i-1", Some(snapshot.revision)))
        .await
    else {
        panic!("a known revision gets the changes since it");
    };
    assert_eq!(set.from_revision, snapshot.revision);
    assert!(
        set.items
            .iter()
            .any(|i| matches!(i, ChangeItem::UserUpserted { user } if user.username == "ivy"))
    );
    assert!(
        set.items
            .iter()
            .any(|i| matches!(i, ChangeItem::GroupUpserted { group } if group.name == "ivy-group"))
    );
    // Up to date: an empty change set that confirms the revision.
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let CoreMessage::Changes(empty) = client.handshake(hello("i-2", Some(set.revision))).await
    else {
        panic!()
    };
    assert!(empty.items.is_empty());
    assert_eq!(empty.revision, set.revision);
    // A revision from the future (a restored core database) gets a snapshot.
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    assert!(matches!(
        client.handshake(hello("i-3", Some(1_000_000))).await,
        CoreMessage::Snapshot(_)
    ));
}

#[tokio::test]
async fn incompatible_protocol_and_malformed_messages_close_with_a_reason() {
    let core = TestCore::start().await;
    let o = outpost(&core, "radius").await;
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let mut old = hello("i-1", None);
    old.protocol_version = 0;
    client.send(&OutpostMessage::Hello(old)).await;
    let (code, reason) = close_code(client.recv().await);
    assert_eq!(code, CloseCode::IncompatibleProtocol.code());
    assert!(
        reason.contains("protocol 1") && reason.contains("speaks 0"),
        "{reason}"
    );

    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    client.send_raw("{\"type\":\"hello\",").await;
    let (code, reason) = close_code(client.recv().await);
    assert_eq!(code, CloseCode::ProtocolViolation.code());
    assert!(reason.starts_with("malformed hello"), "{reason}");

    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let _ = client.handshake(hello("i-1", None)).await;
    client.send_raw(&"x".repeat(200 * 1024)).await;
    assert!(
        matches!(client.recv().await, Received::Closed(_)),
        "oversized message closes"
    );

    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let _ = client.handshake(hello("i-1", None)).await;
    client
        .send(&OutpostMessage::Hello(hello("i-1", None)))
        .await;
    let (code, _) = close_code(client.recv().await);
    assert_eq!(code, CloseCode::ProtocolViolation.code());
    // The core is unharmed.
    core.api.get("/api/v1/users").await.expect(200);
}

#[tokio::test]
async fn rotated_token_and_deleted_outpost_end_sessions() {
    let core = TestCore::start().await;
    let o = outpost(&core, "ldap").await;
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let _ = client.handshake(hello("i-1", None)).await;
    let rotated = core
        .api
        .post(
            &format!("/api/v1/outposts/{}/rotate-token", o.id),
            json!({}),
        )
        .await
        .expect(200);
    let (code, reason) = close_code(client.recv().await);
    assert_eq!(code, CloseCode::TokenRefused.code());
    assert!(reason.contains("rotated"), "{reason}");
    let refused = ChannelClient::connect(&core.url, &o.token).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401)
    );
    let new_token = rotated["token"].as_str().expect("token");
    let mut client = ChannelClient::connect(&core.url, new_token)
        .await
        .expect("connect");
    let _ = client.handshake(hello("i-1", None)).await;
    core.api
        .delete(&format!("/api/v1/outposts/{}", o.id))
        .await
        .expect(204);
    let (code, reason) = close_code(client.recv().await);
    assert_eq!(code, CloseCode::TokenRefused.code());
    assert!(reason.contains("deleted"), "{reason}");
    // An admin token is not an outpost.
    let admin = ChannelClient::connect(&core.url, &core.admin_token).await;
    assert!(
        matches!(admin, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403)
    );
}

#[tokio::test]
async fn proxy_outposts_get_revocations_but_no_directory() {
    let core = TestCore::start().await;
    let o = outpost(&core, "proxy").await;
    let user = core
        .api
        .post(
            "/api/v1/users",
            json!({"username": "jo", "password": "jo-password"}),
        )
        .await
        .expect(201);
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let CoreMessage::Snapshot(snapshot) = client.handshake(hello("p-1", None)).await else {
        panic!()
    };
    assert!(snapshot.config.directory.is_none());
    let sessions = snapshot.config.sessions.clone().expect("session config");
    assert_eq!(sessions.keys.len(), 1, "one key generation to start with");
    assert!(sessions.revocations.is_empty());
    core.api
        .put(
            &format!("/api/v1/users/{}/password", user["id"]),
            json!({"password": "jo-new-password"}),
        )
        .await
        .expect(204);
    let (set, _) = next_changes(&mut client).await;
    assert!(
        matches!(
            set.items.as_slice(),
            [ChangeItem::SessionsRevoked { revocation }]
                if revocation.user_id == user["id"].as_i64().expect("id")
                    && revocation.session_id.is_none()
        ),
        "{:?}",
        set.items
    );
    // Renaming a user reaches no proxy outpost item (but the revision still moves).
    core.api
        .patch(
            &format!("/api/v1/users/{}", user["id"]),
            json!({"name": "Jo"}),
        )
        .await
        .expect(200);
    let (set, _) = next_changes(&mut client).await;
    assert!(set.items.is_empty(), "{set:?}");
    // An administrator ends every session of the user.
    core.api
        .post(
            &format!("/api/v1/users/{}/sessions/revoke", user["id"]),
            json!({}),
        )
        .await
        .expect(204);
    let (set, _) = next_changes(&mut client).await;
    assert!(
        matches!(set.items.as_slice(), [ChangeItem::SessionsRevoked { revocation }] if revocation.session_id.is_none()),
        "{set:?}"
    );
    // Rotating the session keys sends a snapshot with the new key first and the old one second;
    // the revocations so far are in it too, so a restarted outpost still honours them.
    let rotated = core
        .api
        .post("/api/v1/session-keys/rotate", json!({}))
        .await
        .expect(200);
    let snapshot = loop {
        match client.recv().await {
            Received::Message(CoreMessage::Snapshot(snapshot)) => break snapshot,
            Received::Message(CoreMessage::Changes(_)) => continue,
            other => panic!("expected a snapshot, got {other:?}"),
        }
    };
    let after = snapshot.config.sessions.expect("session config");
    assert_eq!(after.keys.len(), 2);
    assert_eq!(
        i64::from(after.keys[0].id),
        rotated["generation"].as_i64().expect("generation")
    );
    assert_eq!(
        after.keys[1], sessions.keys[0],
        "the previous key still opens cookies"
    );
    assert_eq!(after.revocations.len(), 2, "{:?}", after.revocations);
    // Keys are per outpost: another proxy outpost never gets these.
    let other = outpost_named(&core, "proxy", "second").await;
    let config = Api::new(&core.url, &other.token)
        .get("/api/v1/outpost/config")
        .await
        .expect(200);
    let other_keys = &config["config"]["sessions"]["keys"];
    assert_eq!(other_keys.as_array().map(Vec::len), Some(2));
    assert_ne!(
        other_keys[0]["key"].as_str(),
        Some(after.keys[0].key.as_str())
    );
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_outposts_on_another() {
    let core = TestCore::start().await;
    if !core.database.is_postgres() {
        eprintln!(
            "SKIPPED on SQLite: several core replicas need PostgreSQL (set REDOUBT_TEST_DATABASE_URL)"
        );
        return;
    }
    let replica = core.start_replica().await;
    let o = outpost(&core, "ldap").await;
    let mut client = ChannelClient::connect(&replica.url, &o.token)
        .await
        .expect("connect to replica");
    let _ = client.handshake(hello("r-1", None)).await;
    let started = Instant::now();
    Api::new(&core.url, &core.admin_token)
        .post("/api/v1/users", json!({"username": "kim"}))
        .await
        .expect(201);
    let (set, _) = next_changes(&mut client).await;
    let elapsed = started.elapsed();
    assert!(
        set.items
            .iter()
            .any(|i| matches!(i, ChangeItem::UserUpserted { user } if user.username == "kim"))
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "crossed replicas in {elapsed:?}"
    );
}

#[tokio::test]
async fn acknowledging_a_revision_never_sent_closes_with_4003() {
    let core = TestCore::start().await;
    let o = outpost(&core, "radius").await;
    let mut client = ChannelClient::connect(&core.url, &o.token)
        .await
        .expect("connect");
    let revision = match client.handshake(hello("i-1", None)).await {
        CoreMessage::Snapshot(snapshot) => snapshot.revision,
        other => panic!("expected a snapshot, got {other:?}"),
    };
    // An honest ack keeps the session: the next change still arrives.
    client.send(&OutpostMessage::Ack { revision }).await;
    core.api
        .patch(
            &format!("/api/v1/providers/{}", o.provider_id),
            json!({"name": "renamed"}),
        )
        .await
        .expect(200);
    let (set, _) = next_changes(&mut client).await;
    client
        .send(&OutpostMessage::Ack {
            revision: set.revision,
        })
        .await;
    client
        .send(&OutpostMessage::Ack {
            revision: set.revision + 1000,
        })
        .await;
    let (code, reason) = close_code(client.recv().await);
    assert_eq!(code, CloseCode::ProtocolViolation.code());
    assert_eq!(
        reason,
        format!(
            "acknowledged revision {}, but the newest sent is {}",
            set.revision + 1000,
            set.revision
        )
    );
    // The bogus revision was not recorded as applied.
    let instances = core
        .api
        .get(&format!("/api/v1/outposts/{}/instances", o.id))
        .await
        .expect(200);
    assert!(
        !instances
            .to_string()
            .contains(&format!("\"applied_revision\":{}", set.revision + 1000)),
        "{instances}"
    );
}
