//! What the proxy serves, rebuilt from each applied configuration and swapped in whole: the proxy
//! providers with their hosts, compiled skip-path patterns and cookie names, the cookie keys, and
//! an index of session revocations (O(1) by user id). Pure: built from a snapshot, no I/O.

use super::session::Keyring;
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use redoubt_outpost_proto::provider::{ProxyMode, ProxyProviderSettings, RacProviderSettings};
use redoubt_outpost_proto::session::SessionRevocation;
use regex::RegexSet;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Largest compiled skip-path program per provider.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// What answers a provider's signed-in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderApp {
    /// An upstream application (proxy mode) or a reverse proxy asking (forward auth).
    Proxy,
    /// The RAC outpost's own pages (the in-process [`super::service::InProcessApp`]).
    Rac,
}

/// One proxy provider (or RAC provider, which signs users in the same way), ready to answer
/// requests.
#[derive(Debug)]
pub struct ProviderView {
    pub id: i64,
    pub app: ProviderApp,
    pub name: String,
    pub settings: ProxyProviderSettings,
    /// `proxy-<id>`.
    pub client_id: String,
    /// The external host's scheme.
    pub scheme: Scheme,
    /// The external URL without a trailing slash, e.g. `https://app.example.com`.
    pub origin: String,
    /// The external host (lowercase, no port).
    pub host: String,
    /// The cookie domain without a leading dot (lowercase), in `forward_domain` mode.
    pub cookie_domain: Option<String>,
    /// `redoubt_proxy_<id>` (`redoubt_rac_<id>` for RAC), with the `__Host-` prefix when the
    /// cookie is host-only and the external host is HTTPS ([`session_cookie_name`]).
    pub cookie_name: String,
    /// The associated data its session cookies are sealed with.
    pub session_aad: Vec<u8>,
    /// Compiled `skip_path_regex`; `None` when there is none.
    pub skip: Option<RegexSet>,
    /// The upstream without a trailing slash (proxy mode).
    pub upstream: Option<String>,
    /// The upstream's scheme and authority, and its `Host` header, parsed once.
    pub upstream_target: Option<UpstreamTarget>,
}

impl ProviderView {
    /// Whether `host` (lowercase, no port) is one this provider answers for.
    pub fn serves_host(&self, host: &str) -> bool {
        host == self.host
            || self
                .cookie_domain
                .as_deref()
                .is_some_and(|domain| under_domain(host, domain))
    }

    /// Whether `path_and_query` skips login.
    pub fn skips(&self, path_and_query: &str) -> bool {
        self.skip
            .as_ref()
            .is_some_and(|set| set.is_match(path_and_query))
    }
}

/// Where proxy mode sends requests.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    pub host: http::HeaderValue,
}

impl UpstreamTarget {
    /// Parses `origin` (`scheme://authority`).
    pub fn parse(origin: &str) -> Option<Self> {
        let parts = origin.parse::<http::Uri>().ok()?.into_parts();
        let authority = parts.authority?;
        let host = http::HeaderValue::from_str(authority.as_str()).ok()?;
        Some(Self {
            scheme: parts.scheme?,
            authority,
            host,
        })
    }

    /// The upstream URI for a request's path and query.
    pub fn uri(&self, path_and_query: Option<&http::uri::PathAndQuery>) -> Option<http::Uri> {
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(
                path_and_query
                    .map_or_else(|| http::uri::PathAndQuery::from_static("/"), Clone::clone),
            )
            .build()
            .ok()
    }
}

