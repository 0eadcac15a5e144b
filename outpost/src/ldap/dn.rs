//! Distinguished names (RFC 4514): parsing with escapes, and the normalized form every
//! comparison uses (attribute types and values lower-cased, values re-escaped), so
//! `CN=Alice , OU=Users,DC=Example,DC=com` and `cn=alice,ou=users,dc=example,dc=com` are one DN.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]

/// A parsed DN: relative DNs from the leaf up, each `(type, value)` with the type lower-cased
/// and the value unescaped as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    pub rdns: Vec<(String, String)>,
}

/// Why a DN does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN: {0}")]
pub struct DnError(pub &'static str);

impl Dn {
    /// Parses `text`; the empty string is the root DN.
    pub fn parse(text: &str) -> Result<Self, DnError> {
        let mut rdns = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self { rdns });
        }
        for part in split_unescaped(text, &[',', ';']) {
            // A multi-valued RDN (`cn=a+uid=b`) is matched on its first value.
            let first = split_unescaped(part, &['+'])
                .into_iter()
                .next()
                .unwrap_or_default();
            let (attr, value) = first.split_once('=').ok_or(DnError("an RDN without `=`"))?;
            let attr = attr.trim();
            if attr.is_empty()
                || !attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(DnError("an attribute type that is not a name or OID"));
            }
            rdns.push((attr.to_ascii_lowercase(), unescape(trim_unescaped(value))?));
        }
        Ok(Self { rdns })
    }

    /// The normalized string form: types and values lower-cased, values escaped.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        for (i, (attr, value)) in self.rdns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(attr);
            out.push('=');
            out.push_str(&escape_value(&value.to_lowercase()));
        }
        out
    }
}

/// The normalized form of `text`, or `None` if it does not parse.
pub fn normalize(text: &str) -> Option<String> {
    Dn::parse(text).ok().map(|dn| dn.normalized())
}

/// Escapes an attribute value for use in a DN (RFC 4514 section 2.4).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Splits on separators not preceded by a backslash escape.
fn split_unescaped<'a>(text: &'a str, separators: &[char]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if separators.contains(&c) {
            // `start` and `i` are char boundaries from `char_indices`.
            parts.push(text.get(start..i).unwrap_or_default());
            start = i + c.len_utf8();
        }
    }
    parts.push(text.get(start..).unwrap_or_default());
    parts
}

/// Trims spaces around a value, keeping an escaped trailing space (`\ `).
fn trim_unescaped(value: &str) -> &str {
    let mut value = value.trim_start();
    while !value.ends_with("\\ ")
        && let Some(shorter) = value.strip_suffix(' ')
    {
        value = shorter;
    }
    value
}

fn unescape(value: &str) -> Result<String, DnError> {
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.as_bytes();
    let hex = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|n| u8::try_from(n).ok())
    };
    while let Some((&byte, rest)) = bytes.split_first() {
        bytes = rest;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let (&next, rest) = bytes.split_first().ok_or(DnError("a trailing backslash"))?;
        bytes = rest;
        match (hex(next), bytes.first().and_then(|b| hex(*b))) {
            (Some(high), Some(low)) => {
                out.push(high.saturating_mul(16).saturating_add(low));
                bytes = bytes.get(1..).unwrap_or_default();
            }
            _ => out.push(next),
        }
    }
    String::from_utf8(out).map_err(|_| DnError("a value that is not UTF-8"))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
mod tests {
    use super::*;

    #[test]
    fn case_spaces_and_escapes_normalize_to_one_form() {
        let a = normalize("CN=Alice , OU=Users,DC=Example,DC=com").expect("parse");
        assert_eq!(a, "cn=alice,ou=users,dc=example,dc=com");
        assert_eq!(
            normalize("cn=Smith\\, John,ou=users").as_deref(),
            Some("cn=smith\\, john,ou=users")
        );
        assert_eq!(
            normalize("cn=Smith\\2C John,ou=users").as_deref(),
            Some("cn=smith\\, john,ou=users")
        );
        assert_eq!(
            normalize("cn=\"quoted\";ou=x").as_deref(),
            Some("cn=quoted,ou=x")
        );
        assert_eq!(normalize("").as_deref(), Some(""));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in ["cn", "=x", "cn=a\\", "c n=a", "cn=\\ff\\fe"] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
        for odd in ["cn=é,ou=ü", "cn=a+uid=b,ou=x", "cn=,ou=x", "cn=a\\"] {
            let _ = Dn::parse(odd);
        }
    }

    #[test]
    fn escaping_round_trips() {
        for value in [
            "a,b",
            " lead",
            "trail ",
            "#hash",
            "x+y=z",
            "back\\slash",
            "ü",
        ] {
            let dn = format!("cn={},ou=x", escape_value(value));
            assert_eq!(Dn::parse(&dn).expect("parse").rdns[0].1, value);
        }
    }
}
