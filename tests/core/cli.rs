//! The `redoubt-core` binary: healthcheck and the admin CLI driving a real core.

use redoubt_tests::{TestCore, core_binary};

async fn cli(core: &TestCore, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(core_binary())
        .args(["--url", &core.url, "--token", token])
        .args(args)
        .env_remove("REDOUBT_TOKEN")
        .output()
        .await
        .expect("run redoubt-core");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn healthcheck_exits_zero_when_ready_and_one_when_not() {
    let core = TestCore::start().await;
    let ok = tokio::process::Command::new(core_binary())
        .args(["healthcheck", "--url", &core.metrics_url])
        .status()
        .await
        .expect("run");
    assert!(ok.success());
    let down = tokio::process::Command::new(core_binary())
        .args(["healthcheck", "--url", "http://127.0.0.1:1"])
        .output()
        .await
        .expect("run");
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).starts_with("not ready: "));
}

#[tokio::test]
async fn info_over_the_cli() {
    let core = TestCore::start().await;
    let (code, stdout, stderr) = cli(&core, &core.admin_token, &["info", "--json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let info: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(info["protocol_version"], 1);
}
