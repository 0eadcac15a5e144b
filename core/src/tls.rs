//! HTTPS for the core: the configured certificate and key (PEM files), or a self-signed
//! certificate generated on first start and kept in the data dir (`tls.crt`, `tls.key` mode
//! 0600). Outposts trust a self-signed core through `REDOUBT_CA_FILE=<data dir>/tls.crt`.

use crate::secret_key::write_private_file;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names of the generated certificate and key in the data dir.
pub const GENERATED_CERT: &str = "tls.crt";
pub const GENERATED_KEY: &str = "tls.key";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The certificate in use and where it came from.
#[derive(Debug)]
pub struct CoreTls {
    pub config: Arc<ServerConfig>,
    pub cert_path: PathBuf,
    pub generated: bool,
}

/// Loads `cert_file`/`key_file`, or the self-signed pair in `data_dir` (generated when absent).
pub fn load_or_generate(
    cert_file: &str,
    key_file: &str,
    data_dir: &Path,
) -> Result<CoreTls, TlsSetupError> {
    let (cert_path, key_path, generated) = if !cert_file.is_empty() && !key_file.is_empty() {
        (PathBuf::from(cert_file), PathBuf::from(key_file), false)
    } else {
        let cert = data_dir.join(GENERATED_CERT);
        let key = data_dir.join(GENERATED_KEY);
        if !cert.exists() || !key.exists() {
            generate(&cert, &key)?;
            tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate for the core");
        }
        (cert, key, true)
    };
    let read = |path: &Path, e: &dyn std::fmt::Display| TlsSetupError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| read(&cert_path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read(&cert_path, &e))?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: cert_path.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| read(&key_path, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(CoreTls {
        config: Arc::new(config),
        cert_path,
        generated,
    })
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<(), TlsSetupError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = hostname::get() {
        let host = host.to_string_lossy().into_owned();
        if !host.is_empty() && !names.contains(&host) {
            names.push(host);
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsSetupError::Generate(e.to_string()))?;
    let write = |path: &Path, bytes: &[u8]| {
        write_private_file(path, bytes).map_err(|source| TlsSetupError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    write(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    write(cert_path, certified.cert.pem().as_bytes())?;
    Ok(())
}
