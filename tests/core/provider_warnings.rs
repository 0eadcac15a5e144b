//! LDAP and RADIUS providers bound to no application are reported when created or unbound (the
//! API's `warnings`, the CLI's `warning:` lines, each naming the fix), and the groups provider
//! settings name must exist.

use crate::cli::cli;
use redoubt_tests::TestCore;
use serde_json::{Value, json};

const FIX: &str = "redoubt-core applications create SLUG --name NAME --provider";

fn warnings(body: &Value) -> Vec<String> {
    body["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn radius_settings() -> Value {
    json!({"shared_secret": "a-long-shared-secret", "client_networks": ["127.0.0.0/8"]})
}

#[tokio::test]
async fn the_api_warns_when_a_credential_provider_is_left_unbound() {
    let core = TestCore::start().await;
    let created = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings": {"base_dn": "dc=example,dc=com"}}),
        )
        .await
        .expect(201);
    let id = created["id"].as_i64().expect("id");
    let listed = warnings(&created);
    assert_eq!(listed.len(), 1, "{created}");
    assert!(listed[0].starts_with("ldap provider \"dir\""), "{created}");
    assert!(listed[0].ends_with(&format!("{FIX} {id}")), "{created}");
    // Still unbound after an update: said again.
    let updated = core
        .api
        .patch(&format!("/api/v1/providers/{id}"), json!({"name": "dir2"}))
        .await
        .expect(200);
    assert_eq!(warnings(&updated).len(), 1, "{updated}");

    // Bound: nothing to say.
    let app = core
        .api
        .post(
            "/api/v1/applications",
            json!({"slug": "mail", "name": "Mail", "provider_id": id}),
        )
        .await
        .expect(201);
    let app_id = app["id"].as_i64().expect("id");
    assert!(app.get("warnings").is_none(), "{app}");
    let bound = core
        .api
        .patch(&format!("/api/v1/providers/{id}"), json!({"name": "dir"}))
        .await
        .expect(200);
    assert!(bound.get("warnings").is_none(), "{bound}");
    let renamed = core
        .api
        .patch(
            &format!("/api/v1/applications/{app_id}"),
            json!({"name": "Webmail"}),
        )
        .await
        .expect(200);
    assert!(renamed.get("warnings").is_none(), "{renamed}");

    // Detached from its application: the provider is unbound again.
    let detached = core
        .api
        .patch(
            &format!("/api/v1/applications/{app_id}"),
            json!({"provider_id": null}),
        )
        .await
        .expect(200);
    let listed = warnings(&detached);
    assert_eq!(listed.len(), 1, "{detached}");
    assert!(listed[0].contains(&format!("{FIX} {id}")), "{detached}");

    // Deleting the application that serves a RADIUS provider: 200 with the warning. Deleting
    // one that serves no credential provider: 204 as before.
    let radius = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "wifi", "kind": "radius", "settings": radius_settings()}),
        )
        .await
        .expect(201);
    let radius_id = radius["id"].as_i64().expect("id");
    let wifi = core
        .api
        .post(
            "/api/v1/applications",
            json!({"slug": "wifi", "name": "Wi-Fi", "provider_id": radius_id}),
        )
        .await
        .expect(201);
    let deleted = core
        .api
        .delete(&format!(
            "/api/v1/applications/{}",
            wifi["id"].as_i64().expect("id")
        ))
        .await
        .expect(200);
    let listed = warnings(&deleted);
    assert_eq!(listed.len(), 1, "{deleted}");
    assert!(
        listed[0].starts_with("radius provider \"wifi\""),
        "{deleted}"
    );
    core.api
        .delete(&format!("/api/v1/applications/{app_id}"))
        .await
        .expect(204);

    // Proxy providers are not credential providers: no warning.
    let proxy = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "web", "kind": "proxy", "settings":
                   {"mode": "forward_single", "external_host": "https://app.example.com"}}),
        )
        .await
        .expect(201);
    assert!(proxy.get("warnings").is_none(), "{proxy}");
}

#[tokio::test]
async fn groups_named_in_provider_settings_must_exist() {
    let core = TestCore::start().await;
    let staff = core.create_group("staff").await;
    let missing = staff + 1000;

    let refused = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings":
                   {"base_dn": "dc=example,dc=com", "search_group_id": missing}}),
        )
        .await
        .expect(400);
    let detail = refused["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!(
            "settings.search_group_id: no group has id {missing}"
        )),
        "{refused}"
    );
    assert!(detail.contains("redoubt-core groups list"), "{refused}");
    let dir = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "dir", "kind": "ldap", "settings":
                   {"base_dn": "dc=example,dc=com", "search_group_id": staff}}),
        )
        .await
        .expect(201);
    let dir_id = dir["id"].as_i64().expect("id");
    let refused = core
        .api
        .patch(
            &format!("/api/v1/providers/{dir_id}"),
            json!({"settings": {"base_dn": "dc=example,dc=com", "search_group_id": missing}}),
        )
        .await
        .expect(400);
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("settings.search_group_id:")),
        "{refused}"
    );

    let mut settings = radius_settings();
    settings["reply_rules"] = json!([{"group": "staff", "filter_id": "a"},
                                     {"group": "contractors", "filter_id": "b"}]);
    let refused = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "wifi", "kind": "radius", "settings": settings}),
        )
        .await
        .expect(400);
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d
                .starts_with("settings.reply_rules[1].group: no group is named \"contractors\"")),
        "{refused}"
    );

    let refused = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "desk", "kind": "rac", "settings": {
                "external_host": "https://desk.example.com",
                "endpoints": [{"name": "box", "host": "10.0.0.1:3389", "group_ids": [staff, missing]}],
            }}),
        )
        .await
        .expect(400);
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!(
                "settings.endpoints[0].group_ids: no group has id {missing}"
            ))),
        "{refused}"
    );
}

#[tokio::test]
async fn the_cli_prints_the_warning_with_the_fix() {
    let core = TestCore::start().await;
    let (code, stdout, stderr) = cli(
        &core,
        &core.admin_token,
        &[
            "providers",
            "create",
            "dir",
            "--kind",
            "ldap",
            "--base-dn",
            "dc=example,dc=com",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("warning: ldap provider \"dir\""))
        .unwrap_or_else(|| panic!("no warning line: {stderr}"));
    let id = core
        .api
        .get("/api/v1/providers?search=dir")
        .await
        .expect(200)["items"][0]["id"]
        .as_i64()
        .expect("id");
    assert!(line.ends_with(&format!("{FIX} {id}")), "{line}");
    assert!(
        !stdout.contains("warnings"),
        "the warning is not repeated in the table: {stdout}"
    );

    // The fix the warning names works, and then nothing is printed.
    let id_text = id.to_string();
    let (code, stdout, stderr) = cli(
        &core,
        &core.admin_token,
        &[
            "applications",
            "create",
            "mail",
            "--name",
            "Mail",
            "--provider",
            &id_text,
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stderr.contains("warning:"), "{stderr}");
    let app_id = core
        .api
        .get("/api/v1/applications?search=mail")
        .await
        .expect(200)["items"][0]["id"]
        .as_i64()
        .expect("id")
        .to_string();
    let (code, stdout, stderr) = cli(
        &core,
        &core.admin_token,
        &["applications", "delete", &app_id],
    )
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("deleted application"), "{stdout}");
    assert!(
        stderr.contains(&format!("warning: ldap provider \"dir\" (id {id})")),
        "{stderr}"
    );
}
