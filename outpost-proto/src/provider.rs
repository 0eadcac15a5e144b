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
    pub shared_secret: crate::secret::Secret,
    /// Client networks in CIDR form; requests from elsewhere are dropped.
    pub client_networks: Vec<String>,
    /// Ask users who have TOTP for a code.
    #[serde(default = "default_true")]
    pub mfa: bool,
    /// Refuse Access-Requests without a valid Message-Authenticator (BlastRADIUS, CVE-2024-3596).
    #[serde(default = "default_true")]
    pub require_message_authenticator: bool,
    /// Attributes added to Access-Accept, by group (see [`RadiusReplyRule`]).
    #[serde(default)]
    pub reply_rules: Vec<RadiusReplyRule>,
}

/// Reply attributes for the members of one group (or for everyone when `group` is absent).
///
/// Every rule whose group the accepted user belongs to (directly or through nesting) applies,
/// in order. Class, Filter-Id and vendor attributes add up; for the single-valued ones
/// (Session-Timeout, Idle-Timeout, Framed-IP-Address, Framed-IP-Netmask, Framed-Pool and the
/// VLAN) the first rule that sets a value wins, so put specific groups before general ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusReplyRule {
    /// Group name; absent: every user.
    #[serde(default)]
    pub group: Option<String>,
    /// Class (25), echoed by the NAS in accounting.
    #[serde(default)]
    pub class: Option<String>,
    /// Filter-Id (11): the name of a filter list on the NAS.
    #[serde(default)]
    pub filter_id: Option<String>,
    /// Session-Timeout (27), seconds.
    #[serde(default)]
    pub session_timeout: Option<u32>,
    /// Idle-Timeout (28), seconds.
    #[serde(default)]
    pub idle_timeout: Option<u32>,
    /// Framed-IP-Address (8): an IPv4 address.
    #[serde(default)]
    pub framed_ip_address: Option<String>,
    /// Framed-IP-Address taken from this user attribute (per-user static addresses).
    #[serde(default)]
    pub framed_ip_address_attribute: Option<String>,
    /// Framed-IP-Netmask (9): an IPv4 netmask.
    #[serde(default)]
    pub framed_ip_netmask: Option<String>,
    /// Framed-Pool (88): the NAS's address pool name.
    #[serde(default)]
    pub framed_pool: Option<String>,
    /// VLAN assignment (RFC 3580): Tunnel-Type VLAN, Tunnel-Medium-Type IEEE-802 and
    /// Tunnel-Private-Group-ID set to this VLAN id or name.
    #[serde(default)]
    pub vlan: Option<String>,
    /// Vendor-Specific (26) attributes.
    #[serde(default)]
    pub vendor_attributes: Vec<RadiusVendorAttribute>,
}

/// One Vendor-Specific attribute: vendor id (IANA enterprise number), vendor type, value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusVendorAttribute {
    pub vendor_id: u32,
    /// The vendor's attribute number (1..=255).
    #[serde(rename = "type")]
    pub vendor_type: u8,
    /// How `value` is encoded on the wire.
    #[serde(default)]
    pub format: RadiusValueFormat,
    pub value: String,
}

/// Encoding of a vendor attribute's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RadiusValueFormat {
    /// UTF-8 text as is.
    #[default]
    String,
    /// A 32-bit unsigned integer in network order.
    Integer,
    /// An IPv4 address (4 octets).
    Ipv4,
    /// Hex digits, for opaque octets.
    Hex,
}

impl RadiusVendorAttribute {
    /// The value's octets on the wire, or why it cannot be encoded.
    pub fn encode_value(&self) -> Result<Vec<u8>, String> {
        let value = self.value.trim();
        match self.format {
            RadiusValueFormat::String => Ok(self.value.as_bytes().to_vec()),
            RadiusValueFormat::Integer => value
                .parse::<u32>()
                .map(|n| n.to_be_bytes().to_vec())
                .map_err(|_| format!("`{value}` is not a 32-bit unsigned integer")),
            RadiusValueFormat::Ipv4 => value
                .parse::<std::net::Ipv4Addr>()
                .map(|ip| ip.octets().to_vec())
                .map_err(|_| format!("`{value}` is not an IPv4 address")),
            RadiusValueFormat::Hex => {
                let digits = value.strip_prefix("0x").unwrap_or(value);
                parse_hex(digits.as_bytes()).ok_or_else(|| {
                    if digits.is_ascii() && !digits.len().is_multiple_of(2) {
                        format!("`{value}` has an odd number of hex digits")
                    } else {
                        format!("`{value}` is not hex")
                    }
                })
            }
        }
    }
}

