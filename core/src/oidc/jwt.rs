//! JSON Web Tokens signed with ES256 (ECDSA P-256, SHA-256; RFC 7515/7518/7519), compact
//! serialisation only. Signing takes a ring key pair; verification a list of public keys by
//! `kid`. Everything here is pure: no clock, no storage.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, EcdsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

/// The only signing algorithm: ring cannot generate RSA keys.
pub const ALGORITHM: &str = "ES256";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("token is malformed")]
    Malformed,
    #[error("token uses an unsupported algorithm")]
    Algorithm,
    #[error("token is signed by an unknown key")]
    UnknownKey,
    #[error("token signature does not verify")]
    Signature,
    #[error("signing failed")]
    Signing,
}

/// A public verification key.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub kid: String,
    /// The uncompressed P-256 point (65 bytes, `04 || x || y`).
    pub point: Vec<u8>,
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// Signs `claims` (a JSON object) with `key`, naming it `kid`; `typ` is `JWT` or `at+jwt`.
pub fn sign(claims: &Value, kid: &str, typ: &str, key: &EcdsaKeyPair) -> Result<String, JwtError> {
    let header = json!({"alg": ALGORITHM, "typ": typ, "kid": kid});
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|_| JwtError::Signing)?;
    Ok(format!("{signing_input}.{}", b64(signature.as_ref())))
}

/// The decoded parts of a token whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Value,
    pub claims: Value,
}

/// Verifies `token` against `keys` and returns its header and claims. Says nothing about
/// expiry or audience: the caller checks claims.
pub fn verify(token: &str, keys: &[VerifyingKey]) -> Result<Verified, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        data_encoding::BASE64URL_NOPAD
            .decode(part.as_bytes())
            .map_err(|_| JwtError::Malformed)
    };
    let header: Value =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
        return Err(JwtError::Algorithm);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::UnknownKey)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JwtError::UnknownKey)?;
    let signature = decode(signature_b64)?;
    let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.point)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| JwtError::Signature)?;
    let claims: Value =
        serde_json::from_slice(&decode(claims_b64)?).map_err(|_| JwtError::Malformed)?;
    if !claims.is_object() {
        return Err(JwtError::Malformed);
    }
    Ok(Verified { header, claims })
}

/// The `at_hash` of an access token (OIDC Core 3.1.3.6): the left half of its SHA-256.
pub fn at_hash(access_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(access_token.as_bytes());
    b64(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, KeyPair};

    fn key() -> (EcdsaKeyPair, VerifyingKey) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("parse");
        let public = VerifyingKey {
            kid: "k1".into(),
            point: pair.public_key().as_ref().to_vec(),
        };
        (pair, public)
    }

    #[test]
    fn signs_and_verifies() {
        let (pair, public) = key();
        let token = sign(&json!({"sub": "7"}), "k1", "JWT", &pair).expect("sign");
        let verified = verify(&token, std::slice::from_ref(&public)).expect("verify");
        assert_eq!(verified.claims["sub"], "7");
        assert_eq!(verified.header["kid"], "k1");
    }

    #[test]
    fn refuses_tampering_and_strangers() {
        let (pair, public) = key();
        let token = sign(&json!({"sub": "7"}), "k1", "JWT", &pair).expect("sign");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = b64(br#"{"sub":"1"}"#);
        parts[1] = &forged_claims;
        assert_eq!(
            verify(&parts.join("."), std::slice::from_ref(&public)).err(),
            Some(JwtError::Signature)
        );
        let (_, other) = key();
        assert_eq!(verify(&token, &[other]).err(), Some(JwtError::Signature));
        assert_eq!(verify(&token, &[]).err(), Some(JwtError::UnknownKey));
        let none_alg = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","kid":"k1"}"#),
            b64(br#"{"sub":"1"}"#)
        );
        assert_eq!(
            verify(&none_alg, std::slice::from_ref(&public)).err(),
            Some(JwtError::Algorithm)
        );
        assert_eq!(
            verify("a.b", std::slice::from_ref(&public)).err(),
            Some(JwtError::Malformed)
        );
        assert_eq!(
            verify("a.b.c.d", &[public]).err(),
            Some(JwtError::Malformed)
        );
    }

    #[test]
    fn at_hash_matches_the_spec_example_shape() {
        // Left-most 128 bits of SHA-256, base64url: 22 characters.
        assert_eq!(at_hash("token").len(), 22);
        assert_ne!(at_hash("a"), at_hash("b"));
    }
}
