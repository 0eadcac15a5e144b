//! Connecting to an RDP server: TCP with a timeout, X.224 negotiation, the TLS upgrade (the
//! server's key checked against the endpoint's pin, its fingerprint kept for the audit event),
//! CredSSP/NLA (NTLM, no network calls) when negotiated, then the rest of the connection sequence
//! (MCS, licensing, capabilities, finalization). Failures are sorted into the reasons a user and
//! an administrator can act on ([`ConnectError`]).

use crate::rdp_clipboard::ChannelBackend;
use ironrdp_connector::{
    BitmapConfig, ClientConnector, ConnectionResult, ConnectorError, ConnectorErrorKind,
    Credentials, DesktopSize, ServerName,
};
use ironrdp_pdu::gcc::KeyboardType;
use ironrdp_pdu::rdp::capability_sets::{BitmapCodecs, MajorPlatformType};
use ironrdp_pdu::rdp::client_info::{PerformanceFlags, TimezoneInfo};
use ironrdp_tokio::TokioFramed;
use redoubt_outpost_proto::provider::RdpSecurity;
use redoubt_outpost_proto::rac::{EndReason, RdpCredentials};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Longest wait for the TCP connection.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the whole connection sequence after TCP.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// The client build announced in the Client Core Data (Windows 10 1909's, as FreeRDP does).
const CLIENT_BUILD: u32 = 18363;

/// A byte stream the session reads and writes (TLS over TCP).
pub trait RdpStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> RdpStream for T {}

/// The framed, upgraded connection to the server.
pub type RdpFramed = TokioFramed<Box<dyn RdpStream>>;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub host: String,
    pub port: u16,
    pub security: RdpSecurity,
    /// SHA-256 of the server's SubjectPublicKeyInfo, when pinned.
    pub pin_sha256: Option<[u8; 32]>,
    pub width: u16,
    pub height: u16,
    /// Windows KLID of the remote keyboard layout.
    pub keyboard_layout: u32,
    /// The client name the server sees (and shows in its session list).
    pub client_name: String,
}

/// A connection ready for the active stage.
pub struct Connected {
    pub framed: RdpFramed,
    pub result: ConnectionResult,
    /// `nla` or `tls`.
    pub security: &'static str,
    /// SHA-256 (hex) of the server's SubjectPublicKeyInfo.
    pub server_key_sha256: String,
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach {address}: {detail}")]
    Unreachable { address: String, detail: String },
    #[error("the TLS handshake with the server failed: {0}")]
    Tls(String),
    #[error("the server's public key {got} is not the pinned {expected}")]
    PinMismatch { expected: String, got: String },
    #[error("the server refused the credentials: {0}")]
    AuthFailed(String),
    #[error("the server and the outpost agree on no security protocol: {0}")]
    Negotiation(String),
    #[error("the connection sequence failed: {0}")]
    Protocol(String),
    #[error("the server did not complete the connection within {0} seconds")]
    Timeout(u64),
}

impl ConnectError {
    /// The reason recorded and shown.
    pub fn reason(&self) -> EndReason {
        match self {
            Self::Unreachable { .. } => EndReason::Unreachable,
            Self::Tls(_) | Self::PinMismatch { .. } => EndReason::Tls,
            Self::AuthFailed(_) => EndReason::AuthFailed,
            Self::Negotiation(_) | Self::Protocol(_) => EndReason::Protocol,
            Self::Timeout(_) => EndReason::Timeout,
        }
    }

    /// A sentence for the user that says what to fix.
    pub fn user_message(&self) -> String {
        match self {
            Self::Unreachable { address, .. } => format!(
                "The remote desktop at {address} cannot be reached. Check that it is running and that the outpost can reach it, or ask your administrator."
            ),
            Self::Tls(_) => "The secure (TLS) connection to the remote desktop failed. Ask your administrator to check the server's certificate and security settings.".into(),
            Self::PinMismatch { .. } => "The remote desktop presented a different key than the one pinned for it, so the outpost refused to send credentials. Ask your administrator to check the server, then update the endpoint's pinned key if it was changed on purpose.".into(),
            Self::AuthFailed(_) => "The remote desktop refused the user name or password. Check them and connect again.".into(),
            Self::Negotiation(_) => "The remote desktop and the outpost agree on no security protocol. Ask your administrator to set the endpoint's security to match the server (NLA or TLS).".into(),
            Self::Protocol(_) => "The remote desktop ended the connection while it was being set up. Try again; if it keeps happening, ask your administrator to check the server's logs.".into(),
            Self::Timeout(_) => "The remote desktop took too long to answer. Try again in a moment.".into(),
        }
    }
}

