//! Endpoint credentials at rest: the JSON `{username, domain, password}` sealed with
//! XChaCha20-Poly1305 under a key derived from the secret key, bound to the provider id and the
//! endpoint slug (a sealed value copied to another endpoint does not open). They leave the core
//! only in a grant, to the outpost holding that one connection.

use crate::auth::seal::{SealError, Sealer};
use redoubt_outpost_proto::rac::RdpCredentials;

/// The purpose the sealing key is derived for.
pub const KEY_PURPOSE: &str = "rac-endpoint-credentials";

/// The associated data of an endpoint's credentials.
pub fn seal_context(provider_id: i64, slug: &str) -> Vec<u8> {
    format!("rac:provider:{provider_id}:endpoint:{slug}").into_bytes()
}

/// Why credentials could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("sealed credentials are not the expected JSON")]
    Malformed,
}

/// Seals `credentials` for one endpoint.
pub fn seal(
    sealer: &Sealer,
    provider_id: i64,
    slug: &str,
    credentials: &RdpCredentials,
) -> Result<String, CredentialsError> {
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(credentials).map_err(|_| CredentialsError::Malformed)?,
    );
    Ok(sealer.seal(&plaintext, &seal_context(provider_id, slug))?)
}

/// Opens the credentials sealed for one endpoint.
pub fn open(
    sealer: &Sealer,
    provider_id: i64,
    slug: &str,
    sealed: &str,
) -> Result<RdpCredentials, CredentialsError> {
    let plaintext = zeroize::Zeroizing::new(sealer.open(sealed, &seal_context(provider_id, slug))?);
    serde_json::from_slice(&plaintext).map_err(|_| CredentialsError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> RdpCredentials {
        RdpCredentials {
            username: "alice".into(),
            domain: Some("CORP".into()),
            password: "s3cret!".into(),
        }
    }

    #[test]
    fn round_trip_and_binding() {
        let sealer = Sealer::new(&[9u8; 32]);
        let sealed = seal(&sealer, 4, "desk", &credentials()).expect("seal");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            open(&sealer, 4, "desk", &sealed).expect("open"),
            credentials()
        );
        assert!(
            open(&sealer, 4, "other", &sealed).is_err(),
            "bound to the slug"
        );
        assert!(
            open(&sealer, 5, "desk", &sealed).is_err(),
            "bound to the provider"
        );
        assert!(
            open(&Sealer::new(&[1u8; 32]), 4, "desk", &sealed).is_err(),
            "bound to the key"
        );
    }
}
