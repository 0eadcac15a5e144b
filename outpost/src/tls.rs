//! TLS towards the core: the system's roots plus `REDOUBT_CA_FILE`, verified by default. With
//! `REDOUBT_DANGER_INSECURE` the certificate is not checked at all (and the log says so). Also
//! the server side the LDAP and proxy listeners share: the configured certificate and key.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA certificates from {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("{path} holds no certificate")]
    EmptyCaFile { path: String },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration for REST and the control channel.
pub fn client_config(ca_file: &str, danger_insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if danger_insecure {
        tracing::warn!(
            "REDOUBT_DANGER_INSECURE is set: the core's TLS certificate is NOT verified"
        );
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if !ca_file.is_empty() {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| TlsError::CaFile {
            path: ca_file.to_owned(),
            message: e.to_string(),
        })? {
            let cert = cert.map_err(|e| TlsError::CaFile {
                path: ca_file.to_owned(),
                message: e.to_string(),
            })?;
            roots.add(cert)?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::EmptyCaFile {
                path: ca_file.to_owned(),
            });
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// A client configuration that accepts any server certificate, for upstreams whose provider
/// turned verification off (`internal_host_verify_tls: false`; the proxy module warns).
pub fn unverified_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every certificate; signatures are still checked so the handshake is well-formed.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server configuration for LDAPS/StartTLS and the proxy's HTTPS listener, from
/// `tls.cert_file`/`tls.key_file`, offering `alpn`; `None` when neither file is configured.
pub fn server_config(
    settings: &crate::settings::TlsSettings,
    alpn: &[&[u8]],
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    use anyhow::Context;
    use rustls::pki_types::PrivateKeyDer;
    match (settings.cert_file.is_empty(), settings.key_file.is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => anyhow::bail!(
            "set both tls.cert_file and tls.key_file (REDOUBT_TLS__CERT_FILE, REDOUBT_TLS__KEY_FILE), or neither"
        ),
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .with_context(|| format!("cannot read certificates from {}", settings.cert_file))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", settings.cert_file);
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .with_context(|| format!("cannot read a private key from {}", settings.key_file))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not form a usable pair")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Some(Arc::new(config)))
}
