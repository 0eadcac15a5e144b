//! Settings of the core server, loaded in layers by `redoubt-settings` (defaults, TOML file,
//! `REDOUBT_*` environment, flags).

use crate::auth::lockout::LockoutPolicy;
use crate::auth::password::HashParams;
pub use redoubt_outpost_proto::secret::Secret;
use redoubt_settings::checks;
pub use redoubt_settings::{ConfigError, Loaded, Override, load};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Settings of the core server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoreSettings {
    /// Where the SQLite database, the generated secret key and bootstrap credentials live.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; empty means `redoubt.db` in the data dir.
    pub database_url: String,
    /// Root secret for derived keys; generated into the data dir when empty.
    pub secret_key: Secret,
    /// Password of the first `admin` user; generated when empty.
    pub bootstrap_password: Secret,
    /// When set, an admin API token with exactly this value is created on first start.
    pub bootstrap_token: Secret,
    pub listen: ListenSettings,
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive.
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: String,
    pub password_hash: PasswordHashSettings,
    pub lockout: LockoutSettings,
    pub events: EventSettings,
    pub limits: LimitSettings,
    pub tls: TlsSettings,
    /// The core's URL as browsers and OIDC clients reach it (e.g. `https://id.example.com`):
    /// the OIDC issuer and the base of login redirects. Empty: taken from each request's `Host`
    /// header and listener (http or https).
    pub external_url: String,
    pub web: WebSettings,
    pub embedded_outpost: EmbeddedOutpostSettings,
}

/// Longest login session at the core: 30 days (session revocations are kept that long).
pub const MAX_WEB_SESSION_SECONDS: i64 = 30 * 86_400;

/// The login pages.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// How long a login at the core lasts, seconds.
    pub session_seconds: i64,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            session_seconds: 12 * 3600,
        }
    }
}

/// The proxy outpost that runs inside the core.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedOutpostSettings {
    /// Run it (default). Off: proxy providers need a separately deployed `redoubt-outpost`.
    pub enabled: bool,
}

impl Default for EmbeddedOutpostSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The HTTPS certificate: PEM files, or a self-signed pair generated in the data dir when empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
}

/// Listen addresses (`ip:port`; port 0 picks a free port and the log says which).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenSettings {
    pub http: String,
    /// Empty turns HTTPS off.
    pub https: String,
    pub metrics: String,
}

/// Argon2id cost.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Brute-force limits (see `auth::lockout` and the README's lockout section).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutSettings {
    pub window_seconds: i64,
    pub failures_per_source: i64,
    pub wait_increment_seconds: i64,
    pub max_wait_seconds: i64,
    pub slowdown_after_failures: i64,
    pub slowdown_step_ms: u64,
    pub max_slowdown_ms: u64,
    pub spray_distinct_users: i64,
}

/// Audit log retention.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    pub retention_days: i64,
}

/// Bounds on what clients may send.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub request_timeout_seconds: u64,
    pub database_connections: u32,
    /// Most connections per source address (IPv6: per /64) that have not yet sent a complete
    /// request head; further ones are closed at once.
    pub unproven_connections_per_source: usize,
    /// Longest time to receive a whole request head, in seconds.
    pub header_timeout_seconds: u64,
    /// Longest TLS handshake, in seconds.
    pub tls_handshake_timeout_seconds: u64,
}

impl Default for CoreSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            secret_key: Secret::default(),
            bootstrap_password: Secret::default(),
            bootstrap_token: Secret::default(),
            listen: ListenSettings::default(),
            log_level: "info".into(),
            log_format: "text".into(),
            password_hash: PasswordHashSettings::default(),
            lockout: LockoutSettings::default(),
            events: EventSettings::default(),
            limits: LimitSettings::default(),
            tls: TlsSettings::default(),
            external_url: String::new(),
            web: WebSettings::default(),
            embedded_outpost: EmbeddedOutpostSettings::default(),
        }
    }
}

impl Default for ListenSettings {
    fn default() -> Self {
        Self {
            http: "0.0.0.0:9000".into(),
            https: "0.0.0.0:9443".into(),
            metrics: "0.0.0.0:9300".into(),
        }
    }
}

impl Default for PasswordHashSettings {
    fn default() -> Self {
        let p = HashParams::default();
        Self {
            memory_kib: p.memory_kib,
            iterations: p.iterations,
            parallelism: p.parallelism,
        }
    }
}

impl From<PasswordHashSettings> for HashParams {
    fn from(s: PasswordHashSettings) -> Self {
        Self {
            memory_kib: s.memory_kib,
            iterations: s.iterations,
            parallelism: s.parallelism,
        }
    }
}

