//! Header work shared by the endpoints and the reverse proxy: reading a cookie, writing
//! `Set-Cookie`, the identity headers (`X-Redoubt-*`, optionally authentik's `X-authentik-*`),
//! stripping spoofed identity headers, hop-by-hop headers and Redoubt's own cookies.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

use super::session::Session;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The identity headers, in the order username, groups, email, name, uid, jwt.
pub const REDOUBT_HEADERS: [HeaderName; 6] = [
    HeaderName::from_static("x-redoubt-username"),
    HeaderName::from_static("x-redoubt-groups"),
    HeaderName::from_static("x-redoubt-email"),
    HeaderName::from_static("x-redoubt-name"),
    HeaderName::from_static("x-redoubt-uid"),
    HeaderName::from_static("x-redoubt-jwt"),
];

/// authentik's names for the same headers.
pub const AUTHENTIK_HEADERS: [HeaderName; 6] = [
    HeaderName::from_static("x-authentik-username"),
    HeaderName::from_static("x-authentik-groups"),
    HeaderName::from_static("x-authentik-email"),
    HeaderName::from_static("x-authentik-name"),
    HeaderName::from_static("x-authentik-uid"),
    HeaderName::from_static("x-authentik-jwt"),
];

/// Headers that describe one connection and must not be forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// The value of cookie `name`, from any `Cookie` header; the first well-formed one wins. Read
/// byte-wise: a value that is not made of cookie octets (RFC 6265 section 4.1.1: non-UTF-8
/// bytes, quotes inside, spaces, control characters) is no cookie, and a malformed pair never
/// hides the well-formed ones beside it.
pub fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (key, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            if key.trim_ascii() != name.as_bytes() {
                return None;
            }
            cookie_value(value.trim_ascii())
        })
        .next()
}

/// A well-formed cookie value without its optional quotes.
fn cookie_value(raw: &[u8]) -> Option<&str> {
    let inner = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .unwrap_or(raw);
    let octet = |b: &u8| matches!(*b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    if inner.is_empty() || !inner.iter().all(octet) {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// Cookie attributes.
#[derive(Debug, Clone, Copy)]
pub struct CookieScope<'a> {
    pub domain: Option<&'a str>,
    pub path: &'a str,
    pub secure: bool,
}

/// A `Set-Cookie` value (HttpOnly, SameSite=Lax, Secure over HTTPS); `max_age` 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    scope: CookieScope<'_>,
    max_age: i64,
) -> Option<HeaderValue> {
    let mut text = format!(
        "{name}={value}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax",
        scope.path,
        max_age.max(0)
    );
    if let Some(domain) = scope.domain {
        text.push_str("; Domain=");
        text.push_str(domain);
    }
    if scope.secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).ok()
}

/// Removes every identity header a client may have sent (no spoofing).
pub fn strip_identity(headers: &mut HeaderMap) {
    for name in REDOUBT_HEADERS.iter().chain(AUTHENTIK_HEADERS.iter()) {
        headers.remove(name);
    }
}

/// Adds the identity headers for `session` (and authentik's names when asked).
pub fn add_identity(headers: &mut HeaderMap, session: &Session, authentik: bool) {
    let groups = session.groups.join(",");
    let uid = session.user_id.to_string();
    let values: [Option<&str>; 6] = [
        Some(&session.username),
        Some(&groups),
        Some(&session.email),
        Some(&session.name),
        Some(&uid),
        session.jwt.as_deref(),
    ];
    let names = REDOUBT_HEADERS.into_iter().zip(AUTHENTIK_HEADERS);
    for ((name, authentik_name), value) in names.zip(values) {
        let Some(value) = value else { continue };
        // Values with control characters cannot be sent; the header is left out.
        let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) else {
            continue;
        };
        if authentik {
            headers.insert(authentik_name, value.clone());
        }
        headers.insert(name, value);
    }
    // The provider's `basic_auth`: the upstream (or, in forward auth, the reverse proxy that
    // copies it on) gets the user's own credentials instead of whatever the client sent.
    if let Some(value) = session
        .upstream_authorization
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        let mut value = value;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
    }
}

