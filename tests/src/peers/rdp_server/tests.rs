//! The server starts, negotiates the configured security, presents its certificate over TLS,
//! records connections and stops without leaving its port open. (Full RDP sessions are
//! exercised by the RAC suites through the outpost's IronRDP client.)

use super::*;
use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::nego::{ConnectionConfirm, ConnectionRequest, RequestFlags, SecurityProtocol};
use ironrdp_pdu::x224::X224;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends an X.224 Connection Request asking for `protocol` and returns the server's answer,
/// `None` when it closed the connection instead.
async fn negotiate(
    stream: &mut TcpStream,
    protocol: SecurityProtocol,
) -> Option<ConnectionConfirm> {
    let request = ConnectionRequest {
        nego_data: None,
        flags: RequestFlags::empty(),
        protocol,
    };
    let bytes = encode_vec(&X224(request)).expect("encode the request");
    stream.write_all(&bytes).await.expect("send the request");
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) => panic!("TPKT header: {e}"),
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut frame = header.to_vec();
    frame.resize(length, 0);
    stream
        .read_exact(&mut frame[4..])
        .await
        .expect("the rest of the confirm");
    Some(
        decode::<X224<ConnectionConfirm>>(&frame)
            .expect("a connection confirm")
            .0,
    )
}

#[tokio::test]
async fn tls_server_negotiates_tls_and_presents_its_pinned_key() {
    let server = RdpTestServer::start(RdpTestOptions {
        width: 320,
        height: 200,
        ..Default::default()
    })
    .await
    .expect("server starts");
    assert_eq!(server.size(), (320, 200));
    assert_eq!(server.pixel(0, 0), Some(TOP_LEFT));
    assert_eq!(
        server.pixel(319, 199),
        Some(pattern_rgb(320, 200, 319, 199))
    );

    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    let confirm = negotiate(
        &mut stream,
        SecurityProtocol::SSL | SecurityProtocol::HYBRID,
    )
    .await
    .expect("an answer");
    match confirm {
        ConnectionConfirm::Response { protocol, .. } => {
            assert_eq!(protocol, SecurityProtocol::SSL)
        }
        other => panic!("expected TLS to be selected, got {other:?}"),
    }
    let config = redoubt_outpost::tls::unverified_client_config().expect("client config");
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector
        .connect(name, stream)
        .await
        .expect("TLS handshake");
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("a certificate")
        .to_vec();
    assert_eq!(presented, server.certificate_der());
    let spki = server.subject_public_key_info_der();
    assert!(
        presented.windows(spki.len()).any(|w| w == spki),
        "the certificate carries the key"
    );
    assert_eq!(server.public_key_sha256(), sha256_hex(spki));
    assert_eq!(server.public_key_sha256().len(), 64);

    let peer = server
        .accepted()
        .wait_for("an accepted connection", |a| a.first().copied())
        .await
        .expect("recorded");
    assert_eq!(peer.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_eq!(server.active_connections(), 1);
    drop(tls);
    let ended = server
        .ended()
        .wait_for("the connection's end", |e| e.first().cloned())
        .await
        .expect("recorded");
    assert_eq!(ended.peer, peer);
    assert_eq!(server.active_connections(), 0);
    assert!(!server.disconnect_client(), "nobody to disconnect");

    let addr = server.addr();
    drop(server);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is closed once the server is dropped"
    );
}

#[tokio::test]
async fn nla_server_refuses_tls_only_clients_and_selects_hybrid() {
    let server = RdpTestServer::start(RdpTestOptions {
        security: RdpTestSecurity::Nla(RdpTestCredentials::new("alice", "secret-pw")),
        ..Default::default()
    })
    .await
    .expect("server starts");
    let mut tls_only = TcpStream::connect(server.addr()).await.expect("connect");
    // ironrdp-server 0.13 builds an RDP_NEG_FAILURE but returns its error before writing
    // it: the client sees the connection close.
    let refused = negotiate(&mut tls_only, SecurityProtocol::SSL).await;
    assert!(
        matches!(refused, None | Some(ConnectionConfirm::Failure { .. })),
        "{refused:?}"
    );
    let ended = server
        .ended()
        .wait_for("the refused connection's end", |e| e.first().cloned())
        .await
        .expect("recorded");
    assert!(
        ended
            .error
            .as_deref()
            .is_some_and(|e| e.contains("security")),
        "{ended:?}"
    );
    let mut nla = TcpStream::connect(server.addr()).await.expect("connect");
    match negotiate(&mut nla, SecurityProtocol::SSL | SecurityProtocol::HYBRID)
        .await
        .expect("an answer")
    {
        ConnectionConfirm::Response { protocol, .. } => {
            assert!(protocol.contains(SecurityProtocol::HYBRID), "{protocol:?}")
        }
        other => panic!("expected NLA to be selected, got {other:?}"),
    }
}

#[tokio::test]
async fn fills_and_resizes_change_the_expected_picture() {
    let server = RdpTestServer::start(RdpTestOptions {
        width: 100,
        height: 80,
        ..Default::default()
    })
    .await
    .expect("server starts");
    let rect = Rect {
        x: 90,
        y: 70,
        width: 20,
        height: 20,
    };
    let painted = server.push_fill(rect, [9, 8, 7]).expect("inside");
    assert_eq!((painted.width, painted.height), (10, 10));
    assert_eq!(server.pixel(95, 75), Some([9, 8, 7]));
    assert_eq!(server.pixel(89, 75), Some(pattern_rgb(100, 80, 89, 75)));
    server.resize(64, 48);
    assert_eq!(server.size(), (64, 48));
    assert_eq!(server.pixel(63, 0), Some(TOP_RIGHT));
    assert_eq!(server.pixel(64, 0), None);
    assert!(format!("{:?}", RdpTestCredentials::new("u", "hunter2")).contains("redacted"));
    assert!(!format!("{:?}", RdpTestCredentials::new("u", "hunter2")).contains("hunter2"));
}
