//! REST bodies. These (and `redoubt-outpost-proto`) are the only types that derive serde; they
//! are converted from the domain types in `crate::model`.

use crate::model;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

/// Formats seconds since the epoch as RFC 3339.
pub fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Parses RFC 3339 into seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageDto<T> {
    pub items: Vec<T>,
    /// Matching items over all pages.
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

impl<T> PageDto<T> {
    /// Converts a page of domain values.
    pub fn from_page<U>(page: model::Page<U>, f: impl FnMut(U) -> T) -> Self {
        Self {
            items: page.items.into_iter().map(f).collect(),
            total: page.total,
            page: page.page,
            page_size: page.page_size,
        }
    }
}

/// Paging and search on list endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Case-insensitive substring to look for.
    pub search: Option<String>,
    /// 1-based page number (default 1).
    pub page: Option<u32>,
    /// Items per page (default 50, at most 1000).
    pub page_size: Option<u32>,
}

impl ListQuery {
    /// The store's list parameters, clamped.
    pub fn params(&self) -> model::ListParams {
        model::ListParams {
            search: self.search.clone(),
            page: self.page.unwrap_or(1).max(1),
            page_size: self.page_size.unwrap_or(50).clamp(1, 1000),
        }
    }
}

/// A group as seen from a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRef {
    pub id: i64,
    pub name: String,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub has_password: bool,
    pub password_changed_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Direct group memberships (on single-user reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupRef>>,
}

impl From<model::User> for UserDto {
    fn from(u: model::User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            email: u.email,
            is_active: u.is_active,
            attributes: u.attributes,
            has_password: u.has_password,
            password_changed_at: u.password_changed_at.map(rfc3339),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            groups: None,
        }
    }
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r#"^[^\x00-\x1f\x7f-\x9f\s,=+;"<>\\#]+$"#
    )]
    pub username: String,
    #[serde(default)]
    #[schema(max_length = 150)]
    pub name: String,
    #[serde(default)]
    #[schema(pattern = r"^([^@\s]+@\S+)?$")]
    pub email: String,
    /// Defaults to true.
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// An initial password.
    #[serde(default)]
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
}

/// Changes to a user; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r#"^[^\x00-\x1f\x7f-\x9f\s,=+;"<>\\#]+$"#
    )]
    pub username: Option<String>,
    #[schema(max_length = 150)]
    pub name: Option<String>,
    #[schema(pattern = r"^([^@\s]+@\S+)?$")]
    pub email: Option<String>,
    pub is_active: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
}

/// A TOTP device (its secret is never readable again).
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpDeviceDto {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

impl From<model::TotpDevice> for TotpDeviceDto {
    fn from(d: model::TotpDevice) -> Self {
        Self {
            id: d.id,
            name: d.name,
            created_at: rfc3339(d.created_at),
        }
    }
}

/// A TOTP device to enrol.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollTotp {
    /// A label, e.g. "phone" (default "authenticator").
    #[serde(default)]
    pub name: Option<String>,
}

/// The enrolled device with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrollment {
    pub device: TotpDeviceDto,
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://` URI to show as a QR code.
    pub otpauth_uri: String,
}

/// A group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDto {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub is_superuser: bool,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<model::Group> for GroupDto {
    fn from(g: model::Group) -> Self {
        Self {
            id: g.id,
            name: g.name,
            parent_id: g.parent_id,
            is_superuser: g.is_superuser,
            attributes: g.attributes,
            created_at: rfc3339(g.created_at),
            updated_at: rfc3339(g.updated_at),
        }
    }
}

/// A group to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
    )]
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<i64>,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// Changes to a group; `"parent_id": null` moves it to the top level.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<Option<i64>>,
    pub is_superuser: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

/// A user to add to a group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user_id: i64,
}

/// An application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationDto {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub launch_url: String,
    pub provider_id: Option<i64>,
    /// Groups allowed to use the application; empty means everyone.
    pub group_ids: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
    /// What this change left to fix (a provider it unbound), one sentence each naming the fix;
    /// absent when there is nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl From<model::Application> for ApplicationDto {
    fn from(a: model::Application) -> Self {
        Self {
            id: a.id,
            slug: a.slug,
            name: a.name,
            launch_url: a.launch_url,
            provider_id: a.provider_id,
            group_ids: a.group_ids,
            created_at: rfc3339(a.created_at),
            updated_at: rfc3339(a.updated_at),
            warnings: Vec::new(),
        }
    }
}