/// Bytes from hex digits (either case), two per byte; `None` for anything else (odd length, a
/// non-hex or non-ASCII character). Works on bytes, so no input can split a character.
fn parse_hex(digits: &[u8]) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        char::from(digit)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
    }
    digits
        .chunks(2)
        .map(|pair| match *pair {
            [high, low] => Some(nibble(high)?.checked_mul(16)?.checked_add(nibble(low)?)?),
            _ => None,
        })
        .collect()
}

/// Longest text one attribute carries (RFC 2865: 253 octets; a VSA loses 6 to its header).
const MAX_TEXT: usize = 253;
const MAX_VENDOR_VALUE: usize = 247;

impl RadiusReplyRule {
    fn validate(&self) -> Result<(), SettingsError> {
        let text = |field: &'static str, value: &Option<String>| -> Result<(), SettingsError> {
            match value {
                Some(v) if v.is_empty() || v.len() > MAX_TEXT => {
                    Err(err(field, format!("must be 1 to {MAX_TEXT} bytes")))
                }
                _ => Ok(()),
            }
        };
        text("reply_rules.class", &self.class)?;
        text("reply_rules.filter_id", &self.filter_id)?;
        text("reply_rules.framed_pool", &self.framed_pool)?;
        text("reply_rules.vlan", &self.vlan)?;
        text(
            "reply_rules.framed_ip_address_attribute",
            &self.framed_ip_address_attribute,
        )?;
        for (field, value) in [
            ("reply_rules.framed_ip_address", &self.framed_ip_address),
            ("reply_rules.framed_ip_netmask", &self.framed_ip_netmask),
        ] {
            if let Some(v) = value {
                v.parse::<std::net::Ipv4Addr>()
                    .map_err(|_| err(field, format!("`{v}` is not an IPv4 address")))?;
            }
        }
        if self.framed_ip_address.is_some() && self.framed_ip_address_attribute.is_some() {
            return Err(err(
                "reply_rules.framed_ip_address",
                "set framed_ip_address or framed_ip_address_attribute, not both",
            ));
        }
        for vsa in &self.vendor_attributes {
            if vsa.vendor_type == 0 {
                return Err(err(
                    "reply_rules.vendor_attributes",
                    "type must be 1 to 255",
                ));
            }
            let octets = vsa
                .encode_value()
                .map_err(|m| err("reply_rules.vendor_attributes", m))?;
            if octets.is_empty() || octets.len() > MAX_VENDOR_VALUE {
                return Err(err(
                    "reply_rules.vendor_attributes",
                    format!("a value must be 1 to {MAX_VENDOR_VALUE} bytes"),
                ));
            }
        }
        Ok(())
    }
}

impl RadiusProviderSettings {
    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.shared_secret.expose().len() < 8 {
            return Err(err("shared_secret", "must be at least 8 characters"));
        }
        if self.client_networks.is_empty() {
            return Err(err(
                "client_networks",
                "list at least one network, e.g. 10.0.0.0/8",
            ));
        }
        for network in &self.client_networks {
            parse_cidr(network).map_err(|m| err("client_networks", m))?;
        }
        for rule in &self.reply_rules {
            rule.validate()?;
        }
        Ok(())
    }
}

