//! The test server's TLS identity: a fresh self-signed certificate for `localhost` (rcgen,
//! ECDSA P-256), the rustls acceptor over it, the raw public key CredSSP binds to, and the
//! SHA-256 of the SubjectPublicKeyInfo that endpoints pin.

use anyhow::Context;
use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// A certificate and its key.
pub(crate) struct Identity {
    pub(crate) acceptor: TlsAcceptor,
    /// The subjectPublicKey bits (what CredSSP's `pubKeyAuth` covers).
    pub(crate) public_key: Vec<u8>,
    /// SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex.
    pub(crate) public_key_sha256: String,
    /// The certificate, DER.
    pub(crate) certificate_der: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    pub(crate) spki_der: Vec<u8>,
}

impl Identity {
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let key = KeyPair::generate().context("generate the RDP server key")?;
        let params = CertificateParams::new(vec!["localhost".to_owned()])?;
        let certificate = params.self_signed(&key).context("self-sign")?;
        let certificate_der = certificate.der().to_vec();
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(certificate_der.clone())], private)
            .context("TLS certificate")?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            public_key: key.public_key_raw().to_vec(),
            public_key_sha256: sha256_hex(&key.subject_public_key_info()),
            spki_der: key.subject_public_key_info(),
            certificate_der,
        })
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}
