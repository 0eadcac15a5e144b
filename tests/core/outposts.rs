//! Outposts: creation with a service identity, least-privilege tokens, rotation.

use redoubt_tests::TestCore;
use serde_json::{Value, json};

async fn ldap_provider(core: &TestCore, name: &str) -> Value {
    core.api
        .post(
            "/api/v1/providers",
            json!({"name": name, "kind": "ldap", "settings": {"base_dn": "dc=example,dc=com"}}),
        )
        .await
        .expect(201)
}

#[tokio::test]
async fn outpost_token_reads_only_its_own_config() {
    let core = TestCore::start().await;
    let mine = ldap_provider(&core, "mine").await;
    let other = ldap_provider(&core, "other").await;
    let created = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "ldap-1", "kind": "ldap", "provider_ids": [mine["id"]]}),
        )
        .await
        .expect(201);
    let token = created["token"].as_str().expect("token");
    assert_eq!(created["outpost"]["provider_ids"], json!([mine["id"]]));
    let outpost = core.api_with(token);
    let me = outpost.get("/api/v1/outpost/self").await.expect(200);
    assert_eq!(me["outpost"]["name"], "ldap-1");
    assert_eq!(me["providers"][0]["name"], "mine");
    assert!(me["revision"].as_i64().expect("revision") > 0);
    for path in [
        "/api/v1/users",
        "/api/v1/groups",
        "/api/v1/providers",
        "/api/v1/outposts",
        "/api/v1/tokens",
        "/api/v1/events",
    ] {
        let denied = outpost.get(path).await.expect(403);
        assert_eq!(
            denied["type"], "https://redoubt.dev/problems/forbidden",
            "{path}"
        );
    }
    outpost
        .post("/api/v1/users", json!({"username": "evil"}))
        .await
        .expect(403);
    // Credential checks only for its own providers.
    outpost
        .post(
            "/api/v1/outpost/credentials/verify",
            json!({"provider_id": other["id"], "username": "admin", "password": "x"}),
        )
        .await
        .expect(403);
    // An admin token is not an outpost.
    core.api.get("/api/v1/outpost/self").await.expect(403);
}

#[tokio::test]
async fn rotating_the_token_invalidates_the_old_one_at_once() {
    let core = TestCore::start().await;
    let created = core
        .api
        .post("/api/v1/outposts", json!({"name": "o", "kind": "radius"}))
        .await
        .expect(201);
    let old = core.api_with(created["token"].as_str().expect("token"));
    old.get("/api/v1/outpost/self").await.expect(200);
    let rotated = core
        .api
        .post(
            &format!("/api/v1/outposts/{}/rotate-token", created["outpost"]["id"]),
            json!({}),
        )
        .await
        .expect(200);
    old.get("/api/v1/outpost/self").await.expect(401);
    core.api_with(rotated["token"].as_str().expect("token"))
        .get("/api/v1/outpost/self")
        .await
        .expect(200);
}

#[tokio::test]
async fn outposts_serve_providers_of_their_own_kind() {
    let core = TestCore::start().await;
    let ldap = ldap_provider(&core, "dir").await;
    let wrong = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "r", "kind": "radius", "provider_ids": [ldap["id"]]}),
        )
        .await
        .expect(400);
    assert!(
        wrong["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("provider_ids"),
        "{wrong}"
    );
    let outpost = core
        .api
        .post("/api/v1/outposts", json!({"name": "l", "kind": "ldap"}))
        .await
        .expect(201);
    let path = format!("/api/v1/outposts/{}", outpost["outpost"]["id"]);
    let updated = core
        .api
        .patch(&path, json!({"provider_ids": [ldap["id"]]}))
        .await
        .expect(200);
    assert_eq!(updated["provider_ids"], json!([ldap["id"]]));
    core.api
        .post("/api/v1/outposts", json!({"name": "l", "kind": "ldap"}))
        .await
        .expect(409);
    core.api.delete(&path).await.expect(204);
    core.api_with(outpost["token"].as_str().expect("token"))
        .get("/api/v1/outpost/self")
        .await
        .expect(401);
}
