//! Type-specific provider settings. The core validates them on write by deserializing into these
//! types (unknown fields are refused) and then calling `validate`; outposts receive them as-is.

use serde::{Deserialize, Serialize};

/// A problem with provider settings, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "settings.{}: {}", self.field, self.message)
    }
}

impl std::error::Error for SettingsError {}

fn err(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field,
        message: message.into(),
    }
}

fn default_true() -> bool {
    true
}

/// LDAP provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapProviderSettings {
    /// The base DN of the directory, e.g. `dc=example,dc=com`.
    pub base_dn: String,
    /// Members of this group (by id) may search the whole directory; others see only themselves.
    #[serde(default)]
    pub search_group_id: Option<i64>,
    /// First uidNumber; a user's is this plus the user id.
    #[serde(default = "LdapProviderSettings::default_uid_start")]
    pub uid_start_number: u32,
    /// First gidNumber; a group's is this plus the group id.
    #[serde(default = "LdapProviderSettings::default_gid_start")]
    pub gid_start_number: u32,
    /// Ask users who have TOTP for a code (`password;123456`).
    #[serde(default = "default_true")]
    pub mfa: bool,
    /// Refuse binds on plain connections until StartTLS.
    #[serde(default)]
    pub require_tls_for_bind: bool,
}

