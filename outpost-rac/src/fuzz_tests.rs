//! Seeded fuzz tests of the pieces that take browser or RDP input: message decoding into
//! input events, the key table, dirty-cell tracking and tile encoding. Reproducible: a fixed
//! seed and a small xorshift generator.

use crate::encode::{EncodeScratch, EncodeSettings, PngFilter, encode_tile, fits};
use crate::input::InputState;
use crate::keymap;
use crate::tiles::{DirtyCells, Rect};
use redoubt_outpost_proto::rac::{BrowserMessage, SpecialCombo, TileEncoding};

/// xorshift64*.
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

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// A small value most of the time, an extreme one sometimes.
    fn dimension(&mut self, small: u16) -> u16 {
        match self.below(8) {
            0 => 0,
            1 => u16::MAX,
            2 => self.u16(),
            _ => u16::try_from(self.below(usize::from(small))).unwrap_or(0),
        }
    }
}

const CODES: &[&str] = &[
    "KeyA",
    "ShiftLeft",
    "ControlLeft",
    "AltRight",
    "MetaLeft",
    "Pause",
    "Enter",
    "Numpad5",
    "F24",
    "",
    "Unidentified",
];
const KEYS: &[&str] = &["a", "A", "é", "😀", "Shift", "Enter", "", "\u{7}", "ab"];

fn random_message(rng: &mut Rng) -> BrowserMessage {
    let pick = |rng: &mut Rng, list: &[&str]| list[rng.below(list.len())].to_owned();
    match rng.below(9) {
        0 => BrowserMessage::Key {
            down: rng.below(2) == 0,
            code: pick(rng, CODES),
            key: pick(rng, KEYS),
        },
        1 => {
            let len = rng.below(12);
            BrowserMessage::Unicode {
                text: String::from_utf8_lossy(&rng.bytes(len)).into_owned(),
            }
        }
        2 => BrowserMessage::Mouse {
            x: rng.u16(),
            y: rng.u16(),
            buttons: rng.byte(),
        },
        3 => BrowserMessage::Wheel {
            dx: i16::from_le_bytes([rng.byte(), rng.byte()]),
            dy: i16::from_le_bytes([rng.byte(), rng.byte()]),
        },
        4 => BrowserMessage::SyncLocks { locks: rng.byte() },
        5 => BrowserMessage::Special {
            combo: [
                SpecialCombo::CtrlAltDel,
                SpecialCombo::Windows,
                SpecialCombo::AltTab,
            ][rng.below(3)],
        },
        6 => BrowserMessage::ReleaseAll,
        7 => BrowserMessage::Ack {
            seq: u32::from(rng.u16()),
        },
        _ => BrowserMessage::Resize {
            width: rng.u16(),
            height: rng.u16(),
        },
    }
}

#[test]
fn browser_bytes_to_input_events_never_panic() {
    let mut rng = Rng(0x0dd_ba11_5eed_1234);
    let mut input = InputState::new();
    for round in 0..30_000 {
        let message = random_message(&mut rng);
        let mut bytes = message.encode();
        // Mutate most encodings; keep some intact so the input layer sees valid messages.
        if round % 3 != 0 && !bytes.is_empty() {
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes.truncate(at.max(1)),
                    _ => bytes.insert(at, rng.byte()),
                }
            }
        }
        if round % 11 == 0 {
            let len = rng.below(16);
            bytes = rng.bytes(len);
        }
        let desktop = (rng.dimension(4000), rng.dimension(3000));
        if let Ok(decoded) = BrowserMessage::decode(&bytes) {
            let events = input.event(&decoded, desktop, rng.below(2) == 0);
            if let BrowserMessage::Wheel { .. } = decoded {
                // Every wheel event must fit the PDU's 9-bit field.
                for event in &events {
                    if let ironrdp_pdu::input::fast_path::FastPathInputEvent::MouseEvent(pdu) =
                        event
                    {
                        assert!((-256..=255).contains(&pdu.number_of_wheel_rotation_units));
                    }
                }
            }
        }
    }
    input.release_all();
    assert!(
        input.release_all().is_empty(),
        "release_all lifts everything"
    );
}