/// Parses a client network: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host, the
/// full prefix length). Returns the address and the prefix length.
pub fn parse_cidr(text: &str) -> Result<(std::net::IpAddr, u8), String> {
    let (addr, len) = text.split_once('/').unwrap_or((text, ""));
    let addr: std::net::IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}` is not an address or CIDR network"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len.is_empty() {
        return Ok((addr, max));
    }
    match len.parse::<u8>() {
        Ok(n) if n <= max => Ok((addr, n)),
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
    /// Send HTTP Basic credentials built from user attributes to the upstream.
    #[serde(default)]
    pub basic_auth: Option<ProxyBasicAuth>,
    /// Accept `Authorization: Bearer <access token>` (checked by introspection) and
    /// `Authorization: Basic` (checked like an LDAP bind) on requests, for API clients.
    #[serde(default)]
    pub accept_header_auth: bool,
    /// Also send authentik's `X-authentik-*` identity headers, for applications migrating over.
    #[serde(default)]
    pub authentik_headers: bool,
    /// Seconds to wait for the upstream's response headers (proxy mode).
    #[serde(default = "ProxyProviderSettings::default_upstream_timeout")]
    pub upstream_timeout_seconds: u64,
}

/// HTTP Basic credentials for the upstream, from the user's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyBasicAuth {
    /// Attribute holding the user name; `None`: the Redoubt username.
    #[serde(default)]
    pub username_attribute: Option<String>,
    /// Attribute holding the password.
    pub password_attribute: String,
}

impl ProxyProviderSettings {
    fn default_validity() -> u64 {
        86_400
    }
    fn default_upstream_timeout() -> u64 {
        60
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
        if self.session_validity_seconds > MAX_SESSION_VALIDITY_SECONDS {
            return Err(err(
                "session_validity_seconds",
                format!("must be at most {MAX_SESSION_VALIDITY_SECONDS} (30 days)"),
            ));
        }
        if self.upstream_timeout_seconds == 0 {
            return Err(err("upstream_timeout_seconds", "must be positive"));
        }
        for pattern in &self.skip_path_regex {
            if pattern.is_empty() || pattern.len() > 1024 {
                return Err(err(
                    "skip_path_regex",
                    "patterns must be 1 to 1024 characters",
                ));
            }
        }
        if let Some(domain) = &self.cookie_domain {
            let bare = domain.trim_start_matches('.');
            if bare.is_empty() || bare.contains(['/', ':', ' ']) {
                return Err(err(
                    "cookie_domain",
                    format!("`{domain}` is not a domain name"),
                ));
            }
            if self.mode == ProxyMode::ForwardDomain {
                let host = host_of(&self.external_host).unwrap_or_default();
                if !(host == bare || host.ends_with(&format!(".{bare}"))) {
                    return Err(err(
                        "cookie_domain",
                        format!("the external host `{host}` is not under `{domain}`"),
                    ));
                }
            }
        }
        if let Some(basic) = &self.basic_auth
            && basic.password_attribute.trim().is_empty()
        {
            return Err(err(
                "basic_auth",
                "password_attribute must name an attribute",
            ));
        }
        Ok(())
    }
}

/// The longest session a proxy provider may grant; session revocations are kept this long.
pub const MAX_SESSION_VALIDITY_SECONDS: u64 = 30 * 86_400;

/// The host (without port) of an `http(s)://` URL.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then_some(host)
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

/// Whether an OIDC client can keep a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OidcClientType {
    /// A server-side application: authenticates with its client secret.
    #[default]
    Confidential,
    /// A browser or native application: no secret, PKCE required.
    Public,
}

/// OpenID Connect provider settings: an application that signs users in through the core's
/// OIDC endpoints. Never sent to outposts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderSettings {
    /// The OAuth client id the application presents.
    pub client_id: String,
    #[serde(default)]
    pub client_type: OidcClientType,
    /// SHA-256 of the client secret (hex), set by the core when it generates the secret; the
    /// secret itself is shown once.
    #[serde(default)]
    pub client_secret_sha256: Option<String>,
    /// Exact redirect URIs the application may use.
    pub redirect_uris: Vec<String>,
    /// Exact URIs the application may send users to after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default = "OidcProviderSettings::default_access_validity")]
    pub access_token_validity_seconds: u64,
    #[serde(default = "OidcProviderSettings::default_refresh_validity")]
    pub refresh_token_validity_seconds: u64,
}

