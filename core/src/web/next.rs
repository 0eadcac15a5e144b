//! Where to go after login: only a path on this server (`/...`), never another site. Anything
//! else falls back to the account page.

/// Where a login lands without a `next` parameter.
pub const DEFAULT: &str = "/account";

/// `next` if it is a local path, else `None`.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 4096
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then_some(next)
}

/// `next` if local, else the default.
pub fn or_default(next: Option<&str>) -> &str {
    next.and_then(local_path).unwrap_or(DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_pass() {
        assert_eq!(
            local_path("/oauth/authorize?x=1"),
            Some("/oauth/authorize?x=1")
        );
        assert_eq!(local_path("/account"), Some("/account"));
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/a\\b",
            "evil",
            "",
            "/\nSet-Cookie: x",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
        assert_eq!(or_default(Some("https://evil")), DEFAULT);
        assert_eq!(or_default(None), DEFAULT);
    }
}
