//! Settings of `redoubt-outpost`, loaded in layers by `redoubt-settings`: defaults, an optional
//! TOML file, `REDOUBT_*` environment variables (`REDOUBT_TOKEN_FILE` reads the token from a
//! file), then flags.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything an outpost process is configured with. `Debug` never shows the token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutpostSettings {
    /// Base URL of the core's API, e.g. `https://redoubt.example.com`; several core replicas
    /// comma-separated (`https://core-a.example.com,https://core-b.example.com`).
    pub url: String,
    /// The outpost's token, from `redoubt-core outposts create`.
    pub token: String,
    /// A PEM file of CA certificates to trust for the core, besides the system roots.
    pub ca_file: String,
    /// Skip verifying the core's TLS certificate. Never in production.
    pub danger_insecure: bool,
    /// Where the last configuration is kept.
    pub state_dir: PathBuf,
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: String,
    pub listen: ListenSettings,
    /// How long a password the core accepted is answered from memory, in seconds (0: never).
    pub credential_cache_seconds: u64,
    /// How long a cached password still works while the core cannot be reached, in seconds;
    /// the cache is kept in the state dir, so this holds across restarts.
    pub credential_offline_seconds: u64,
    /// Most bytes the on-disk event queue (accounting, cached logins) holds while the core is
    /// unreachable; beyond it new events are refused and counted.
    pub event_queue_max_bytes: u64,
    /// The certificate LDAPS and StartTLS (LDAP outposts) and HTTPS (proxy outposts) present.
    pub tls: TlsSettings,
    /// While connected to a core endpoint other than the one this instance prefers (after a
    /// failover), how often to check whether the preferred one is back, in seconds (0: never).
    pub core_failback_seconds: u64,
    /// Bounds on what clients may hold on the listeners.
    pub limits: LimitSettings,
    /// The reverse proxy (`proxy` mode).
    pub proxy: ProxySettings,
}

/// Bounds on the listeners (see `listener` and the README's settings table).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Most HTTP connections open at once on the proxy listeners.
    pub max_connections: usize,
    /// Most connections per source address (IPv6: per /64) that have not yet sent a complete
    /// request (HTTP) or bound (LDAP); further ones are closed at once.
    pub unproven_connections_per_source: usize,
    /// Longest time to receive a whole request head (HTTP), in seconds.
    pub header_timeout_seconds: u64,
    /// Longest TLS handshake, in seconds.
    pub tls_handshake_timeout_seconds: u64,
    /// Longest time for an LDAP message to arrive once its first byte has, in seconds.
    pub ldap_message_timeout_seconds: u64,
    /// Most LDAP connections open at once (LDAP and LDAPS together); further ones are closed.
    pub ldap_max_connections: usize,
    /// Receive buffer of each RADIUS UDP socket, in bytes, for bursts; the kernel caps it at
    /// `net.core.rmem_max` (the log says what it granted). 0 keeps the system default.
    pub udp_receive_buffer_bytes: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            unproven_connections_per_source: 256,
            header_timeout_seconds: 30,
            tls_handshake_timeout_seconds: 10,
            ldap_message_timeout_seconds: 30,
            ldap_max_connections: 4096,
            udp_receive_buffer_bytes: 8 * 1024 * 1024,
        }
    }
}

impl LimitSettings {
    /// The HTTP listener bounds, with `max_connections` and `idle_timeout` of the listener.
    pub fn listener(
        &self,
        max_connections: usize,
        idle_timeout: std::time::Duration,
    ) -> crate::listener::ListenerLimits {
        crate::listener::ListenerLimits {
            max_connections,
            unproven_per_source: self.unproven_connections_per_source,
            header_timeout: std::time::Duration::from_secs(self.header_timeout_seconds.max(1)),
            handshake_timeout: std::time::Duration::from_secs(
                self.tls_handshake_timeout_seconds.max(1),
            ),
            idle_timeout,
        }
    }
}

/// Settings of the reverse proxy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// Addresses or CIDR ranges of reverse proxies in front of this outpost whose
    /// `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed;
    /// from anyone else they are replaced.
    pub trusted_proxies: Vec<String>,
}

/// PEM files of the certificate (chain) and private key served to LDAP clients and, on a proxy
/// outpost, on `listen.https` (no HTTPS listener without them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
}

/// Listen addresses (`ip:port`; port 0 picks a free one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenSettings {
    pub metrics: String,
    pub http: String,
    pub https: String,
    pub ldap: String,
    pub ldaps: String,
    pub radius: String,
    pub radius_accounting: String,
}

impl Default for OutpostSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            token: String::new(),
            ca_file: String::new(),
            danger_insecure: false,
            state_dir: PathBuf::from("state"),
            log_level: "info".into(),
            log_format: "text".into(),
            listen: ListenSettings::default(),
            credential_cache_seconds: 300,
            credential_offline_seconds: 86_400,
            event_queue_max_bytes: 256 << 20,
            tls: TlsSettings::default(),
            core_failback_seconds: 60,
            limits: LimitSettings::default(),
            proxy: ProxySettings::default(),
        }
    }
}

