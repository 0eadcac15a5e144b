//! What an outpost holds: its own record, its providers with their settings and applications,
//! and (for LDAP and RADIUS outposts) the directory. Password hashes never leave the core.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol an outpost (and a provider) speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutpostKind {
    Proxy,
    Ldap,
    Radius,
    Rac,
}

impl OutpostKind {
    /// The stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Ldap => "ldap",
            Self::Radius => "radius",
            Self::Rac => "rac",
        }
    }

    /// Whether outposts of this kind receive users and groups.
    pub fn needs_directory(self) -> bool {
        matches!(self, Self::Ldap | Self::Radius)
    }
}

/// The outpost's own record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutpostInfo {
    pub id: i64,
    pub name: String,
    pub kind: OutpostKind,
    /// Free-form outpost settings (e.g. `heartbeat_interval_seconds`).
    #[serde(default)]
    pub settings: Value,
}

/// The application a provider serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationInfo {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub launch_url: String,
    /// Groups allowed to use it; empty means everyone.
    pub group_ids: Vec<i64>,
}

/// A provider as an outpost sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub id: i64,
    pub name: String,
    pub kind: OutpostKind,
    /// Settings of the kind, see [`crate::provider`].
    pub settings: Value,
    pub application: Option<ApplicationInfo>,
}

/// A user in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// Groups the user is a direct member of.
    pub group_ids: Vec<i64>,
    /// Changes whenever the password or the TOTP devices change: cached binds made before a
    /// change of epoch must be dropped.
    pub credential_epoch: i64,
    pub has_totp: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A group in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Users and groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Directory {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
}

/// Everything an outpost needs to serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutpostConfig {
    pub outpost: OutpostInfo,
    pub providers: Vec<ProviderConfig>,
    /// Present for LDAP and RADIUS outposts.
    #[serde(default)]
    pub directory: Option<Directory>,
    /// Present for proxy and RAC outposts: cookie keys and session revocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<crate::session::SessionConfig>,
}

/// A configuration at a revision: the body of `GET /api/v1/outpost/config` and of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigSnapshot {
    pub revision: i64,
    pub config: OutpostConfig,
}