/// An application to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    #[schema(min_length = 1, max_length = 100, pattern = r"^[a-z0-9-]+$")]
    pub slug: String,
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
    )]
    pub name: String,
    #[serde(default)]
    pub launch_url: String,
    #[serde(default)]
    pub provider_id: Option<i64>,
}

/// Changes to an application; `"provider_id": null` unbinds the provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApplication {
    #[schema(min_length = 1, max_length = 100, pattern = r"^[a-z0-9-]+$")]
    pub slug: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
    )]
    pub name: Option<String>,
    pub launch_url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub provider_id: Option<Option<i64>>,
}

/// A group to bind to an application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindGroup {
    pub group_id: i64,
}

/// A provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderDto {
    pub id: i64,
    pub name: String,
    /// proxy, ldap, radius, rac or oidc.
    pub kind: String,
    /// Type-specific settings.
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_at: String,
    pub updated_at: String,
    /// OIDC providers only: the generated client secret, in the answer that created it and
    /// never again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// In the answers to a create or update: what is left to fix (an LDAP or RADIUS provider
    /// bound to no application refuses every credential check), one sentence each naming the
    /// fix; absent when there is nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The answer of a deletion that left something to fix (otherwise deletions answer 204).
#[derive(Debug, Serialize, ToSchema)]
pub struct WarningsDto {
    /// One sentence each, naming the fix.
    pub warnings: Vec<String>,
}

/// Settings members that hold secrets, by provider kind: left out of provider bodies unless the
/// request asks with `?reveal=secrets` (the answer that created the provider echoes them once).
pub fn secret_settings(kind: model::ProviderKind) -> &'static [&'static str] {
    match kind {
        model::ProviderKind::Radius => &["shared_secret"],
        _ => &[],
    }
}

/// `?reveal=secrets`: include the secrets of a provider's settings in the answer.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RevealQuery {
    /// `secrets` shows secret settings (such as a RADIUS shared secret); otherwise they are left out.
    pub reveal: Option<RevealWhat>,
}

/// What `?reveal=` may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevealWhat {
    Secrets,
}

impl RevealQuery {
    /// Whether secrets are asked for.
    pub fn secrets(&self) -> bool {
        self.reveal == Some(RevealWhat::Secrets)
    }
}

impl ProviderDto {
    /// The provider's body with its secret settings left out.
    pub fn redacted(p: model::Provider) -> Self {
        let mut dto = Self::from(p);
        if let (Ok(kind), Some(settings)) = (
            dto.kind.parse::<model::ProviderKind>(),
            dto.settings.as_object_mut(),
        ) {
            for key in secret_settings(kind) {
                settings.remove(*key);
            }
        }
        dto
    }

    /// Redacted unless `reveal`.
    pub fn revealing(p: model::Provider, reveal: bool) -> Self {
        if reveal {
            Self::from(p)
        } else {
            Self::redacted(p)
        }
    }
}

impl From<model::Provider> for ProviderDto {
    fn from(p: model::Provider) -> Self {
        Self {
            id: p.id,
            name: p.name,
            kind: p.kind.as_str().to_owned(),
            settings: p.settings,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            client_secret: None,
            warnings: Vec::new(),
        }
    }
}

/// A provider to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
    )]
    pub name: String,
    /// proxy, ldap, radius, rac or oidc (oidc providers are served by the core, not by outposts).
    #[schema(pattern = r"^(proxy|ldap|radius|rac|oidc)$")]
    pub kind: String,
    /// Type-specific settings, validated for the kind.
    #[schema(value_type = Object)]
    pub settings: Value,
}

/// Changes to a provider; `settings` replaces the settings whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProvider {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

/// An outpost.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutpostDto {
    pub id: i64,
    pub name: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub provider_ids: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<model::Outpost> for OutpostDto {
    fn from(o: model::Outpost) -> Self {
        Self {
            id: o.id,
            name: o.name,
            kind: o.kind.as_str().to_owned(),
            settings: o.settings,
            provider_ids: o.provider_ids,
            created_at: rfc3339(o.created_at),
            updated_at: rfc3339(o.updated_at),
        }
    }
}

/// An outpost to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOutpost {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\s]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$"
    )]
    pub name: String,
    /// proxy, ldap, radius or rac.
    #[schema(pattern = r"^(proxy|ldap|radius|rac)$")]
    pub kind: String,
    #[serde(default)]
    pub provider_ids: Vec<i64>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

