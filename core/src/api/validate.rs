//! Field checks shared by the handlers; each error names the field.

use super::error::ApiError;

/// Longest accepted password, in bytes: bounds the hashing work one request can cause.
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;
/// Shortest accepted password, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;

/// A name: 1 to 150 characters, no control characters, no leading or trailing space.
pub(crate) fn name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > 150 {
        return Err(ApiError::validation(format!(
            "{field}: must be 1 to 150 characters"
        )));
    }
    if value.trim() != value || value.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{field}: must not start or end with spaces or contain control characters"
        )));
    }
    Ok(())
}

/// A username: a name without `,`, `=`, `+`, `;`, quotes, `<`, `>`, `\` or `#` (it becomes part
/// of LDAP DNs and RADIUS attributes) and without spaces.
pub(crate) fn username(value: &str) -> Result<(), ApiError> {
    name("username", value)?;
    if value
        .chars()
        .any(|c| c.is_whitespace() || ",=+;\"<>\\#".contains(c))
    {
        return Err(ApiError::validation(
            "username: must not contain spaces or any of , = + ; \" < > \\ #",
        ));
    }
    Ok(())
}

/// A slug: lowercase letters, digits and dashes.
pub(crate) fn slug(value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || value.len() > 100
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ApiError::validation(
            "slug: use 1 to 100 lowercase letters, digits and dashes",
        ));
    }
    Ok(())
}

/// A password to set.
pub(crate) fn password(value: &str) -> Result<(), ApiError> {
    if value.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password: must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if value.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation(format!(
            "password: must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// An email address: empty, or something@something.
pub(crate) fn email(value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Ok(());
    }
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !value.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(ApiError::validation(format!(
            "email: `{value}` is not an email address"
        ))),
    }
}

/// A launch URL: empty, or an http(s) URL.
pub(crate) fn launch_url(value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "launch_url: `{value}` is not an http(s) URL"
        )))
    }
}
