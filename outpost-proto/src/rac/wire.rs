//! The binary codec of the browser protocol: [`ServerMessage`] and [`BrowserMessage`] to and
//! from WebSocket payloads, with the layouts of the table in the [`crate::rac`] documentation.
//!
//! Decoding never panics: every malformed input is a [`WireError`], which names the WebSocket
//! close code to answer with. Encoding cannot fail: a `str8`/`str16` longer than its length
//! field allows is cut at the last character boundary that fits.

use super::{
    BrowserMessage, EndReason, MAX_BROWSER_INPUT_BYTES, MAX_BROWSER_MESSAGE_BYTES, RdpCredentials,
    ServerMessage, SpecialCombo, TileEncoding,
};

/// Why a browser-protocol message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The message has no type byte.
    Empty,
    /// The type byte names no message of this direction.
    UnknownType(u8),
    /// The message ends inside a field.
    Truncated,
    /// The message is longer than its limit.
    TooLong,
    /// A text field is not UTF-8.
    BadUtf8,
    /// A field holds a value outside its range, or bytes follow the last field.
    BadValue,
}

impl WireError {
    /// The WebSocket close code to end the connection with (RFC 6455 section 7.4.1):
    /// 1003 for an unknown message type, 1009 for a message too big, 1007 otherwise.
    pub fn close_code(self) -> u16 {
        match self {
            Self::UnknownType(_) => 1003,
            Self::TooLong => 1009,
            Self::Empty | Self::Truncated | Self::BadUtf8 | Self::BadValue => 1007,
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty message"),
            Self::UnknownType(t) => write!(f, "unknown message type {t:#04x}"),
            Self::Truncated => f.write_str("message ends inside a field"),
            Self::TooLong => f.write_str("message is too long"),
            Self::BadUtf8 => f.write_str("text is not valid UTF-8"),
            Self::BadValue => f.write_str("a field holds an invalid value"),
        }
    }
}

impl std::error::Error for WireError {}

impl TileEncoding {
    /// The encoding with this wire value.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Fill),
            1 => Some(Self::Png),
            2 => Some(Self::Jpeg),
            _ => None,
        }
    }
}

impl SpecialCombo {
    /// The combination with this wire value.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::CtrlAltDel),
            2 => Some(Self::Windows),
            3 => Some(Self::AltTab),
            _ => None,
        }
    }
}

impl EndReason {
    /// Every reason, in declaration order.
    pub const ALL: [EndReason; 16] = [
        Self::User,
        Self::Server,
        Self::Expired,
        Self::Idle,
        Self::Revoked,
        Self::Removed,
        Self::Denied,
        Self::LimitReached,
        Self::AuthFailed,
        Self::Unreachable,
        Self::Tls,
        Self::Protocol,
        Self::BadMessage,
        Self::OutpostStop,
        Self::Timeout,
        Self::Error,
    ];

    /// The reason with this snake_case label (the inverse of [`EndReason::label`]).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.label() == label)
    }
}

mod types {
    pub(super) const HELLO: u8 = 0x01;
    pub(super) const TILE: u8 = 0x02;
    pub(super) const FRAME_END: u8 = 0x03;
    pub(super) const RESIZE: u8 = 0x04;
    pub(super) const CURSOR: u8 = 0x05;
    pub(super) const CURSOR_DEFAULT: u8 = 0x06;
    pub(super) const CURSOR_HIDDEN: u8 = 0x07;
    pub(super) const CLIPBOARD: u8 = 0x08;
    pub(super) const ENDED: u8 = 0x09;
    pub(super) const STATUS: u8 = 0x0A;

    pub(super) const KEY: u8 = 0x81;
    pub(super) const UNICODE: u8 = 0x82;
    pub(super) const MOUSE: u8 = 0x83;
    pub(super) const WHEEL: u8 = 0x84;
    pub(super) const B_CLIPBOARD: u8 = 0x85;
    pub(super) const B_RESIZE: u8 = 0x86;
    pub(super) const ACK: u8 = 0x87;
    pub(super) const SYNC_LOCKS: u8 = 0x88;
    pub(super) const CREDENTIALS: u8 = 0x89;
    pub(super) const SPECIAL: u8 = 0x8A;
    pub(super) const RELEASE_ALL: u8 = 0x8B;
}

