//! Secrets at rest: private modes whatever the umask, the secret key fingerprint, the bootstrap
//! password kept out of logs, secret provider settings shown only on request.

use redoubt_tests::{TestCore, core_binary};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `redoubt-core <args>` under `umask`, JSON logs, no configured bootstrap password.
fn core_command(umask: &str, data_dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(core_binary())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("REDOUBT_LOG_FORMAT", "json")
        .env("REDOUBT_LOG_LEVEL", "debug")
        .env("REDOUBT_PASSWORD_HASH__MEMORY_KIB", "64")
        .env("REDOUBT_PASSWORD_HASH__ITERATIONS", "1")
        .env("REDOUBT_EMBEDDED_OUTPOST__ENABLED", "false")
        .env_remove("REDOUBT_BOOTSTRAP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

fn generated_password(data_dir: &Path) -> String {
    let text = std::fs::read_to_string(data_dir.join("bootstrap-credentials.txt"))
        .expect("credentials file");
    text.lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("password line")
        .to_owned()
}

#[tokio::test]
async fn data_dir_database_key_and_bootstrap_file_are_private_whatever_the_umask() {
    for umask in ["0000", "0022"] {
        let parent = tempfile::tempdir().expect("tempdir");
        let data = parent.path().join("data");
        let mut child = core_command(
            umask,
            &data,
            &[
                "serve",
                "--listen-http",
                "127.0.0.1:0",
                "--listen-metrics",
                "127.0.0.1:0",
                "--listen-https",
                "",
            ],
        )
        .spawn()
        .expect("run redoubt-core");
        // Ready once it prints its URL; the server holds the database open, so the WAL and
        // shared-memory files exist now.
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut output = String::new();
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            output.push_str(&line);
            output.push('\n');
            if line.starts_with("Redoubt core is up at ") {
                break;
            }
        }
        assert!(output.contains("Redoubt core is up at"), "{output}");
        assert_eq!(mode(&data), 0o700, "data dir under umask {umask}");
        for file in [
            "redoubt.db",
            "redoubt.db-wal",
            "redoubt.db-shm",
            "secret.key",
            "bootstrap-credentials.txt",
        ] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file} under umask {umask}");
        }
        // Piped stderr is a log, not a terminal: the password is only in the file.
        let password = generated_password(&data);
        assert!(
            !output.contains(&password),
            "password in the log:\n{output}"
        );
        assert!(output.contains("bootstrap-credentials.txt"), "{output}");
        child.kill().await.expect("kill");
    }
}

#[tokio::test]
async fn migrate_on_a_fresh_database_keeps_the_bootstrap_password_out_of_logs() {
    for format in ["json", "text"] {
        let parent = tempfile::tempdir().expect("tempdir");
        let data = parent.path().join("data");
        let output = core_command("0022", &data, &["migrate"])
            .env("REDOUBT_LOG_FORMAT", format)
            .output()
            .await
            .expect("run migrate");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let password = generated_password(&data);
        assert!(
            !stderr.contains(&password),
            "password in {format} logs:\n{stderr}"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains(&password));
        assert!(stderr.contains("bootstrap-credentials.txt"), "{stderr}");
        assert_eq!(mode(&data.join("bootstrap-credentials.txt")), 0o600);
        assert_eq!(mode(&data.join("redoubt.db")), 0o600);
    }
}

#[tokio::test]
async fn a_second_core_with_another_key_or_none_refuses_to_start() {
    let core = TestCore::start().await;
    let url = core.settings.database_url.clone();
    let other = tempfile::tempdir().expect("tempdir");
    let run = |key: Option<&str>| {
        let mut command = core_command(
            "0022",
            other.path(),
            &[
                "serve",
                "--listen-http",
                "127.0.0.1:0",
                "--listen-metrics",
                "127.0.0.1:0",
                "--listen-https",
                "",
                "--database-url",
                &url,
            ],
        );
        command.env("REDOUBT_LOG_LEVEL", "error");
        match key {
            Some(key) => command.env("REDOUBT_SECRET_KEY", key),
            None => command.env_remove("REDOUBT_SECRET_KEY"),
        };
        command.output()
    };
    let output = run(Some(&"k".repeat(40))).await.expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: the secret key does not match the one this database was set up with: start \
             this core with that key"
        ),
        "{stderr}"
    );
    let output = run(None).await.expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("neither REDOUBT_SECRET_KEY nor") && stderr.contains("copy secret.key"),
        "{stderr}"
    );
    assert!(
        !other.path().join("secret.key").exists(),
        "no second key is generated"
    );
    // The first core is untouched.
    core.api.get("/api/v1/users").await.expect(200);
}

#[tokio::test]
async fn radius_shared_secret_is_shown_only_when_asked_for() {
    let core = TestCore::start().await;
    let secret = "wifi-shared-secret-42";
    let created = core
        .api
        .post(
            "/api/v1/providers",
            json!({"name": "wifi", "kind": "radius",
                   "settings": {"shared_secret": secret, "client_networks": ["10.0.0.0/8"]}}),
        )
        .await
        .expect(201);
    let id = created["id"].as_i64().expect("id");
    let path = format!("/api/v1/providers/{id}");
    let read = core.api.get(&path).await.expect(200);
    assert!(read["settings"].get("shared_secret").is_none(), "{read}");
    assert_eq!(read["settings"]["client_networks"], json!(["10.0.0.0/8"]));
    let list = core.api.get("/api/v1/providers").await.expect(200);
    assert!(!list.to_string().contains(secret), "{list}");
    let revealed = core
        .api
        .get(&format!("{path}?reveal=secrets"))
        .await
        .expect(200);
    assert_eq!(revealed["settings"]["shared_secret"], secret);
    // Sending a redacted read back keeps the secret.
    let mut settings = read["settings"].clone();
    settings["client_networks"] = json!(["10.0.0.0/8", "192.168.0.0/16"]);
    let updated = core
        .api
        .patch(&path, json!({"settings": settings}))
        .await
        .expect(200);
    assert!(
        updated["settings"].get("shared_secret").is_none(),
        "{updated}"
    );
    let revealed = core
        .api
        .get(&format!("{path}?reveal=secrets"))
        .await
        .expect(200);
    assert_eq!(revealed["settings"]["shared_secret"], secret);
    core.api
        .get(&format!("{path}?reveal=everything"))
        .await
        .expect(400);
    // The CLI shows it only with --show-secret.
    let (code, out, err) = crate::cli::cli(
        &core,
        &core.admin_token,
        &["providers", "show", &id.to_string(), "--json"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(secret), "{out}");
    let (code, out, err) = crate::cli::cli(
        &core,
        &core.admin_token,
        &[
            "providers",
            "show",
            &id.to_string(),
            "--show-secret",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(secret), "{out}");
}
