//! The core side of RAC over real HTTP: sealed endpoint credentials (write-only, never in
//! provider reads, snapshots or events), grants refused for each reason, limits counted across
//! outpost instances and core replicas, leases lapsing on the manual clock, lease renewals that
//! end revoked / denied / removed connections, reports, the `rac-<id>` OIDC client, the pushes
//! RAC outposts get, and the CLI.

use crate::cli::{cli, cli_with_stdin};
use crate::oidc::{post_form, query_of, signed_in, verified};
use redoubt_core::clock::Clock;
use redoubt_outpost_proto::control::{ChangeItem, CoreMessage};
use redoubt_outpost_proto::rac::{
    ENDPOINTS_PATH, GRANTS_PATH, LEASE_SECONDS, LEASES_PATH, REPORTS_PATH,
};
use redoubt_tests::channel::{ChannelClient, hello};
use redoubt_tests::{Api, TestCore};
use serde_json::{Value, json};

const PASSWORD: &str = "rdp-Secret-Sauce-42";
const KEY: &str = "4f2a9e0c4f2a9e0c4f2a9e0c4f2a9e0c4f2a9e0c4f2a9e0c4f2a9e0c4f2a9e0c";

struct Rac {
    provider_id: i64,
    outpost: Api,
    outpost_token: String,
    alice: i64,
    bob: i64,
    users_group: i64,
    admins_group: i64,
}

fn settings(admins_group: i64) -> Value {
    json!({
        "external_host": "https://desk.example.com",
        "connection_expiry_seconds": 3600,
        "maximum_connections_per_user": 2,
        "endpoints": [
            {"name": "Build box", "host": "10.0.0.5:3389", "auth_mode": "static", "maximum_connections": 1},
            {"slug": "prompted", "name": "Prompted", "host": "10.0.0.6:3389"},
            {"slug": "admins-only", "name": "Admins", "host": "10.0.0.7:3389", "group_ids": [admins_group]},
            {"slug": "nocreds", "name": "No credentials", "host": "10.0.0.8:3389", "auth_mode": "static"},
            {"slug": "spare", "name": "Spare", "host": "10.0.0.9:3389"},
        ]
    })
}

/// A RAC provider bound to an application for `desk-users`, alice in it, bob not, and a RAC
/// outpost serving it.
async fn setup(core: &TestCore) -> Rac {
    let users_group = core.create_group("desk-users").await;
    let admins_group = core.create_group("desk-admins").await;
    let alice = core
        .create_member(
            json!({"username": "alice", "name": "Alice", "password": "alice-password"}),
            &[users_group],
        )
        .await;
    let bob = core
        .create_member(
            json!({"username": "bob", "name": "Bob", "password": "bob-password"}),
            &[],
        )
        .await;
    let (provider_id, token) = core
        .create_served_provider("rac", "desk", settings(admins_group))
        .await;
    core.bind_group("desk", users_group).await;
    Rac {
        provider_id,
        outpost: core.api_with(&token),
        outpost_token: token,
        alice,
        bob,
        users_group,
        admins_group,
    }
}

fn user(core: &TestCore, id: i64, sid: &str) -> Value {
    json!({"user_id": id, "sid": sid, "auth_time_ms": core.clock.now_ms()})
}

fn grant_body(rac: &Rac, endpoint: &str, user: &Value, instance: &str) -> Value {
    json!({
        "provider_id": rac.provider_id,
        "endpoint": endpoint,
        "user": user,
        "client_address": "192.0.2.7",
        "instance_id": instance,
    })
}

async fn set_credentials(core: &TestCore, rac: &Rac, slug: &str) {
    core.api
        .put(
            &format!(
                "/api/v1/providers/{}/rac/endpoints/{slug}/credentials",
                rac.provider_id
            ),
            json!({"username": "builder", "domain": "CORP", "password": PASSWORD}),
        )
        .await
        .expect(204);
}

/// Asserts a refused grant: status, problem type and `reason`.
#[track_caller]
fn assert_refused(reply: redoubt_tests::http::Reply, status: u16, reason: &str) {
    assert_eq!(reply.content_type, "application/problem+json");
    let body = reply.expect(status);
    assert_eq!(body["reason"], reason, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with(&format!("/rac-{reason}"))),
        "{body}"
    );
}

