//! Core domain types: what the store returns and the services work on.
//!
//! These are deliberately not `Serialize`: the wire shapes live in `api::dto` and in
//! `redoubt-outpost-proto`, so the storage model can change without breaking clients.

use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// Free-form attributes kept as a JSON object.
pub type Attributes = Map<String, Value>;

/// A person (or service) that can authenticate.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    pub attributes: Attributes,
    pub has_password: bool,
    pub password_changed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of a user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    pub attributes: Attributes,
}

/// Fields of a user to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub is_active: Option<bool>,
    pub attributes: Option<Attributes>,
}

/// A TOTP device of a user. The secret stays sealed in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct TotpDevice {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
}

/// A group of users, optionally nested under a parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub is_superuser: bool,
    pub attributes: Attributes,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of a group to create.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub name: String,
    pub parent_id: Option<i64>,
    pub is_superuser: bool,
    pub attributes: Attributes,
}

/// Fields of a group to change. `parent_id: Some(None)` detaches the group from its parent.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub parent_id: Option<Option<i64>>,
    pub is_superuser: Option<bool>,
    pub attributes: Option<Attributes>,
}

/// An application users launch, guarded by the groups bound to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub launch_url: String,
    pub provider_id: Option<i64>,
    pub group_ids: Vec<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Fields of an application to create.
#[derive(Debug, Clone, Default)]
pub struct NewApplication {
    pub slug: String,
    pub name: String,
    pub launch_url: String,
    pub provider_id: Option<i64>,
}

/// Fields of an application to change.
#[derive(Debug, Clone, Default)]
pub struct ApplicationPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub launch_url: Option<String>,
    pub provider_id: Option<Option<i64>>,
}

/// The protocol a provider (and an outpost) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Proxy,
    Ldap,
    Radius,
    Rac,
    /// An OpenID Connect client of the core itself; never served by an outpost.
    Oidc,
}

impl ProviderKind {
    /// Every kind, in display order.
    pub const ALL: [ProviderKind; 5] =
        [Self::Proxy, Self::Ldap, Self::Radius, Self::Rac, Self::Oidc];

    /// The stable lowercase name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Ldap => "ldap",
            Self::Radius => "radius",
            Self::Rac => "rac",
            Self::Oidc => "oidc",
        }
    }

    /// Whether outposts can serve this kind (OIDC providers live in the core only).
    pub fn has_outposts(self) -> bool {
        !matches!(self, Self::Oidc)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the provider kinds.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown kind `{0}`, expected one of proxy, ldap, radius, rac, oidc")]
pub struct UnknownKind(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// A protocol provider with its validated, type-specific settings (kept as JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    pub id: i64,
    pub name: String,
    pub kind: ProviderKind,
    pub settings: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An outpost: a deployment of `redoubt-outpost` serving some providers of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Outpost {
    pub id: i64,
    pub name: String,
    pub kind: ProviderKind,
    pub settings: Value,
    pub provider_ids: Vec<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Full administrative access, on behalf of a user.
    Admin,
    /// The service identity of one outpost.
    Outpost,
}

impl TokenKind {
    /// The stable name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Outpost => "outpost",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "outpost" => Some(Self::Outpost),
            _ => None,
        }
    }
}

/// An API token; only a hash of its secret is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub kind: TokenKind,
    pub user_id: Option<i64>,
    pub outpost_id: Option<i64>,
    pub description: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Whether an audited action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    /// The stable name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// An audit event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub source_address: String,
    pub outcome: Outcome,
    pub detail: Value,
}

/// A recorded audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub created_at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source_address: String,
    pub outcome: String,
    pub detail: Value,
}

/// Filters on the event log; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<String>,
    pub source_address: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

/// Which page of a list to read, and an optional case-insensitive search term.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub search: Option<String>,
    pub page: u32,
    pub page_size: u32,
}

impl ListParams {
    /// Rows to skip for this page.
    pub fn offset(&self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.page_size)
    }

    /// The `LIKE` pattern for the search term, `%` when there is none.
    pub fn like_pattern(&self) -> String {
        match self.search.as_deref().map(str::trim) {
            None | Some("") => "%".to_owned(),
            Some(term) => {
                let mut pattern = String::with_capacity(term.len() + 2);
                pattern.push('%');
                for c in term.to_lowercase().chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
                pattern.push('%');
                pattern
            }
        }
    }
}

/// One row of the change log: an object an outpost may care about changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub revision: i64,
    pub object_kind: String,
    pub object_id: i64,
    pub op: String,
    pub created_at: i64,
}

/// Sessions that were ended before they expired: every session of a user that began before
/// `revoked_at_ms`, or the one core login session `session_id` (a sign-out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRevocation {
    pub id: i64,
    pub user_id: i64,
    pub session_id: Option<String>,
    pub revoked_at_ms: i64,
}
