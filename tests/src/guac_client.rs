//! A small Guacamole-protocol client for benchmarking guacd side by side with the RAC outpost:
//! the `select`/`args`/`connect` handshake for RDP, then a reader that echoes every `sync` (guacd
//! paces its frames on these acknowledgements, as the browser's would) and `nop`, and counts
//! the bytes, images and frames guacd sent. Nothing is drawn.
//!
//! Instructions are `LEN.VALUE,LEN.VALUE,...;` where each `LEN` counts Unicode code points.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest instruction the client accepts (guacd's own limit is far below).
const MAX_INSTRUCTION: usize = 16 * 1024 * 1024;

/// Parses one instruction from the front of `buffer`: its elements and its length in bytes;
/// `Ok(None)` when it is not complete yet.
pub fn parse_instruction(buffer: &[u8]) -> anyhow::Result<Option<(Vec<String>, usize)>> {
    let mut elements = Vec::new();
    let mut at = 0;
    loop {
        let rest = buffer.get(at..).unwrap_or_default();
        let Some(dot) = rest.iter().position(|b| *b == b'.') else {
            if rest.len() > 20 {
                bail!("an element length longer than 20 digits");
            }
            return Ok(None);
        };
        let length: usize = rest
            .get(..dot)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse().ok())
            .context("an element length that is not a number")?;
        if length > MAX_INSTRUCTION {
            bail!("an element of {length} code points");
        }
        let start = at + dot + 1;
        // Walk `length` code points (UTF-8 lead bytes) forward.
        let mut end = start;
        let mut seen = 0;
        while seen < length {
            let Some(&byte) = buffer.get(end) else {
                return Ok(None);
            };
            end += match byte {
                0x00..=0x7F => 1,
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => bail!("invalid UTF-8 in an element"),
            };
            seen += 1;
        }
        let Some(&terminator) = buffer.get(end) else {
            return Ok(None);
        };
        let value = std::str::from_utf8(buffer.get(start..end).context("short element")?)
            .context("invalid UTF-8 in an element")?;
        elements.push(value.to_owned());
        match terminator {
            b',' => at = end + 1,
            b';' => return Ok(Some((elements, end + 1))),
            other => bail!("unexpected byte {other:#04x} after an element"),
        }
    }
}

/// Encodes one instruction.
pub fn encode_instruction(elements: &[&str]) -> String {
    let mut out = String::new();
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{}.{element}", element.chars().count()));
    }
    out.push(';');
    out
}

/// What the reader counted since the connection was opened.
#[derive(Debug, Default)]
pub struct GuacCounters {
    /// Bytes received from guacd.
    pub bytes: AtomicU64,
    /// `img` instructions (image streams).
    pub images: AtomicU64,
    /// `sync` instructions (frames).
    pub frames: AtomicU64,
    /// Set when guacd ended the connection (or sent `error`/`disconnect`).
    pub ended: AtomicBool,
}

/// A snapshot of [`GuacCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuacCounts {
    pub bytes: u64,
    pub images: u64,
    pub frames: u64,
}

impl GuacCounters {
    pub fn snapshot(&self) -> GuacCounts {
        GuacCounts {
            bytes: self.bytes.load(Ordering::Relaxed),
            images: self.images.load(Ordering::Relaxed),
            frames: self.frames.load(Ordering::Relaxed),
        }
    }
}

/// The RDP connection guacd should open.
#[derive(Clone)]
pub struct GuacRdp {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub width: u16,
    pub height: u16,
    /// Further connection parameters by name (e.g. `security` = `tls`).
    pub parameters: Vec<(String, String)>,
}

