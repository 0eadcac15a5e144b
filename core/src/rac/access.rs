//! Whether a user may open a RAC endpoint: pure decisions over what the store returned, shared
//! by the endpoint list, grants and lease renewals.

use crate::auth::credentials::has_application_access;
use crate::model::{Application, Group};
use redoubt_outpost_proto::provider::RacEndpoint;
use redoubt_outpost_proto::rac::EndReason;

/// Where the user's login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Active, and no revocation ends the login session.
    Valid,
    /// Disabled, deleted, or the login session was revoked.
    Ended,
}

/// Why the user may not open an endpoint (besides the session having ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The provider is bound to no application, so nobody may use it.
    NoApplication,
    /// Not in a group bound to the application.
    NotInApplicationGroups,
    /// Not in one of the endpoint's `group_ids`.
    NotInEndpointGroups,
}

impl Denial {
    /// A sentence for the problem document and the event.
    pub fn detail(self) -> &'static str {
        match self {
            Self::NoApplication => {
                "the provider is bound to no application; bind it to one so access can be decided"
            }
            Self::NotInApplicationGroups => "the user is in no group bound to the application",
            Self::NotInEndpointGroups => "the user is in none of the endpoint's groups",
        }
    }
}

/// Whether a member of `groups` (effective, nesting resolved) may open `endpoint` of a provider
/// bound to `application`: the application's binding (no bound group: everyone, as for every
/// provider) and, when the endpoint lists groups, one of them too.
pub fn may_open(
    application: Option<&Application>,
    groups: &[Group],
    endpoint: &RacEndpoint,
) -> Result<(), Denial> {
    let Some(application) = application else {
        return Err(Denial::NoApplication);
    };
    if !has_application_access(application, groups) {
        return Err(Denial::NotInApplicationGroups);
    }
    if !endpoint.group_ids.is_empty() && !groups.iter().any(|g| endpoint.group_ids.contains(&g.id))
    {
        return Err(Denial::NotInEndpointGroups);
    }
    Ok(())
}

/// What a lease renewal tells the outpost about a live connection, given where things stand
/// now: `None` to keep it.
pub fn lease_verdict(
    endpoint_exists: bool,
    standing: Standing,
    access: Result<(), Denial>,
    expired: bool,
) -> Option<EndReason> {
    if !endpoint_exists {
        Some(EndReason::Removed)
    } else if standing == Standing::Ended {
        Some(EndReason::Revoked)
    } else if access.is_err() {
        Some(EndReason::Denied)
    } else if expired {
        Some(EndReason::Expired)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: i64) -> Group {
        Group {
            id,
            name: format!("g{id}"),
            parent_id: None,
            is_superuser: false,
            attributes: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn application(group_ids: &[i64]) -> Application {
        Application {
            id: 1,
            slug: "desk".into(),
            name: "Desk".into(),
            launch_url: String::new(),
            provider_id: Some(1),
            group_ids: group_ids.to_vec(),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn endpoint(group_ids: &[i64]) -> RacEndpoint {
        serde_json::from_value(serde_json::json!({
            "name": "Desk", "host": "10.0.0.1:3389", "group_ids": group_ids,
        }))
        .expect("endpoint")
    }

    #[test]
    fn application_binding_then_endpoint_groups() {
        let app = application(&[1]);
        assert_eq!(may_open(Some(&app), &[group(1)], &endpoint(&[])), Ok(()));
        assert_eq!(
            may_open(Some(&app), &[group(2)], &endpoint(&[])),
            Err(Denial::NotInApplicationGroups)
        );
        assert_eq!(
            may_open(Some(&app), &[group(1)], &endpoint(&[3])),
            Err(Denial::NotInEndpointGroups)
        );
        assert_eq!(
            may_open(Some(&app), &[group(1), group(3)], &endpoint(&[3])),
            Ok(())
        );
        assert_eq!(
            may_open(Some(&application(&[])), &[], &endpoint(&[])),
            Ok(()),
            "an application with no bound group is open to everyone"
        );
        assert_eq!(
            may_open(None, &[group(1)], &endpoint(&[])),
            Err(Denial::NoApplication)
        );
    }

    #[test]
    fn lease_verdicts_in_order_of_precedence() {
        let ok = Ok(());
        let denied = Err(Denial::NotInEndpointGroups);
        assert_eq!(lease_verdict(true, Standing::Valid, ok, false), None);
        assert_eq!(
            lease_verdict(false, Standing::Ended, denied, true),
            Some(EndReason::Removed)
        );
        assert_eq!(
            lease_verdict(true, Standing::Ended, denied, true),
            Some(EndReason::Revoked)
        );
        assert_eq!(
            lease_verdict(true, Standing::Valid, denied, true),
            Some(EndReason::Denied)
        );
        assert_eq!(
            lease_verdict(true, Standing::Valid, ok, true),
            Some(EndReason::Expired)
        );
    }
}
