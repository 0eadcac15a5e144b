//! Tests of the browser-protocol codec: round trips, exact bytes, limits and a seeded fuzz run.

use super::*;

fn every_server_message() -> Vec<ServerMessage> {
    let mut all = vec![
        ServerMessage::Hello {
            version: 1,
            width: 1920,
            height: 1080,
            features: 0b1011,
            connection_id: "c-42".into(),
            endpoint_name: "Büro-PC ✓".into(),
        },
        ServerMessage::Tile {
            x: 64,
            y: 128,
            w: 64,
            h: 32,
            encoding: TileEncoding::Png,
            data: vec![0x89, b'P', b'N', b'G'],
        },
        ServerMessage::Tile {
            x: 0,
            y: 0,
            w: 1,
            h: 1,
            encoding: TileEncoding::Fill,
            data: vec![1, 2, 3, 255],
        },
        ServerMessage::Tile {
            x: u16::MAX,
            y: 0,
            w: 0,
            h: 0,
            encoding: TileEncoding::Jpeg,
            data: vec![],
        },
        ServerMessage::FrameEnd {
            seq: u32::MAX,
            server_ms: 123_456,
        },
        ServerMessage::Resize {
            width: 800,
            height: 600,
        },
        ServerMessage::Cursor {
            hot_x: 3,
            hot_y: 4,
            png: vec![9; 40],
        },
        ServerMessage::CursorDefault,
        ServerMessage::CursorHidden,
        ServerMessage::Clipboard {
            text: "line 1\nline 2 😀".into(),
        },
        ServerMessage::Clipboard { text: "".into() },
        ServerMessage::Status {
            text: "Connecting to desk.example".into(),
        },
    ];
    for reason in EndReason::ALL {
        all.push(ServerMessage::Ended {
            reason,
            message: format!("ended: {}", reason.label()),
        });
    }
    all
}

fn every_browser_message() -> Vec<BrowserMessage> {
    vec![
        BrowserMessage::Key {
            down: true,
            code: "KeyA".into(),
            key: "a".into(),
        },
        BrowserMessage::Key {
            down: false,
            code: "AltRight".into(),
            key: "AltGraph".into(),
        },
        BrowserMessage::Unicode {
            text: "é😀".into()
        },
        BrowserMessage::Mouse {
            x: 10,
            y: 65535,
            buttons: 0x1f,
        },
        BrowserMessage::Wheel { dx: -120, dy: 240 },
        BrowserMessage::Clipboard {
            text: "a\r\nb".into(),
        },
        BrowserMessage::Resize {
            width: 2560,
            height: 1440,
        },
        BrowserMessage::Ack { seq: 7 },
        BrowserMessage::SyncLocks { locks: 0b1010 },
        BrowserMessage::Credentials(RdpCredentials {
            username: "alice".into(),
            domain: Some("CORP".into()),
            password: "pä55".into(),
        }),
        BrowserMessage::Credentials(RdpCredentials {
            username: "bob".into(),
            domain: None,
            password: "".into(),
        }),
        BrowserMessage::Special {
            combo: SpecialCombo::CtrlAltDel,
        },
        BrowserMessage::Special {
            combo: SpecialCombo::Windows,
        },
        BrowserMessage::Special {
            combo: SpecialCombo::AltTab,
        },
        BrowserMessage::ReleaseAll,
    ]
}

#[test]
fn every_server_message_round_trips() {
    let mut buffer = Vec::new();
    for message in every_server_message() {
        let bytes = message.encode();
        assert_eq!(
            ServerMessage::decode(&bytes),
            Ok(message.clone()),
            "{message:?}"
        );
        buffer.clear();
        message.encode_into(&mut buffer);
        assert_eq!(buffer, bytes);
    }
}

#[test]
fn every_browser_message_round_trips() {
    for message in every_browser_message() {
        let bytes = message.encode();
        assert_eq!(
            BrowserMessage::decode(&bytes),
            Ok(message.clone()),
            "{message:?}"
        );
    }
}

#[test]
fn server_messages_have_the_documented_bytes() {
    let hello = ServerMessage::Hello {
        version: 1,
        width: 0x0780,
        height: 0x0438,
        features: 0x0102_0304,
        connection_id: "ab".into(),
        endpoint_name: "é".into(),
    };
    assert_eq!(
        hello.encode(),
        [
            0x01, 1, 0, 0x80, 0x07, 0x38, 0x04, 4, 3, 2, 1, 2, b'a', b'b', 2, 0, 0xc3, 0xa9
        ]
    );
    let tile = ServerMessage::Tile {
        x: 1,
        y: 0x0203,
        w: 64,
        h: 64,
        encoding: TileEncoding::Fill,
        data: vec![10, 20, 30, 255],
    };
    assert_eq!(
        tile.encode(),
        [0x02, 1, 0, 3, 2, 64, 0, 64, 0, 0, 10, 20, 30, 255]
    );
    let frame_end = ServerMessage::FrameEnd {
        seq: 0x0a0b0c0d,
        server_ms: 1,
    };
    assert_eq!(
        frame_end.encode(),
        [0x03, 0x0d, 0x0c, 0x0b, 0x0a, 1, 0, 0, 0]
    );
    let ended = ServerMessage::Ended {
        reason: EndReason::LimitReached,
        message: "x".into(),
    };
    let mut expected = vec![0x09, 13];
    expected.extend_from_slice(b"limit_reachedx");
    assert_eq!(ended.encode(), expected);
    assert_eq!(ServerMessage::CursorHidden.encode(), [0x07]);
}

