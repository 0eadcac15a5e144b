//! The examples in `examples/` load as written.

use redoubt_core::config::{CoreSettings, load};
use std::path::PathBuf;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn core_toml_loads_with_every_key_known() {
    let loaded = load::<CoreSettings>(
        Some(&examples().join("config/core.toml")),
        Vec::new(),
        Vec::new(),
        &[],
    )
    .expect("examples/config/core.toml loads");
    let s = loaded.settings;
    assert_eq!(s.listen.http, "0.0.0.0:9000");
    assert_eq!(s.password_hash.memory_kib, 19456);
    assert_eq!(s.lockout.spray_distinct_users, 20);
    assert_eq!(s.events.retention_days, 90);
}

#[test]
fn core_env_sets_only_known_variables() {
    let text = std::fs::read_to_string(examples().join("core.env")).expect("read core.env");
    let env: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert!(!env.is_empty());
    let loaded = load::<CoreSettings>(None, env, Vec::new(), &[]).expect("core.env loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.settings.log_format, "json");
    // The commented variables are known too (uncommenting them must not warn).
    let commented: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.starts_with("REDOUBT_") && !l.contains("_FILE="))
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let loaded = load::<CoreSettings>(None, commented, Vec::new(), &[]).expect("loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[tokio::test]
async fn provider_settings_examples_are_accepted_by_the_core() {
    let core = redoubt_tests::TestCore::start().await;
    let group = core
        .api
        .post("/api/v1/groups", serde_json::json!({"name": "ldap-search"}))
        .await
        .expect(201);
    // The core checks that the groups settings name exist: the RADIUS example's reply rules
    // name these two.
    for name in ["network-admins", "staff"] {
        core.create_group(name).await;
    }
    for (kind, file) in [
        ("ldap", "providers/ldap-settings.json"),
        ("radius", "providers/radius-settings.json"),
        ("rac", "providers/rac-settings.json"),
    ] {
        let text = std::fs::read_to_string(examples().join(file)).expect("read example");
        let mut settings: serde_json::Value = serde_json::from_str(&text).expect(file);
        if kind == "ldap" {
            settings["search_group_id"] = group["id"].clone();
        }
        let created = core
            .api
            .post(
                "/api/v1/providers",
                serde_json::json!({"name": kind, "kind": kind, "settings": settings}),
            )
            .await
            .expect(201);
        assert_eq!(created["kind"], kind, "{file}");
    }
}