impl OidcProviderSettings {
    /// Longest access-token lifetime: 1 day.
    pub const MAX_ACCESS_VALIDITY: u64 = 86_400;
    /// Longest refresh-token lifetime: 30 days, as long as a session revocation is kept.
    pub const MAX_REFRESH_VALIDITY: u64 = 30 * 86_400;

    fn default_access_validity() -> u64 {
        600
    }
    fn default_refresh_validity() -> u64 {
        30 * 86_400
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.client_id.trim().is_empty() || self.client_id.len() > 255 {
            return Err(err("client_id", "must be 1 to 255 characters"));
        }
        if self.client_id.starts_with("proxy-") {
            return Err(err("client_id", "`proxy-` is reserved for proxy providers"));
        }
        if self.redirect_uris.is_empty() {
            return Err(err("redirect_uris", "needs at least one URI"));
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            if uri.contains('#') || !uri.contains("://") {
                return Err(err(
                    "redirect_uris",
                    format!("`{uri}` must be an absolute URI without a fragment"),
                ));
            }
        }
        if self.access_token_validity_seconds == 0 || self.refresh_token_validity_seconds == 0 {
            return Err(err(
                "access_token_validity_seconds",
                "validities must be positive",
            ));
        }
        if self.access_token_validity_seconds > Self::MAX_ACCESS_VALIDITY {
            return Err(err(
                "access_token_validity_seconds",
                format!("must be at most {} (1 day)", Self::MAX_ACCESS_VALIDITY),
            ));
        }
        if self.refresh_token_validity_seconds > Self::MAX_REFRESH_VALIDITY {
            return Err(err(
                "refresh_token_validity_seconds",
                format!("must be at most {} (30 days)", Self::MAX_REFRESH_VALIDITY),
            ));
        }
        Ok(())
    }
}

/// Remote access (RDP in the browser) provider settings. Pushed to RAC outposts; holds no
/// secret: endpoint passwords are sealed in the core and handed out per connection in a
/// [`crate::rac::RacGrant`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacProviderSettings {
    /// Where users open the RAC outpost, e.g. `https://desk.example.com` (the outpost's own
    /// sign-in callback lives under it, like a proxy provider's).
    pub external_host: String,
    /// How long one connection may last, in seconds; it is ended then.
    #[serde(default = "RacProviderSettings::default_expiry")]
    pub connection_expiry_seconds: u64,
    /// A connection with no keyboard or mouse input for this long is ended, in seconds
    /// (0: never).
    #[serde(default = "RacProviderSettings::default_idle")]
    pub idle_timeout_seconds: u64,
    /// How long the outpost's sign-in cookie lasts, in seconds.
    #[serde(default = "RacProviderSettings::default_session_validity")]
    pub session_validity_seconds: u64,
    /// Open connections one user may have across all endpoints and outpost replicas.
    #[serde(default)]
    pub maximum_connections_per_user: Option<u32>,
    /// Endpoints users may open.
    #[serde(default)]
    pub endpoints: Vec<RacEndpoint>,
}

/// How the outpost secures the RDP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RdpSecurity {
    /// NLA (CredSSP) when the server offers it, else TLS with the credentials in the logon
    /// information (xrdp).
    #[default]
    Any,
    /// NLA only (Windows with "require NLA").
    Nla,
    /// TLS only, credentials sent inside TLS for automatic logon (xrdp).
    Tls,
}

/// Where an endpoint's RDP credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RacAuthMode {
    /// The user types them on the page for each connection; never stored.
    #[default]
    Prompt,
    /// Set by an administrator, sealed in the core, handed to the outpost per connection.
    Static,
}

/// Which way text may cross the clipboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipboardPolicy {
    #[default]
    Both,
    /// Browser to remote desktop only.
    ToRemote,
    /// Remote desktop to browser only.
    ToBrowser,
    None,
}

impl ClipboardPolicy {
    /// Whether text may go from the browser to the remote desktop.
    pub fn to_remote(self) -> bool {
        matches!(self, Self::Both | Self::ToRemote)
    }
    /// Whether text may go from the remote desktop to the browser.
    pub fn to_browser(self) -> bool {
        matches!(self, Self::Both | Self::ToBrowser)
    }
}

