//! Claims of ID tokens, access tokens and UserInfo answers, chosen by scope: `profile` gives
//! `preferred_username` and `name`, `email` gives `email` and `email_verified` (addresses are
//! set by administrators, so a present address counts as verified), `groups` gives the names of
//! every group the user is in, nesting resolved.

use crate::model::{Group, User};
use redoubt_outpost_proto::oidc::IdentityClaims;
use serde_json::{Value, json};

/// Whether the space-separated `scope` holds `wanted`.
pub fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// The identity claims `scope` allows.
pub fn identity(user: &User, groups: &[Group], scope: &str) -> IdentityClaims {
    let profile = has_scope(scope, "profile");
    let email = has_scope(scope, "email");
    IdentityClaims {
        sub: user.id.to_string(),
        preferred_username: profile.then(|| user.username.clone()),
        name: profile.then(|| user.name.clone()),
        email: (email && !user.email.is_empty()).then(|| user.email.clone()),
        email_verified: (email && !user.email.is_empty()).then_some(true),
        groups: has_scope(scope, "groups").then(|| groups.iter().map(|g| g.name.clone()).collect()),
        sid: None,
        auth_time: None,
        auth_time_ms: None,
    }
}

/// One login session as tokens describe it.
#[derive(Debug, Clone)]
pub struct SessionInfo<'a> {
    pub sid: &'a str,
    pub auth_time_ms: i64,
}

/// What an ID token says.
#[derive(Debug, Clone)]
pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub groups: &'a [Group],
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub session: SessionInfo<'a>,
    pub now: i64,
    pub lifetime: i64,
    pub at_hash: Option<String>,
}

/// The claims of an ID token.
pub fn id_token(input: &IdTokenInput<'_>) -> Value {
    let mut identity = identity(input.user, input.groups, input.scope);
    identity.sid = Some(input.session.sid.to_owned());
    identity.auth_time = Some(input.session.auth_time_ms.div_euclid(1000));
    identity.auth_time_ms = Some(input.session.auth_time_ms);
    let mut claims = serde_json::to_value(identity).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut claims {
        map.insert("iss".into(), json!(input.issuer));
        map.insert("aud".into(), json!(input.client_id));
        map.insert("azp".into(), json!(input.client_id));
        map.insert("iat".into(), json!(input.now));
        map.insert(
            "exp".into(),
            json!(input.now.saturating_add(input.lifetime)),
        );
        if let Some(nonce) = input.nonce {
            map.insert("nonce".into(), json!(nonce));
        }
        if let Some(at_hash) = &input.at_hash {
            map.insert("at_hash".into(), json!(at_hash));
        }
    }
    claims
}

/// What an access token says.
#[derive(Debug, Clone)]
pub struct AccessTokenInput<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user_id: i64,
    pub scope: &'a str,
    pub jti: &'a str,
    pub session: SessionInfo<'a>,
    pub now: i64,
    pub lifetime: i64,
}

/// The claims of a JWT access token (RFC 9068 shape).
pub fn access_token(input: &AccessTokenInput<'_>) -> Value {
    json!({
        "iss": input.issuer,
        "sub": input.user_id.to_string(),
        "aud": input.client_id,
        "client_id": input.client_id,
        "scope": input.scope,
        "jti": input.jti,
        "sid": input.session.sid,
        "auth_time": input.session.auth_time_ms.div_euclid(1000),
        "auth_time_ms": input.session.auth_time_ms,
        "iat": input.now,
        "exp": input.now.saturating_add(input.lifetime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: 7,
            username: "alice".into(),
            name: "Alice".into(),
            email: "alice@example.com".into(),
            is_active: true,
            attributes: Default::default(),
            has_password: true,
            password_changed_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn group(name: &str) -> Group {
        Group {
            id: 1,
            name: name.into(),
            parent_id: None,
            is_superuser: false,
            attributes: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn scopes_choose_claims() {
        let groups = [group("staff")];
        let bare = identity(&user(), &groups, "openid");
        assert_eq!(bare.sub, "7");
        assert!(bare.preferred_username.is_none() && bare.email.is_none() && bare.groups.is_none());
        let full = identity(&user(), &groups, "openid profile email groups");
        assert_eq!(full.preferred_username.as_deref(), Some("alice"));
        assert_eq!(full.email_verified, Some(true));
        assert_eq!(full.groups, Some(vec!["staff".to_owned()]));
    }

    #[test]
    fn id_tokens_carry_session_and_audience() {
        let u = user();
        let claims = id_token(&IdTokenInput {
            issuer: "https://id.example",
            client_id: "app",
            user: &u,
            groups: &[],
            scope: "openid",
            nonce: Some("n"),
            session: SessionInfo {
                sid: "s1",
                auth_time_ms: 1_700_000_000_123,
            },
            now: 1_700_000_001,
            lifetime: 60,
            at_hash: None,
        });
        assert_eq!(claims["aud"], "app");
        assert_eq!(claims["exp"], 1_700_000_061);
        assert_eq!(claims["auth_time"], 1_700_000_000);
        assert_eq!(claims["auth_time_ms"], 1_700_000_000_123_i64);
        assert_eq!(claims["sid"], "s1");
        assert_eq!(claims["nonce"], "n");
    }
}
