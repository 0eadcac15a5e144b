//! Wrong configuration stops the real binaries with one sentence naming the variable and the fix.

use redoubt_tests::{core_binary, outpost_binary};

/// Runs `binary args` with `env` on top of a clean `REDOUBT_` environment; returns the exit code
/// and standard error.
async fn run(binary: std::path::PathBuf, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = tokio::process::Command::new(binary);
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("REDOUBT_") {
            command.env_remove(key);
        }
    }
    // The core's data dir; an outpost knows the variable (images may run both).
    command.env("REDOUBT_DATA_DIR", dir.path());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run binary");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const SERVE: &[&str] = &[
    "serve",
    "--listen-http",
    "127.0.0.1:0",
    "--listen-metrics",
    "127.0.0.1:0",
    "--listen-https",
    "",
];

const OUTPOST_ENV: &[(&str, &str)] = &[
    ("REDOUBT_URL", "http://127.0.0.1:1"),
    ("REDOUBT_STATE_DIR", "/nonexistent/redoubt-state"),
    ("REDOUBT_TOKEN", "rdt_not_a_real_token"),
    ("REDOUBT_LISTEN__METRICS", "127.0.0.1:0"),
];

fn assert_one_sentence(code: i32, stderr: &str, expected: &str) {
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(expected),
        "expected `{expected}` in:\n{stderr}"
    );
}

#[tokio::test]
async fn the_core_refuses_wrong_settings_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("REDOUBT_LISTEN__HTPP", "127.0.0.1:0")],
            "REDOUBT_LISTEN__HTPP is not a setting: did you mean REDOUBT_LISTEN__HTTP?",
        ),
        (
            &[("REDOUBT_LOG_LEVEL", "verbose")],
            "REDOUBT_LOG_LEVEL `verbose` is not a log level: use error, warn, info, debug or trace",
        ),
        (
            &[("REDOUBT_LOG_FORMAT", "yaml")],
            "REDOUBT_LOG_FORMAT `yaml` is not a log format: use text or json",
        ),
        (
            &[("REDOUBT_EXTERNAL_URL", "id.example.com")],
            "REDOUBT_EXTERNAL_URL `id.example.com` does not start with http:// or https://: use an absolute URL",
        ),
        (
            &[("REDOUBT_TLS__CERT_FILE", "/etc/redoubt/tls.crt")],
            "REDOUBT_TLS__CERT_FILE is set without REDOUBT_TLS__KEY_FILE: set both",
        ),
    ];
    for (env, expected) in cases {
        let (code, stderr) = run(core_binary(), SERVE, env).await;
        assert_one_sentence(code, &stderr, expected);
    }
}

#[tokio::test]
async fn the_outpost_refuses_wrong_settings_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("REDOUBT_LISTEN__LDPA", "127.0.0.1:0")],
            "REDOUBT_LISTEN__LDPA is not a setting: did you mean REDOUBT_LISTEN__LDAP?",
        ),
        (
            &[("REDOUBT_LOG_LEVEL", "chatty")],
            "REDOUBT_LOG_LEVEL `chatty` is not a log level",
        ),
        (
            &[("REDOUBT_LOG_FORMAT", "xml")],
            "REDOUBT_LOG_FORMAT `xml` is not a log format",
        ),
        (
            &[("REDOUBT_TLS__KEY_FILE", "/etc/redoubt/tls.key")],
            "REDOUBT_TLS__KEY_FILE is set without REDOUBT_TLS__CERT_FILE: set both",
        ),
        (
            &[("REDOUBT_URL", "core.example.com")],
            "REDOUBT_URL `core.example.com` does not start with http:// or https://",
        ),
    ];
    for (env, expected) in cases {
        let mut all = OUTPOST_ENV.to_vec();
        all.extend_from_slice(env);
        let (code, stderr) = run(outpost_binary(), &["run"], &all).await;
        assert_one_sentence(code, &stderr, expected);
    }
}

#[tokio::test]
async fn text_logs_are_plain_when_not_on_a_terminal() {
    let (code, stderr) = run(
        core_binary(),
        SERVE,
        &[
            ("REDOUBT_DATABASE_URL", "postgres://u@127.0.0.1:1/none"),
            // Far from every setting: a warning in the log, then the database is unreachable.
            ("REDOUBT_SOMETHING_UNRELATED", "1"),
        ],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("REDOUBT_SOMETHING_UNRELATED"),
        "a warning line expected:\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes in piped logs:\n{stderr}"
    );
}