impl Default for ListenSettings {
    fn default() -> Self {
        Self {
            metrics: "0.0.0.0:9300".into(),
            http: "0.0.0.0:9000".into(),
            https: "0.0.0.0:9443".into(),
            ldap: "0.0.0.0:3389".into(),
            ldaps: "0.0.0.0:6636".into(),
            radius: "0.0.0.0:1812".into(),
            radius_accounting: "0.0.0.0:1813".into(),
        }
    }
}

/// Why settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "REDOUBT_URL is not set: give the core's URL, e.g. REDOUBT_URL=https://redoubt.example.com"
    )]
    MissingUrl,
    #[error(
        "REDOUBT_TOKEN is not set: use the token `redoubt-core outposts create` printed (or REDOUBT_TOKEN_FILE)"
    )]
    MissingToken,
    #[error(transparent)]
    Config(#[from] redoubt_settings::ConfigError),
    #[error(
        "REDOUBT_EVENT_QUEUE_MAX_BYTES is {0}: give at least 1048576 (1 MiB), or the outpost could hold no accounting record while the core is away"
    )]
    EventQueueTooSmall(u64),
}

/// The smallest `event_queue_max_bytes` accepted: one segment.
pub const MIN_EVENT_QUEUE_BYTES: u64 = 1 << 20;

impl std::fmt::Debug for OutpostSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutpostSettings")
            .field("url", &self.url)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("ca_file", &self.ca_file)
            .field("danger_insecure", &self.danger_insecure)
            .field("state_dir", &self.state_dir)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("listen", &self.listen)
            .field("credential_cache_seconds", &self.credential_cache_seconds)
            .field(
                "credential_offline_seconds",
                &self.credential_offline_seconds,
            )
            .field("event_queue_max_bytes", &self.event_queue_max_bytes)
            .field("tls", &self.tls)
            .field("core_failback_seconds", &self.core_failback_seconds)
            .field("limits", &self.limits)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl OutpostSettings {
    /// Checks what the runtime cannot do without.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let urls = self.core_urls();
        if urls.is_empty() {
            return Err(SettingsError::MissingUrl);
        }
        use redoubt_settings::checks;
        for url in urls {
            checks::absolute_http_url("REDOUBT_URL", &url)?;
        }
        if self.token.trim().is_empty() {
            return Err(SettingsError::MissingToken);
        }
        checks::log_level(&self.log_level)?;
        checks::log_format(&self.log_format)?;
        checks::cert_pair("REDOUBT_TLS__", &self.tls.cert_file, &self.tls.key_file)?;
        if self.event_queue_max_bytes < MIN_EVENT_QUEUE_BYTES {
            return Err(SettingsError::EventQueueTooSmall(
                self.event_queue_max_bytes,
            ));
        }
        Ok(())
    }

    /// The core URLs (`url` split at commas), each without a trailing slash, duplicates
    /// dropped.
    pub fn core_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = Vec::new();
        for part in self.url.split(',') {
            let url = part.trim().trim_end_matches('/');
            if !url.is_empty() && !urls.iter().any(|u| u == url) {
                urls.push(url.to_owned());
            }
        }
        urls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_takes_a_comma_separated_list() {
        let mut settings = OutpostSettings {
            url: " https://a.example.com/, https://b.example.com:9443 ,https://a.example.com"
                .into(),
            token: "rdt_x".into(),
            ..OutpostSettings::default()
        };
        assert_eq!(
            settings.core_urls(),
            ["https://a.example.com", "https://b.example.com:9443"]
        );
        assert!(settings.validate().is_ok());
        settings.url = "https://a.example.com,core-b:9443".into();
        let error = settings.validate().expect_err("a URL without a scheme");
        assert!(error.to_string().contains("`core-b:9443`"), "{error}");
        settings.url = " , ".into();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::MissingUrl)
        ));
    }

    #[test]
    fn ca_file_is_a_path_and_token_file_reads_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = dir.path().join("token");
        std::fs::write(&token, "rdt_secret\n").expect("write");
        let env = vec![
            ("REDOUBT_URL".to_owned(), "https://core.example".to_owned()),
            ("REDOUBT_TOKEN_FILE".to_owned(), token.display().to_string()),
            ("REDOUBT_CA_FILE".to_owned(), "/etc/ca.pem".to_owned()),
            ("REDOUBT_DANGER_INSECURE".to_owned(), "false".to_owned()),
            (
                "REDOUBT_LISTEN__METRICS".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
        ];
        let loaded =
            redoubt_settings::load::<OutpostSettings>(None, env, vec![], &[]).expect("load");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let s = loaded.settings;
        assert_eq!(s.token, "rdt_secret");
        assert_eq!(s.ca_file, "/etc/ca.pem");
        assert_eq!(s.listen.metrics, "127.0.0.1:0");
        assert!(s.validate().is_ok());
        assert!(
            !format!("{s:?}").contains("rdt_secret"),
            "Debug hides the token"
        );
        assert!(matches!(
            OutpostSettings::default().validate(),
            Err(SettingsError::MissingUrl)
        ));
        let tiny_queue = OutpostSettings {
            event_queue_max_bytes: 1000,
            ..s
        };
        assert!(matches!(
            tiny_queue.validate(),
            Err(SettingsError::EventQueueTooSmall(1000))
        ));
    }
}