async fn events(core: &TestCore, action: &str) -> Vec<Value> {
    core.api
        .get(&format!("/api/v1/events?action={action}"))
        .await
        .expect(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Reports a connection ended, as the outpost does when it closes one.
async fn end(outpost: &Api, id: &str) {
    outpost
        .post(
            REPORTS_PATH,
            json!({"connection_id": id, "state": "ended", "reason": "user", "duration_seconds": 1,
                   "bytes_from_server": 10, "bytes_to_browser": 10, "clipboard_transfers": 0}),
        )
        .await
        .expect(204);
}

async fn leases(rac: &Rac, instance: &str, ids: &[&str]) -> Vec<(String, String)> {
    let answer = rac
        .outpost
        .post(
            LEASES_PATH,
            json!({"instance_id": instance, "connection_ids": ids}),
        )
        .await
        .expect(200);
    answer["end"]
        .as_array()
        .expect("end")
        .iter()
        .map(|e| {
            (
                e["connection_id"].as_str().expect("id").to_owned(),
                e["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn rac_grants_check_access_and_hand_out_sealed_credentials() {
    let core = TestCore::start().await;
    let rac = setup(&core).await;
    let alice = user(&core, rac.alice, "sid-a");
    // The endpoint list: the application's groups and each endpoint's groups.
    let listed = rac
        .outpost
        .post(
            ENDPOINTS_PATH,
            json!({"provider_id": rac.provider_id, "user": alice}),
        )
        .await
        .expect(200);
    assert_eq!(
        listed["endpoints"],
        json!(["build-box", "prompted", "nocreds", "spare"])
    );
    let bob = user(&core, rac.bob, "sid-b");
    let listed = rac
        .outpost
        .post(
            ENDPOINTS_PATH,
            json!({"provider_id": rac.provider_id, "user": bob}),
        )
        .await
        .expect(200);
    assert_eq!(listed["endpoints"], json!([]));

    // Static mode without credentials, then with them.
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "build-box", &alice, "i-1"))
            .await,
        409,
        "no_credentials",
    );
    set_credentials(&core, &rac, "build-box").await;
    let granted = rac
        .outpost
        .post(GRANTS_PATH, grant_body(&rac, "build-box", &alice, "i-1"))
        .await
        .expect(200);
    assert_eq!(
        granted["credentials"],
        json!({"username": "builder", "domain": "CORP", "password": PASSWORD})
    );
    assert_eq!(granted["expires_at"], core.clock.now() + 3600);
    let id = granted["connection_id"].as_str().expect("id");
    assert_eq!(id.len(), 32, "128 random bits in hex");
    // Prompt mode: no credentials.
    let prompted = rac
        .outpost
        .post(GRANTS_PATH, grant_body(&rac, "prompted", &alice, "i-1"))
        .await
        .expect(200);
    assert!(prompted["credentials"].is_null(), "{prompted}");

    // Each refusal.
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "nope", &alice, "i-1"))
            .await,
        403,
        "unknown_endpoint",
    );
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "prompted", &bob, "i-1"))
            .await,
        403,
        "not_in_group",
    );
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "admins-only", &alice, "i-1"))
            .await,
        403,
        "not_in_group",
    );
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "nocreds", &alice, "i-1"))
            .await,
        409,
        "no_credentials",
    );
    // Connections end (the per-user limit is two), and nested groups count: alice joins a
    // child group of the endpoint's group.
    end(&rac.outpost, id).await;
    end(
        &rac.outpost,
        prompted["connection_id"].as_str().expect("id"),
    )
    .await;
    let child = core.create_group("desk-admins-berlin").await;
    core.nest_group(child, rac.admins_group).await;
    core.api
        .post(
            &format!("/api/v1/groups/{child}/members"),
            json!({"user_id": rac.alice}),
        )
        .await
        .expect(204);
    rac.outpost
        .post(GRANTS_PATH, grant_body(&rac, "admins-only", &alice, "i-1"))
        .await
        .expect(200);
    // Another outpost's token cannot use this provider.
    let (_, stranger) = core
        .create_served_provider(
            "rac",
            "other-desk",
            json!({"external_host": "https://other.example.com"}),
        )
        .await;
    assert_refused(
        core.api_with(&stranger)
            .post(GRANTS_PATH, grant_body(&rac, "prompted", &alice, "i-9"))
            .await,
        403,
        "unknown_endpoint",
    );
    // An admin token is not an outpost.
    core.api
        .post(GRANTS_PATH, grant_body(&rac, "prompted", &alice, "i-1"))
        .await
        .expect(403);
    // A signed-out session (or a disabled user) ends grants and the list.
    core.api
        .post(
            &format!("/api/v1/users/{}/sessions/revoke", rac.alice),
            json!({}),
        )
        .await
        .expect(204);
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "prompted", &alice, "i-1"))
            .await,
        403,
        "session_ended",
    );
    assert_refused(
        rac.outpost
            .post(
                ENDPOINTS_PATH,
                json!({"provider_id": rac.provider_id, "user": alice}),
            )
            .await,
        403,
        "session_ended",
    );
    core.clock.advance(1);
    let fresh = user(&core, rac.alice, "sid-a2");
    rac.outpost
        .post(GRANTS_PATH, grant_body(&rac, "spare", &fresh, "i-1"))
        .await
        .expect(200);

    // Events: granted and denied with the reason, user, provider, endpoint, client address.
    let granted_events = events(&core, "rac_connection_granted").await;
    assert_eq!(granted_events.len(), 4);
    let denied = events(&core, "rac_connection_denied").await;
    let reasons: Vec<&str> = denied
        .iter()
        .filter_map(|e| e["detail"]["reason"].as_str())
        .collect();
    for reason in [
        "no_credentials",
        "unknown_endpoint",
        "not_in_group",
        "session_ended",
    ] {
        assert!(reasons.contains(&reason), "{reasons:?}");
    }
    let first = granted_events
        .iter()
        .find(|e| e["detail"]["endpoint"] == "build-box")
        .expect("build-box grant");
    assert_eq!(first["target"], "alice");
    assert_eq!(first["source_address"], "192.0.2.7");
    assert_eq!(first["detail"]["provider"], rac.provider_id);
    assert_eq!(first["detail"]["connection"], id);

    // The password is nowhere but in the grant.
    let listing = core
        .api
        .get(&format!(
            "/api/v1/providers/{}/rac/endpoints",
            rac.provider_id
        ))
        .await
        .expect(200);
    assert_eq!(listing[0]["slug"], "build-box");
    assert_eq!(listing[0]["has_credentials"], true);
    assert_eq!(listing[3]["has_credentials"], false);
    for body in [
        listing,
        core.api
            .get(&format!("/api/v1/providers/{}", rac.provider_id))
            .await
            .expect(200),
        rac.outpost.get("/api/v1/outpost/config").await.expect(200),
        core.api
            .get("/api/v1/events?page_size=500")
            .await
            .expect(200),
    ] {
        assert!(!body.to_string().contains(PASSWORD), "{body}");
    }
    // Clearing: grants refuse again; clearing twice is a 404.
    let path = format!(
        "/api/v1/providers/{}/rac/endpoints/build-box/credentials",
        rac.provider_id
    );
    core.api.delete(&path).await.expect(204);
    core.api.delete(&path).await.expect(404);
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "build-box", &fresh, "i-1"))
            .await,
        409,
        "no_credentials",
    );
    // Credentials only for existing endpoints of RAC providers, and write-only bodies.
    core.api
        .put(
            &format!(
                "/api/v1/providers/{}/rac/endpoints/nope/credentials",
                rac.provider_id
            ),
            json!({"username": "u", "password": "p"}),
        )
        .await
        .expect(404);
    core.api
        .put(&path, json!({"username": "u", "password": ""}))
        .await
        .expect(400);
    rac.outpost
        .put(&path, json!({"username": "u", "password": "p"}))
        .await
        .expect(403);
}