/// One remote desktop a RAC provider offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RacEndpoint {
    /// Stable URL name (`a-z`, `0-9`, `-`); derived from `name` when empty.
    #[serde(default)]
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `host:port` of the RDP server.
    pub host: String,
    #[serde(default)]
    pub security: RdpSecurity,
    /// SHA-256 (hex) of the server's TLS public key (SubjectPublicKeyInfo); when set, any
    /// other key is refused. Without it the key's fingerprint is recorded with each connection.
    #[serde(default)]
    pub server_public_key_sha256: Option<String>,
    #[serde(default)]
    pub auth_mode: RacAuthMode,
    /// Pre-filled user name in `prompt` mode.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    /// When not empty, only members of these groups (besides the application's binding) may
    /// open this endpoint.
    #[serde(default)]
    pub group_ids: Vec<i64>,
    /// Open connections to this endpoint across all outpost replicas (none: unlimited).
    #[serde(default)]
    pub maximum_connections: Option<u32>,
    /// The remote keyboard layout as a Windows KLID (0x409 US, 0x407 German, 0x40C French).
    #[serde(default = "RacEndpoint::default_keyboard_layout")]
    pub keyboard_layout: u32,
    /// Send printable keys as Unicode characters (fixes a local/remote layout mismatch).
    #[serde(default)]
    pub unicode_keyboard: bool,
    #[serde(default)]
    pub clipboard: ClipboardPolicy,
    /// Largest clipboard text in either direction, in bytes.
    #[serde(default = "RacEndpoint::default_clipboard_max_bytes")]
    pub clipboard_max_bytes: u32,
    /// Lossless tiles only (PNG), never JPEG.
    #[serde(default)]
    pub lossless: bool,
    /// A fixed desktop size; without it the desktop follows the browser window.
    #[serde(default)]
    pub width: Option<u16>,
    #[serde(default)]
    pub height: Option<u16>,
}

/// Largest clipboard text an endpoint may allow.
pub const MAX_CLIPBOARD_BYTES: u32 = 16 * 1024 * 1024;

impl RacEndpoint {
    fn default_keyboard_layout() -> u32 {
        0x409
    }
    fn default_clipboard_max_bytes() -> u32 {
        1024 * 1024
    }

    /// The endpoint's URL name: `slug`, else `name` lowercased with every run of other
    /// characters turned into one `-`.
    pub fn slug(&self) -> String {
        if !self.slug.is_empty() {
            return self.slug.clone();
        }
        let mut out = String::new();
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_end_matches('-').to_owned()
    }

    /// `(host, port)` of the RDP server.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.host.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse::<u16>().ok()?;
        (!host.is_empty() && port != 0).then_some((host, port))
    }
}

impl RacProviderSettings {
    fn default_expiry() -> u64 {
        8 * 3600
    }
    fn default_idle() -> u64 {
        3600
    }
    fn default_session_validity() -> u64 {
        8 * 3600
    }