#[test]
fn browser_messages_have_the_documented_bytes() {
    let key = BrowserMessage::Key {
        down: true,
        code: "KeyQ".into(),
        key: "a".into(),
    };
    assert_eq!(key.encode(), [0x81, 1, 4, b'K', b'e', b'y', b'Q', 1, b'a']);
    let mouse = BrowserMessage::Mouse {
        x: 0x0102,
        y: 3,
        buttons: 5,
    };
    assert_eq!(mouse.encode(), [0x83, 2, 1, 3, 0, 5]);
    let wheel = BrowserMessage::Wheel { dx: -1, dy: 120 };
    assert_eq!(wheel.encode(), [0x84, 0xff, 0xff, 120, 0]);
    let credentials = BrowserMessage::Credentials(RdpCredentials {
        username: "u".into(),
        domain: None,
        password: "pw".into(),
    });
    assert_eq!(
        credentials.encode(),
        [0x89, 1, 0, b'u', 0, 0, 2, 0, b'p', b'w']
    );
    assert_eq!(BrowserMessage::ReleaseAll.encode(), [0x8b]);
    assert_eq!(
        BrowserMessage::decode(&[0x8a, 1]),
        Ok(BrowserMessage::Special {
            combo: SpecialCombo::CtrlAltDel
        })
    );
}

#[test]
fn malformed_browser_messages_are_typed_errors() {
    let cases: &[(&[u8], WireError)] = &[
        (&[], WireError::Empty),
        (&[0x01], WireError::UnknownType(0x01)),
        (&[0x8c], WireError::UnknownType(0x8c)),
        (&[0x83, 1, 0, 2], WireError::Truncated),
        (&[0x81, 2, 0, 0], WireError::BadValue),
        (&[0x81, 1, 5, b'K'], WireError::Truncated),
        (&[0x82, 0xff, 0xfe], WireError::BadUtf8),
        (&[0x8a, 4], WireError::BadValue),
        (&[0x87, 1, 0, 0, 0, 9], WireError::BadValue),
        (&[0x8b, 0], WireError::BadValue),
    ];
    for (bytes, error) in cases {
        assert_eq!(BrowserMessage::decode(bytes), Err(*error), "{bytes:?}");
    }
    assert_eq!(WireError::UnknownType(0x8c).close_code(), 1003);
    assert_eq!(WireError::TooLong.close_code(), 1009);
    assert_eq!(WireError::BadUtf8.close_code(), 1007);
    assert_eq!(WireError::Truncated.close_code(), 1007);
    assert_eq!(
        WireError::UnknownType(0x8c).to_string(),
        "unknown message type 0x8c"
    );
}

#[test]
fn only_clipboard_may_exceed_the_input_limit() {
    let mut unicode = vec![0x82];
    unicode.resize(MAX_BROWSER_INPUT_BYTES, b'a');
    assert!(BrowserMessage::decode(&unicode).is_ok());
    unicode.push(b'a');
    assert_eq!(BrowserMessage::decode(&unicode), Err(WireError::TooLong));

    let mut clipboard = unicode.clone();
    clipboard[0] = 0x85;
    assert!(matches!(
        BrowserMessage::decode(&clipboard),
        Ok(BrowserMessage::Clipboard { .. })
    ));
    clipboard.resize(MAX_BROWSER_MESSAGE_BYTES + 1, b'a');
    assert_eq!(BrowserMessage::decode(&clipboard), Err(WireError::TooLong));
}

#[test]
fn long_strings_are_cut_at_a_character_boundary() {
    let long = "é".repeat(200); // 400 bytes
    let key = BrowserMessage::Key {
        down: true,
        code: long.clone(),
        key: String::new(),
    };
    let Ok(BrowserMessage::Key { code, .. }) = BrowserMessage::decode(&key.encode()) else {
        panic!("the cut key must decode");
    };
    assert_eq!(code, "é".repeat(127));
}

#[test]
fn end_reason_labels_parse_back() {
    for reason in EndReason::ALL {
        assert_eq!(EndReason::from_label(reason.label()), Some(reason));
    }
    assert_eq!(EndReason::from_label("nope"), None);
}

/// xorshift64*, seeded: reproducible random input for the fuzz test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// One to four mutations: bit flips, random bytes, truncation, insertions, deletions.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(3) {
        if bytes.is_empty() {
            bytes.push(rng.byte());
        }
        let at = rng.below(bytes.len());
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.byte(),
            2 => bytes.truncate(at),
            3 => {
                let run: Vec<u8> = (0..rng.below(8)).map(|_| rng.byte()).collect();
                bytes.splice(at..at, run);
            }
            _ => {
                let end = (at + rng.below(4)).min(bytes.len());
                bytes.drain(at..end);
            }
        }
    }
    bytes
}

#[test]
fn fuzz_decoders_never_panic_and_reencode_what_they_accept() {
    let mut rng = Rng(0x5eed_0bad_cafe_f00d);
    let browser: Vec<Vec<u8>> = every_browser_message().iter().map(|m| m.encode()).collect();
    let server: Vec<Vec<u8>> = every_server_message().iter().map(|m| m.encode()).collect();
    for round in 0..20_000 {
        let bytes = if round % 4 == 0 {
            let len = rng.below(24);
            (0..len).map(|_| rng.byte()).collect()
        } else if round % 2 == 0 {
            {
                let seed = &browser[rng.below(browser.len())];
                mutate(&mut rng, seed)
            }
        } else {
            {
                let seed = &server[rng.below(server.len())];
                mutate(&mut rng, seed)
            }
        };
        if let Ok(message) = BrowserMessage::decode(&bytes) {
            assert_eq!(message.encode(), bytes, "{message:?}");
        }
        if let Ok(message) = ServerMessage::decode(&bytes) {
            assert_eq!(message.encode(), bytes);
        }
    }
}
