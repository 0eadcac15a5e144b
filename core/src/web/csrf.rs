//! CSRF protection for the login and account forms: a double-submit token. The browser holds a
//! random value in the `redoubt_csrf` cookie (HttpOnly, SameSite=Lax); every form carries the
//! same value in a hidden field, and a POST is accepted only when both are present and equal
//! (compared in constant time). A cross-site page can neither read the cookie nor set it.

use subtle::ConstantTimeEq;

/// The cookie holding the token.
pub const COOKIE: &str = "redoubt_csrf";
/// The form field holding the token.
pub const FIELD: &str = "csrf";

/// Whether a POST's field matches the browser's cookie.
pub fn matches(cookie: Option<&str>, field: Option<&str>) -> bool {
    match (cookie, field) {
        (Some(cookie), Some(field)) if cookie.len() >= 32 => {
            cookie.as_bytes().ct_eq(field.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_equal_pairs_pass() {
        let token = crate::auth::token::random_base64url().expect("random");
        assert!(matches(Some(&token), Some(&token)));
        assert!(!matches(Some(&token), Some("other")));
        assert!(!matches(None, Some(&token)));
        assert!(!matches(Some(&token), None));
        assert!(!matches(Some("short"), Some("short")));
    }
}