/// Whether `host` is `domain` or a subdomain of it.
pub fn under_domain(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// Revocations by user: a user-wide cut-off and single signed-out sessions.
#[derive(Debug, Default)]
pub struct RevocationIndex {
    users: HashMap<i64, UserRevocations>,
    count: usize,
}

#[derive(Debug, Default)]
struct UserRevocations {
    /// Sessions that logged in at or before this (Unix ms) are over.
    all_until_ms: Option<i64>,
    sessions: HashSet<String>,
}

impl RevocationIndex {
    /// Indexes `revocations`.
    pub fn new(revocations: &[SessionRevocation]) -> Self {
        let mut users: HashMap<i64, UserRevocations> = HashMap::new();
        for r in revocations {
            let entry = users.entry(r.user_id).or_default();
            match &r.session_id {
                Some(sid) => {
                    entry.sessions.insert(sid.clone());
                }
                None => {
                    entry.all_until_ms = Some(
                        entry
                            .all_until_ms
                            .map_or(r.revoked_at_ms, |t| t.max(r.revoked_at_ms)),
                    );
                }
            }
        }
        Self {
            users,
            count: revocations.len(),
        }
    }

    /// Whether a revocation ends the session `sid` of `user_id` that logged in at
    /// `auth_time_ms` (the rule of [`SessionRevocation::ends`]).
    pub fn ends(&self, user_id: i64, sid: &str, auth_time_ms: i64) -> bool {
        let Some(user) = self.users.get(&user_id) else {
            return false;
        };
        user.all_until_ms.is_some_and(|t| auth_time_ms <= t)
            || (!sid.is_empty() && user.sessions.contains(sid))
    }

    /// How many revocations are indexed.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Everything a request needs, as of one configuration revision.
#[derive(Debug, Default)]
pub struct ProxyState {
    pub revision: i64,
    pub providers: Vec<Arc<ProviderView>>,
    by_host: HashMap<String, usize>,
    /// `(cookie domain, provider index)`, longest domain first.
    domains: Vec<(String, usize)>,
    pub keys: Keyring,
    pub revocations: RevocationIndex,
    /// Where browsers reach the core, without a trailing slash.
    pub core_public_url: String,
    /// Accepted `iss` values of ID tokens.
    pub issuers: Vec<String>,
}

/// A provider that could not be used, or another configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

impl ProxyState {
    /// Builds the state from `snapshot`; `core_urls` are the core as the outpost reaches it.
    pub fn build(snapshot: &ConfigSnapshot, core_urls: &[String]) -> (Self, Vec<Warning>) {
        let mut warnings = Vec::new();
        let mut providers = Vec::new();
        for provider in &snapshot.config.providers {
            if provider.kind == OutpostKind::Rac {
                match rac_view(provider.id, &provider.name, &provider.settings) {
                    Ok((view, mut w)) => {
                        warnings.append(&mut w);
                        providers.push(Arc::new(view));
                    }
                    Err(w) => warnings.push(w),
                }
                continue;
            }
            if provider.kind != OutpostKind::Proxy {
                continue;
            }
            let settings: ProxyProviderSettings =
                match serde_json::from_value(provider.settings.clone()) {
                    Ok(s) => s,
                    Err(error) => {
                        warnings.push(Warning(format!(
                            "proxy provider {} ({}) has unreadable settings: {error}",
                            provider.id, provider.name
                        )));
                        continue;
                    }
                };
            if let Err(error) = settings.validate() {
                warnings.push(Warning(format!(
                    "proxy provider {} ({}) is misconfigured: {error}",
                    provider.id, provider.name
                )));
                continue;
            }
            match view(provider.id, &provider.name, settings) {
                Ok((view, mut w)) => {
                    warnings.append(&mut w);
                    providers.push(Arc::new(view));
                }
                Err(w) => warnings.push(w),
            }
        }
        let mut by_host = HashMap::new();
        let mut domains = Vec::new();
        for (i, p) in providers.iter().enumerate() {
            if let Some(previous) = by_host.insert(p.host.clone(), i) {
                warnings.push(Warning(format!(
                    "proxy providers {} and {} both use host {}; {} answers",
                    providers[previous].id, p.id, p.host, p.id
                )));
            }
            if let Some(domain) = &p.cookie_domain {
                domains.push((domain.clone(), i));
            }
        }
        domains.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        let sessions = snapshot.config.sessions.clone().unwrap_or_default();
        let (keys, bad) = Keyring::new(&sessions.keys);
        for b in bad {
            warnings.push(Warning(format!("{b}; it is ignored")));
        }
        if keys.is_empty() && !providers.is_empty() {
            warnings.push(Warning(
                "the core sent no session keys: nobody can log in through this outpost yet".into(),
            ));
        }
        let core_urls: Vec<String> = core_urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        let core_public_url = sessions
            .core_public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .or_else(|| core_urls.first().cloned())
            .unwrap_or_default();
        let mut issuers = vec![core_public_url.clone()];
        for url in core_urls {
            if !issuers.contains(&url) {
                issuers.push(url);
            }
        }
        let state = Self {
            revision: snapshot.revision,
            providers,
            by_host,
            domains,
            keys,
            revocations: RevocationIndex::new(&sessions.revocations),
            core_public_url,
            issuers,
        };
        (state, warnings)
    }

    /// The provider for `host` (lowercase, no port): its external host, else the longest
    /// `forward_domain` cookie domain it is under.
    pub fn provider_for_host(&self, host: &str) -> Option<&Arc<ProviderView>> {
        if let Some(i) = self.by_host.get(host) {
            return self.providers.get(*i);
        }
        self.domains
            .iter()
            .find(|(domain, _)| under_domain(host, domain))
            .and_then(|(_, i)| self.providers.get(*i))
    }
}

/// A RAC provider as the sign-in machinery sees it: a proxy-mode provider at its external host
/// whose signed-in requests the RAC pages answer, OIDC client `rac-<id>`.
fn rac_view(
    id: i64,
    name: &str,
    settings: &serde_json::Value,
) -> Result<(ProviderView, Vec<Warning>), Warning> {
    let rac: RacProviderSettings = serde_json::from_value(settings.clone()).map_err(|e| {
        Warning(format!(
            "RAC provider {id} ({name}) has unreadable settings: {e}"
        ))
    })?;
    rac.validate()
        .map_err(|e| Warning(format!("RAC provider {id} ({name}) is misconfigured: {e}")))?;
    let settings = ProxyProviderSettings {
        mode: ProxyMode::Proxy,
        external_host: rac.external_host,
        internal_host: None,
        internal_host_verify_tls: true,
        cookie_domain: None,
        skip_path_regex: Vec::new(),
        session_validity_seconds: rac.session_validity_seconds,
        basic_auth: None,
        accept_header_auth: false,
        authentik_headers: false,
        upstream_timeout_seconds: 30,
    };
    let (mut view, warnings) = view(id, name, settings)?;
    view.app = ProviderApp::Rac;
    view.client_id = redoubt_outpost_proto::oidc::rac_client_id(id);
    view.cookie_name = session_cookie_name("redoubt_rac", id, view.scheme, None);
    view.session_aad = super::session::session_aad(id, &view.cookie_name);
    Ok((view, warnings))
}

fn view(
    id: i64,
    name: &str,
    settings: ProxyProviderSettings,
) -> Result<(ProviderView, Vec<Warning>), Warning> {
    let mut warnings = Vec::new();
    let scheme = if settings.external_host.starts_with("https://") {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let origin = origin_of(&settings.external_host);
    let host = redoubt_outpost_proto::provider::host_of(&settings.external_host)
        .map(normalize_host)
        .ok_or_else(|| Warning(format!("proxy provider {id} has no external host")))?;
    let cookie_domain = match settings.mode {
        ProxyMode::ForwardDomain => settings
            .cookie_domain
            .as_deref()
            .map(|d| normalize_host(d.trim_start_matches('.'))),
        _ => None,
    };
    let skip = if settings.skip_path_regex.is_empty() {
        None
    } else {
        match regex::RegexSetBuilder::new(&settings.skip_path_regex)
            .size_limit(MAX_REGEX_BYTES)
            .dfa_size_limit(MAX_REGEX_BYTES)
            .build()
        {
            Ok(set) => Some(set),
            Err(error) => {
                // Failing closed: no path skips login rather than the wrong ones.
                warnings.push(Warning(format!(
                    "proxy provider {id}: skip_path_regex does not compile ({error}); no path skips login"
                )));
                None
            }
        }
    };
    let upstream = match settings.mode {
        ProxyMode::Proxy => settings.internal_host.as_deref().map(origin_of),
        _ => None,
    };
    let upstream_target = upstream.as_deref().and_then(UpstreamTarget::parse);
    if upstream.is_some() && upstream_target.is_none() {
        warnings.push(Warning(format!(
            "proxy provider {id}: the internal host is not a usable URL; requests get a 502 page"
        )));
    }
    if !settings.internal_host_verify_tls && upstream.is_some() {
        warnings.push(Warning(format!(
            "proxy provider {id}: the upstream's TLS certificate is NOT verified (internal_host_verify_tls is false)"
        )));
    }
    let cookie_name = session_cookie_name("redoubt_proxy", id, scheme, cookie_domain.as_deref());
    Ok((
        ProviderView {
            id,
            app: ProviderApp::Proxy,
            name: name.to_owned(),
            client_id: redoubt_outpost_proto::oidc::proxy_client_id(id),
            scheme,
            origin,
            host,
            cookie_domain,
            session_aad: super::session::session_aad(id, &cookie_name),
            cookie_name,
            skip,
            upstream,
            upstream_target,
            settings,
        },
        warnings,
    ))
}

/// The session cookie's name: `<base>_<id>`, prefixed `__Host-` (RFC 6265bis section 4.1.3.2)
/// when it is host-only (no `Domain`) and set over HTTPS, so no sibling host can plant or shadow
/// it. Cookies with a `Domain` (forward_domain mode) cannot carry the prefix.
pub fn session_cookie_name(base: &str, id: i64, scheme: Scheme, domain: Option<&str>) -> String {
    if scheme == Scheme::Https && domain.is_none() {
        format!("__Host-{base}_{id}")
    } else {
        format!("{base}_{id}")
    }
}

/// `scheme://authority` of a URL (path, query and fragment dropped).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// Lowercase, without a trailing dot.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) use crate::proxy::fixtures::{sample, snapshot};

    #[test]
    fn hosts_pick_providers() {
        let s = sample();
        assert_eq!(
            s.provider_for_host("app.example.com").map(|p| p.id),
            Some(1)
        );
        assert_eq!(
            s.provider_for_host("single.example.com").map(|p| p.id),
            Some(2)
        );
        assert_eq!(
            s.provider_for_host("wiki.corp.example").map(|p| p.id),
            Some(3)
        );
        assert_eq!(s.provider_for_host("corp.example").map(|p| p.id), Some(3));
        assert_eq!(s.provider_for_host("evilcorp.example").map(|p| p.id), None);
        assert_eq!(s.provider_for_host("other.example.com").map(|p| p.id), None);
        let p = s.provider_for_host("single.example.com").expect("p");
        assert_eq!(p.origin, "https://single.example.com:8443");
        assert_eq!(
            p.cookie_name, "__Host-redoubt_proxy_2",
            "host-only over HTTPS"
        );
        let domain = s.provider_for_host("wiki.corp.example").expect("p");
        assert!(domain.cookie_domain.is_some());
        assert_eq!(
            domain.cookie_name, "redoubt_proxy_3",
            "a Domain cookie keeps its name"
        );
        assert_eq!(s.core_public_url, "https://id.example.com");
        assert_eq!(
            s.issuers,
            vec!["https://id.example.com", "http://core:9000"]
        );
        assert_eq!(
            s.providers[0].upstream.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        let target = s.providers[0].upstream_target.as_ref().expect("target");
        assert_eq!(target.host, "127.0.0.1:8080");
        let pq = http::uri::PathAndQuery::from_static("/a?b=c");
        assert_eq!(
            target.uri(Some(&pq)).expect("uri"),
            "http://127.0.0.1:8080/a?b=c"
        );
    }

    #[test]
    fn skip_paths_match_path_and_query() {
        let s = sample();
        let p = &s.providers[0];
        assert!(p.skips("/public/logo.png"));
        assert!(p.skips("/health"));
        assert!(!p.skips("/health?x=1"));
        assert!(!p.skips("/private/public/"));
    }

    #[test]
    fn revocations_by_user_and_session() {
        let s = sample();
        assert!(s.revocations.ends(7, "gone", 99_999));
        assert!(!s.revocations.ends(7, "other", 1));
        assert!(s.revocations.ends(8, "any", 500));
        assert!(!s.revocations.ends(8, "any", 501));
        assert!(!s.revocations.ends(9, "any", 0));
        assert_eq!(s.revocations.len(), 2);
    }

    #[test]
    fn bad_providers_and_patterns_are_reported() {
        let (state, warnings) = ProxyState::build(
            &snapshot(vec![
                (
                    1,
                    json!({"mode": "proxy", "external_host": "https://a.example"}),
                ),
                (2, json!({"mode": "nonsense"})),
                (
                    3,
                    json!({"mode": "forward_single", "external_host": "https://b.example",
                           "skip_path_regex": ["(unclosed"]}),
                ),
            ]),
            &["http://core".to_owned()],
        );
        assert_eq!(state.providers.len(), 1);
        assert!(state.providers[0].skip.is_none());
        assert!(!state.providers[0].skips("/anything"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }
}
