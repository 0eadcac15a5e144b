//! The LDAP listeners and connection loop: plain LDAP (with StartTLS) and LDAPS, a bound on
//! open connections (`limits.ldap_max_connections`) and on connections per source that have
//! not bound yet (`limits.unproven_connections_per_source`, the shared
//! [`crate::listener::gate`]), an idle timeout, a deadline for a message once its first byte
//! has arrived (`limits.ldap_message_timeout_seconds`), a bounded message size, write timeouts
//! so a client that stops reading cannot hold a task, and a reader task per connection so
//! Abandon can stop a search that is still streaming.

use super::Shared;
use super::session::{self, SearchOutput, Session, Step};
use crate::listener::gate::{SourceGate, Unproven};
use crate::module::ModuleContext;
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode};
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::codec::{FramedRead, FramedWrite};

/// Largest LDAP message accepted.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Deepest BER nesting accepted.
pub(crate) const MAX_BER_DEPTH: usize = 64;
/// A connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest wait for a client to take a response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Search results are sent whenever this much is buffered.
const FLUSH_AT: usize = 64 * 1024;
/// Requests read ahead of the one being answered.
const PIPELINE: usize = 16;

/// Binds the LDAP (and, with a certificate, LDAPS) listeners and serves them until stop.
pub async fn listen(context: &ModuleContext, shared: Arc<Shared>) -> anyhow::Result<()> {
    let limits = &context.settings.limits;
    let limit = Arc::new(Semaphore::new(limits.ldap_max_connections.max(1)));
    let bounds = Bounds {
        gate: SourceGate::new(limits.unproven_connections_per_source),
        message_timeout: Duration::from_secs(limits.ldap_message_timeout_seconds.max(1)),
    };
    let plain = TcpListener::bind(&context.settings.listen.ldap)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (listen.ldap)",
                context.settings.listen.ldap
            )
        })?;
    let addr = plain.local_addr()?;
    tracing::info!(%addr, starttls = shared.tls.is_some(), "LDAP listening");
    context.listening_on("ldap", addr);
    tokio::spawn(accept_loop(
        plain,
        shared.clone(),
        limit.clone(),
        bounds.clone(),
        false,
        context.stop.clone(),
    ));
    if shared.tls.is_some() {
        let secure = TcpListener::bind(&context.settings.listen.ldaps)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (listen.ldaps)",
                    context.settings.listen.ldaps
                )
            })?;
        let addr = secure.local_addr()?;
        tracing::info!(%addr, "LDAPS listening");
        context.listening_on("ldaps", addr);
        tokio::spawn(accept_loop(
            secure,
            shared,
            limit,
            bounds,
            true,
            context.stop.clone(),
        ));
    } else {
        tracing::info!(
            "LDAPS and StartTLS are off: no certificate configured (tls.cert_file, tls.key_file)"
        );
    }
    Ok(())
}

/// The per-source gate and the message deadline, shared by both listeners.
#[derive(Clone)]
struct Bounds {
    gate: SourceGate,
    message_timeout: Duration,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    bounds: Bounds,
    implicit_tls: bool,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    tracing::warn!(%error, "accepting an LDAP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = crate::module::stopped(&mut stop) => return,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            shared
                .metrics
                .connections_refused
                .with_label_values(&["limit"])
                .inc();
            drop(stream);
            continue;
        };
        let Some(unproven) = bounds.gate.admit(peer.ip()) else {
            shared
                .metrics
                .connections_refused
                .with_label_values(&["source_limit"])
                .inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stop = stop.clone();
        let message_timeout = bounds.message_timeout;
        tokio::spawn(async move {
            shared.metrics.connections.inc();
            shared.metrics.connections_total.inc();
            let result = serve(
                stream,
                peer,
                shared.clone(),
                Admission {
                    implicit_tls,
                    unproven,
                    message_timeout,
                },
                stop,
            )
            .await;
            if let Err(reason) = result {
                shared
                    .metrics
                    .connections_refused
                    .with_label_values(&[reason])
                    .inc();
            }
            shared.metrics.connections.dec();
            drop(permit);
        });
    }
}

/// A plain or TLS connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Reader = FramedRead<tokio::io::ReadHalf<Conn>, LdapCodec>;
type Writer = FramedWrite<tokio::io::WriteHalf<Conn>, LdapCodec>;

/// A request from the reader task; StartTLS carries a channel to say whether to keep reading.
struct Incoming {
    msg: LdapMsg,
    resume: Option<oneshot::Sender<bool>>,
}

