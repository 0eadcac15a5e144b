//! Reading the `Cookie` header and writing `Set-Cookie` values: always `Path=/`, `HttpOnly`,
//! `SameSite=Lax`, no `Domain` (host-only), and over HTTPS `Secure` and the `__Host-` name prefix
//! (RFC 6265bis section 4.1.3.2), so neither a sibling subdomain nor a plain-HTTP response can
//! plant or shadow one. Reading is byte-wise and strict: a cookie whose value is not made of
//! cookie octets (non-UTF-8 bytes, quotes inside, control characters) is treated as absent, and
//! a malformed pair never hides the well-formed ones beside it.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// Longest cookie value read; longer ones are ignored.
const MAX_COOKIE_BYTES: usize = 4096;
/// The prefix browsers enforce host-only, secure, `Path=/` cookies for.
pub const HOST_PREFIX: &str = "__Host-";

/// The name cookie `name` has on the wire: `__Host-name` over HTTPS, `name` over plain HTTP.
pub fn wire_name(name: &str, secure: bool) -> String {
    if secure {
        format!("{HOST_PREFIX}{name}")
    } else {
        name.to_owned()
    }
}

/// The value of cookie `name` (under its wire name), if the request carries it well-formed
/// (the first well-formed one wins).
pub fn get(headers: &HeaderMap, name: &str, secure: bool) -> Option<String> {
    let wanted = wire_name(name, secure);
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (key, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
            (key.trim_ascii() == wanted.as_bytes()).then(|| parse_value(value.trim_ascii()))?
        })
        .next()
}

/// A cookie value (RFC 6265 section 4.1.1 `cookie-value`, quotes allowed around it), or `None`.
fn parse_value(raw: &[u8]) -> Option<String> {
    let inner = raw
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_suffix(b"\""))
        .unwrap_or(raw);
    let octet = |b: &u8| matches!(*b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    if inner.is_empty() || inner.len() > MAX_COOKIE_BYTES || !inner.iter().all(octet) {
        return None;
    }
    std::str::from_utf8(inner).ok().map(str::to_owned)
}

/// A `Set-Cookie` value for `name=value` living `max_age` seconds (0 deletes it).
pub fn set(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let mut cookie = format!(
        "{}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
        wire_name(name, secure),
        max_age.max(0)
    );
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that deletes `name`.
pub fn clear(name: &str, secure: bool) -> String {
    set(name, "", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_the_named_cookie() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; redoubt_session=xyz"));
        headers.append(COOKIE, HeaderValue::from_static("b=\"2\""));
        assert_eq!(
            get(&headers, "redoubt_session", false).as_deref(),
            Some("xyz")
        );
        assert_eq!(get(&headers, "b", false).as_deref(), Some("2"));
        assert_eq!(get(&headers, "missing", false), None);
        // Over HTTPS only the __Host- cookie counts.
        assert_eq!(get(&headers, "redoubt_session", true), None);
        headers.append(
            COOKIE,
            HeaderValue::from_static("__Host-redoubt_session=abc"),
        );
        assert_eq!(
            get(&headers, "redoubt_session", true).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn malformed_values_are_no_cookie_and_hide_nothing_else() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_bytes(b"s=\xff\xfe; t=ok; u=a\"b; v=; w=%zz; =x; junk")
                .expect("obs-text is a valid header value"),
        );
        assert_eq!(get(&headers, "s", false), None);
        assert_eq!(get(&headers, "t", false).as_deref(), Some("ok"));
        assert_eq!(get(&headers, "u", false), None);
        assert_eq!(get(&headers, "v", false), None);
        // Percent signs are cookie octets: the value is opaque to this layer.
        assert_eq!(get(&headers, "w", false).as_deref(), Some("%zz"));
        let long = format!("l={}", "a".repeat(MAX_COOKIE_BYTES + 1));
        headers.append(COOKIE, HeaderValue::from_str(&long).expect("value"));
        assert_eq!(get(&headers, "l", false), None);
    }

    #[test]
    fn cookies_are_locked_down() {
        let cookie = set("n", "v", 60, true);
        assert!(cookie.starts_with("__Host-n=v; Path=/;"), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Domain"));
        assert!(cookie.ends_with("; Secure"));
        assert!(set("n", "v", 60, false).starts_with("n=v;"));
        assert!(clear("n", false).contains("Max-Age=0"));
    }
}
