//! The provider's signing keys: ES256 key pairs made with ring, the PKCS#8 private half sealed
//! (XChaCha20-Poly1305 under a key derived from the secret key) in `oidc_signing_keys`.
//!
//! The newest unretired key signs. A rotation retires the current key and adds a new one; a
//! retired key stays in the JWKS for [`RETENTION_SECONDS`] so tokens it signed still verify.
//! The first key is made on first use. Every replica reads the table, so a rotation on one is
//! seen by all.

use super::jwt::{self, VerifyingKey};
use crate::auth::seal::Sealer;
use crate::store::oidc::SigningKeyRow;
use crate::store::{Store, StoreError};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a retired key stays published: longer than any token it can have signed (ID and
/// access tokens live at most 30 days, the longest proxy session).
pub const RETENTION_SECONDS: i64 = 31 * 86_400;

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the signing key does not open under this secret key")]
    Sealed,
    #[error("the signing key is not a valid P-256 key")]
    Invalid,
    #[error("key generation failed")]
    Generate,
}

/// A key pair ready to sign.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub pair: Arc<EcdsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Loads, creates and rotates signing keys.
#[derive(Clone)]
pub struct KeyManager {
    store: Store,
    sealer: Sealer,
    /// Opened key pairs by kid, so a key is unsealed and parsed once per process.
    opened: Arc<Mutex<HashMap<String, Arc<EcdsaKeyPair>>>>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyManager(..)")
    }
}

fn seal_context(kid: &str) -> Vec<u8> {
    format!("oidc-signing-key:{kid}").into_bytes()
}

/// The JWK of a P-256 public point.
pub fn public_jwk(kid: &str, point: &[u8]) -> Result<Value, KeyError> {
    if point.len() != 65 || point[0] != 4 {
        return Err(KeyError::Invalid);
    }
    Ok(json!({
        "kty": "EC",
        "crv": "P-256",
        "x": jwt::b64(&point[1..33]),
        "y": jwt::b64(&point[33..65]),
        "use": "sig",
        "alg": jwt::ALGORITHM,
        "kid": kid,
    }))
}

/// The verifying key of a published JWK.
pub fn verifying_key(jwk: &Value) -> Option<VerifyingKey> {
    let decode = |field: &str| {
        data_encoding::BASE64URL_NOPAD
            .decode(jwk.get(field)?.as_str()?.as_bytes())
            .ok()
    };
    let (x, y) = (decode("x")?, decode("y")?);
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some(VerifyingKey {
        kid: jwk.get("kid")?.as_str()?.to_owned(),
        point,
    })
}

impl KeyManager {
    /// A manager over `store`, sealing private keys with `sealer`.
    pub fn new(store: Store, sealer: Sealer) -> Self {
        Self {
            store,
            sealer,
            opened: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The key that signs now; made on first use.
    pub async fn current(&self) -> Result<SigningKey, KeyError> {
        for _ in 0..2 {
            let rows = self.store.oidc_signing_keys().await?;
            if let Some(row) = rows.iter().find(|r| r.retired_at.is_none()) {
                return self.open(row);
            }
            self.add(false).await?;
        }
        let rows = self.store.oidc_signing_keys().await?;
        let row = rows
            .iter()
            .find(|r| r.retired_at.is_none())
            .ok_or(KeyError::Generate)?;
        self.open(row)
    }

    /// Makes a new current key and retires the others; returns the new kid.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let kid = self.add(true).await?;
        let before = self.store.now() - RETENTION_SECONDS;
        self.store.prune_oidc_signing_keys(before).await?;
        Ok(kid)
    }

    /// The published keys (current and retired within the retention period) as a JWKS.
    pub async fn jwks(&self) -> Result<Value, KeyError> {
        let keys: Vec<Value> = self
            .published()
            .await?
            .iter()
            .filter_map(|row| serde_json::from_str(&row.public_jwk).ok())
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// The keys tokens are verified with.
    pub async fn verifying_keys(&self) -> Result<Vec<VerifyingKey>, KeyError> {
        Ok(self
            .published()
            .await?
            .iter()
            .filter_map(|row| serde_json::from_str::<Value>(&row.public_jwk).ok())
            .filter_map(|jwk| verifying_key(&jwk))
            .collect())
    }

    async fn published(&self) -> Result<Vec<SigningKeyRow>, KeyError> {
        let mut rows = self.store.oidc_signing_keys().await?;
        if rows.is_empty() {
            self.current().await?;
            rows = self.store.oidc_signing_keys().await?;
        }
        let cutoff = self.store.now() - RETENTION_SECONDS;
        rows.retain(|row| row.retired_at.is_none_or(|at| at >= cutoff));
        Ok(rows)
    }

    async fn add(&self, retire_current: bool) -> Result<String, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| KeyError::Invalid)?;
        let point = pair.public_key().as_ref();
        let kid = jwt::b64(&Sha256::digest(point)[..12]);
        let jwk = public_jwk(&kid, point)?;
        let sealed = self
            .sealer
            .seal(pkcs8.as_ref(), &seal_context(&kid))
            .map_err(|_| KeyError::Generate)?;
        self.store
            .add_oidc_signing_key(
                &kid,
                jwt::ALGORITHM,
                &sealed,
                &jwk.to_string(),
                retire_current,
            )
            .await?;
        Ok(kid)
    }

    fn open(&self, row: &SigningKeyRow) -> Result<SigningKey, KeyError> {
        if let Ok(opened) = self.opened.lock()
            && let Some(pair) = opened.get(&row.kid)
        {
            return Ok(SigningKey {
                kid: row.kid.clone(),
                pair: pair.clone(),
            });
        }
        if row.algorithm != jwt::ALGORITHM {
            return Err(KeyError::Invalid);
        }
        let pkcs8 = self
            .sealer
            .open(&row.private_sealed, &seal_context(&row.kid))
            .map_err(|_| KeyError::Sealed)?;
        let pair = Arc::new(
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &pkcs8,
                &SystemRandom::new(),
            )
            .map_err(|_| KeyError::Invalid)?,
        );
        if let Ok(mut opened) = self.opened.lock() {
            opened.insert(row.kid.clone(), pair.clone());
        }
        Ok(SigningKey {
            kid: row.kid.clone(),
            pair,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwk_round_trips_to_a_verifying_key() {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("keygen");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("parse");
        let jwk = public_jwk("k", pair.public_key().as_ref()).expect("jwk");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        let key = verifying_key(&jwk).expect("key");
        assert_eq!(key.point, pair.public_key().as_ref());
        let token = jwt::sign(&json!({"a": 1}), "k", "JWT", &pair).expect("sign");
        assert!(jwt::verify(&token, &[key]).is_ok());
        assert!(public_jwk("k", &[4u8; 10]).is_err());
    }
}