impl ServerMessage {
    /// The message as one WebSocket binary payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the message to `out` (clear it first to reuse a buffer for one payload).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hello {
                version,
                width,
                height,
                features,
                connection_id,
                endpoint_name,
            } => {
                out.push(types::HELLO);
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&width.to_le_bytes());
                out.extend_from_slice(&height.to_le_bytes());
                out.extend_from_slice(&features.to_le_bytes());
                put_str8(out, connection_id);
                put_str16(out, endpoint_name);
            }
            Self::Tile {
                x,
                y,
                w,
                h,
                encoding,
                data,
            } => {
                out.reserve(10 + data.len());
                out.push(types::TILE);
                for v in [x, y, w, h] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.push(encoding.byte());
                out.extend_from_slice(data);
            }
            Self::FrameEnd { seq, server_ms } => {
                out.push(types::FRAME_END);
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&server_ms.to_le_bytes());
            }
            Self::Resize { width, height } => {
                out.push(types::RESIZE);
                out.extend_from_slice(&width.to_le_bytes());
                out.extend_from_slice(&height.to_le_bytes());
            }
            Self::Cursor { hot_x, hot_y, png } => {
                out.push(types::CURSOR);
                out.extend_from_slice(&hot_x.to_le_bytes());
                out.extend_from_slice(&hot_y.to_le_bytes());
                out.extend_from_slice(png);
            }
            Self::CursorDefault => out.push(types::CURSOR_DEFAULT),
            Self::CursorHidden => out.push(types::CURSOR_HIDDEN),
            Self::Clipboard { text } => {
                out.push(types::CLIPBOARD);
                out.extend_from_slice(text.as_bytes());
            }
            Self::Ended { reason, message } => {
                out.push(types::ENDED);
                put_str8(out, reason.label());
                out.extend_from_slice(message.as_bytes());
            }
            Self::Status { text } => {
                out.push(types::STATUS);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }

    /// Parses one payload (the browser side's view; used by tests and tools). Server messages
    /// have no length limit.
    pub fn decode(bytes: &[u8]) -> Result<ServerMessage, WireError> {
        let (&kind, body) = bytes.split_first().ok_or(WireError::Empty)?;
        let mut r = Reader(body);
        let message = match kind {
            types::HELLO => Self::Hello {
                version: r.u16()?,
                width: r.u16()?,
                height: r.u16()?,
                features: r.u32()?,
                connection_id: r.str8()?,
                endpoint_name: r.str16()?,
            },
            types::TILE => Self::Tile {
                x: r.u16()?,
                y: r.u16()?,
                w: r.u16()?,
                h: r.u16()?,
                encoding: TileEncoding::from_u8(r.u8()?).ok_or(WireError::BadValue)?,
                data: r.rest().to_vec(),
            },
            types::FRAME_END => Self::FrameEnd {
                seq: r.u32()?,
                server_ms: r.u32()?,
            },
            types::RESIZE => Self::Resize {
                width: r.u16()?,
                height: r.u16()?,
            },
            types::CURSOR => Self::Cursor {
                hot_x: r.u16()?,
                hot_y: r.u16()?,
                png: r.rest().to_vec(),
            },
            types::CURSOR_DEFAULT => Self::CursorDefault,
            types::CURSOR_HIDDEN => Self::CursorHidden,
            types::CLIPBOARD => Self::Clipboard { text: r.text()? },
            types::ENDED => Self::Ended {
                reason: EndReason::from_label(&r.str8()?).ok_or(WireError::BadValue)?,
                message: r.text()?,
            },
            types::STATUS => Self::Status { text: r.text()? },
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok(message)
    }
}

