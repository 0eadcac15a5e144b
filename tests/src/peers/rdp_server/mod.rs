//! An in-process RDP server for the RAC tests: `ironrdp-server` 0.13 on `127.0.0.1:0` in a
//! thread of its own (a current-thread runtime running a `LocalSet`, as the server's futures
//! are not `Send`), with TLS or NLA (CredSSP/NTLM against fixed credentials) over a fresh
//! self-signed certificate.
//!
//! It shows a known picture ([`pattern_rgb`]; [`RdpTestServer::pixel`] answers for the
//! current desktop, fills included), paints rectangles on demand ([`RdpTestServer::push_fill`]),
//! records what the client sends (input events, Display Control layouts, clipboard texts, the
//! credentials of a TLS logon, connections) in [`Recorded`] lists tests wait on, and offers
//! clipboard text as if copied on the remote desktop ([`RdpTestServer::copy_on_remote`]).
//! No processes, no fixed ports.

mod clipboard;
mod desktop;
mod display;
mod identity;
mod input;
mod record;

pub use desktop::{
    BOTTOM_LEFT, BOTTOM_RIGHT, CHECK_DARK, CHECK_LIGHT, Desktop, Rect, STRIP_HEIGHT, TOP_LEFT,
    TOP_RIGHT, pattern_rgb,
};
pub use display::LayoutRequest;
pub use identity::sha256_hex;
pub use input::{InputEvent, MouseButton, keys, unicode_text};
pub use record::{Recorded, WAIT_DEADLINE};

use anyhow::{Context, anyhow};
use clipboard::{ClipboardFactory, ClipboardShared};
use display::{Screen, TestDisplay};
use identity::Identity;
use input::InputRecorder;
use ironrdp_server::{
    ConnectionHandler, CredentialDecision, CredentialValidationError, CredentialValidator,
    Credentials, PostConnectionAction, RdpServer, ServerEvent,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// A user name, password and optional domain. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RdpTestCredentials {
    pub username: String,
    pub password: String,
    pub domain: Option<String>,
}

impl RdpTestCredentials {
    /// `username` / `password` without a domain.
    pub fn new(username: &str, password: &str) -> Self {
        Self {
            username: username.to_owned(),
            password: password.to_owned(),
            domain: None,
        }
    }
}

impl std::fmt::Debug for RdpTestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdpTestCredentials")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl From<&RdpTestCredentials> for Credentials {
    fn from(c: &RdpTestCredentials) -> Self {
        Credentials {
            username: c.username.clone(),
            password: c.password.clone(),
            domain: c.domain.clone(),
        }
    }
}

impl From<&Credentials> for RdpTestCredentials {
    fn from(c: &Credentials) -> Self {
        Self {
            username: c.username.clone(),
            password: c.password.clone(),
            domain: c.domain.clone(),
        }
    }
}

/// How clients must connect.
#[derive(Debug, Clone)]
pub enum RdpTestSecurity {
    /// TLS only; any logon is accepted (and recorded in [`RdpTestServer::credentials`]).
    Tls,
    /// TLS only; a logon with other credentials is refused (Set Error Info "server denied
    /// connection", then the connection closes).
    TlsRequiring(RdpTestCredentials),
    /// NLA (CredSSP with NTLM) against these credentials; TLS-only clients are refused.
    Nla(RdpTestCredentials),
}

/// How to start an [`RdpTestServer`].
#[derive(Debug, Clone)]
pub struct RdpTestOptions {
    pub security: RdpTestSecurity,
    /// The desktop's initial size.
    pub width: u16,
    pub height: u16,
    /// Whether a Display Control layout request resizes the desktop (to the requested size,
    /// showing the pattern at that size). On by default.
    pub follow_layouts: bool,
}

impl Default for RdpTestOptions {
    /// TLS, 1024 × 768, following layout requests.
    fn default() -> Self {
        Self {
            security: RdpTestSecurity::Tls,
            width: 1024,
            height: 768,
            follow_layouts: true,
        }
    }
}

/// How one client connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionEnd {
    pub peer: SocketAddr,
    /// The server's error, if the connection ended with one (a refused logon, a broken
    /// stream); `None` for an orderly end.
    pub error: Option<String>,
}

/// What the server thread and the test thread share.
struct Shared {
    screen: Arc<Screen>,
    input: Arc<Recorded<InputEvent>>,
    clipboard: Arc<ClipboardShared>,
    credentials: Arc<Recorded<RdpTestCredentials>>,
    accepted: Arc<Recorded<SocketAddr>>,
    ended: Arc<Recorded<ConnectionEnd>>,
    active: Arc<AtomicUsize>,
}

