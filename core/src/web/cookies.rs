//! Reading the `Cookie` header and writing `Set-Cookie` values: always `Path=/`, `HttpOnly`,
//! `SameSite=Lax`, and `Secure` when the request came over HTTPS.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// Longest cookie value read; longer ones are ignored.
const MAX_COOKIE_BYTES: usize = 4096;

/// The value of cookie `name`, if the request carries it once or more (the first wins).
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty() && value.len() <= MAX_COOKIE_BYTES)
}

/// A `Set-Cookie` value for `name=value` living `max_age` seconds (0 deletes it).
pub fn set(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let mut cookie = format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax",
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
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(get(&headers, "redoubt_session").as_deref(), Some("xyz"));
        assert_eq!(get(&headers, "b").as_deref(), Some("2"));
        assert_eq!(get(&headers, "missing"), None);
    }

    #[test]
    fn cookies_are_locked_down() {
        let cookie = set("n", "v", 60, true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(cookie.ends_with("; Secure"));
        assert!(clear("n", false).contains("Max-Age=0"));
    }
}
