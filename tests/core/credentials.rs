//! The outpost-facing credential check: passwords, TOTP, access, brute-force limits, events.

use redoubt_core::auth::totp;
use redoubt_core::clock::Clock;
use redoubt_tests::{Api, TestCore};
use serde_json::{Value, json};

struct Setup {
    outpost: Api,
    provider_id: i64,
    user_id: i64,
    app_id: i64,
    group_id: i64,
}

async fn setup(core: &TestCore) -> Setup {
    let user = core
        .api
        .post(
            "/api/v1/users",
            json!({"username": "alice", "name": "Alice", "password": "alice-password"}),
        )
        .await
        .expect(201);
    let group = core
        .api
        .post("/api/v1/groups", json!({"name": "mail-users"}))
        .await
        .expect(201);
    let parent = core
        .api
        .post("/api/v1/groups", json!({"name": "everyone"}))
        .await
        .expect(201);
    core.api
        .patch(
            &format!("/api/v1/groups/{}", group["id"]),
            json!({"parent_id": parent["id"]}),
        )
        .await
        .expect(200);
    core.api
        .post(
            &format!("/api/v1/groups/{}/members", group["id"]),
            json!({"user_id": user["id"]}),
        )
        .await
        .expect(204);
    let provider = core
        .api
        .post("/api/v1/providers", json!({"name": "mail-ldap", "kind": "ldap", "settings": {"base_dn": "dc=example,dc=com"}}))
        .await
        .expect(201);
    let app = core
        .api
        .post(
            "/api/v1/applications",
            json!({"slug": "mail", "name": "Mail", "provider_id": provider["id"]}),
        )
        .await
        .expect(201);
    let outpost = core
        .api
        .post(
            "/api/v1/outposts",
            json!({"name": "ldap", "kind": "ldap", "provider_ids": [provider["id"]]}),
        )
        .await
        .expect(201);
    Setup {
        outpost: core.api_with(outpost["token"].as_str().expect("token")),
        provider_id: provider["id"].as_i64().expect("id"),
        user_id: user["id"].as_i64().expect("id"),
        app_id: app["id"].as_i64().expect("id"),
        group_id: group["id"].as_i64().expect("id"),
    }
}

async fn verify(s: &Setup, username: &str, password: &str, source: &str) -> Value {
    s.outpost
        .post(
            "/api/v1/outpost/credentials/verify",
            json!({"provider_id": s.provider_id, "username": username, "password": password, "source_address": source}),
        )
        .await
        .expect(200)
}

