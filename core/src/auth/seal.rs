//! Sealing of secrets that must be readable again (TOTP seeds): XChaCha20-Poly1305 under a key
//! derived from the core's secret key. A sealed value is `v1.` + base64url(nonce || ciphertext).

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const VERSION_PREFIX: &str = "v1.";

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not authenticate under this secret key")]
    Forged,
    #[error("no randomness available: {0}")]
    Random(getrandom::Error),
}

/// Seals and opens values under one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts and authenticates `plaintext`, binding it to `context` (e.g. the user id).
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(SealError::Random)?;
        let payload = chacha20poly1305::aead::Payload {
            msg: plaintext,
            aad: context,
        };
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| SealError::Malformed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(format!(
            "{VERSION_PREFIX}{}",
            data_encoding::BASE64URL_NOPAD.encode(&out)
        ))
    }

    /// Opens a value sealed with the same key and `context`.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, SealError> {
        let body = sealed
            .strip_prefix(VERSION_PREFIX)
            .ok_or(SealError::Malformed)?;
        let bytes = data_encoding::BASE64URL_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < 24 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let payload = chacha20poly1305::aead::Payload {
            msg: ciphertext,
            aad: context,
        };
        self.cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SealError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let sealer = Sealer::new(&[7u8; 32]);
        let sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", b"user:1").expect("seal");
        assert_eq!(
            sealer.open(&sealed, b"user:1").expect("open"),
            b"JBSWY3DPEHPK3PXP"
        );
        assert!(matches!(
            sealer.open(&sealed, b"user:2"),
            Err(SealError::Forged)
        ));
        assert!(matches!(
            Sealer::new(&[8u8; 32]).open(&sealed, b"user:1"),
            Err(SealError::Forged)
        ));
        assert!(matches!(
            sealer.open("v1.!!", b""),
            Err(SealError::Malformed)
        ));
        assert!(matches!(
            sealer.open("plain", b""),
            Err(SealError::Malformed)
        ));
    }
}
