//! The URL a user opened, reconstructed from what each reverse proxy sends to its forward-auth
//! endpoint. Pure; every part is checked, and a request that does not say where the user was
//! going is an error (a clear page), never a guess that could loop.
//!
//! - nginx `auth_request`: `X-Original-URL` (the convention of every nginx SSO guide), else
//!   `X-Forwarded-Proto`/`-Host`/`-Uri`.
//! - Traefik `forwardAuth` and Caddy `forward_auth`: `X-Forwarded-Proto`, `-Host`, `-Uri` (and
//!   `-Method`).
//! - Envoy `ext_authz` (HTTP service): the original path follows the endpoint's path, the
//!   original host is the `Host`/`:authority`, the scheme is `X-Forwarded-Proto` (default http).

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::state::{Scheme, normalize_host};
use http::HeaderMap;

/// Longest original path and query accepted.
pub const MAX_URI_LEN: usize = 8 * 1024;
/// Longest host (with port) accepted.
const MAX_AUTHORITY_LEN: usize = 261;

/// Which reverse proxy asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Nginx,
    Traefik,
    Caddy,
    Envoy,
}

impl Flavour {
    /// The endpoint name (and metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Traefik => "traefik",
            Self::Caddy => "caddy",
            Self::Envoy => "envoy",
        }
    }

    /// Not logged in: nginx wants 401 (its config turns that into a redirect); the others
    /// pass the auth response to the browser, so they get the redirect itself.
    pub fn redirects(self) -> bool {
        !matches!(self, Self::Nginx)
    }
}

/// The original request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalUrl {
    pub scheme: Scheme,
    /// `host[:port]` as sent, host lowercased.
    pub authority: String,
    /// The host without port, lowercase.
    pub host: String,
    /// Starts with `/`.
    pub path_and_query: String,
}

impl OriginalUrl {
    /// The whole URL.
    pub fn to_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_and_query
        )
    }

    /// `scheme://authority`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.authority)
    }
}

/// Why the original URL cannot be known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("the request does not carry {0}")]
    Missing(&'static str),
    #[error("{0} is not usable: {1}")]
    Invalid(&'static str, String),
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, ForwardError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| ForwardError::Invalid(name, "not visible ASCII".into())),
    }
}

/// Reconstructs the original URL. `path_after_prefix` is the request's path and query after
/// the endpoint's own path (Envoy), and `host` the request's `Host`/`:authority`.
pub fn reconstruct(
    flavour: Flavour,
    headers: &HeaderMap,
    host: Option<&str>,
    path_after_prefix: &str,
) -> Result<OriginalUrl, ForwardError> {
    match flavour {
        Flavour::Nginx => {
            if let Some(url) = header(headers, "x-original-url")? {
                return parse_absolute(url).map_err(|m| ForwardError::Invalid("X-Original-URL", m));
            }
            from_forwarded(headers)
        }
        Flavour::Traefik | Flavour::Caddy => from_forwarded(headers),
        Flavour::Envoy => {
            let scheme = scheme(header(headers, "x-forwarded-proto")?.unwrap_or("http"))?;
            let authority = host.ok_or(ForwardError::Missing("a Host header"))?;
            let path = if path_after_prefix.is_empty() {
                "/"
            } else {
                path_after_prefix
            };
            build(scheme, authority, path, "Host")
        }
    }
}

fn from_forwarded(headers: &HeaderMap) -> Result<OriginalUrl, ForwardError> {
    let proto =
        header(headers, "x-forwarded-proto")?.ok_or(ForwardError::Missing("X-Forwarded-Proto"))?;
    let host =
        header(headers, "x-forwarded-host")?.ok_or(ForwardError::Missing("X-Forwarded-Host"))?;
    let uri =
        header(headers, "x-forwarded-uri")?.ok_or(ForwardError::Missing("X-Forwarded-Uri"))?;
    // Several proxies in a row: the first value is the client's.
    let proto = proto.split(',').next().unwrap_or_default().trim();
    let host = host.split(',').next().unwrap_or_default().trim();
    build(scheme(proto)?, host, uri, "X-Forwarded-Host")
}

fn scheme(text: &str) -> Result<Scheme, ForwardError> {
    match text.split(',').next().unwrap_or_default().trim() {
        s if s.eq_ignore_ascii_case("https") => Ok(Scheme::Https),
        s if s.eq_ignore_ascii_case("http") => Ok(Scheme::Http),
        other => Err(ForwardError::Invalid(
            "X-Forwarded-Proto",
            format!("`{}` is neither http nor https", truncate(other)),
        )),
    }
}