/// How the reader task ended.
enum ReadEnd {
    /// The client closed, or sent garbage, or idled out; the label is for metrics.
    Done(Option<&'static str>),
    /// Handed back for the TLS upgrade.
    Upgrade(Reader),
}

/// How a connection was admitted.
struct Admission {
    implicit_tls: bool,
    /// Its source's slot until it binds.
    unproven: Unproven,
    message_timeout: Duration,
}

/// Serves one connection; `Err` carries the reason the server closed it.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    admission: Admission,
    mut stop: watch::Receiver<bool>,
) -> Result<(), &'static str> {
    let Admission {
        implicit_tls,
        unproven,
        message_timeout,
    } = admission;
    let mut conn = Conn::Plain(stream);
    if implicit_tls {
        conn = handshake(conn, &shared).await.ok_or("tls")?;
    }
    let mut session = Session::new(shared.clone(), peer.ip(), implicit_tls);
    loop {
        let (read, write) = tokio::io::split(conn);
        let reader = FramedRead::new(
            read,
            LdapCodec::new(Some(MAX_MESSAGE_BYTES), Some(MAX_BER_DEPTH)),
        );
        let mut writer = FramedWrite::new(write, LdapCodec::default());
        let abandoned = Arc::new(Mutex::new(HashSet::new()));
        let (tx, mut rx) = mpsc::channel(PIPELINE);
        let mut reading = tokio::spawn(read_loop(reader, tx, abandoned.clone(), message_timeout));
        let mut upgrade = false;
        loop {
            let incoming = tokio::select! {
                incoming = rx.recv() => incoming,
                () = crate::module::stopped(&mut stop) => None,
            };
            let Some(Incoming { msg, resume }) = incoming else {
                break;
            };
            let op = Session::op_name(&msg.op);
            let started = Instant::now();
            let step = session.handle(msg).await;
            if session.is_bound() {
                // A client that authenticated no longer counts against its address.
                unproven.prove();
            }
            let outcome = perform(step, &mut writer, &shared, &abandoned).await;
            shared
                .metrics
                .duration
                .with_label_values(&[op])
                .observe(started.elapsed().as_secs_f64());
            match outcome {
                Performed::Answered(code) => {
                    shared
                        .metrics
                        .requests
                        .with_label_values(&[op, &code])
                        .inc();
                }
                Performed::Silent => {
                    shared
                        .metrics
                        .requests
                        .with_label_values(&[op, "none"])
                        .inc();
                }
                Performed::Upgrade => {
                    shared
                        .metrics
                        .requests
                        .with_label_values(&[op, "success"])
                        .inc();
                    upgrade = true;
                    if let Some(resume) = resume {
                        let _ = resume.send(false);
                    }
                    break;
                }
                Performed::Close => {
                    reading.abort();
                    return Ok(());
                }
                Performed::Broken => {
                    reading.abort();
                    return Err("write");
                }
            }
            if let Some(resume) = resume {
                let _ = resume.send(true);
            }
        }
        if !upgrade {
            reading.abort();
            return match (&mut reading).await {
                Ok(ReadEnd::Done(reason)) => reason.map_or(Ok(()), Err),
                _ => Ok(()),
            };
        }
        let reader = match reading.await {
            Ok(ReadEnd::Upgrade(reader)) => reader,
            _ => return Err("protocol"),
        };
        if !reader.read_buffer().is_empty() {
            // Bytes after StartTLS before the handshake: a client error or an injection attempt.
            return Err("protocol");
        }
        conn = reader.into_inner().unsplit(writer.into_inner());
        conn = handshake(conn, &shared).await.ok_or("tls")?;
        session.tls_started();
    }
}

async fn handshake(conn: Conn, shared: &Shared) -> Option<Conn> {
    let Conn::Plain(stream) = conn else {
        return None;
    };
    let acceptor = TlsAcceptor::from(shared.tls.clone()?);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(Conn::Tls(Box::new(tls))),
        Ok(Err(error)) => {
            tracing::debug!(%error, "LDAP TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

async fn read_loop(
    mut reader: Reader,
    tx: mpsc::Sender<Incoming>,
    abandoned: Arc<Mutex<HashSet<i32>>>,
    message_timeout: Duration,
) -> ReadEnd {
    loop {
        let next = match next_message(&mut reader, message_timeout).await {
            Ok(next) => next,
            Err(reason) => return ReadEnd::Done(Some(reason)),
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(error)) => {
                tracing::debug!(%error, "closing an LDAP connection that sent an undecodable message");
                return ReadEnd::Done(Some("protocol"));
            }
            None => return ReadEnd::Done(None),
        };
        if let LdapOp::AbandonRequest(id) = msg.op {
            let mut set = abandoned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if set.len() < 1024 {
                set.insert(id);
            }
        }
        let start_tls = matches!(&msg.op, LdapOp::ExtendedRequest(e) if e.name == super::rootdse::OID_START_TLS);
        if start_tls {
            let (resume_tx, resume_rx) = oneshot::channel();
            if tx
                .send(Incoming {
                    msg,
                    resume: Some(resume_tx),
                })
                .await
                .is_err()
            {
                return ReadEnd::Done(None);
            }
            match resume_rx.await {
                Ok(true) => continue,
                Ok(false) => return ReadEnd::Upgrade(reader),
                Err(_) => return ReadEnd::Done(None),
            }
        }
        if tx.send(Incoming { msg, resume: None }).await.is_err() {
            return ReadEnd::Done(None);
        }
    }
}

/// The next message: with nothing of it received yet the client may idle for [`IDLE_TIMEOUT`];
/// once its first byte is in, the whole message must arrive within `message_timeout` (a client
/// trickling a byte now and then cannot hold the connection). `Err` is the reason to close.
async fn next_message(
    reader: &mut Reader,
    message_timeout: Duration,
) -> Result<Option<Result<LdapMsg, <LdapCodec as tokio_util::codec::Decoder>::Error>>, &'static str>
{
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    tokio::pin!(idle);
    let mut started: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(next) = reader.poll_next_unpin(cx) {
            return Poll::Ready(Ok(next));
        }
        if reader.read_buffer().is_empty() {
            if idle.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err("idle"));
            }
        } else {
            let deadline =
                started.get_or_insert_with(|| Box::pin(tokio::time::sleep(message_timeout)));
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err("slow_message"));
            }
        }
        Poll::Pending
    })
    .await
}