impl BrowserMessage {
    /// The message as one WebSocket binary payload (the browser's side; used by tests and tools).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Key { down, code, key } => {
                out.push(types::KEY);
                out.push(u8::from(*down));
                put_str8(&mut out, code);
                put_str8(&mut out, key);
            }
            Self::Unicode { text } => {
                out.push(types::UNICODE);
                out.extend_from_slice(text.as_bytes());
            }
            Self::Mouse { x, y, buttons } => {
                out.push(types::MOUSE);
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
                out.push(*buttons);
            }
            Self::Wheel { dx, dy } => {
                out.push(types::WHEEL);
                out.extend_from_slice(&dx.to_le_bytes());
                out.extend_from_slice(&dy.to_le_bytes());
            }
            Self::Clipboard { text } => {
                out.push(types::B_CLIPBOARD);
                out.extend_from_slice(text.as_bytes());
            }
            Self::Resize { width, height } => {
                out.push(types::B_RESIZE);
                out.extend_from_slice(&width.to_le_bytes());
                out.extend_from_slice(&height.to_le_bytes());
            }
            Self::Ack { seq } => {
                out.push(types::ACK);
                out.extend_from_slice(&seq.to_le_bytes());
            }
            Self::SyncLocks { locks } => {
                out.push(types::SYNC_LOCKS);
                out.push(*locks);
            }
            Self::Credentials(c) => {
                out.push(types::CREDENTIALS);
                put_str16(&mut out, &c.username);
                put_str16(&mut out, c.domain.as_deref().unwrap_or(""));
                put_str16(&mut out, &c.password);
            }
            Self::Special { combo } => {
                out.push(types::SPECIAL);
                out.push(combo.byte());
            }
            Self::ReleaseAll => out.push(types::RELEASE_ALL),
        }
        out
    }

    /// Parses one payload from the browser. A `Clipboard` may be up to
    /// [`MAX_BROWSER_MESSAGE_BYTES`] long, every other message up to
    /// [`MAX_BROWSER_INPUT_BYTES`]. An empty `domain` in `Credentials` is `None`.
    pub fn decode(bytes: &[u8]) -> Result<BrowserMessage, WireError> {
        let (&kind, body) = bytes.split_first().ok_or(WireError::Empty)?;
        let limit = if kind == types::B_CLIPBOARD {
            MAX_BROWSER_MESSAGE_BYTES
        } else {
            MAX_BROWSER_INPUT_BYTES
        };
        if bytes.len() > limit {
            return Err(WireError::TooLong);
        }
        let mut r = Reader(body);
        let message = match kind {
            types::KEY => Self::Key {
                down: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(WireError::BadValue),
                },
                code: r.str8()?,
                key: r.str8()?,
            },
            types::UNICODE => Self::Unicode { text: r.text()? },
            types::MOUSE => Self::Mouse {
                x: r.u16()?,
                y: r.u16()?,
                buttons: r.u8()?,
            },
            types::WHEEL => Self::Wheel {
                dx: r.i16()?,
                dy: r.i16()?,
            },
            types::B_CLIPBOARD => Self::Clipboard { text: r.text()? },
            types::B_RESIZE => Self::Resize {
                width: r.u16()?,
                height: r.u16()?,
            },
            types::ACK => Self::Ack { seq: r.u32()? },
            types::SYNC_LOCKS => Self::SyncLocks { locks: r.u8()? },
            types::CREDENTIALS => {
                let username = r.str16()?;
                let domain = r.str16()?;
                let password = r.str16()?;
                Self::Credentials(RdpCredentials {
                    username,
                    domain: (!domain.is_empty()).then_some(domain),
                    password,
                })
            }
            types::SPECIAL => Self::Special {
                combo: SpecialCombo::from_u8(r.u8()?).ok_or(WireError::BadValue)?,
            },
            types::RELEASE_ALL => Self::ReleaseAll,
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok(message)
    }
}

/// Appends a `str8`, cut to 255 bytes at a character boundary.
fn put_str8(out: &mut Vec<u8>, text: &str) {
    let text = cut(text, usize::from(u8::MAX));
    out.push(u8::try_from(text.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(text.as_bytes());
}

/// Appends a `str16`, cut to 65535 bytes at a character boundary.
fn put_str16(out: &mut Vec<u8>, text: &str) {
    let text = cut(text, usize::from(u16::MAX));
    out.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max)
        .rev()
        .find(|end| text.is_char_boundary(*end))
        .unwrap_or(0);
    text.get(..end).unwrap_or_default()
}

/// Reads fields off the front of a message body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn str8(&mut self) -> Result<String, WireError> {
        let len = usize::from(self.u8()?);
        utf8(self.take(len)?)
    }

    fn str16(&mut self) -> Result<String, WireError> {
        let len = usize::from(self.u16()?);
        utf8(self.take(len)?)
    }

    /// Every remaining byte.
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    /// Every remaining byte as text.
    fn text(&mut self) -> Result<String, WireError> {
        utf8(self.rest())
    }

    /// Fails when bytes follow the last field.
    fn finish(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::BadValue)
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<String, WireError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| WireError::BadUtf8)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
