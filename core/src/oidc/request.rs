//! The authorization request (OIDC Core 3.1.2.1), checked without I/O: the handler looks the
//! client up and this module decides. Until the redirect URI is known to be registered, every
//! problem is shown as a page (never a redirect: no open redirect); after that, problems go back
//! to the client as `error` parameters on its redirect URI.

use super::clients::Client;
use super::pkce;
use std::collections::BTreeMap;

/// Scopes this provider knows; others are ignored.
pub const SUPPORTED_SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];
/// Longest accepted parameter value: room for an `id_token_hint` with many groups.
const MAX_VALUE_BYTES: usize = super::jwt::MAX_TOKEN_BYTES;

/// Raw parameters, each at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Collects form-encoded pairs; a repeated or oversized parameter is refused.
    pub fn parse(input: &[u8]) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (key, value) in url::form_urlencoded::parse(input) {
            if value.len() > MAX_VALUE_BYTES || key.len() > 64 {
                return Err(format!("the parameter `{key}` is too long"));
            }
            if value.is_empty() {
                continue;
            }
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(format!("the parameter `{key}` is given more than once"));
            }
        }
        Ok(Self(map))
    }

    /// One parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The parameters as a query string, without those named in `drop`.
    pub fn to_query_without(&self, drop: &[&str]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.0.iter().filter(|(k, _)| !drop.contains(&k.as_str())) {
            out.append_pair(k, v);
        }
        out.finish()
    }
}

/// What `prompt` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Use the current login if there is one.
    Default,
    /// Ask for credentials again.
    Login,
    /// Never show a page: fail with `login_required` when not logged in.
    None,
}

/// A request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Known scopes, space-separated, in request order.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// Longest acceptable time since the login, seconds (`max_age`).
    pub max_age: Option<i64>,
}

/// Why a request was refused, and how to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Show a page: the redirect URI cannot be trusted (yet).
    Page(String),
    /// Send the browser back to the client with an OAuth error.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Checks `params` for `client` (`None`: no such client).
pub fn validate(params: &Params, client: Option<&Client>) -> Result<AuthorizeRequest, Refusal> {
    let Some(client_id) = params.get("client_id") else {
        return Err(Refusal::Page(
            "The request names no client (client_id).".into(),
        ));
    };
    let Some(client) = client else {
        return Err(Refusal::Page(format!(
            "No application is registered with the client id “{client_id}”."
        )));
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Err(Refusal::Page(
            "The request has no redirect_uri; the application must name where to return.".into(),
        ));
    };
    if !client.redirect_uri_allowed(redirect_uri) {
        return Err(Refusal::Page(format!(
            "The redirect URI “{redirect_uri}” is not registered for this application."
        )));
    }
    let state = params.get("state").map(str::to_owned);
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone(),
        error,
        description: description.to_owned(),
    };
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        None => return Err(refuse("invalid_request", "response_type is missing")),
    }
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    let requested: Vec<&str> = params.get("scope").unwrap_or_default().split(' ').collect();
    if !requested.contains(&"openid") {
        return Err(refuse("invalid_scope", "the openid scope is required"));
    }
    let mut scopes: Vec<&str> = Vec::new();
    for scope in requested {
        if SUPPORTED_SCOPES.contains(&scope) && !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (Some(_), None | Some("plain")) => {
            return Err(refuse(
                "invalid_request",
                "PKCE method plain is not supported; use S256",
            ));
        }
        (Some(challenge), Some("S256")) => {
            if !pkce::well_formed(challenge) {
                return Err(refuse("invalid_request", "code_challenge is malformed"));
            }
            Some(challenge.to_owned())
        }
        (Some(_), Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "unsupported code_challenge_method; use S256",
            ));
        }
    };
    if client.is_public() && code_challenge.is_none() {
        return Err(refuse(
            "invalid_request",
            "public clients must use PKCE (code_challenge with S256)",
        ));
    }
    let mut prompt = Prompt::Default;
    for value in params.get("prompt").unwrap_or_default().split(' ') {
        match value {
            "" | "consent" | "select_account" => {}
            "login" if prompt != Prompt::None => prompt = Prompt::Login,
            "none" if prompt == Prompt::Default => prompt = Prompt::None,
            "login" | "none" => {
                return Err(refuse(
                    "invalid_request",
                    "prompt=none cannot be combined with other values",
                ));
            }
            _ => return Err(refuse("invalid_request", "unknown prompt value")),
        }
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(seconds) if seconds >= 0 => Some(seconds),
            _ => {
                return Err(refuse(
                    "invalid_request",
                    "max_age must be a number of seconds",
                ));
            }
        },
    };
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scopes.join(" "),
        state,
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
    })
}