#[tokio::test]
async fn rac_limits_hold_across_instances_and_replicas_and_lapsed_leases_free_slots() {
    let core = TestCore::start().await;
    let rac = setup(&core).await;
    set_credentials(&core, &rac, "build-box").await;
    // A second outpost serving the same provider (another replica set).
    let second = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "desk-2", "kind": "rac", "provider_ids": [rac.provider_id]}),
        )
        .await
        .expect(201);
    let second = core.api_with(second["token"].as_str().expect("token"));
    let alice = user(&core, rac.alice, "sid-a");
    let carol = core
        .create_member(
            json!({"username": "carol", "name": "Carol", "password": "carol-password"}),
            &[rac.users_group],
        )
        .await;
    let carol = user(&core, carol, "sid-c");

    // The endpoint allows one connection, whoever and wherever.
    let first = rac
        .outpost
        .post(GRANTS_PATH, grant_body(&rac, "build-box", &alice, "a"))
        .await
        .expect(200);
    let first = first["connection_id"].as_str().expect("id").to_owned();
    assert_refused(
        rac.outpost
            .post(GRANTS_PATH, grant_body(&rac, "build-box", &carol, "b"))
            .await,
        409,
        "limit_reached",
    );
    assert_refused(
        second
            .post(GRANTS_PATH, grant_body(&rac, "build-box", &carol, "c"))
            .await,
        409,
        "limit_reached",
    );
    // The user allows two across endpoints.
    second
        .post(GRANTS_PATH, grant_body(&rac, "prompted", &alice, "c"))
        .await
        .expect(200);
    assert_refused(
        second
            .post(GRANTS_PATH, grant_body(&rac, "spare", &alice, "c"))
            .await,
        409,
        "limit_reached",
    );
    // Renewed leases keep the slot past LEASE_SECONDS; a lapsed one frees it (no sleeping).
    let lease = i64::try_from(LEASE_SECONDS).expect("lease");
    core.clock.advance(lease - 10);
    assert!(leases(&rac, "a", &[&first]).await.is_empty());
    core.clock.advance(lease - 10);
    assert_refused(
        second
            .post(GRANTS_PATH, grant_body(&rac, "build-box", &carol, "c"))
            .await,
        409,
        "limit_reached",
    );
    core.clock.advance(11);
    let carol_grant = second
        .post(GRANTS_PATH, grant_body(&rac, "build-box", &carol, "c"))
        .await
        .expect(200);
    // Ending a connection frees its slot at once; repeated reports change nothing.
    let report = json!({
        "connection_id": carol_grant["connection_id"], "state": "ended", "reason": "user",
        "duration_seconds": 12, "bytes_from_server": 1000, "bytes_to_browser": 800,
        "clipboard_transfers": 2,
    });
    second.post(REPORTS_PATH, report.clone()).await.expect(204);
    second.post(REPORTS_PATH, report.clone()).await.expect(204);
    assert_eq!(events(&core, "rac_connection_ended").await.len(), 1);
    // Another outpost cannot report on it.
    rac.outpost.post(REPORTS_PATH, report).await.expect(404);

    // Many grants at once through two core replicas: exactly one takes the free slot.
    let replica = core.start_replica().await;
    let replica_outpost = replica.api_with(&rac.outpost_token);
    let mut attempts = Vec::new();
    for n in 0..12 {
        let api = if n % 2 == 0 {
            rac.outpost.clone()
        } else {
            replica_outpost.clone()
        };
        let someone = core
            .create_member(
                json!({"username": format!("user{n}"), "name": "U", "password": "some-password"}),
                &[rac.users_group],
            )
            .await;
        let body = grant_body(&rac, "build-box", &user(&core, someone, "s"), "race");
        attempts.push(async move { api.post(GRANTS_PATH, body).await.status.as_u16() });
    }
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    // Everything else lapsed or ended: one leased connection, as the core's metrics say.
    let metrics = reqwest::get(format!("{}/metrics", core.metrics_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("\nredoubt_rac_leased_connections 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn rac_leases_end_revoked_denied_removed_and_expired_connections() {
    let core = TestCore::start().await;
    let rac = setup(&core).await;
    let alice = user(&core, rac.alice, "sid-a");
    let grant = |endpoint: &'static str, who: Value| {
        let api = rac.outpost.clone();
        let body = grant_body(&rac, endpoint, &who, "inst");
        async move {
            api.post(GRANTS_PATH, body).await.expect(200)["connection_id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let id = grant("prompted", alice.clone()).await;
    assert!(leases(&rac, "inst", &[&id]).await.is_empty());
    // Unknown ids and another instance's connections must end.
    let mut ended = leases(&rac, "other", &[&id, "feedface"]).await;
    ended.sort();
    let mut expected = vec![
        ("feedface".to_owned(), "removed".to_owned()),
        (id.clone(), "removed".to_owned()),
    ];
    expected.sort();
    assert_eq!(ended, expected);
    // Access lost: removed from the application's group.
    core.api
        .delete(&format!(
            "/api/v1/groups/{}/members/{}",
            rac.users_group, rac.alice
        ))
        .await
        .expect(204);
    assert_eq!(
        leases(&rac, "inst", &[&id]).await,
        vec![(id.clone(), "denied".to_owned())]
    );
    core.api
        .post(
            &format!("/api/v1/groups/{}/members", rac.users_group),
            json!({"user_id": rac.alice}),
        )
        .await
        .expect(204);
    assert!(leases(&rac, "inst", &[&id]).await.is_empty());
    // Disabled, then enabled again.
    core.api
        .patch(
            &format!("/api/v1/users/{}", rac.alice),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    assert_eq!(
        leases(&rac, "inst", &[&id]).await,
        vec![(id.clone(), "revoked".to_owned())]
    );
    core.api
        .patch(
            &format!("/api/v1/users/{}", rac.alice),
            json!({"is_active": true}),
        )
        .await
        .expect(200);
    // Disabling revoked every session that began before it: this connection's too.
    assert_eq!(
        leases(&rac, "inst", &[&id]).await,
        vec![(id.clone(), "revoked".to_owned())]
    );
    end(&rac.outpost, &id).await;
    // A new login; an administrator ends the user's sessions.
    core.clock.advance(1);
    let fresh = user(&core, rac.alice, "sid-new");
    let id = grant("prompted", fresh.clone()).await;
    assert!(leases(&rac, "inst", &[&id]).await.is_empty());
    core.clock.advance(1);
    core.api
        .post(
            &format!("/api/v1/users/{}/sessions/revoke", rac.alice),
            json!({}),
        )
        .await
        .expect(204);
    assert_eq!(
        leases(&rac, "inst", &[&id]).await,
        vec![(id.clone(), "revoked".to_owned())]
    );
    end(&rac.outpost, &id).await;
    // Endpoint removed from the provider.
    core.clock.advance(1);
    let fresh = user(&core, rac.alice, "sid-newer");
    let spare = grant("spare", fresh.clone()).await;
    let prompted = grant("prompted", fresh.clone()).await;
    let mut changed = settings(rac.admins_group);
    changed["endpoints"]
        .as_array_mut()
        .expect("endpoints")
        .retain(|e| e["slug"] != "spare");
    core.api
        .patch(
            &format!("/api/v1/providers/{}", rac.provider_id),
            json!({"settings": changed}),
        )
        .await
        .expect(200);
    assert_eq!(
        leases(&rac, "inst", &[&spare, &prompted]).await,
        vec![(spare.clone(), "removed".to_owned())]
    );
    end(&rac.outpost, &spare).await;
    // Past connection_expiry_seconds.
    core.clock.advance(3600);
    assert_eq!(
        leases(&rac, "inst", &[&prompted]).await,
        vec![(prompted.clone(), "expired".to_owned())]
    );
    end(&rac.outpost, &prompted).await;

    // Reports: started (once), failed ends the connection.
    let id = grant("prompted", user(&core, rac.alice, "sid-last")).await;
    let started = json!({"connection_id": id, "state": "started", "security": "nla",
        "server_key_sha256": KEY, "width": 1280, "height": 800});
    rac.outpost
        .post(REPORTS_PATH, started.clone())
        .await
        .expect(204);
    rac.outpost.post(REPORTS_PATH, started).await.expect(204);
    let started = events(&core, "rac_connection_started").await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["detail"]["server_key_sha256"], KEY);
    assert_eq!(started[0]["detail"]["security"], "nla");
    let listing = core
        .api
        .get(&format!(
            "/api/v1/providers/{}/rac/endpoints",
            rac.provider_id
        ))
        .await
        .expect(200);
    let prompted_row = listing
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["slug"] == "prompted")
        .expect("prompted");
    assert_eq!(prompted_row["last_server_key_sha256"], KEY);
    assert!(prompted_row["last_server_key_seen_at"].is_string());
    rac.outpost
        .post(
            REPORTS_PATH,
            json!({"connection_id": id, "state": "started", "security": "nla",
                   "server_key_sha256": "not-hex", "width": 1, "height": 1}),
        )
        .await
        .expect(400);
    rac.outpost
        .post(
            REPORTS_PATH,
            json!({"connection_id": id, "state": "failed", "reason": "auth_failed",
                   "detail": "the server refused the credentials"}),
        )
        .await
        .expect(204);
    let failed = events(&core, "rac_connection_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["detail"]["reason"], "auth_failed");
    assert_eq!(failed[0]["outcome"], "failure");
    // An ended connection is not renewed.
    assert_eq!(
        leases(&rac, "inst", &[&id]).await,
        vec![(id.clone(), "removed".to_owned())]
    );
}

#[tokio::test]
async fn rac_outposts_get_session_keys_revocations_and_access_changes() {
    let core = TestCore::start().await;
    let rac = setup(&core).await;
    let mut client = ChannelClient::connect(&core.url, &rac.outpost_token)
        .await
        .expect("connect");
    let CoreMessage::Snapshot(snapshot) = client.handshake(hello("r-1", None)).await else {
        panic!("snapshot first")
    };
    assert!(snapshot.config.directory.is_none());
    let sessions = snapshot.config.sessions.expect("session config");
    assert_eq!(sessions.keys.len(), 1);
    assert_eq!(snapshot.config.providers.len(), 1);
    // Removing alice from the group: an access change naming her and the group.
    core.api
        .delete(&format!(
            "/api/v1/groups/{}/members/{}",
            rac.users_group, rac.alice
        ))
        .await
        .expect(204);
    let items = next_items(&mut client).await;
    assert!(
        items.iter().any(|i| matches!(i, ChangeItem::AccessChanged { user_ids, .. } if user_ids == &vec![rac.alice])),
        "{items:?}"
    );
    assert!(
        items.iter().any(|i| matches!(i, ChangeItem::AccessChanged { group_ids, .. } if group_ids == &vec![rac.users_group])),
        "{items:?}"
    );
    assert!(
        !items
            .iter()
            .any(|i| matches!(i, ChangeItem::UserUpserted { .. })),
        "no directory for RAC outposts: {items:?}"
    );
    // Disabling bob: his sessions are revoked and his access changed.
    core.api
        .patch(
            &format!("/api/v1/users/{}", rac.bob),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    let items = next_items(&mut client).await;
    assert!(
        items.iter().any(|i| matches!(i, ChangeItem::SessionsRevoked { revocation } if revocation.user_id == rac.bob)),
        "{items:?}"
    );
    assert!(
        items.iter().any(|i| matches!(i, ChangeItem::AccessChanged { user_ids, .. } if user_ids == &vec![rac.bob])),
        "{items:?}"
    );
    // A binding change of its provider's application: the provider again.
    let app = core
        .api
        .get("/api/v1/applications?search=desk")
        .await
        .expect(200);
    let app_id = app["items"][0]["id"].as_i64().expect("app");
    core.api
        .post(
            &format!("/api/v1/applications/{app_id}/groups"),
            json!({"group_id": rac.admins_group}),
        )
        .await
        .expect(204);
    let items = next_items(&mut client).await;
    assert!(
        items.iter().any(|i| matches!(i, ChangeItem::ProviderUpserted { provider } if provider.id == rac.provider_id)),
        "{items:?}"
    );
}

/// The items of the next change set.
async fn next_items(client: &mut ChannelClient) -> Vec<ChangeItem> {
    match client.message().await {
        CoreMessage::Changes(set) => set.items,
        other => panic!("expected changes, got {other:?}"),
    }
}

#[tokio::test]
async fn rac_clients_sign_in_with_their_outpost_token() {
    let (core, mut browser, _, _) = signed_in().await;
    let (rac_id, outpost_token) = core
        .create_served_provider(
            "rac",
            "desk",
            json!({"external_host": "https://desk.example", "session_validity_seconds": 1800}),
        )
        .await;
    let client_id = format!("rac-{rac_id}");
    let callback = "https://desk.example/outpost.redoubt/callback";
    let authorize = |redirect: &str| {
        format!(
            "/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid+profile&state=s",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        )
    };
    let page = browser.get(&authorize(callback)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let code = query_of(&page.location.expect("location"))["code"].clone();
    let token_url = format!("{}/oauth/token", core.url);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback),
    ];
    // Only the token of an outpost serving the provider authenticates the client.
    let (_, stranger) = core
        .create_served_provider(
            "rac",
            "other",
            json!({"external_host": "https://other.example"}),
        )
        .await;
    let (status, _) = post_form(&token_url, Some((&client_id, &stranger)), &form).await;
    assert_eq!(status, 401);
    let page = browser.get(&authorize(callback)).await;
    let code = query_of(&page.location.expect("location"))["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback),
    ];
    let (status, tokens) = post_form(&token_url, Some((&client_id, &outpost_token)), &form).await;
    assert_eq!(status, 200, "{tokens}");
    let id = verified(&core, tokens["id_token"].as_str().expect("id")).await;
    assert_eq!(id["aud"], client_id);
    assert_eq!(
        id["exp"].as_i64().expect("exp") - id["iat"].as_i64().expect("iat"),
        1800
    );
    assert!(id["sid"].is_string(), "the outpost needs the sid: {id}");
    // Any other redirect URI is refused (a page, not a redirect).
    let page = browser
        .get(&authorize("https://evil.example/outpost.redoubt/callback"))
        .await;
    assert_eq!(page.status, 400);
    let page = browser
        .get(&authorize("https://desk.example/elsewhere"))
        .await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn rac_from_the_cli() {
    let core = TestCore::start().await;
    let token = core.admin_token.clone();
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "desk", "kind": "rac", "settings": settings(1)}),
        )
        .await
        .expect(201);
    let id = provider["id"].as_i64().expect("id").to_string();
    let (code, stdout, stderr) = cli(
        &core,
        &token,
        &[
            "outposts",
            "create",
            "desk",
            "--kind",
            "rac",
            "--provider",
            &id,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Created rac outpost `desk`"), "{stdout}");
    assert!(stdout.contains("redoubt-outpost run"), "{stdout}");
    assert!(stdout.contains("-p 9000:9000"), "{stdout}");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), format!("{PASSWORD}\n")).expect("write");
    let path = file.path().to_str().expect("path");
    let (code, _, stderr) = cli(
        &core,
        &token,
        &[
            "providers",
            "rac-credentials",
            "set",
            &id,
            "build-box",
            "--username",
            "builder",
            "--domain",
            "CORP",
            "--password-file",
            path,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = cli_with_stdin(
        &core,
        &token,
        &[
            "providers",
            "rac-credentials",
            "set",
            &id,
            "nocreds",
            "--username",
            "x",
        ],
        "from-stdin\n",
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = cli(&core, &token, &["providers", "rac-endpoints", &id]).await;
    assert_eq!(code, 0);
    assert!(stdout.starts_with("SLUG"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("build-box"))
        .expect("row");
    assert!(line.contains("static") && line.contains("set"), "{line}");
    assert!(!stdout.contains(PASSWORD));
    let (code, stdout, _) = cli(
        &core,
        &token,
        &["--json", "providers", "rac-endpoints", &id],
    )
    .await;
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(listed[3]["slug"], "nocreds");
    assert_eq!(listed[3]["has_credentials"], true);
    let (code, _, stderr) = cli(
        &core,
        &token,
        &["providers", "rac-credentials", "clear", &id, "build-box"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let listed = core
        .api
        .get(&format!("/api/v1/providers/{id}/rac/endpoints"))
        .await
        .expect(200);
    assert_eq!(listed[0]["has_credentials"], false);
    // The OpenAPI document describes the admin and outpost-facing calls.
    let schema = core.api.get("/api/v1/schema.json").await.expect(200);
    for path in [
        "/api/v1/providers/{id}/rac/endpoints",
        "/api/v1/providers/{id}/rac/endpoints/{slug}/credentials",
        ENDPOINTS_PATH,
        GRANTS_PATH,
        REPORTS_PATH,
        LEASES_PATH,
    ] {
        assert!(schema["paths"].get(path).is_some(), "{path} is documented");
    }
}