impl std::fmt::Debug for GuacRdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuacRdp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A connected client; the reader stops when it is dropped.
pub struct GuacClient {
    pub counters: Arc<GuacCounters>,
    /// guacd's connection id (`$uuid`) from `ready`.
    pub connection_id: String,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for GuacClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads whole instructions from a socket.
struct Instructions {
    read: OwnedReadHalf,
    buffer: Vec<u8>,
    /// Where the unparsed part of `buffer` starts.
    start: usize,
    counters: Arc<GuacCounters>,
}

impl Instructions {
    async fn next(&mut self) -> anyhow::Result<Option<Vec<String>>> {
        loop {
            let unparsed = self.buffer.get(self.start..).unwrap_or_default();
            if let Some((elements, used)) = parse_instruction(unparsed)? {
                self.start += used;
                return Ok(Some(elements));
            }
            self.buffer.drain(..self.start);
            self.start = 0;
            if self.buffer.len() > MAX_INSTRUCTION {
                bail!("an instruction longer than {MAX_INSTRUCTION} bytes");
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.read.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            self.buffer
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

impl GuacClient {
    /// Connects to guacd at `addr`, asks it for an RDP connection to `rdp` and returns once
    /// guacd answered `ready`; the reader then runs in the background.
    pub async fn connect(addr: std::net::SocketAddr, rdp: &GuacRdp) -> anyhow::Result<Self> {
        let (read, mut write) = TcpStream::connect(addr)
            .await
            .context("connect to guacd")?
            .into_split();
        let counters = Arc::new(GuacCounters::default());
        let mut incoming = Instructions {
            read,
            buffer: Vec::new(),
            start: 0,
            counters: counters.clone(),
        };
        send(&mut write, &["select", "rdp"]).await?;
        let args = tokio::time::timeout(Duration::from_secs(10), incoming.next())
            .await
            .context("no args from guacd")??
            .context("guacd closed before args")?;
        if args.first().map(String::as_str) != Some("args") {
            bail!("guacd answered {args:?} instead of args");
        }
        let (width, height) = (rdp.width.to_string(), rdp.height.to_string());
        send(&mut write, &["size", &width, &height, "96"]).await?;
        send(&mut write, &["audio"]).await?;
        send(&mut write, &["video"]).await?;
        send(&mut write, &["image", "image/png"]).await?;
        send(&mut write, &["timezone", "UTC"]).await?;
        let port = rdp.port.to_string();
        let mut values: HashMap<&str, &str> = HashMap::from([
            ("hostname", rdp.host.as_str()),
            ("port", port.as_str()),
            ("username", rdp.username.as_str()),
            ("password", rdp.password.as_str()),
            ("width", width.as_str()),
            ("height", height.as_str()),
        ]);
        for (name, value) in &rdp.parameters {
            values.insert(name, value);
        }
        // The first element after `args` is the protocol version, echoed first in `connect`.
        let mut connect: Vec<&str> = vec!["connect"];
        for (i, name) in args.iter().skip(1).enumerate() {
            if i == 0 {
                connect.push(name);
            } else {
                connect.push(values.get(name.as_str()).copied().unwrap_or(""));
            }
        }
        send(&mut write, &connect).await?;
        let connection_id = loop {
            let instruction = tokio::time::timeout(Duration::from_secs(20), incoming.next())
                .await
                .context("no ready from guacd")??
                .context("guacd closed before ready")?;
            match instruction.first().map(String::as_str) {
                Some("ready") => break instruction.get(1).cloned().unwrap_or_default(),
                Some("error") => bail!("guacd refused the connection: {instruction:?}"),
                _ => {}
            }
        };
        let reader = tokio::spawn(read_loop(incoming, write));
        Ok(Self {
            counters,
            connection_id,
            reader,
        })
    }
}

async fn send(write: &mut OwnedWriteHalf, elements: &[&str]) -> anyhow::Result<()> {
    write
        .write_all(encode_instruction(elements).as_bytes())
        .await
        .context("write to guacd")
}

/// Counts what arrives and acknowledges each frame until guacd ends the connection.
async fn read_loop(mut incoming: Instructions, mut write: OwnedWriteHalf) {
    let counters = incoming.counters.clone();
    while let Ok(Some(instruction)) = incoming.next().await {
        let answer = match instruction.first().map(String::as_str) {
            Some("img") => {
                counters.images.fetch_add(1, Ordering::Relaxed);
                None
            }
            Some("sync") => {
                counters.frames.fetch_add(1, Ordering::Relaxed);
                instruction
                    .get(1)
                    .map(|timestamp| encode_instruction(&["sync", timestamp]))
            }
            Some("nop") => Some(encode_instruction(&["nop"])),
            Some("error" | "disconnect") => break,
            _ => None,
        };
        if let Some(answer) = answer
            && write.write_all(answer.as_bytes()).await.is_err()
        {
            break;
        }
    }
    counters.ended.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_instructions_and_waits_for_partial_ones() {
        let text = "4.sync,3.123;3.img,1.1;";
        let (elements, used) = parse_instruction(text.as_bytes())
            .expect("parses")
            .expect("complete");
        assert_eq!(elements, ["sync", "123"]);
        assert_eq!(used, 13);
        assert_eq!(parse_instruction(b"4.sync,3.12").expect("answer"), None);
        assert_eq!(parse_instruction(b"4.sy").expect("answer"), None);
    }

    #[test]
    fn counts_code_points_not_bytes() {
        let encoded = encode_instruction(&["key", "é€"]);
        assert_eq!(encoded, "3.key,2.é€;");
        let (elements, used) = parse_instruction(encoded.as_bytes())
            .expect("parses")
            .expect("complete");
        assert_eq!(elements, ["key", "é€"]);
        assert_eq!(used, encoded.len());
    }

    #[test]
    fn refuses_malformed_input() {
        assert!(parse_instruction(b"x.abc;").is_err());
        assert!(parse_instruction(b"1.ab;").is_err());
        assert!(parse_instruction(&[b'1', b'.', 0xFF, b';']).is_err());
    }
}
