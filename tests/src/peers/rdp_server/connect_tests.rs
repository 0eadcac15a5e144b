//! The RAC module's IronRDP connector against this server: TLS and NLA logons succeed and
//! report the key this server pins, a wrong NLA password is `auth_failed`, a wrong pin is
//! refused before any credentials are sent, and a TLS logon's credentials are recorded.

use super::*;
use redoubt_outpost_proto::provider::RdpSecurity;
use redoubt_outpost_proto::rac::{EndReason, RdpCredentials};
use redoubt_outpost_rac::connect::{ConnectError, ConnectTarget, connect, parse_pin};

/// A connect target for `server` (the harness's process-wide rustls provider is set too, for
/// the other TLS clients of the test).
fn target(server: &RdpTestServer, security: RdpSecurity, pin: Option<&str>) -> ConnectTarget {
    crate::peers::crypto();
    ConnectTarget {
        host: "127.0.0.1".into(),
        port: server.addr().port(),
        security,
        pin_sha256: pin.and_then(parse_pin),
        width: 800,
        height: 600,
        keyboard_layout: 0x409,
        client_name: "redoubt-test".into(),
    }
}

fn credentials(username: &str, password: &str) -> RdpCredentials {
    RdpCredentials {
        username: username.into(),
        domain: None,
        password: password.into(),
    }
}

#[tokio::test]
async fn tls_logon_is_recorded_and_reports_the_pinned_key() {
    let server = RdpTestServer::start(RdpTestOptions::default())
        .await
        .expect("server starts");
    let pinned = target(&server, RdpSecurity::Any, Some(server.public_key_sha256()));
    let connected = connect(&pinned, &credentials("bob", "pw-1"), None)
        .await
        .expect("connects");
    assert_eq!(connected.security, "tls");
    assert_eq!(connected.server_key_sha256, server.public_key_sha256());
    let logon = server
        .credentials()
        .wait_for("a logon", |c| c.first().cloned())
        .await
        .expect("recorded");
    assert_eq!(logon, RdpTestCredentials::new("bob", "pw-1"));
}

#[tokio::test]
async fn nla_accepts_the_right_password_only() {
    let server = RdpTestServer::start(RdpTestOptions {
        security: RdpTestSecurity::Nla(RdpTestCredentials::new("alice", "right-pw")),
        ..Default::default()
    })
    .await
    .expect("server starts");
    let connected = connect(
        &target(&server, RdpSecurity::Nla, None),
        &credentials("alice", "right-pw"),
        None,
    )
    .await
    .expect("connects");
    assert_eq!(connected.security, "nla");
    drop(connected);
    server
        .ended()
        .wait_for("the first connection's end", |e| e.first().cloned())
        .await
        .expect("ended");
    let refused = connect(
        &target(&server, RdpSecurity::Nla, None),
        &credentials("alice", "wrong-pw"),
        None,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(refused.reason(), EndReason::AuthFailed, "{refused}");
}

#[tokio::test]
async fn a_wrong_pin_is_refused_before_the_logon() {
    let server = RdpTestServer::start(RdpTestOptions::default())
        .await
        .expect("server starts");
    let other = "00".repeat(32);
    let refused = connect(
        &target(&server, RdpSecurity::Tls, Some(&other)),
        &credentials("bob", "pw"),
        None,
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(refused, ConnectError::PinMismatch { .. }),
        "{refused}"
    );
    assert!(server.credentials().snapshot().is_empty());
}