impl LdapProviderSettings {
    fn default_uid_start() -> u32 {
        2000
    }
    fn default_gid_start() -> u32 {
        4000
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let dn = self.base_dn.trim();
        if dn.is_empty() {
            return Err(err("base_dn", "must not be empty"));
        }
        for rdn in dn.split(',') {
            match rdn.split_once('=') {
                Some((attr, value)) if !attr.trim().is_empty() && !value.trim().is_empty() => {}
                _ => {
                    return Err(err(
                        "base_dn",
                        format!("`{rdn}` is not an attribute=value pair"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// RADIUS provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusProviderSettings {
    /// The shared secret NAS clients use (RFC 2865 section 3).
    pub shared_secret: String,
    /// Client networks in CIDR form; requests from elsewhere are dropped.
    pub client_networks: Vec<String>,
    /// Ask users who have TOTP for a code.
    #[serde(default = "default_true")]
    pub mfa: bool,
    /// Refuse Access-Requests without a valid Message-Authenticator (BlastRADIUS, CVE-2024-3596).
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
}

impl RadiusProviderSettings {
    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.shared_secret.len() < 8 {
            return Err(err("shared_secret", "must be at least 8 characters"));
        }
        if self.client_networks.is_empty() {
            return Err(err(
                "client_networks",
                "list at least one network, e.g. 10.0.0.0/8",
            ));
        }
        for network in &self.client_networks {
            validate_cidr(network).map_err(|m| err("client_networks", m))?;
        }
        Ok(())
    }
}

fn validate_cidr(text: &str) -> Result<(), String> {
    let (addr, len) = text.split_once('/').unwrap_or((text, ""));
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}` is not an address or CIDR network"))?;
    if len.is_empty() {
        return Ok(());
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(n) if n <= max => Ok(()),
        _ => Err(format!("`{text}` has a prefix length outside 0..={max}")),
    }
}

/// How the proxy outpost sits in front of an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyMode {
    /// The outpost is the reverse proxy.
    Proxy,
    /// A reverse proxy asks the outpost about one application (forward auth).
    ForwardSingle,
    /// One login for every application under a cookie domain.
    ForwardDomain,
}

/// Proxy provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyProviderSettings {
    pub mode: ProxyMode,
    /// The URL users open, e.g. `https://app.example.com`.
    pub external_host: String,
    /// The upstream, for `proxy` mode.
    #[serde(default)]
    pub internal_host: Option<String>,
    /// Verify the upstream's TLS certificate.
    #[serde(default = "default_true")]
    pub internal_host_verify_tls: bool,
    /// Cookie domain for `forward_domain` mode.
    #[serde(default)]
    pub cookie_domain: Option<String>,
    /// Paths (regular expressions) that skip login.
    #[serde(default)]
    pub skip_path_regex: Vec<String>,
    /// How long a session lasts, in seconds.
    #[serde(default = "ProxyProviderSettings::default_validity")]
    pub session_validity_seconds: u64,
}

impl ProxyProviderSettings {
    fn default_validity() -> u64 {
        86_400
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        validate_http_url(&self.external_host).map_err(|m| err("external_host", m))?;
        match (&self.mode, &self.internal_host) {
            (ProxyMode::Proxy, None) => {
                return Err(err("internal_host", "is required in proxy mode"));
            }
            (_, Some(url)) => validate_http_url(url).map_err(|m| err("internal_host", m))?,
            _ => {}
        }
        if self.mode == ProxyMode::ForwardDomain && self.cookie_domain.is_none() {
            return Err(err("cookie_domain", "is required in forward_domain mode"));
        }
        if self.session_validity_seconds == 0 {
            return Err(err("session_validity_seconds", "must be positive"));
        }
        Ok(())
    }
}

fn validate_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

/// Remote access (RDP in the browser) provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacProviderSettings {
    /// How long a connection token lasts, in seconds.
    #[serde(default = "RacProviderSettings::default_expiry")]
    pub connection_expiry_seconds: u64,
    /// Endpoints users may open.
    #[serde(default)]
    pub endpoints: Vec<RacEndpoint>,
}

/// One remote desktop a RAC provider offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacEndpoint {
    pub name: String,
    /// `host:port` of the RDP server.
    pub host: String,
    #[serde(default)]
    pub maximum_connections: Option<u32>,
}

impl RacProviderSettings {
    fn default_expiry() -> u64 {
        8 * 3600
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.connection_expiry_seconds == 0 {
            return Err(err("connection_expiry_seconds", "must be positive"));
        }
        for endpoint in &self.endpoints {
            if endpoint.name.trim().is_empty() {
                return Err(err("endpoints", "every endpoint needs a name"));
            }
            if endpoint
                .host
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(err(
                    "endpoints",
                    format!("`{}` is not host:port", endpoint.host),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldap_defaults_and_validation() {
        let s: LdapProviderSettings =
            serde_json::from_str(r#"{"base_dn":"dc=example,dc=com"}"#).expect("parse");
        assert_eq!(
            (s.uid_start_number, s.gid_start_number, s.mfa),
            (2000, 4000, true)
        );
        assert!(s.validate().is_ok());
        let bad: LdapProviderSettings =
            serde_json::from_str(r#"{"base_dn":"example"}"#).expect("parse");
        assert_eq!(bad.validate().expect_err("bad").field, "base_dn");
        assert!(
            serde_json::from_str::<LdapProviderSettings>(r#"{"base_dn":"dc=x","bogus":1}"#)
                .is_err()
        );
    }

    #[test]
    fn radius_networks() {
        let mut s = RadiusProviderSettings {
            shared_secret: "0123456789".into(),
            client_networks: vec!["10.0.0.0/8".into(), "::1".into()],
            mfa: true,
            require_message_authenticator: true,
        };
        assert!(s.validate().is_ok());
        s.client_networks.push("10.0.0.0/33".into());
        assert_eq!(s.validate().expect_err("bad").field, "client_networks");
    }

    #[test]
    fn proxy_modes() {
        let s: ProxyProviderSettings =
            serde_json::from_str(r#"{"mode":"proxy","external_host":"https://app.example.com"}"#)
                .expect("parse");
        assert_eq!(
            s.validate().expect_err("needs upstream").field,
            "internal_host"
        );
        let s: ProxyProviderSettings = serde_json::from_str(
            r#"{"mode":"forward_single","external_host":"https://app.example.com"}"#,
        )
        .expect("parse");
        assert!(s.validate().is_ok());
    }
}
