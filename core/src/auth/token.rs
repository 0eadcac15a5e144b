//! API token secrets: 256 random bits, shown once, stored as SHA-256.
//!
//! A token looks like `rdt_` followed by 52 base32 characters. A fast hash is right here (unlike
//! for passwords): the secret has full entropy, so there is nothing to brute-force.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix every Redoubt token carries, so secret scanners can spot leaked tokens.
pub const TOKEN_PREFIX: &str = "rdt_";

/// A fresh token secret.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
    ))
}

/// 256 random bits as base64url without padding: OAuth codes, refresh tokens, client secrets,
/// CSRF tokens.
pub fn random_base64url() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

/// The stored form of a token secret: lowercase hex SHA-256.
pub fn hash(secret: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(secret.as_bytes()))
}

/// Compares two stored hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 52);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_stable_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(hashes_equal(&hash("x"), &hash("x")));
        assert!(!hashes_equal(&hash("x"), &hash("y")));
    }
}
