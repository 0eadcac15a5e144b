//! Users, groups, applications and providers through the REST API.

use redoubt_tests::TestCore;
use serde_json::json;

#[tokio::test]
async fn user_crud_search_and_pagination() {
    let core = TestCore::start().await;
    for i in 0..25 {
        core.api
            .post(
                "/api/v1/users",
                json!({"username": format!("user{i:02}"), "email": format!("u{i}@example.com")}),
            )
            .await
            .expect(201);
    }
    let page = core
        .api
        .get("/api/v1/users?search=USER1&page_size=5")
        .await
        .expect(200);
    assert_eq!(page["total"], 10);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(5));
    let page2 = core
        .api
        .get("/api/v1/users?search=user1&page_size=5&page=2")
        .await
        .expect(200);
    assert_eq!(page2["items"][0]["username"], "user15");
    // A search term with LIKE wildcards matches literally.
    assert_eq!(
        core.api.get("/api/v1/users?search=%25").await.expect(200)["total"],
        0
    );

    let created = core
        .api
        .post("/api/v1/users", json!({"username": "carol", "name": "Carol", "attributes": {"dept": "ops"}, "password": "carol-password"}))
        .await
        .expect(201);
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["has_password"], true);
    let updated = core
        .api
        .patch(
            &format!("/api/v1/users/{id}"),
            json!({"email": "carol@example.com", "is_active": false}),
        )
        .await
        .expect(200);
    assert_eq!(updated["email"], "carol@example.com");
    assert_eq!(updated["is_active"], false);
    assert_eq!(updated["attributes"]["dept"], "ops");
    core.api
        .put(
            &format!("/api/v1/users/{id}/password"),
            json!({"password": "short"}),
        )
        .await
        .expect(400);
    core.api
        .put(
            &format!("/api/v1/users/{id}/password"),
            json!({"password": "a-new-password"}),
        )
        .await
        .expect(204);
    core.api
        .delete(&format!("/api/v1/users/{id}"))
        .await
        .expect(204);
    core.api
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(404);
}

#[tokio::test]
async fn groups_nest_without_cycles_and_hold_members() {
    let core = TestCore::start().await;
    let parent = core
        .api
        .post("/api/v1/groups", json!({"name": "staff"}))
        .await
        .expect(201);
    let child = core
        .api
        .post(
            "/api/v1/groups",
            json!({"name": "engineers", "parent_id": parent["id"]}),
        )
        .await
        .expect(201);
    let cycle = core
        .api
        .patch(
            &format!("/api/v1/groups/{}", parent["id"]),
            json!({"parent_id": child["id"]}),
        )
        .await
        .expect(400);
    assert!(
        cycle["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("parent_id"),
        "{cycle}"
    );
    let user = core
        .api
        .post("/api/v1/users", json!({"username": "dave"}))
        .await
        .expect(201);
    let members = format!("/api/v1/groups/{}/members", child["id"]);
    core.api
        .post(&members, json!({"user_id": user["id"]}))
        .await
        .expect(204);
    core.api
        .post(&members, json!({"user_id": user["id"]}))
        .await
        .expect(204);
    let list = core.api.get(&members).await.expect(200);
    assert_eq!(list[0]["username"], "dave");
    core.api
        .post(&members, json!({"user_id": 999_999}))
        .await
        .expect(404);
    core.api
        .delete(&format!("{members}/{}", user["id"]))
        .await
        .expect(204);
    core.api
        .delete(&format!("{members}/{}", user["id"]))
        .await
        .expect(404);
    let detached = core
        .api
        .patch(
            &format!("/api/v1/groups/{}", child["id"]),
            json!({"parent_id": null}),
        )
        .await
        .expect(200);
    assert_eq!(detached["parent_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn applications_bind_groups_and_providers_validate_settings() {
    let core = TestCore::start().await;
    let bad = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings": {"base_dn": "nonsense"}}),
        )
        .await
        .expect(400);
    assert!(
        bad["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("settings.base_dn"),
        "{bad}"
    );
    let unknown = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings": {"base_dn": "dc=x", "colour": 1}}),
        )
        .await
        .expect(400);
    assert!(
        unknown["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{unknown}"
    );
    core.api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "gopher", "settings": {}}),
        )
        .await
        .expect(400);
    let radius = core
        .api
        .post("/api/v1/providers", json!({"name": "wifi", "kind": "radius", "settings": {"shared_secret": "0123456789", "client_networks": ["10.0.0.0/8", "300.1.1.1"]}}))
        .await
        .expect(400);
    assert!(
        radius["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("client_networks"),
        "{radius}"
    );
    let provider = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings": {"base_dn": "dc=example,dc=com"}}),
        )
        .await
        .expect(201);
    assert_eq!(
        provider["settings"]["uid_start_number"], 2000,
        "defaults filled in"
    );
    let app = core
        .api
        .post("/api/v1/applications", json!({"slug": "wiki", "name": "Wiki", "launch_url": "https://wiki.example.com", "provider_id": provider["id"]}))
        .await
        .expect(201);
    core.api
        .post(
            "/api/v1/applications",
            json!({"slug": "Not A Slug", "name": "x"}),
        )
        .await
        .expect(400);
    let group = core
        .api
        .post("/api/v1/groups", json!({"name": "wiki-users"}))
        .await
        .expect(201);
    let bind = format!("/api/v1/applications/{}/groups", app["id"]);
    core.api
        .post(&bind, json!({"group_id": group["id"]}))
        .await
        .expect(204);
    let read = core
        .api
        .get(&format!("/api/v1/applications/{}", app["id"]))
        .await
        .expect(200);
    assert_eq!(read["group_ids"], json!([group["id"]]));
    core.api
        .delete(&format!("{bind}/{}", group["id"]))
        .await
        .expect(204);
    let patched = core
        .api
        .patch(
            &format!("/api/v1/providers/{}", provider["id"]),
            json!({"settings": {"base_dn": "dc=corp,dc=example"}}),
        )
        .await
        .expect(200);
    assert_eq!(patched["settings"]["base_dn"], "dc=corp,dc=example");
    let unbound = core
        .api
        .patch(
            &format!("/api/v1/applications/{}", app["id"]),
            json!({"provider_id": null}),
        )
        .await
        .expect(200);
    assert_eq!(unbound["provider_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn every_change_bumps_the_revision() {
    let core = TestCore::start().await;
    let before = core.api.get("/api/v1/info").await.expect(200)["revision"]
        .as_i64()
        .expect("rev");
    let user = core
        .api
        .post("/api/v1/users", json!({"username": "erin"}))
        .await
        .expect(201);
    let after_create = core.api.get("/api/v1/info").await.expect(200)["revision"]
        .as_i64()
        .expect("rev");
    assert!(after_create > before);
    core.api
        .put(
            &format!("/api/v1/users/{}/password", user["id"]),
            json!({"password": "erin-password"}),
        )
        .await
        .expect(204);
    let after_password = core.api.get("/api/v1/info").await.expect(200)["revision"]
        .as_i64()
        .expect("rev");
    assert!(after_password > after_create);
    // A read changes nothing.
    core.api.get("/api/v1/users").await.expect(200);
    assert_eq!(
        core.api.get("/api/v1/info").await.expect(200)["revision"].as_i64(),
        Some(after_password)
    );
}