/// `redirect_uri` with `pairs` added to its query.
pub fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provider, ProviderKind};
    use crate::oidc::clients::ClientKind;

    fn client(public: bool) -> Client {
        let settings = serde_json::json!({
            "client_id": "app",
            "client_type": if public { "public" } else { "confidential" },
            "redirect_uris": ["https://app.example/cb"],
        });
        Client {
            client_id: "app".into(),
            provider: Provider {
                id: 1,
                name: "app".into(),
                kind: ProviderKind::Oidc,
                settings: settings.clone(),
                created_at: 0,
                updated_at: 0,
            },
            application: None,
            kind: ClientKind::Oidc(serde_json::from_value(settings).expect("settings")),
        }
    }

    fn params(query: &str) -> Params {
        Params::parse(query.as_bytes()).expect("params")
    }

    const OK: &str = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid+email+bogus&state=s1&nonce=n1";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn accepts_a_good_request() {
        let request = validate(&params(OK), Some(&client(false))).expect("valid");
        assert_eq!(request.scope, "openid email");
        assert_eq!(request.state.as_deref(), Some("s1"));
        assert_eq!(request.nonce.as_deref(), Some("n1"));
        assert_eq!(request.prompt, Prompt::Default);
    }

    #[test]
    fn untrusted_redirects_become_pages() {
        assert!(matches!(
            validate(
                &params(
                    "client_id=app&redirect_uri=https%3A%2F%2Fevil%2Fcb&response_type=code&scope=openid"
                ),
                Some(&client(false))
            ),
            Err(Refusal::Page(_))
        ));
        assert!(matches!(validate(&params(OK), None), Err(Refusal::Page(_))));
        assert!(matches!(
            validate(
                &params("client_id=app&response_type=code&scope=openid"),
                Some(&client(false))
            ),
            Err(Refusal::Page(_))
        ));
    }

    #[test]
    fn trusted_redirects_carry_errors() {
        let refused =
            |query: &str, public: bool| match validate(&params(query), Some(&client(public))) {
                Err(Refusal::Redirect { error, state, .. }) => (error, state),
                other => panic!("expected a redirect, got {other:?}"),
            };
        let base = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=x";
        assert_eq!(
            refused(&format!("{base}&response_type=token&scope=openid"), false).0,
            "unsupported_response_type"
        );
        assert_eq!(
            refused(&format!("{base}&response_type=code&scope=email"), false),
            ("invalid_scope", Some("x".into()))
        );
        assert_eq!(
            refused(&format!("{base}&response_type=code&scope=openid"), true).0,
            "invalid_request"
        );
        assert_eq!(refused(&format!("{base}&response_type=code&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=plain"), true).0, "invalid_request");
        assert_eq!(
            refused(
                &format!("{base}&response_type=code&scope=openid&code_challenge={CHALLENGE}"),
                true
            )
            .0,
            "invalid_request"
        );
        assert_eq!(
            refused(
                &format!("{base}&response_type=code&scope=openid&prompt=none+login"),
                false
            )
            .0,
            "invalid_request"
        );
        let ok = validate(
            &params(&format!("{base}&response_type=code&scope=openid&code_challenge={CHALLENGE}&code_challenge_method=S256&prompt=login")),
            Some(&client(true)),
        )
        .expect("valid");
        assert_eq!(ok.code_challenge.as_deref(), Some(CHALLENGE));
        assert_eq!(ok.prompt, Prompt::Login);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        assert_eq!(
            params("a=1&b=2&prompt=login&max_age=0").to_query_without(&["prompt", "max_age"]),
            "a=1&b=2"
        );
    }

    #[test]
    fn errors_are_appended_to_the_redirect_query() {
        assert_eq!(
            with_query("https://app.example/cb?x=1", &[("error", "a b")]),
            "https://app.example/cb?x=1&error=a+b"
        );
    }
}