impl Default for LockoutSettings {
    fn default() -> Self {
        let p = LockoutPolicy::default();
        Self {
            window_seconds: p.window_seconds,
            failures_per_source: p.failures_per_source,
            wait_increment_seconds: p.wait_increment_seconds,
            max_wait_seconds: p.max_wait_seconds,
            slowdown_after_failures: p.slowdown_after_failures,
            slowdown_step_ms: p.slowdown_step_ms,
            max_slowdown_ms: p.max_slowdown_ms,
            spray_distinct_users: p.spray_distinct_users,
        }
    }
}

impl From<LockoutSettings> for LockoutPolicy {
    fn from(s: LockoutSettings) -> Self {
        Self {
            window_seconds: s.window_seconds,
            failures_per_source: s.failures_per_source,
            wait_increment_seconds: s.wait_increment_seconds,
            max_wait_seconds: s.max_wait_seconds,
            slowdown_after_failures: s.slowdown_after_failures,
            slowdown_step_ms: s.slowdown_step_ms,
            max_slowdown_ms: s.max_slowdown_ms,
            spray_distinct_users: s.spray_distinct_users,
        }
    }
}

impl Default for EventSettings {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_connections: 4096,
            request_timeout_seconds: 30,
            database_connections: 16,
            unproven_connections_per_source: 256,
            header_timeout_seconds: 30,
            tls_handshake_timeout_seconds: 10,
        }
    }
}

impl CoreSettings {
    /// Checks values the types cannot: the log level and format, `external_url`, the
    /// certificate pair. Each failure is one sentence naming the variable and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        checks::log_level(&self.log_level)?;
        checks::log_format(&self.log_format)?;
        if !self.external_url.is_empty() {
            checks::absolute_http_url("REDOUBT_EXTERNAL_URL", &self.external_url)?;
        }
        checks::cert_pair("REDOUBT_TLS__", &self.tls.cert_file, &self.tls.key_file)?;
        if !(60..=MAX_WEB_SESSION_SECONDS).contains(&self.web.session_seconds) {
            return Err(ConfigError::Invalid(format!(
                "REDOUBT_WEB__SESSION_SECONDS `{}` is out of range: use 60 to {MAX_WEB_SESSION_SECONDS} \
                 (30 days, as long as a sign-out or password change is remembered)",
                self.web.session_seconds
            )));
        }
        Ok(())
    }

    /// The database URL to use: the configured one, or the SQLite file in the data dir.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("redoubt.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn core_settings_load_from_every_layer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("core.toml");
        std::fs::write(
            &file,
            "log_level = \"debug\"\n[listen]\nhttp = \"127.0.0.1:1\"\n",
        )
        .expect("write");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret\n").expect("write");
        let loaded: Loaded<CoreSettings> = load(
            Some(&file),
            env(&[
                ("REDOUBT_LISTEN__HTTP", "127.0.0.1:2"),
                ("REDOUBT_LOCKOUT__FAILURES_PER_SOURCE", "9"),
                ("REDOUBT_SECRET_KEY_FILE", secret.to_str().expect("utf-8")),
                ("REDOUBT_NOPE", "x"),
                ("REDOUBT_URL", "http://core"),
                ("PATH", "/bin"),
            ]),
            vec![Override {
                key: "listen.metrics".into(),
                value: "127.0.0.1:3".into(),
                origin: "--listen-metrics".into(),
            }],
            &["url"],
        )
        .expect("load");
        let s = loaded.settings;
        assert_eq!(s.log_level, "debug");
        assert_eq!(s.listen.http, "127.0.0.1:2");
        assert_eq!(s.listen.metrics, "127.0.0.1:3");
        assert_eq!(s.lockout.failures_per_source, 9);
        assert_eq!(s.secret_key.expose(), "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"), "Debug hides secrets");
        assert_eq!(
            loaded.warnings,
            vec!["ignoring unknown environment variable REDOUBT_NOPE"]
        );
        assert!(s.effective_database_url().starts_with("sqlite://"));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn wrong_values_are_refused_naming_the_variable() {
        let check = |pairs: &[(&str, &str)]| {
            load::<CoreSettings>(None, env(pairs), vec![], &[])
                .and_then(|l| l.settings.validate())
                .expect_err("must fail")
                .to_string()
        };
        assert!(check(&[("REDOUBT_LOG_LEVEL", "loud")]).contains("REDOUBT_LOG_LEVEL"));
        assert!(check(&[("REDOUBT_LOG_FORMAT", "xml")]).contains("REDOUBT_LOG_FORMAT"));
        assert!(
            check(&[("REDOUBT_EXTERNAL_URL", "id.example.com")]).contains("REDOUBT_EXTERNAL_URL")
        );
        assert!(check(&[("REDOUBT_TLS__CERT_FILE", "/c.pem")]).contains("REDOUBT_TLS__KEY_FILE"));
        assert!(check(&[("REDOUBT_LISTEN__HTPP", "x")]).contains("REDOUBT_LISTEN__HTTP"));
        assert!(
            check(&[("REDOUBT_WEB__SESSION_SECONDS", "31536000")]).contains("use 60 to 2592000")
        );
    }
}
