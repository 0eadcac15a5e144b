//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` offers no protection against a
//! leaked authorization request and is refused.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `value` is a well-formed verifier or S256 challenge: 43 to 128 characters from
/// `[A-Za-z0-9-._~]`.
pub fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge of a verifier.
pub fn challenge_s256(verifier: &str) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge`, compared in constant time.
pub fn verify(challenge: &str, verifier: &str) -> bool {
    well_formed(verifier)
        && challenge_s256(verifier)
            .as_bytes()
            .ct_eq(challenge.as_bytes())
            .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_s256(verifier), challenge);
        assert!(verify(challenge, verifier));
        assert!(!verify(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx"
        ));
        assert!(!verify(challenge, "short"));
        assert!(well_formed(challenge));
        assert!(!well_formed(
            "has space has space has space has space has space"
        ));
    }
}