    /// The endpoint with URL name `slug`.
    pub fn endpoint(&self, slug: &str) -> Option<&RacEndpoint> {
        self.endpoints.iter().find(|e| e.slug() == slug)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        validate_http_url(&self.external_host).map_err(|m| err("external_host", m))?;
        if self.connection_expiry_seconds == 0 {
            return Err(err("connection_expiry_seconds", "must be positive"));
        }
        if self.session_validity_seconds == 0
            || self.session_validity_seconds > MAX_SESSION_VALIDITY_SECONDS
        {
            return Err(err(
                "session_validity_seconds",
                format!("must be 1 to {MAX_SESSION_VALIDITY_SECONDS} (30 days)"),
            ));
        }
        if self.maximum_connections_per_user == Some(0) {
            return Err(err(
                "maximum_connections_per_user",
                "must be positive (leave it out for no limit)",
            ));
        }
        let mut slugs = std::collections::BTreeSet::new();
        for endpoint in &self.endpoints {
            if endpoint.name.trim().is_empty() || endpoint.name.len() > 200 {
                return Err(err(
                    "endpoints.name",
                    "every endpoint needs a name of 1 to 200 characters",
                ));
            }
            let slug = endpoint.slug();
            if slug.is_empty()
                || slug.len() > 64
                || !slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(
                    "endpoints.slug",
                    format!("`{slug}` must be 1 to 64 characters of a-z, 0-9 and -"),
                ));
            }
            if !slugs.insert(slug.clone()) {
                return Err(err(
                    "endpoints.slug",
                    format!("two endpoints are named `{slug}`"),
                ));
            }
            if endpoint.host_port().is_none() {
                return Err(err(
                    "endpoints.host",
                    format!("`{}` is not host:port", endpoint.host),
                ));
            }
            if let Some(pin) = &endpoint.server_public_key_sha256
                && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(err(
                    "endpoints.server_public_key_sha256",
                    "must be 64 hexadecimal characters (a SHA-256)",
                ));
            }
            if endpoint.maximum_connections == Some(0) {
                return Err(err(
                    "endpoints.maximum_connections",
                    "must be positive (leave it out for no limit)",
                ));
            }
            if endpoint.clipboard_max_bytes > MAX_CLIPBOARD_BYTES {
                return Err(err(
                    "endpoints.clipboard_max_bytes",
                    format!("must be at most {MAX_CLIPBOARD_BYTES}"),
                ));
            }
            for (field, value) in [
                ("endpoints.width", endpoint.width),
                ("endpoints.height", endpoint.height),
            ] {
                if let Some(v) = value
                    && !(200..=8192).contains(&v)
                {
                    return Err(err(field, "must be 200 to 8192 pixels"));
                }
            }
            if endpoint.width.is_some() != endpoint.height.is_some() {
                return Err(err(
                    "endpoints.width",
                    "set both width and height, or neither",
                ));
            }
            for (field, value) in [
                ("endpoints.username", &endpoint.username),
                ("endpoints.domain", &endpoint.domain),
            ] {
                if value.as_ref().is_some_and(|v| v.len() > 256) {
                    return Err(err(field, "must be at most 256 characters"));
                }
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
            reply_rules: vec![],
        };
        assert!(s.validate().is_ok());
        s.client_networks.push("10.0.0.0/33".into());
        assert_eq!(s.validate().expect_err("bad").field, "client_networks");
    }

    #[test]
    fn radius_reply_rules() {
        let parsed: RadiusProviderSettings = serde_json::from_str(
            r#"{"shared_secret":"0123456789","client_networks":["10.0.0.0/8"],
                "reply_rules":[{"group":"staff","vlan":"42","session_timeout":3600,
                  "vendor_attributes":[{"vendor_id":14988,"type":1,"value":"full"},
                                       {"vendor_id":9,"type":2,"format":"integer","value":"7"}]}]}"#,
        )
        .expect("parse");
        assert!(parsed.validate().is_ok());
        let vsa = &parsed.reply_rules[0].vendor_attributes[1];
        assert_eq!(vsa.encode_value(), Ok(vec![0, 0, 0, 7]));
        let mut bad = parsed.clone();
        bad.reply_rules[0].framed_ip_address = Some("10.0.0.300".into());
        assert_eq!(
            bad.validate().expect_err("bad ip").field,
            "reply_rules.framed_ip_address"
        );
        let mut bad = parsed;
        bad.reply_rules[0].vendor_attributes[0].format = RadiusValueFormat::Hex;
        bad.reply_rules[0].vendor_attributes[0].value = "abc".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn hex_values_never_panic() {
        let hex = |value: &str| {
            RadiusVendorAttribute {
                vendor_id: 9,
                vendor_type: 1,
                format: RadiusValueFormat::Hex,
                value: value.into(),
            }
            .encode_value()
        };
        assert_eq!(hex("0x0aFf"), Ok(vec![0x0a, 0xff]));
        assert_eq!(hex(""), Ok(vec![]));
        // A two-byte character at an even offset used to be sliced through its middle.
        for bad in [
            "0é0", "éé", "€0", "0x0é0", "é", "abc", "+1", "0x+1", "g0", "１２",
        ] {
            assert!(hex(bad).is_err(), "{bad}");
        }
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