/// Sorts a connector failure: CredSSP errors and a peer that hangs up during CredSSP mean
/// refused credentials (FreeRDP closes the socket; Windows sends an error status).
fn sort_connector_error(error: &ConnectorError, in_credssp: bool) -> ConnectError {
    let text = error_chain(error);
    match error.kind() {
        ConnectorErrorKind::Credssp(_) | ConnectorErrorKind::AccessDenied => {
            ConnectError::AuthFailed(text)
        }
        ConnectorErrorKind::Negotiation(_) => ConnectError::Negotiation(text),
        _ if in_credssp => ConnectError::AuthFailed(text),
        _ => ConnectError::Protocol(text),
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The connector configuration: lossless bitmap updates only (no RemoteFX, no GFX, no QOI), so
/// what the browser shows is exactly what the server drew, and the server's own pointer.
fn config(target: &ConnectTarget, credentials: &RdpCredentials) -> ironrdp_connector::Config {
    ironrdp_connector::Config {
        desktop_size: DesktopSize {
            width: target.width,
            height: target.height,
        },
        desktop_scale_factor: 0,
        enable_tls: target.security != RdpSecurity::Nla,
        enable_credssp: target.security != RdpSecurity::Tls,
        credentials: Credentials::UsernamePassword {
            username: credentials.username.clone(),
            password: credentials.password.clone(),
        },
        domain: credentials.domain.clone().filter(|d| !d.is_empty()),
        // A current client's build (FreeRDP sends the same): xrdp 0.9 never resizes a client
        // whose build is 419 or lower, it only paints past the old desktop's edge.
        client_build: CLIENT_BUILD,
        client_name: target.client_name.chars().take(15).collect(),
        keyboard_type: KeyboardType::IbmEnhanced,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: target.keyboard_layout,
        ime_file_name: String::new(),
        bitmap: Some(BitmapConfig {
            lossy_compression: false,
            color_depth: 32,
            codecs: BitmapCodecs(Vec::new()),
        }),
        dig_product_id: String::new(),
        client_dir: String::new(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        platform: MajorPlatformType::UNIX,
        hardware_id: None,
        request_data: None,
        // Credentials in the logon information: servers without NLA (xrdp) log the user in
        // without showing their own login screen.
        autologon: true,
        enable_audio_playback: false,
        performance_flags: PerformanceFlags::default(),
        license_cache: None,
        timezone_info: TimezoneInfo::default(),
        compression_type: None,
        enable_server_pointer: true,
        pointer_software_rendering: false,
        multitransport_flags: None,
    }
}

/// Kerberos is not configured: CredSSP runs NTLM only and never asks for the network.
struct NoNetwork;

impl ironrdp_tokio::NetworkClient for NoNetwork {
    async fn send(
        &mut self,
        _request: &ironrdp_connector::sspi::generator::NetworkRequest,
    ) -> ironrdp_connector::ConnectorResult<Vec<u8>> {
        Err(ironrdp_connector::general_err!(
            "Kerberos is not configured on this outpost (NTLM only)"
        ))
    }
}

/// Connects to `target` with `credentials`, within the TCP and handshake timeouts. IronRDP's
/// futures are not `Send` (they hold `&dyn PduHint` across awaits), so this runs on a pinned
/// local task ([`crate::Shared::rdp`]), as does the session that follows.
pub async fn connect(
    target: &ConnectTarget,
    credentials: &RdpCredentials,
    clipboard: Option<ChannelBackend>,
) -> Result<Connected, ConnectError> {
    connect_owned(target, credentials, clipboard).await
}

async fn connect_owned(
    target: &ConnectTarget,
    credentials: &RdpCredentials,
    clipboard: Option<ChannelBackend>,
) -> Result<Connected, ConnectError> {
    let address = format!("{}:{}", target.host, target.port);
    let tcp = match tokio::time::timeout(TCP_TIMEOUT, TcpStream::connect(&address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => {
            return Err(ConnectError::Unreachable {
                address,
                detail: error.to_string(),
            });
        }
        Err(_) => {
            return Err(ConnectError::Unreachable {
                address,
                detail: format!("no answer within {} seconds", TCP_TIMEOUT.as_secs()),
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    let client_addr = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake(tcp, client_addr, target, credentials, clipboard),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(HANDSHAKE_TIMEOUT.as_secs())),
    }
}

async fn handshake(
    tcp: TcpStream,
    client_addr: SocketAddr,
    target: &ConnectTarget,
    credentials: &RdpCredentials,
    clipboard: Option<ChannelBackend>,
) -> Result<Connected, ConnectError> {
    let mut framed = TokioFramed::new(tcp);
    // Display Control (the desktop follows the browser's size) over the dynamic channels.
    let dynamic = ironrdp_dvc::DrdynvcClient::new().with_dynamic_channel(
        ironrdp_displaycontrol::client::DisplayControlClient::new(|_| Ok(Vec::new())),
    );
    let mut connector =
        ClientConnector::new(config(target, credentials), client_addr).with_static_channel(dynamic);
    if let Some(backend) = clipboard {
        connector =
            connector.with_static_channel(ironrdp_cliprdr::CliprdrClient::new(Box::new(backend)));
    }
    let should_upgrade = ironrdp_tokio::connect_begin(&mut framed, &mut connector)
        .await
        .map_err(|e| sort_connector_error(&e, false))?;
    let (tcp, leftover) = framed.into_inner();
    let (tls, certificate) = upgrade(tcp, &target.host).await?;
    let spki_sha256 = spki_sha256(&certificate)?;
    if let Some(pin) = target.pin_sha256
        && !bool::from(subtle::ConstantTimeEq::ct_eq(&pin[..], &spki_sha256[..]))
    {
        return Err(ConnectError::PinMismatch {
            expected: data_encoding::HEXLOWER.encode(&pin),
            got: data_encoding::HEXLOWER.encode(&spki_sha256),
        });
    }
    // CredSSP binds to the subjectPublicKey bits of the certificate.
    let server_public_key = certificate
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| ConnectError::Tls("the server's certificate has no public key".into()))?
        .to_owned();
    let upgraded = ironrdp_tokio::mark_as_upgraded(should_upgrade, &mut connector);
    let nla = connector.should_perform_credssp();
    let stream: Box<dyn RdpStream> = Box::new(tls);
    let mut framed = TokioFramed::new_with_leftover(stream, leftover);
    let result = ironrdp_tokio::connect_finalize(
        upgraded,
        connector,
        &mut framed,
        &mut NoNetwork,
        ServerName::new(target.host.clone()),
        server_public_key,
        None,
    )
    .await
    .map_err(|e| sort_connector_error(&e, nla))?;
    Ok(Connected {
        framed,
        result,
        security: if nla { "nla" } else { "tls" },
        server_key_sha256: data_encoding::HEXLOWER.encode(&spki_sha256),
    })
}

/// The TLS upgrade after X.224: rustls on ring whatever the process's default provider, any
/// certificate accepted (RDP servers present self-signed ones; the endpoint's pin, checked by
/// the caller before any credential is sent, is what identifies the server), signatures still
/// verified, no session resumption (CredSSP forbids it). Returns the server's certificate.
async fn upgrade(
    tcp: TcpStream,
    host: &str,
) -> Result<
    (
        tokio_rustls::client::TlsStream<TcpStream>,
        x509_cert::Certificate,
    ),
    ConnectError,
> {
    use x509_cert::der::Decode as _;
    let base = redoubt_outpost::tls::unverified_client_config()
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let mut config = (*base).clone();
    config.resumption = rustls::client::Resumption::disabled();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| ConnectError::Tls(format!("`{host}` is not a server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let der = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| ConnectError::Tls("the server sent no certificate".into()))?;
    let certificate = x509_cert::Certificate::from_der(der)
        .map_err(|e| ConnectError::Tls(format!("the server's certificate does not parse: {e}")))?;
    Ok((tls, certificate))
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo (DER), the value endpoints pin.
fn spki_sha256(certificate: &x509_cert::Certificate) -> Result<[u8; 32], ConnectError> {
    use x509_cert::der::Encode as _;
    let der = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| ConnectError::Tls(format!("the server's public key does not encode: {e}")))?;
    Ok(Sha256::digest(der).into())
}

/// Parses an endpoint's pin (64 hex digits).
pub fn parse_pin(hex: &str) -> Option<[u8; 32]> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_pin(&hex), Some([0xab; 32]));
        assert_eq!(parse_pin(&hex.to_uppercase()), Some([0xab; 32]));
        assert_eq!(parse_pin("abc"), None);
        assert_eq!(parse_pin(&"zz".repeat(32)), None);
    }

    #[test]
    fn every_failure_has_a_reason_and_a_sentence() {
        let errors = [
            ConnectError::Unreachable {
                address: "desk:3389".into(),
                detail: "refused".into(),
            },
            ConnectError::Tls("x".into()),
            ConnectError::PinMismatch {
                expected: "a".into(),
                got: "b".into(),
            },
            ConnectError::AuthFailed("x".into()),
            ConnectError::Negotiation("x".into()),
            ConnectError::Protocol("x".into()),
            ConnectError::Timeout(20),
        ];
        for error in errors {
            assert!(error.user_message().ends_with('.'));
            assert_ne!(error.reason(), EndReason::Error);
        }
    }

    #[test]
    fn nla_only_endpoints_offer_no_tls_and_the_reverse() {
        let target = ConnectTarget {
            host: "desk".into(),
            port: 3389,
            security: RdpSecurity::Nla,
            pin_sha256: None,
            width: 1024,
            height: 768,
            keyboard_layout: 0x409,
            client_name: "redoubt".into(),
        };
        let credentials = RdpCredentials {
            username: "u".into(),
            domain: Some(String::new()),
            password: "p".into(),
        };
        let nla = config(&target, &credentials);
        assert!(nla.enable_credssp && !nla.enable_tls);
        assert_eq!(nla.domain, None);
        let tls = config(
            &ConnectTarget {
                security: RdpSecurity::Tls,
                ..target.clone()
            },
            &credentials,
        );
        assert!(!tls.enable_credssp && tls.enable_tls);
        let any = config(
            &ConnectTarget {
                security: RdpSecurity::Any,
                ..target
            },
            &credentials,
        );
        assert!(any.enable_credssp && any.enable_tls);
        assert!(any.bitmap.is_some_and(|b| b.codecs.0.is_empty()));
    }
}