/// A running in-process RDP server; stopped (its thread joined) on drop.
pub struct RdpTestServer {
    addr: SocketAddr,
    public_key_sha256: String,
    certificate_der: Vec<u8>,
    spki_der: Vec<u8>,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RdpTestServer {
    /// Starts a server and returns once it listens.
    pub async fn start(options: RdpTestOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            options.width > 0 && options.height > 0,
            "the desktop needs a size"
        );
        let identity = Identity::generate()?;
        let shared = Shared {
            screen: Arc::new(Screen::new(
                options.width,
                options.height,
                options.follow_layouts,
            )),
            input: Arc::default(),
            clipboard: Arc::default(),
            credentials: Arc::default(),
            accepted: Arc::default(),
            ended: Arc::default(),
            active: Arc::default(),
        };
        let parts = ServerParts {
            security: options.security,
            acceptor: identity.acceptor.clone(),
            public_key: identity.public_key.clone(),
            screen: shared.screen.clone(),
            input: shared.input.clone(),
            clipboard: shared.clipboard.clone(),
            credentials: shared.credentials.clone(),
            accepted: shared.accepted.clone(),
            ended: shared.ended.clone(),
            active: shared.active.clone(),
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("rdp-test-server".into())
            .spawn(move || serve(parts, ready_tx, stop_rx))
            .context("start the RDP test server thread")?;
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_key_sha256: identity.public_key_sha256,
            certificate_der: identity.certificate_der,
            spki_der: identity.spki_der,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        server.addr = ready_rx
            .await
            .map_err(|_| anyhow!("the RDP test server thread ended before listening"))??;
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:<port>`, as a RAC endpoint's `host`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// SHA-256 (lowercase hex) of the server's SubjectPublicKeyInfo, as pinned by a RAC
    /// endpoint's `server_public_key_sha256`.
    pub fn public_key_sha256(&self) -> &str {
        &self.public_key_sha256
    }

    /// The server's certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The server's SubjectPublicKeyInfo (DER), what [`Self::public_key_sha256`] hashes.
    pub fn subject_public_key_info_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The desktop's current size.
    pub fn size(&self) -> (u16, u16) {
        let desktop = self.shared.screen.desktop();
        (desktop.width(), desktop.height())
    }

    /// The colour (R, G, B) the desktop shows now at (`x`, `y`) (`None` outside it): the
    /// pattern, with every fill so far on top.
    pub fn pixel(&self, x: u16, y: u16) -> Option<[u8; 3]> {
        self.shared.screen.desktop().rgb(x, y)
    }

    /// A copy of the whole desktop as it is now.
    pub fn desktop(&self) -> Desktop {
        self.shared.screen.desktop().clone()
    }

    /// Paints `rect` with `rgb` and sends it to the connected client (or the next one);
    /// returns the painted part (`None` when `rect` is outside the desktop).
    pub fn push_fill(&self, rect: Rect, rgb: [u8; 3]) -> Option<Rect> {
        self.shared.screen.fill(rect, rgb)
    }

    /// Resizes the desktop from the server side (the pattern at the new size); the client
    /// gets a deactivation-reactivation.
    pub fn resize(&self, width: u16, height: u16) {
        if width > 0 && height > 0 {
            self.shared.screen.resize(width, height);
        }
    }

    /// Every input event received, in order.
    pub fn input(&self) -> &Recorded<InputEvent> {
        &self.shared.input
    }

    /// Every Display Control layout request received, in order.
    pub fn layouts(&self) -> &Recorded<LayoutRequest> {
        &self.shared.screen.layouts
    }

    /// Puts `text` on the remote clipboard, as if copied on the remote desktop: the client is
    /// offered it now, or when its clipboard channel is ready.
    pub fn copy_on_remote(&self, text: &str) {
        self.shared.clipboard.copy_on_remote(text);
    }

    /// Every text the client copied to the remote clipboard, in order.
    pub fn clipboard_received(&self) -> &Recorded<String> {
        &self.shared.clipboard.received
    }

    /// The credentials of every TLS logon (NLA logons are checked inside CredSSP and not
    /// recorded).
    pub fn credentials(&self) -> &Recorded<RdpTestCredentials> {
        &self.shared.credentials
    }

    /// The peer address of every accepted TCP connection.
    pub fn accepted(&self) -> &Recorded<SocketAddr> {
        &self.shared.accepted
    }

    /// How each connection ended.
    pub fn ended(&self) -> &Recorded<ConnectionEnd> {
        &self.shared.ended
    }

    /// How many client connections are open now.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Ends the current client's session from the server side (as a remote logoff would);
    /// the server keeps listening. Returns false (and does nothing) when no client is
    /// connected.
    pub fn disconnect_client(&self) -> bool {
        if self.active_connections() == 0 {
            return false;
        }
        self.shared.screen.end_session();
        true
    }
}

impl Drop for RdpTestServer {
    fn drop(&mut self) {
        // Dropping the sender wakes the server thread, which drops the server (closing the
        // listener and any connection) and its runtime.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the server thread builds the server from.
struct ServerParts {
    security: RdpTestSecurity,
    acceptor: tokio_rustls::TlsAcceptor,
    public_key: Vec<u8>,
    screen: Arc<Screen>,
    input: Arc<Recorded<InputEvent>>,
    clipboard: Arc<ClipboardShared>,
    credentials: Arc<Recorded<RdpTestCredentials>>,
    accepted: Arc<Recorded<SocketAddr>>,
    ended: Arc<Recorded<ConnectionEnd>>,
    active: Arc<AtomicUsize>,
}

/// The server thread: runs the server until `stop` fires (or its sender is dropped).
fn serve(
    parts: ServerParts,
    ready: oneshot::Sender<anyhow::Result<SocketAddr>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(anyhow!(error).context("RDP test server runtime")));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let mut server = build(parts);
        let (addr_tx, addr_rx) = oneshot::channel();
        // Answered by the accept loop once it listens.
        let _ = server
            .event_sender()
            .send(ServerEvent::GetLocalAddr(addr_tx));
        let run = server.run();
        tokio::pin!(run);
        tokio::select! {
            result = &mut run => {
                let error = match result {
                    Ok(()) => anyhow!("the RDP test server stopped before listening"),
                    Err(error) => error.context("the RDP test server failed to start"),
                };
                let _ = ready.send(Err(error));
                return;
            }
            addr = addr_rx => {
                match addr {
                    Ok(Some(addr)) => {
                        let _ = ready.send(Ok(addr));
                    }
                    _ => {
                        let _ = ready.send(Err(anyhow!("the RDP test server has no address")));
                        return;
                    }
                }
            }
        }
        tokio::select! {
            result = run => {
                if let Err(error) = result {
                    eprintln!("the RDP test server stopped: {error:#}");
                }
            }
            _ = stop => {}
        }
    });
    // Layout requests run on the blocking pool; none may hold the test up for long.
    runtime.shutdown_timeout(Duration::from_secs(2));
}

fn build(parts: ServerParts) -> RdpServer {
    let builder = RdpServer::builder().with_addr(([127, 0, 0, 1], 0));
    let (builder, nla) = match parts.security {
        RdpTestSecurity::Tls => (builder.with_tls(parts.acceptor), None),
        RdpTestSecurity::TlsRequiring(_) => (builder.with_tls(parts.acceptor), None),
        RdpTestSecurity::Nla(ref credentials) => (
            builder.with_hybrid(parts.acceptor, parts.public_key),
            Some(credentials),
        ),
    };
    let expected = match &parts.security {
        RdpTestSecurity::TlsRequiring(credentials) => Some(credentials.clone()),
        _ => None,
    };
    let validator: Arc<dyn CredentialValidator> = Arc::new(LogonRecorder {
        expected,
        seen: parts.credentials,
    });
    let mut server = builder
        .with_input_handler(InputRecorder {
            events: parts.input,
        })
        .with_display_handler(TestDisplay {
            screen: parts.screen,
        })
        .with_cliprdr_factory(Some(Box::new(ClipboardFactory {
            shared: parts.clipboard,
        })))
        .with_connection_handler(Some(Box::new(ConnectionLog {
            accepted: parts.accepted,
            ended: parts.ended,
            active: parts.active,
        })))
        .with_credential_validator(Some(validator))
        .build();
    if let Some(credentials) = nla {
        server.set_credentials(Some(credentials.into()));
    }
    server
}

/// Records each TLS logon; refuses other credentials than `expected` when set.
struct LogonRecorder {
    expected: Option<RdpTestCredentials>,
    seen: Arc<Recorded<RdpTestCredentials>>,
}

#[async_trait::async_trait]
impl CredentialValidator for LogonRecorder {
    async fn validate(
        &self,
        credentials: &Credentials,
    ) -> Result<CredentialDecision, CredentialValidationError> {
        let seen = RdpTestCredentials::from(credentials);
        let accept = self.expected.as_ref().is_none_or(|e| *e == seen);
        self.seen.push(seen);
        Ok(if accept {
            CredentialDecision::Accept
        } else {
            CredentialDecision::Reject
        })
    }
}

/// Counts connections in and out.
struct ConnectionLog {
    accepted: Arc<Recorded<SocketAddr>>,
    ended: Arc<Recorded<ConnectionEnd>>,
    active: Arc<AtomicUsize>,
}

impl ConnectionHandler for ConnectionLog {
    fn on_accept(&mut self, peer: SocketAddr) -> bool {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.accepted.push(peer);
        true
    }

    fn on_disconnected(
        &mut self,
        peer: SocketAddr,
        _duration: Duration,
        error: Option<&anyhow::Error>,
    ) -> PostConnectionAction {
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.ended.push(ConnectionEnd {
            peer,
            error: error.map(|e| format!("{e:#}")),
        });
        PostConnectionAction::Continue
    }
}

#[cfg(test)]
mod tests;