fn parse_absolute(url: &str) -> Result<OriginalUrl, String> {
    let (scheme_text, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{}` is not an absolute URL", truncate(url)))?;
    let scheme = scheme(scheme_text).map_err(|e| e.to_string())?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    build(scheme, authority, &path, "X-Original-URL").map_err(|e| match e {
        ForwardError::Invalid(_, m) => m,
        other => other.to_string(),
    })
}

fn build(
    scheme: Scheme,
    authority: &str,
    path_and_query: &str,
    source: &'static str,
) -> Result<OriginalUrl, ForwardError> {
    let host = check_authority(authority).map_err(|m| ForwardError::Invalid(source, m))?;
    if !path_and_query.starts_with('/') {
        return Err(ForwardError::Invalid(
            "the original path",
            format!("`{}` does not start with /", truncate(path_and_query)),
        ));
    }
    if path_and_query.len() > MAX_URI_LEN {
        return Err(ForwardError::Invalid(
            "the original path",
            format!("longer than {MAX_URI_LEN} bytes"),
        ));
    }
    if path_and_query.starts_with("//")
        || path_and_query
            .bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'#')
    {
        return Err(ForwardError::Invalid(
            "the original path",
            format!(
                "`{}` holds characters a path cannot",
                truncate(path_and_query)
            ),
        ));
    }
    let port = authority.get(host_end(authority)..).unwrap_or_default();
    Ok(OriginalUrl {
        scheme,
        authority: format!("{host}{port}"),
        host,
        path_and_query: path_and_query.to_owned(),
    })
}

/// Where the host of `authority` ends (the port, if any, follows).
fn host_end(authority: &str) -> usize {
    if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.rfind(':').unwrap_or(authority.len())
    }
}

/// Checks `host[:port]` and returns the host, normalized.
pub fn check_authority(authority: &str) -> Result<String, String> {
    if authority.is_empty() {
        return Err("empty host".into());
    }
    if authority.len() > MAX_AUTHORITY_LEN {
        return Err("host too long".into());
    }
    let end = host_end(authority);
    let (host, port) = authority.split_at(end);
    if let Some(port) = port.strip_prefix(':') {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{}` has a bad port", truncate(authority)));
        }
    } else if !port.is_empty() {
        return Err(format!("`{}` is not a host", truncate(authority)));
    }
    let ok = if let Some(v6) = host.strip_prefix('[') {
        v6.strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    let host = normalize_host(host);
    if !ok || host.is_empty() || host.starts_with('.') || host.contains("..") {
        return Err(format!("`{}` is not a host", truncate(authority)));
    }
    Ok(host)
}

/// The host of a `Host` header value, normalized (`None` when malformed).
pub fn host_of_authority(authority: &str) -> Option<String> {
    check_authority(authority).ok()
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn nginx_uses_x_original_url_then_forwarded_headers() {
        let h = headers(&[("x-original-url", "https://App.Example.com:8443/a/b?c=d")]);
        let url = reconstruct(Flavour::Nginx, &h, Some("outpost:9000"), "").expect("url");
        assert_eq!(url.to_url(), "https://app.example.com:8443/a/b?c=d");
        assert_eq!(url.host, "app.example.com");
        let h = headers(&[("x-original-url", "http://app.example.com")]);
        assert_eq!(
            reconstruct(Flavour::Nginx, &h, None, "")
                .expect("url")
                .to_url(),
            "http://app.example.com/"
        );
        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/x?y"),
        ]);
        assert_eq!(
            reconstruct(Flavour::Nginx, &h, None, "")
                .expect("url")
                .to_url(),
            "https://app.example.com/x?y"
        );
        assert_eq!(
            reconstruct(Flavour::Nginx, &HeaderMap::new(), Some("app"), ""),
            Err(ForwardError::Missing("X-Forwarded-Proto"))
        );
    }

    #[test]
    fn traefik_and_caddy_use_forwarded_headers() {
        let h = headers(&[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "wiki.corp.example, proxy.internal"),
            ("x-forwarded-uri", "/page?id=1"),
        ]);
        for f in [Flavour::Traefik, Flavour::Caddy] {
            let url = reconstruct(f, &h, Some("outpost"), "").expect("url");
            assert_eq!(url.to_url(), "https://wiki.corp.example/page?id=1");
        }
        let missing = headers(&[("x-forwarded-proto", "https"), ("x-forwarded-uri", "/")]);
        assert_eq!(
            reconstruct(Flavour::Caddy, &missing, Some("outpost"), ""),
            Err(ForwardError::Missing("X-Forwarded-Host"))
        );
    }

    #[test]
    fn envoy_uses_the_path_after_the_prefix_and_the_host() {
        let h = headers(&[("x-forwarded-proto", "https")]);
        let url =
            reconstruct(Flavour::Envoy, &h, Some("app.example.com"), "/docs?q=1").expect("url");
        assert_eq!(url.to_url(), "https://app.example.com/docs?q=1");
        let url = reconstruct(
            Flavour::Envoy,
            &HeaderMap::new(),
            Some("app.example.com"),
            "",
        )
        .expect("url");
        assert_eq!(url.to_url(), "http://app.example.com/");
        assert!(reconstruct(Flavour::Envoy, &h, None, "/").is_err());
    }

    #[test]
    fn malformed_forwarded_urls_are_errors() {
        for (k, v) in [
            ("x-original-url", "/relative"),
            ("x-original-url", "ftp://app.example.com/"),
            ("x-original-url", "https://"),
            ("x-original-url", "https://app.example.com:99999999/"),
            ("x-original-url", "https://a b/"),
            ("x-original-url", "https://evil.com@app.example.com/"),
            ("x-original-url", "https://app.example.com//evil.com"),
        ] {
            let h = headers(&[(k, v)]);
            assert!(reconstruct(Flavour::Nginx, &h, None, "").is_err(), "{v}");
        }
        let h = headers(&[
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/"),
        ]);
        assert!(reconstruct(Flavour::Traefik, &h, None, "").is_err());
        let h = headers(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "no-slash"),
        ]);
        assert!(reconstruct(Flavour::Traefik, &h, None, "").is_err());
    }

    #[test]
    fn authorities() {
        assert_eq!(check_authority("Example.COM."), Ok("example.com".into()));
        assert_eq!(check_authority("[::1]:8080"), Ok("[::1]".into()));
        assert!(check_authority("[zz]").is_err());
        assert!(check_authority("a:").is_err());
        assert!(check_authority("a/b").is_err());
        assert!(check_authority(".").is_err());
        assert!(check_authority("a..b").is_err());
    }
}
