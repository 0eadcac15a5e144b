//! API tokens: scopes, expiry, revocation, and the 401 that does not say why.

use redoubt_tests::TestCore;
use serde_json::json;

#[tokio::test]
async fn missing_wrong_and_expired_tokens_get_the_same_401() {
    let core = TestCore::start().await;
    let created = core
        .api
        .post(
            "/api/v1/tokens",
            json!({"description": "short", "expires_in_seconds": 60}),
        )
        .await
        .expect(201);
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("rdt_"));
    let short = core.api_with(&secret);
    short.get("/api/v1/users").await.expect(200);
    core.clock.advance(61);
    let expired = short.get("/api/v1/users").await.expect(401);
    let wrong = core
        .api_with("rdt_wrong")
        .get("/api/v1/users")
        .await
        .expect(401);
    let missing = core.api_with("").get("/api/v1/users").await.expect(401);
    assert_eq!(expired, wrong);
    assert_eq!(wrong, missing);
    // The secret is never listed.
    let listed = core.api.get("/api/v1/tokens").await.expect(200);
    assert!(!listed.to_string().contains(&secret));
}

#[tokio::test]
async fn revoked_token_stops_at_once() {
    let core = TestCore::start().await;
    let created = core
        .api
        .post("/api/v1/tokens", json!({"description": "ci"}))
        .await
        .expect(201);
    let api = core.api_with(created["secret"].as_str().expect("secret"));
    api.get("/api/v1/groups").await.expect(200);
    core.api
        .delete(&format!("/api/v1/tokens/{}", created["token"]["id"]))
        .await
        .expect(204);
    api.get("/api/v1/groups").await.expect(401);
}

#[tokio::test]
async fn admin_tokens_only_for_superusers_and_die_with_their_user() {
    let core = TestCore::start().await;
    let user = core
        .api
        .post("/api/v1/users", json!({"username": "frank"}))
        .await
        .expect(201);
    core.api
        .post("/api/v1/tokens", json!({"user_id": user["id"]}))
        .await
        .expect(400);
    let admins = core
        .api
        .get("/api/v1/groups?search=admins")
        .await
        .expect(200);
    let members = format!("/api/v1/groups/{}/members", admins["items"][0]["id"]);
    core.api
        .post(&members, json!({"user_id": user["id"]}))
        .await
        .expect(204);
    let created = core
        .api
        .post("/api/v1/tokens", json!({"user_id": user["id"]}))
        .await
        .expect(201);
    let api = core.api_with(created["secret"].as_str().expect("secret"));
    api.get("/api/v1/users").await.expect(200);
    core.api
        .patch(
            &format!("/api/v1/users/{}", user["id"]),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    api.get("/api/v1/users").await.expect(401);
}

#[tokio::test]
async fn token_lifetimes_are_bounded_and_the_problem_names_the_maximum() {
    let core = TestCore::start().await;
    let refused = core
        .api
        .post(
            "/api/v1/tokens",
            json!({"description": "forever", "expires_in_seconds": 365 * 86_400 + 1}),
        )
        .await
        .expect(400);
    assert_eq!(
        refused["detail"],
        "expires_in_seconds: must be from 1 to 31536000 (365 days)"
    );
    // Without a lifetime an API token lives the maximum, not forever.
    let created = core
        .api
        .post("/api/v1/tokens", json!({"description": "ci"}))
        .await
        .expect(201);
    let api = core.api_with(created["secret"].as_str().expect("secret"));
    assert!(created["token"]["expires_at"].is_string(), "{created}");
    core.clock.advance(365 * 86_400 - 10);
    api.get("/api/v1/groups").await.expect(200);
    core.clock.advance(11);
    api.get("/api/v1/groups").await.expect(401);

    let login = redoubt_tests::Api::new(&core.url, "");
    let refused = login
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": redoubt_tests::ADMIN_PASSWORD,
                   "expires_in_seconds": 86_401}),
        )
        .await
        .expect(400);
    assert_eq!(
        refused["detail"],
        "expires_in_seconds: must be from 1 to 86400 (24 hours)"
    );
    login
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": redoubt_tests::ADMIN_PASSWORD,
                   "expires_in_seconds": 86_400}),
        )
        .await
        .expect(201);
}
