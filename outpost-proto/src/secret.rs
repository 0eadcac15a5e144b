//! [`Secret`]: a string that must not leak through logs. `Debug` prints `Secret(********)` (or
//! `Secret("")` when empty, so a missing value is still visible); serde sees the plain string, so
//! wire and settings formats are unchanged. The value is read only through [`Secret::expose`],
//! which makes every use easy to find.

use serde::{Deserialize, Serialize};

/// A secret string: a shared secret, a password, a token, a key.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            f.write_str("Secret(********)")
        }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value_and_serde_keeps_it() {
        let secret = Secret::from("hunter22");
        assert_eq!(format!("{secret:?}"), "Secret(********)");
        assert!(!format!("{:?}", Some(&secret)).contains("hunter22"));
        assert_eq!(format!("{:?}", Secret::default()), "Secret(\"\")");
        let json = serde_json::to_string(&secret).expect("serialize");
        assert_eq!(json, "\"hunter22\"");
        let back: Secret = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.expose(), "hunter22");
    }
}