#[tokio::test]
async fn success_returns_identity_and_nested_groups_failures_say_little() {
    let core = TestCore::start().await;
    let s = setup(&core).await;
    let ok = verify(&s, "alice", "alice-password", "192.0.2.1").await;
    assert_eq!(ok["result"], "success", "{ok}");
    assert_eq!(ok["user"]["username"], "alice");
    let groups: Vec<&str> = ok["user"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(groups, vec!["mail-users", "everyone"]);
    let wrong = verify(&s, "alice", "nope", "192.0.2.1").await;
    let unknown = verify(&s, "mallory", "nope", "192.0.2.1").await;
    assert_eq!(
        wrong,
        json!({"result": "failure", "reason": "invalid_credentials"})
    );
    assert_eq!(
        unknown, wrong,
        "unknown user and wrong password look the same"
    );
    core.api
        .patch(
            &format!("/api/v1/users/{}", s.user_id),
            json!({"is_active": false}),
        )
        .await
        .expect(200);
    assert_eq!(
        verify(&s, "alice", "alice-password", "192.0.2.1").await,
        wrong
    );
    // Every attempt is an event with the reported source address and the real reason.
    let events = core
        .api
        .get("/api/v1/events?action=credential_check&target=alice&source_address=192.0.2.1")
        .await
        .expect(200);
    assert_eq!(events["total"], 3);
    assert_eq!(events["items"][0]["detail"]["reason"], "inactive_user");
    assert_eq!(events["items"][1]["detail"]["reason"], "wrong_password");
    assert_eq!(events["items"][2]["outcome"], "success");
}

#[tokio::test]
async fn application_access_follows_bound_groups() {
    let core = TestCore::start().await;
    let s = setup(&core).await;
    let other = core
        .api
        .post("/api/v1/groups", json!({"name": "finance"}))
        .await
        .expect(201);
    let bind = format!("/api/v1/applications/{}/groups", s.app_id);
    core.api
        .post(&bind, json!({"group_id": other["id"]}))
        .await
        .expect(204);
    let denied = verify(&s, "alice", "alice-password", "").await;
    assert_eq!(
        denied,
        json!({"result": "failure", "reason": "access_denied"})
    );
    // Binding alice's group's parent grants access through nesting.
    let parent = core
        .api
        .get(&format!("/api/v1/groups/{}", s.group_id))
        .await
        .expect(200)["parent_id"]
        .clone();
    core.api
        .post(&bind, json!({"group_id": parent}))
        .await
        .expect(204);
    assert_eq!(
        verify(&s, "alice", "alice-password", "").await["result"],
        "success"
    );
}

#[tokio::test]
async fn totp_in_one_field_or_separately_and_never_twice() {
    let core = TestCore::start().await;
    let s = setup(&core).await;
    let enrolled = core
        .api
        .post(
            &format!("/api/v1/users/{}/totp", s.user_id),
            json!({"name": "phone"}),
        )
        .await
        .expect(201);
    assert!(
        enrolled["otpauth_uri"]
            .as_str()
            .unwrap_or_default()
            .starts_with("otpauth://totp/Redoubt:alice?secret=")
    );
    let secret = data_encoding::BASE32_NOPAD
        .decode(enrolled["secret"].as_str().expect("secret").as_bytes())
        .expect("base32");
    let code_at = |t: i64| totp::hotp(&secret, u64::try_from(totp::step_at(t)).expect("positive"));
    let missing = verify(&s, "alice", "alice-password", "").await;
    assert_eq!(
        missing,
        json!({"result": "failure", "reason": "mfa_required"})
    );
    let code = code_at(core.clock.now());
    let ok = verify(&s, "alice", &format!("alice-password;{code}"), "").await;
    assert_eq!(ok["result"], "success", "{ok}");
    let replay = verify(&s, "alice", &format!("alice-password;{code}"), "").await;
    assert_eq!(replay["reason"], "invalid_credentials", "a code works once");
    core.clock.advance(30);
    let separate = s
        .outpost
        .post(
            "/api/v1/outpost/credentials/verify",
            json!({"provider_id": s.provider_id, "username": "alice", "password": "alice-password", "totp_code": code_at(core.clock.now())}),
        )
        .await
        .expect(200);
    assert_eq!(separate["result"], "success", "{separate}");
    let wrong_code = verify(&s, "alice", "alice-password;000000", "").await;
    assert_eq!(wrong_code["reason"], "invalid_credentials");
    // Removing the device removes the requirement.
    let devices = core
        .api
        .get(&format!("/api/v1/users/{}/totp", s.user_id))
        .await
        .expect(200);
    core.api
        .delete(&format!(
            "/api/v1/users/{}/totp/{}",
            s.user_id, devices[0]["id"]
        ))
        .await
        .expect(204);
    assert_eq!(
        verify(&s, "alice", "alice-password", "").await["result"],
        "success"
    );
}

#[tokio::test]
async fn brute_force_locks_the_source_user_pair_and_a_spraying_source() {
    let core = TestCore::start().await;
    let s = setup(&core).await;
    for _ in 0..5 {
        assert_eq!(
            verify(&s, "alice", "guess", "198.51.100.7").await["reason"],
            "invalid_credentials"
        );
    }
    // Locked: even the right password is refused from that address, but not from another.
    let locked = verify(&s, "alice", "alice-password", "198.51.100.7").await;
    assert_eq!(
        locked,
        json!({"result": "failure", "reason": "rate_limited"})
    );
    assert_eq!(
        verify(&s, "alice", "alice-password", "203.0.113.9").await["result"],
        "success"
    );
    core.clock.advance(60);
    assert_eq!(
        verify(&s, "alice", "alice-password", "198.51.100.7").await["result"],
        "success"
    );
    // One address spraying many users is stopped once 20 distinct users failed there.
    for i in 0..20 {
        verify(&s, &format!("user{i}"), "guess", "198.51.100.99").await;
    }
    let sprayed = verify(&s, "alice", "alice-password", "198.51.100.99").await;
    assert_eq!(sprayed["reason"], "rate_limited");
    assert_eq!(
        verify(&s, "alice", "alice-password", "198.51.100.100").await["result"],
        "success"
    );
    // The API login shares the limit machinery and answers 429.
    for _ in 0..5 {
        Api::new(&core.url, "")
            .post(
                "/api/v1/auth/login",
                json!({"username": "admin", "password": "guess"}),
            )
            .await
            .expect(401);
    }
    Api::new(&core.url, "")
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": redoubt_tests::ADMIN_PASSWORD}),
        )
        .await
        .expect(429);
}
