//! Domain types to the wire types outposts receive.

use crate::model::{Application, Group, Outpost, Provider, ProviderKind};
use crate::store::DirectoryEntry;
use redoubt_outpost_proto::config::{
    ApplicationInfo, DirectoryGroup, DirectoryUser, OutpostInfo, OutpostKind, ProviderConfig,
};

/// The wire kind of a provider or outpost kind.
pub(crate) fn kind(kind: ProviderKind) -> OutpostKind {
    match kind {
        // OIDC providers are never attached to outposts (the API refuses it).
        ProviderKind::Proxy | ProviderKind::Oidc => OutpostKind::Proxy,
        ProviderKind::Ldap => OutpostKind::Ldap,
        ProviderKind::Radius => OutpostKind::Radius,
        ProviderKind::Rac => OutpostKind::Rac,
    }
}

pub(crate) fn user(entry: DirectoryEntry) -> DirectoryUser {
    DirectoryUser {
        id: entry.user.id,
        username: entry.user.username,
        name: entry.user.name,
        email: entry.user.email,
        is_active: entry.user.is_active,
        attributes: entry.user.attributes,
        group_ids: entry.group_ids,
        credential_epoch: entry.credential_epoch,
        has_totp: entry.has_totp,
        created_at: entry.user.created_at,
        updated_at: entry.user.updated_at,
    }
}

pub(crate) fn group(group: Group) -> DirectoryGroup {
    DirectoryGroup {
        id: group.id,
        name: group.name,
        parent_id: group.parent_id,
        attributes: group.attributes,
        created_at: group.created_at,
        updated_at: group.updated_at,
    }
}

pub(crate) fn outpost(outpost: Outpost) -> OutpostInfo {
    OutpostInfo {
        id: outpost.id,
        name: outpost.name,
        kind: kind(outpost.kind),
        settings: outpost.settings,
    }
}

pub(crate) fn provider(provider: Provider, application: Option<Application>) -> ProviderConfig {
    ProviderConfig {
        id: provider.id,
        name: provider.name,
        kind: kind(provider.kind),
        settings: provider.settings,
        application: application.map(|a| ApplicationInfo {
            id: a.id,
            slug: a.slug,
            name: a.name,
            launch_url: a.launch_url,
            group_ids: a.group_ids,
        }),
    }
}

/// A session revocation as outposts receive it.
pub(crate) fn revocation(
    r: crate::model::SessionRevocation,
) -> redoubt_outpost_proto::session::SessionRevocation {
    redoubt_outpost_proto::session::SessionRevocation {
        user_id: r.user_id,
        session_id: r.session_id,
        revoked_at_ms: r.revoked_at_ms,
    }
}