/// Changes to an outpost; `provider_ids` replaces the list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOutpost {
    pub name: Option<String>,
    pub provider_ids: Option<Vec<i64>>,
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
}

/// A new outpost and its token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutpostCreated {
    pub outpost: OutpostDto,
    /// The outpost's API token. Only its hash is kept: store it now.
    pub token: String,
}

/// A fresh outpost token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutpostTokenRotated {
    pub token: String,
}

/// What an outpost token reads about itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutpostSelf {
    pub outpost: OutpostDto,
    pub providers: Vec<ProviderDto>,
    /// The configuration revision this answer reflects.
    pub revision: i64,
}

/// An API token (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenDto {
    pub id: i64,
    /// admin or outpost.
    pub kind: String,
    pub user_id: Option<i64>,
    pub outpost_id: Option<i64>,
    pub description: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<model::ApiToken> for ApiTokenDto {
    fn from(t: model::ApiToken) -> Self {
        Self {
            id: t.id,
            kind: t.kind.as_str().to_owned(),
            user_id: t.user_id,
            outpost_id: t.outpost_id,
            description: t.description,
            expires_at: t.expires_at.map(rfc3339),
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
        }
    }
}

/// An admin token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[serde(default)]
    pub description: String,
    /// Lifetime in seconds, at most 31536000 (365 days); absent means 365 days.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
    /// The user the token acts for (a superuser); defaults to the caller.
    #[serde(default)]
    pub user_id: Option<i64>,
}

/// A new token with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    pub token: ApiTokenDto,
    pub secret: String,
}

/// Password login of an administrator, returning an admin token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
    /// Token lifetime in seconds (default 12 hours, at most 86400).
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
}

/// An audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    pub id: i64,
    pub created_at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_address: String,
    /// success or failure.
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<model::Event> for EventDto {
    fn from(e: model::Event) -> Self {
        Self {
            id: e.id,
            created_at: rfc3339(e.created_at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            source_address: e.source_address,
            outcome: e.outcome,
            detail: e.detail,
        }
    }
}

/// Filters on the event log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// success or failure.
    pub outcome: Option<String>,
    pub source_address: Option<String>,
    /// RFC 3339 lower bound (inclusive).
    pub since: Option<String>,
    /// RFC 3339 upper bound (inclusive).
    pub until: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
}

/// Facts about the running core.
#[derive(Debug, Serialize, ToSchema)]
pub struct InfoDto {
    pub version: String,
    /// sqlite or postgres.
    pub database: String,
    pub revision: i64,
    pub protocol_version: u32,
}

/// One running instance of an outpost, as the control channel sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceDto {
    pub instance_id: String,
    pub hostname: String,
    pub version: String,
    pub build: String,
    pub protocol_version: i64,
    /// The instance runs another version than the core.
    pub outdated: bool,
    pub applied_revision: Option<i64>,
    /// The applied revision is the core's newest.
    pub up_to_date: bool,
    pub remote_address: String,
    pub connected: bool,
    /// Connected and heard within 1.5 heartbeat intervals.
    pub healthy: bool,
    pub connected_at: String,
    pub last_seen: String,
}

/// The answer to an OIDC signing key rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyRotated {
    /// Key id of the new current key.
    pub kid: String,
    /// Its algorithm (always ES256).
    pub algorithm: String,
}

/// A new generation of session-cookie keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionKeysRotated {
    /// The new generation; outposts seal with it and still open cookies of the one before.
    pub generation: i64,
}

/// Credentials an administrator sets for a RAC endpoint in `static` mode. Write-only: never
/// returned, never in settings, snapshots or the change log.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRacCredentials {
    pub username: String,
    #[serde(default)]
    pub domain: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for SetRacCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetRacCredentials")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A RAC endpoint as the administrator sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RacEndpointDto {
    pub slug: String,
    pub name: String,
    /// `host:port` of the RDP server.
    pub host: String,
    /// `static` or `prompt`.
    pub auth_mode: String,
    /// Whether credentials are set (they are never shown).
    pub has_credentials: bool,
    /// The pinned server key (SHA-256 hex of its SubjectPublicKeyInfo), if any.
    pub server_public_key_sha256: Option<String>,
    /// The server key fingerprint the last started connection reported.
    pub last_server_key_sha256: Option<String>,
    /// When that was (RFC 3339).
    pub last_server_key_seen_at: Option<String>,
}
