//! Checks both binaries run on loaded settings, so a wrong value stops the start with one
//! sentence naming the variable and the fix instead of surfacing later as odd behaviour.
//! Pure functions over strings; the binaries call them after loading.

use crate::ConfigError;

/// Levels a log filter may name.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// `log_level`: a level, or comma-separated `target=level` directives (`info,redoubt_core=debug`).
pub fn log_level(value: &str) -> Result<(), ConfigError> {
    let fix = || {
        ConfigError::Invalid(format!(
            "REDOUBT_LOG_LEVEL `{value}` is not a log level: use error, warn, info, debug or trace, \
             or directives such as info,redoubt_core=debug"
        ))
    };
    if value.trim().is_empty() {
        return Err(fix());
    }
    for directive in value.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level,
            Some(_) => return Err(fix()),
            None => directive,
        };
        if !LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()) {
            return Err(fix());
        }
    }
    Ok(())
}

/// `log_format`: `text` or `json`.
pub fn log_format(value: &str) -> Result<(), ConfigError> {
    match value {
        "text" | "json" => Ok(()),
        other => Err(ConfigError::Invalid(format!(
            "REDOUBT_LOG_FORMAT `{other}` is not a log format: use text or json"
        ))),
    }
}

/// An absolute `http://` or `https://` URL with a host and nothing after the path (no query or
/// fragment); `variable` names the setting in the message. Empty values are the caller's call.
pub fn absolute_http_url(variable: &str, value: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError::Invalid(format!(
            "{variable} `{value}` {why}: use an absolute URL such as https://id.example.com"
        ))
    };
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| bad("does not start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || host.chars().any(char::is_whitespace) {
        return Err(bad("has no valid host"));
    }
    if rest.contains(['?', '#']) || value.chars().any(char::is_whitespace) {
        return Err(bad("has a query, fragment or space"));
    }
    Ok(())
}

/// A certificate and its key come as a pair: one without the other is refused.
pub fn cert_pair(prefix: &str, cert_file: &str, key_file: &str) -> Result<(), ConfigError> {
    match (cert_file.is_empty(), key_file.is_empty()) {
        (false, true) => Err(ConfigError::Invalid(format!(
            "{prefix}CERT_FILE is set without {prefix}KEY_FILE: set both (the PEM certificate and \
             its private key) or neither"
        ))),
        (true, false) => Err(ConfigError::Invalid(format!(
            "{prefix}KEY_FILE is set without {prefix}CERT_FILE: set both (the PEM certificate and \
             its private key) or neither"
        ))),
        _ => Ok(()),
    }
}

/// The known name closest to `unknown` when it is a likely typo of it (edit distance at most 2,
/// or 1 for short names), else `None`.
pub fn near_miss<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = if unknown.chars().count() <= 4 { 1 } else { 2 };
    known
        .into_iter()
        .filter(|k| *k != unknown)
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute =
                previous.get(j).copied().unwrap_or(usize::MAX) + usize::from(ca != *cb);
            let delete = previous
                .get(j + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let insert = current
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_and_formats() {
        for ok in ["info", "DEBUG", "info,redoubt_core=debug", "warn,hyper=off"] {
            assert!(log_level(ok).is_ok(), "{ok}");
        }
        for bad in ["", "verbose", "info,", "=debug", "redoubt_core=loud"] {
            let err = log_level(bad).expect_err(bad).to_string();
            assert!(err.contains("REDOUBT_LOG_LEVEL"), "{err}");
        }
        assert!(log_format("json").is_ok());
        assert!(
            log_format("yaml")
                .expect_err("yaml")
                .to_string()
                .contains("use text or json")
        );
    }

    #[test]
    fn urls_must_be_absolute_http() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:9000/",
            "https://h/base",
        ] {
            assert!(
                absolute_http_url("REDOUBT_EXTERNAL_URL", ok).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "id.example.com",
            "ftp://id.example.com",
            "https://",
            "https:///x",
            "https://u@h",
            "https://h/?q=1",
            "https://h /",
        ] {
            let err = absolute_http_url("REDOUBT_EXTERNAL_URL", bad).expect_err(bad);
            assert!(
                err.to_string()
                    .starts_with("invalid configuration: REDOUBT_EXTERNAL_URL")
            );
        }
    }

    #[test]
    fn certificates_come_with_keys() {
        assert!(cert_pair("REDOUBT_TLS__", "", "").is_ok());
        assert!(cert_pair("REDOUBT_TLS__", "c.pem", "k.pem").is_ok());
        let err = cert_pair("REDOUBT_TLS__", "c.pem", "").expect_err("no key");
        assert!(
            err.to_string()
                .contains("REDOUBT_TLS__CERT_FILE is set without REDOUBT_TLS__KEY_FILE")
        );
        assert!(cert_pair("REDOUBT_TLS__", "", "k.pem").is_err());
    }

    #[test]
    fn near_misses_are_found() {
        let known = [
            "listen.http",
            "listen.https",
            "listen.metrics",
            "log_level",
            "url",
        ];
        assert_eq!(near_miss("listen.htpp", known), Some("listen.http"));
        assert_eq!(near_miss("log_levle", known), Some("log_level"));
        assert_eq!(near_miss("nope", known), None);
        assert_eq!(near_miss("uri", known), Some("url"));
        assert_eq!(near_miss("database", known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