/// What carrying out a step came to.
enum Performed {
    /// Answered with this result code (metric label).
    Answered(String),
    /// Nothing to answer.
    Silent,
    Upgrade,
    Close,
    /// The client stopped taking responses.
    Broken,
}

/// Sends what the write buffer holds.
async fn flush(writer: &mut Writer) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, writer.flush()).await,
        Ok(Ok(()))
    )
}

async fn write(writer: &mut Writer, msg: LdapMsg, flush: bool) -> bool {
    let sending = async {
        if flush {
            writer.send(msg).await
        } else {
            writer.feed(msg).await
        }
    };
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sending).await,
        Ok(Ok(()))
    )
}

fn code_label(msg: &LdapMsg) -> String {
    session::result_code(msg).map_or_else(
        || "none".to_owned(),
        |code| format!("{code:?}").to_lowercase(),
    )
}

async fn perform(
    step: Step,
    writer: &mut Writer,
    shared: &Shared,
    abandoned: &Mutex<HashSet<i32>>,
) -> Performed {
    match step {
        Step::Reply(messages) => {
            let label = messages
                .last()
                .map(code_label)
                .unwrap_or_else(|| "none".into());
            let count = messages.len();
            for (i, msg) in messages.into_iter().enumerate() {
                if !write(writer, msg, i + 1 == count).await {
                    return Performed::Broken;
                }
            }
            Performed::Answered(label)
        }
        Step::Entries(output) => stream_entries(output, writer, shared, abandoned).await,
        Step::StartTls(response) => {
            if write(writer, response, true).await {
                Performed::Upgrade
            } else {
                Performed::Broken
            }
        }
        Step::Close(notice) => {
            if let Some(notice) = notice {
                let _ = write(writer, notice, true).await;
            }
            Performed::Close
        }
        Step::Nothing => Performed::Silent,
    }
}

async fn stream_entries(
    output: SearchOutput,
    writer: &mut Writer,
    shared: &Shared,
    abandoned: &Mutex<HashSet<i32>>,
) -> Performed {
    let SearchOutput {
        msgid,
        view,
        entries,
        selection,
        types_only,
        mut done,
        deadline,
    } = output;
    let mut sent = 0u64;
    let mut scratch = Vec::with_capacity(1024);
    for (i, entry) in entries.into_iter().enumerate() {
        // Encoding is CPU work the socket rarely waits for: give the worker back to other
        // tasks (connections, the control channel) whenever this task's budget is spent.
        tokio::task::consume_budget().await;
        if i % 64 == 63 {
            let gone = abandoned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&msgid);
            if gone {
                shared.metrics.entries_returned.inc_by(sent);
                return Performed::Answered("abandoned".into());
            }
            if Instant::now() >= deadline {
                if let LdapOp::SearchResultDone(result) = &mut done.op {
                    result.code = LdapResultCode::TimeLimitExceeded;
                    result.message = "the time limit ran out".into();
                }
                break;
            }
        }
        scratch.clear();
        super::encode::search_result_entry(
            &mut scratch,
            msgid,
            &view,
            entry,
            &selection,
            types_only,
        );
        writer.write_buffer_mut().extend_from_slice(&scratch);
        if writer.write_buffer().len() >= FLUSH_AT && !flush(writer).await {
            return Performed::Broken;
        }
        sent += 1;
    }
    shared.metrics.entries_returned.inc_by(sent);
    let label = code_label(&done);
    if write(writer, done, true).await {
        Performed::Answered(label)
    } else {
        Performed::Broken
    }
}
