//! What the provider and application endpoints check beyond the settings' own shape: the
//! groups a provider's settings name exist (a 400 problem naming the field otherwise), and
//! LDAP/RADIUS providers bound to no application are reported as `warnings` in the answer,
//! because the core refuses every credential check for them. [`references`] and
//! [`unbound_warning`] are pure; the `async` functions ask the store.

use super::error::ApiError;
use crate::model::{Provider, ProviderKind};
use crate::store::Store;
use redoubt_outpost_proto::provider::{
    LdapProviderSettings, RacProviderSettings, RadiusProviderSettings,
};
use serde_json::Value;

/// A group named in a provider's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRef {
    Id(i64),
    Name(String),
}

/// One reference and where it is in the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The field as a path in the request body, e.g. `settings.search_group_id`.
    pub field: String,
    pub group: GroupRef,
}

/// The groups `settings` (already validated for `kind`) refer to: LDAP `search_group_id`,
/// RADIUS `reply_rules[].group` (by name), RAC `endpoints[].group_ids`.
pub fn references(kind: ProviderKind, settings: &Value) -> Vec<Reference> {
    let mut found = Vec::new();
    match kind {
        ProviderKind::Ldap => {
            if let Ok(parsed) = serde_json::from_value::<LdapProviderSettings>(settings.clone())
                && let Some(id) = parsed.search_group_id
            {
                found.push(Reference {
                    field: "settings.search_group_id".into(),
                    group: GroupRef::Id(id),
                });
            }
        }
        ProviderKind::Radius => {
            if let Ok(parsed) = serde_json::from_value::<RadiusProviderSettings>(settings.clone()) {
                for (index, rule) in parsed.reply_rules.iter().enumerate() {
                    if let Some(name) = &rule.group {
                        found.push(Reference {
                            field: format!("settings.reply_rules[{index}].group"),
                            group: GroupRef::Name(name.clone()),
                        });
                    }
                }
            }
        }
        ProviderKind::Rac => {
            if let Ok(parsed) = serde_json::from_value::<RacProviderSettings>(settings.clone()) {
                for (index, endpoint) in parsed.endpoints.iter().enumerate() {
                    for id in &endpoint.group_ids {
                        found.push(Reference {
                            field: format!("settings.endpoints[{index}].group_ids"),
                            group: GroupRef::Id(*id),
                        });
                    }
                }
            }
        }
        ProviderKind::Proxy | ProviderKind::Oidc => {}
    }
    found
}

/// The problem for a reference to a group that does not exist.
fn missing(reference: &Reference) -> ApiError {
    let what = match &reference.group {
        GroupRef::Id(id) => format!("no group has id {id}"),
        GroupRef::Name(name) => format!("no group is named {name:?}"),
    };
    ApiError::validation(format!(
        "{}: {what}; create the group first or pick one from `redoubt-core groups list`",
        reference.field
    ))
}

/// Checks that every group `settings` names exists.
pub async fn check_references(
    store: &Store,
    kind: ProviderKind,
    settings: &Value,
) -> Result<(), ApiError> {
    for reference in references(kind, settings) {
        let exists = match &reference.group {
            GroupRef::Id(id) => store.group_exists(*id).await?,
            GroupRef::Name(name) => store.group_name_exists(name).await?,
        };
        if !exists {
            return Err(missing(&reference));
        }
    }
    Ok(())
}

/// Whether a provider of `kind` checks credentials only for its application's users, so that
/// without an application every check is refused.
pub fn needs_application(kind: ProviderKind) -> bool {
    matches!(kind, ProviderKind::Ldap | ProviderKind::Radius)
}

/// The warning for a provider bound to no application, naming the fix.
pub fn unbound_warning(provider: &Provider) -> String {
    format!(
        "{kind} provider {name:?} (id {id}) is bound to no application, so every credential \
         check for it is refused; bind it: redoubt-core applications create SLUG --name NAME \
         --provider {id}",
        kind = provider.kind.as_str(),
        name = provider.name,
        id = provider.id,
    )
}

/// The warnings for the providers `ids` (any that does not exist any more is skipped): one for
/// each LDAP or RADIUS provider bound to no application.
pub async fn unbound_warnings(store: &Store, ids: &[i64]) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    for id in ids {
        let provider = match store.provider(*id).await {
            Ok(provider) => provider,
            Err(crate::store::StoreError::NotFound(_)) => continue,
            Err(error) => return Err(error.into()),
        };
        if needs_application(provider.kind)
            && store.application_for_provider(provider.id).await?.is_none()
        {
            warnings.push(unbound_warning(&provider));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: ProviderKind, settings: Value, expected: &[(&str, GroupRef)]) {
        let found = references(kind, &settings);
        let expected: Vec<Reference> = expected
            .iter()
            .map(|(field, group)| Reference {
                field: (*field).into(),
                group: group.clone(),
            })
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn ldap_names_its_search_group() {
        check(
            ProviderKind::Ldap,
            json!({"base_dn": "dc=example,dc=com", "search_group_id": 42}),
            &[("settings.search_group_id", GroupRef::Id(42))],
        );
        check(
            ProviderKind::Ldap,
            json!({"base_dn": "dc=example,dc=com"}),
            &[],
        );
    }

    #[test]
    fn radius_names_the_groups_of_its_reply_rules() {
        check(
            ProviderKind::Radius,
            json!({
                "shared_secret": "a-long-shared-secret",
                "client_networks": ["127.0.0.1/32"],
                "reply_rules": [
                    {"class": "everyone"},
                    {"group": "staff", "filter_id": "staff"},
                ],
            }),
            &[(
                "settings.reply_rules[1].group",
                GroupRef::Name("staff".into()),
            )],
        );
    }

    #[test]
    fn rac_names_the_groups_of_its_endpoints() {
        check(
            ProviderKind::Rac,
            json!({
                "external_host": "https://desk.example.com",
                "endpoints": [
                    {"name": "a", "host": "10.0.0.1:3389"},
                    {"name": "b", "host": "10.0.0.2:3389", "group_ids": [3, 4]},
                ],
            }),
            &[
                ("settings.endpoints[1].group_ids", GroupRef::Id(3)),
                ("settings.endpoints[1].group_ids", GroupRef::Id(4)),
            ],
        );
    }

    #[test]
    fn other_kinds_name_no_group() {
        check(
            ProviderKind::Proxy,
            json!({"mode": "forward_single", "external_host": "https://app.example.com"}),
            &[],
        );
    }

    #[test]
    fn a_missing_group_names_the_field_and_the_fix() {
        let problem = missing(&Reference {
            field: "settings.search_group_id".into(),
            group: GroupRef::Id(42),
        })
        .problem();
        assert_eq!(problem.status, 400);
        assert_eq!(
            problem.detail,
            "settings.search_group_id: no group has id 42; create the group first or pick one from `redoubt-core groups list`"
        );
    }

    #[test]
    fn only_credential_providers_need_an_application() {
        assert!(needs_application(ProviderKind::Ldap));
        assert!(needs_application(ProviderKind::Radius));
        assert!(!needs_application(ProviderKind::Proxy));
        assert!(!needs_application(ProviderKind::Rac));
        assert!(!needs_application(ProviderKind::Oidc));
    }
}