/// Removes hop-by-hop headers, including those `Connection` names. With `upgrade` the
/// `Connection: upgrade` and `Upgrade` headers of a protocol switch are kept.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        if let Ok(text) = value.to_str() {
            for token in text.split(',') {
                let token = token.trim();
                if token.is_empty() || (upgrade && token.eq_ignore_ascii_case("upgrade")) {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                    named.push(name);
                }
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Whether the request asks to switch protocols (WebSocket).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|t| {
                t.split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Removes the cookies whose names `strip` matches from every `Cookie` header, keeping the
/// others (a header left empty is removed; one that is not text is removed whole, since what it
/// hides cannot be checked).
pub fn strip_cookies(headers: &mut HeaderMap, strip: impl Fn(&str) -> bool) {
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    headers.remove(header::COOKIE);
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        let kept: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|pair| {
                !pair.is_empty() && !strip(pair.split_once('=').map_or(*pair, |(k, _)| k.trim()))
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
            headers.append(header::COOKIE, value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;
    use crate::proxy::session::tests::session;

    #[test]
    fn cookies_are_found_in_any_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("redoubt_proxy_1=\"x.y\""),
        );
        assert_eq!(find_cookie(&h, "b"), Some("2"));
        assert_eq!(find_cookie(&h, "redoubt_proxy_1"), Some("x.y"));
        assert_eq!(find_cookie(&h, "redoubt_proxy_"), None);
    }

    #[test]
    fn malformed_cookies_are_no_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_bytes(b"s=\xff\xfe; t=ok; u=a\"b; v=; =x; junk").expect("obs-text"),
        );
        assert_eq!(find_cookie(&h, "s"), None);
        assert_eq!(
            find_cookie(&h, "t"),
            Some("ok"),
            "a bad neighbour hides nothing"
        );
        assert_eq!(find_cookie(&h, "u"), None);
        assert_eq!(find_cookie(&h, "v"), None);
        assert_eq!(find_cookie(&h, "junk"), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let v = set_cookie(
            "c",
            "v",
            CookieScope {
                domain: Some("corp.example"),
                path: "/",
                secure: true,
            },
            60,
        )
        .expect("value");
        assert_eq!(
            v,
            "c=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Domain=corp.example; Secure"
        );
    }

    #[test]
    fn upstream_basic_credentials_replace_the_clients() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer client"),
        );
        add_identity(&mut h, &session(10), false);
        assert_eq!(
            h[header::AUTHORIZATION],
            "Bearer client",
            "no basic_auth: untouched"
        );
        let mut with_basic = session(10);
        with_basic.upstream_authorization = Some(crate::proxy::login::upstream_authorization(
            &redoubt_outpost_proto::oidc::UpstreamBasicAuth {
                username: "ALICE".into(),
                password: "s3cret:pw".into(),
            },
        ));
        add_identity(&mut h, &with_basic, false);
        assert_eq!(h[header::AUTHORIZATION], "Basic QUxJQ0U6czNjcmV0OnB3");
        assert!(h[header::AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn identity_headers_replace_spoofed_ones() {
        let mut h = HeaderMap::new();
        h.insert("x-redoubt-username", HeaderValue::from_static("root"));
        h.insert("X-authentik-groups", HeaderValue::from_static("admins"));
        strip_identity(&mut h);
        assert!(h.is_empty());
        let mut s = session(1);
        s.name = "Zoë".into();
        add_identity(&mut h, &s, false);
        assert_eq!(h["x-redoubt-username"], "alice");
        assert_eq!(h["x-redoubt-groups"], "admins,staff");
        assert_eq!(h["x-redoubt-uid"], "7");
        assert_eq!(h["x-redoubt-jwt"], "a.b.c");
        assert_eq!(h["x-redoubt-name"].as_bytes(), "Zoë".as_bytes());
        assert!(!h.contains_key("x-authentik-username"));
        add_identity(&mut h, &s, true);
        assert_eq!(h["x-authentik-email"], "alice@example.com");
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret, Upgrade"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        assert!(wants_upgrade(&h));
        let mut plain = h.clone();
        remove_hop_by_hop(&mut plain, false);
        assert_eq!(plain.len(), 1, "{plain:?}");
        remove_hop_by_hop(&mut h, true);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
        assert!(!h.contains_key("x-secret"));
    }

    #[test]
    fn only_the_named_cookies_are_stripped() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("app=1; redoubt_proxy_7=sealed; theme=dark"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("redoubt_proxy_7=x"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_bytes(b"redoubt_proxy_7=\xff").expect("opaque value"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("redoubt_proxy_70=other"),
        );
        strip_cookies(&mut h, |name| name == "redoubt_proxy_7");
        let left: Vec<_> = h.get_all(header::COOKIE).iter().collect();
        assert_eq!(left, ["app=1; theme=dark", "redoubt_proxy_70=other"]);
        let mut none = HeaderMap::new();
        strip_cookies(&mut none, |_| true);
        assert!(none.is_empty());
    }
}
