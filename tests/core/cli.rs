//! The `redoubt-core` binary: healthcheck and the admin CLI driving a real core.

use redoubt_tests::{TestCore, core_binary};

pub(crate) async fn cli(core: &TestCore, token: &str, args: &[&str]) -> (i32, String, String) {
    cli_with_stdin(core, token, args, "").await
}

pub(crate) async fn cli_with_stdin(
    core: &TestCore,
    token: &str,
    args: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(core_binary());
    if !args.contains(&"--url") {
        command.args(["--url", &core.url]);
    }
    let mut child = command
        .args(args)
        .env("REDOUBT_TOKEN", token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run redoubt-core");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let output = child.wait_with_output().await.expect("wait");
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

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn a_person_sets_up_an_ldap_outpost_with_the_cli_alone() {
    let core = TestCore::start().await;
    // Log in with the admin password; the token is the only thing on stdout.
    let (code, token, stderr) = cli_with_stdin(
        &core,
        "",
        &["login", "--username", "admin", "--password-stdin"],
        &format!("{}\n", redoubt_tests::ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("rdt_"), "{token}");

    let (code, out, err) = cli_with_stdin(
        &core,
        &token,
        &[
            "users",
            "create",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
            "--json",
        ],
        "alice-password\n",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let alice = json(&out)["id"].as_i64().expect("id");
    let (code, out, err) = cli(&core, &token, &["groups", "create", "mail-users", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let group = json(&out)["id"].as_i64().expect("id");
    let (code, _, err) = cli(
        &core,
        &token,
        &[
            "groups",
            "add-member",
            &group.to_string(),
            &alice.to_string(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        &core,
        &token,
        &[
            "providers",
            "create",
            "mail-ldap",
            "--kind",
            "ldap",
            "--base-dn",
            "dc=example,dc=com",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let provider = json(&out)["id"].as_i64().expect("id");
    let (code, out, err) = cli(
        &core,
        &token,
        &[
            "apps",
            "create",
            "mail",
            "--name",
            "Mail",
            "--provider",
            &provider.to_string(),
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let app = json(&out)["id"].as_i64().expect("id");
    let (code, _, err) = cli(
        &core,
        &token,
        &["apps", "bind", &app.to_string(), &group.to_string()],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(
        &core,
        &token,
        &[
            "outposts",
            "create",
            "ldap-1",
            "--kind",
            "ldap",
            "--provider",
            &provider.to_string(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("REDOUBT_URL="), "{out}");
    assert!(
        out.contains("systemctl enable --now redoubt-outpost@ldap-1"),
        "{out}"
    );
    assert!(out.contains("podman run"), "{out}");
    let outpost_token = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("REDOUBT_TOKEN="))
        .expect("token line")
        .to_owned();

    // The outpost token cannot list users; the CLI says why.
    let (code, _, err) = cli(&core, &outpost_token, &["users", "list"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 403"), "{err}");

    // Tables for people.
    let (code, out, _) = cli(&core, &token, &["users", "list"]).await;
    assert_eq!(code, 0);
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("USERNAME") && header.contains("EMAIL"),
        "{out}"
    );
    assert!(out.contains("alice@example.com"));
    let (code, out, _) = cli(
        &core,
        &token,
        &["events", "list", "--action", "outpost_create"],
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("ldap-1"), "{out}");
    let (code, out, _) = cli(&core, &token, &["apps", "show", &app.to_string()]).await;
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("group_ids") && l.contains(&group.to_string())),
        "{out}"
    );
}

#[tokio::test]
async fn cli_errors_are_one_readable_line() {
    let core = TestCore::start().await;
    let (code, _, err) = cli(&core, "", &["users", "list"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("REDOUBT_TOKEN"), "{err}");
    let (code, _, err) = cli(&core, "rdt_nope", &["users", "list"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 401"), "{err}");
    let (code, _, err) = cli(&core, &core.admin_token, &["users", "show", "999"]).await;
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: user not found (HTTP 404)");
    let (code, _, err) = cli(
        &core,
        &core.admin_token,
        &["--url", "http://127.0.0.1:1", "users", "list"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: cannot reach the core at http://127.0.0.1:1"),
        "{err}"
    );
}
