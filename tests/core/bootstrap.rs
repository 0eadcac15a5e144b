//! First start: admin user, superuser group, bootstrap token, generated secrets.

use redoubt_tests::{ADMIN_PASSWORD, CoreOptions, TestCore};
use serde_json::json;

#[tokio::test]
async fn bootstrap_creates_admin_in_superuser_group_and_token() {
    let core = TestCore::start().await;
    let users = core.api.get("/api/v1/users").await.expect(200);
    assert_eq!(users["total"], 1);
    let admin = &users["items"][0];
    assert_eq!(admin["username"], "admin");
    let detail = core
        .api
        .get(&format!("/api/v1/users/{}", admin["id"]))
        .await
        .expect(200);
    assert_eq!(detail["groups"][0]["name"], "admins");
    let groups = core.api.get("/api/v1/groups").await.expect(200);
    assert_eq!(groups["items"][0]["is_superuser"], true);
    // The configured password logs in and yields a working admin token.
    let login = redoubt_tests::Api::new(&core.url, "")
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await
        .expect(201);
    let token = login["secret"].as_str().expect("secret");
    core.api_with(token).get("/api/v1/users").await.expect(200);
}

#[tokio::test]
async fn generated_password_is_written_privately_and_restart_changes_nothing() {
    let mut core = TestCore::start_with(CoreOptions {
        tweak: Some(Box::new(|s| s.bootstrap_password = Default::default())),
    })
    .await;
    let file = core.data_dir().join("bootstrap-credentials.txt");
    let text = std::fs::read_to_string(&file).expect("credentials file");
    let password = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("password line");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let key = core.data_dir().join("secret.key");
    assert_eq!(
        std::fs::metadata(&key).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let key_before = std::fs::read(&key).expect("key");
    redoubt_tests::Api::new(&core.url, "")
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": password}),
        )
        .await
        .expect(201);
    core.restart().await;
    assert_eq!(
        std::fs::read(&key).expect("key"),
        key_before,
        "secret key kept"
    );
    assert_eq!(
        core.api.get("/api/v1/users").await.expect(200)["total"],
        1,
        "no second admin"
    );
    let tokens = core.api.get("/api/v1/tokens").await.expect(200);
    let bootstrap_tokens = tokens
        .as_array()
        .expect("list")
        .iter()
        .filter(|t| t["description"] == "bootstrap token")
        .count();
    assert_eq!(
        bootstrap_tokens, 1,
        "bootstrap token created once: {tokens}"
    );
}