#[test]
fn keymap_never_panics_on_random_codes() {
    let mut rng = Rng(0xc0de_c0de_c0de_c0de);
    let prefixes = ["", "Key", "Digit", "F", "Numpad", "Arrow", "Intl", "Lang"];
    let mut found = 0;
    for _ in 0..20_000 {
        let len = rng.below(4);
        let tail = String::from_utf8_lossy(&rng.bytes(len)).into_owned();
        let code = format!("{}{}", prefixes[rng.below(prefixes.len())], tail);
        if keymap::key(&code).is_some() {
            found += 1;
        }
        let _ = keymap::scancode(&code);
    }
    assert!(found < 20_000);
}

#[test]
fn tiles_and_encoding_never_panic_on_random_rects_and_strides() {
    let mut rng = Rng(0x7117_e5e5_0000_0001);
    let mut scratch = EncodeScratch::default();
    let mut seen = [0; 3]; // fills, PNGs, JPEGs
    for round in 0..400 {
        let width = rng.below(150);
        let height = rng.below(100);
        let mut stride = width * 4;
        if round % 4 == 0 {
            stride = rng.below(width * 8 + 8);
        }
        let len = if round % 6 == 0 {
            rng.below(stride * height + 64) // often too short
        } else {
            stride * height + rng.below(8)
        };
        let mut image = rng.bytes(len);
        match round % 5 {
            // One colour (fills), few colours (PNG), or noise (JPEG when large enough).
            0 => image.fill(0x5A),
            1 | 2 => {
                let from = rng.below(64);
                for byte in image.iter_mut().skip(from) {
                    *byte &= 0x80;
                }
            }
            _ => {}
        }
        let rect = if round % 2 == 0 {
            // Inside the image, mostly (the encoder's real input).
            let w = rng.below(width + 1);
            let h = rng.below(height + 1);
            Rect {
                x: u16::try_from(rng.below(width - w + 1)).unwrap_or(0),
                y: u16::try_from(rng.below(height - h + 1)).unwrap_or(0),
                w: u16::try_from(w).unwrap_or(0),
                h: u16::try_from(h).unwrap_or(0),
            }
        } else {
            Rect {
                x: rng.dimension(160),
                y: rng.dimension(110),
                w: rng.dimension(160),
                h: rng.dimension(110),
            }
        };
        let settings = EncodeSettings {
            lossless: rng.below(4) == 0,
            jpeg_quality: rng.byte(),
            png_filter: [PngFilter::Sub, PngFilter::Up, PngFilter::Adaptive][rng.below(3)],
        };
        let (encoding, data) = encode_tile(&image, stride, rect, &settings, &mut scratch);
        let fits = fits(rect, image.len(), stride);
        match encoding {
            TileEncoding::Fill => {
                assert_eq!(data.len(), 4);
                assert_eq!(data.get(3), Some(&255));
                seen[0] += 1;
            }
            TileEncoding::Png => {
                assert!(fits && data.starts_with(b"\x89PNG"), "{rect:?}");
                seen[1] += 1;
            }
            TileEncoding::Jpeg => {
                assert!(fits && data.starts_with(&[0xFF, 0xD8]), "{rect:?}");
                seen[2] += 1;
            }
        }

        let mut cells = DirtyCells::new(rng.dimension(300), rng.dimension(200));
        let (cw, ch) = cells.size();
        if u32::from(cw) * u32::from(ch) > 1_000_000 {
            continue;
        }
        for _ in 0..rng.below(5) {
            cells.mark(rng.u16(), rng.u16(), rng.u16(), rng.u16());
        }
        for r in cells.take(&image, stride) {
            assert!(u32::from(r.x) + u32::from(r.w) <= u32::from(cw));
            assert!(u32::from(r.y) + u32::from(r.h) <= u32::from(ch));
            assert!(r.w > 0 && r.h > 0);
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "fills, PNGs, JPEGs: {seen:?}");
}
