//! Physical keys of the browser (`KeyboardEvent.code`) to PC/AT set-1 scancodes, as RDP sends
//! them. The remote keyboard layout then turns scancodes into characters, as with a real
//! keyboard, so the table does not depend on the browser's layout.
//!
//! Source: the W3C "UI Events KeyboardEvent code Values" specification and MDN's "code values
//! on Windows" table, with two RDP adjustments: `NumLock` is `0x45` without the E0 prefix (the
//! Windows table's `0xE045` is an artefact of its virtual-key mapping), and `Pause` has no
//! scancode of its own: it is the E1-prefixed sequence `E1 1D 45`, see [`Key::Pause`].

/// A set-1 scancode: `extended` means the E0 prefix (the RDP `KBDFLAGS_EXTENDED` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scancode {
    pub code: u8,
    pub extended: bool,
}

impl Scancode {
    /// A scancode without the E0 prefix.
    pub const fn plain(code: u8) -> Self {
        Self {
            code,
            extended: false,
        }
    }

    /// A scancode with the E0 prefix.
    pub const fn extended(code: u8) -> Self {
        Self {
            code,
            extended: true,
        }
    }

    /// The `ironrdp-input` form.
    pub fn to_ironrdp(self) -> ironrdp_input::Scancode {
        ironrdp_input::Scancode::from_u8(self.extended, self.code)
    }
}

/// What a physical key sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// An ordinary key: pressed and released with its scancode.
    Scancode(Scancode),
    /// Pause/Break: `KBDFLAGS_EXTENDED1` with `0x1D`, then `0x45`, sent whole on the press
    /// (the key has no release of its own).
    Pause,
}

/// The left Control key, which the Pause sequence borrows (with `KBDFLAGS_EXTENDED1`).
pub const PAUSE_PREFIX_CODE: u8 = 0x1D;
/// The Num Lock scancode, the second half of the Pause sequence.
pub const PAUSE_CODE: u8 = 0x45;

/// The scancode of a `KeyboardEvent.code` value; `None` for unknown codes and for `Pause`
/// (use [`key`] to handle it).
pub fn scancode(code: &str) -> Option<Scancode> {
    match key(code)? {
        Key::Scancode(scancode) => Some(scancode),
        Key::Pause => None,
    }
}

/// What the key with this `KeyboardEvent.code` value sends; `None` for codes RDP has no
/// scancode for (`Fn`, `Unidentified`, ...).
pub fn key(code: &str) -> Option<Key> {
    if code == "Pause" {
        return Some(Key::Pause);
    }
    TABLE
        .iter()
        .find(|(name, _)| *name == code)
        .map(|&(_, scancode)| Key::Scancode(scancode))
}

const fn p(code: u8) -> Scancode {
    Scancode::plain(code)
}

const fn e(code: u8) -> Scancode {
    Scancode::extended(code)
}

/// `KeyboardEvent.code` → scancode. Older browser names (`OSLeft`, `VolumeMute`, ...) are
/// listed after the current ones.
pub(crate) const TABLE: &[(&str, Scancode)] = &[
    ("Escape", p(0x01)),
    ("Digit1", p(0x02)),
    ("Digit2", p(0x03)),
    ("Digit3", p(0x04)),
    ("Digit4", p(0x05)),
    ("Digit5", p(0x06)),
    ("Digit6", p(0x07)),
    ("Digit7", p(0x08)),
    ("Digit8", p(0x09)),
    ("Digit9", p(0x0A)),
    ("Digit0", p(0x0B)),
    ("Minus", p(0x0C)),
    ("Equal", p(0x0D)),
    ("Backspace", p(0x0E)),
    ("Tab", p(0x0F)),
    ("KeyQ", p(0x10)),
    ("KeyW", p(0x11)),
    ("KeyE", p(0x12)),
    ("KeyR", p(0x13)),
    ("KeyT", p(0x14)),
    ("KeyY", p(0x15)),
    ("KeyU", p(0x16)),
    ("KeyI", p(0x17)),
    ("KeyO", p(0x18)),
    ("KeyP", p(0x19)),
    ("BracketLeft", p(0x1A)),
    ("BracketRight", p(0x1B)),
    ("Enter", p(0x1C)),
    ("ControlLeft", p(0x1D)),
    ("KeyA", p(0x1E)),
    ("KeyS", p(0x1F)),
    ("KeyD", p(0x20)),
    ("KeyF", p(0x21)),
    ("KeyG", p(0x22)),
    ("KeyH", p(0x23)),
    ("KeyJ", p(0x24)),
    ("KeyK", p(0x25)),
    ("KeyL", p(0x26)),
    ("Semicolon", p(0x27)),
    ("Quote", p(0x28)),
    ("Backquote", p(0x29)),
    ("ShiftLeft", p(0x2A)),
    ("Backslash", p(0x2B)),
    ("KeyZ", p(0x2C)),
    ("KeyX", p(0x2D)),
    ("KeyC", p(0x2E)),
    ("KeyV", p(0x2F)),
    ("KeyB", p(0x30)),
    ("KeyN", p(0x31)),
    ("KeyM", p(0x32)),
    ("Comma", p(0x33)),
    ("Period", p(0x34)),
    ("Slash", p(0x35)),
    ("ShiftRight", p(0x36)),
    ("NumpadMultiply", p(0x37)),
    ("AltLeft", p(0x38)),
    ("Space", p(0x39)),
    ("CapsLock", p(0x3A)),
    ("F1", p(0x3B)),
    ("F2", p(0x3C)),
    ("F3", p(0x3D)),
    ("F4", p(0x3E)),
    ("F5", p(0x3F)),
    ("F6", p(0x40)),
    ("F7", p(0x41)),
    ("F8", p(0x42)),
    ("F9", p(0x43)),
    ("F10", p(0x44)),
    ("NumLock", p(0x45)),
    ("ScrollLock", p(0x46)),
    ("Numpad7", p(0x47)),
    ("Numpad8", p(0x48)),
    ("Numpad9", p(0x49)),
    ("NumpadSubtract", p(0x4A)),
    ("Numpad4", p(0x4B)),
    ("Numpad5", p(0x4C)),
    ("Numpad6", p(0x4D)),
    ("NumpadAdd", p(0x4E)),
    ("Numpad1", p(0x4F)),
    ("Numpad2", p(0x50)),
    ("Numpad3", p(0x51)),
    ("Numpad0", p(0x52)),
    ("NumpadDecimal", p(0x53)),
    ("IntlBackslash", p(0x56)),
    ("F11", p(0x57)),
    ("F12", p(0x58)),
    ("NumpadEqual", p(0x59)),
    ("F13", p(0x64)),
    ("F14", p(0x65)),
    ("F15", p(0x66)),
    ("F16", p(0x67)),
    ("F17", p(0x68)),
    ("F18", p(0x69)),
    ("F19", p(0x6A)),
    ("F20", p(0x6B)),
    ("F21", p(0x6C)),
    ("F22", p(0x6D)),
    ("F23", p(0x6E)),
    ("KanaMode", p(0x70)),
    ("Lang2", p(0x71)),
    ("Lang1", p(0x72)),
    ("IntlRo", p(0x73)),
    ("F24", p(0x76)),
    ("Convert", p(0x79)),
    ("NonConvert", p(0x7B)),
    ("IntlYen", p(0x7D)),
    ("NumpadComma", p(0x7E)),
    ("MediaTrackPrevious", e(0x10)),
    ("MediaTrackNext", e(0x19)),
    ("NumpadEnter", e(0x1C)),
    ("ControlRight", e(0x1D)),
    ("AudioVolumeMute", e(0x20)),
    ("LaunchApp2", e(0x21)),
    ("MediaPlayPause", e(0x22)),
    ("MediaStop", e(0x24)),
    ("AudioVolumeDown", e(0x2E)),
    ("AudioVolumeUp", e(0x30)),
    ("BrowserHome", e(0x32)),
    ("NumpadDivide", e(0x35)),
    ("PrintScreen", e(0x37)),
    ("AltRight", e(0x38)),
    ("Home", e(0x47)),
    ("ArrowUp", e(0x48)),
    ("PageUp", e(0x49)),
    ("ArrowLeft", e(0x4B)),
    ("ArrowRight", e(0x4D)),
    ("End", e(0x4F)),
    ("ArrowDown", e(0x50)),
    ("PageDown", e(0x51)),
    ("Insert", e(0x52)),
    ("Delete", e(0x53)),
    ("MetaLeft", e(0x5B)),
    ("MetaRight", e(0x5C)),
    ("ContextMenu", e(0x5D)),
    ("Power", e(0x5E)),
    ("Sleep", e(0x5F)),
    ("WakeUp", e(0x63)),
    ("BrowserSearch", e(0x65)),
    ("BrowserFavorites", e(0x66)),
    ("BrowserRefresh", e(0x67)),
    ("BrowserStop", e(0x68)),
    ("BrowserForward", e(0x69)),
    ("BrowserBack", e(0x6A)),
    ("LaunchApp1", e(0x6B)),
    ("LaunchMail", e(0x6C)),
    ("MediaSelect", e(0x6D)),
    // Older names of the same keys (Firefox before 118 / Chrome before 52).
    ("OSLeft", e(0x5B)),
    ("OSRight", e(0x5C)),
    ("VolumeMute", e(0x20)),
    ("VolumeDown", e(0x2E)),
    ("VolumeUp", e(0x30)),
    ("LaunchMediaPlayer", e(0x6D)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn s(code: &str) -> Option<(u8, bool)> {
        scancode(code).map(|s| (s.code, s.extended))
    }

    #[test]
    fn letters_follow_the_qwerty_rows() {
        let rows = [("QWERTYUIOP", 0x10), ("ASDFGHJKL", 0x1E), ("ZXCVBNM", 0x2C)];
        for (row, first) in rows {
            for (i, letter) in row.chars().enumerate() {
                let expected = first + u8::try_from(i).unwrap_or(u8::MAX);
                assert_eq!(
                    s(&format!("Key{letter}")),
                    Some((expected, false)),
                    "{letter}"
                );
            }
        }
    }

    #[test]
    fn digits_and_punctuation() {
        for d in 1..=9u8 {
            assert_eq!(s(&format!("Digit{d}")), Some((d + 1, false)));
        }
        assert_eq!(s("Digit0"), Some((0x0B, false)));
        assert_eq!(s("Minus"), Some((0x0C, false)));
        assert_eq!(s("Backquote"), Some((0x29, false)));
        assert_eq!(s("Slash"), Some((0x35, false)));
        assert_eq!(s("Enter"), Some((0x1C, false)));
        assert_eq!(s("Space"), Some((0x39, false)));
    }

    #[test]
    fn function_keys_f1_to_f24() {
        let expected: [u8; 24] = [
            0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x40, 0x41, 0x42, 0x43, 0x44, 0x57, 0x58, 0x64, 0x65,
            0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x76,
        ];
        for (i, code) in expected.into_iter().enumerate() {
            assert_eq!(s(&format!("F{}", i + 1)), Some((code, false)));
        }
        assert_eq!(s("F25"), None);
    }

    #[test]
    fn numpad_is_plain_except_enter_and_divide() {
        assert_eq!(s("Numpad0"), Some((0x52, false)));
        assert_eq!(s("Numpad5"), Some((0x4C, false)));
        assert_eq!(s("Numpad9"), Some((0x49, false)));
        assert_eq!(s("NumpadDecimal"), Some((0x53, false)));
        assert_eq!(s("NumpadMultiply"), Some((0x37, false)));
        assert_eq!(s("NumpadAdd"), Some((0x4E, false)));
        assert_eq!(s("NumLock"), Some((0x45, false)));
        assert_eq!(s("NumpadEnter"), Some((0x1C, true)));
        assert_eq!(s("NumpadDivide"), Some((0x35, true)));
    }

    #[test]
    fn navigation_keys_are_extended() {
        let keys = [
            ("Home", 0x47),
            ("End", 0x4F),
            ("PageUp", 0x49),
            ("PageDown", 0x51),
            ("Insert", 0x52),
            ("Delete", 0x53),
            ("ArrowUp", 0x48),
            ("ArrowDown", 0x50),
            ("ArrowLeft", 0x4B),
            ("ArrowRight", 0x4D),
        ];
        for (name, code) in keys {
            assert_eq!(s(name), Some((code, true)), "{name}");
        }
    }

    #[test]
    fn modifiers_left_plain_right_extended() {
        assert_eq!(s("ControlLeft"), Some((0x1D, false)));
        assert_eq!(s("ControlRight"), Some((0x1D, true)));
        assert_eq!(s("ShiftLeft"), Some((0x2A, false)));
        assert_eq!(s("ShiftRight"), Some((0x36, false)));
        assert_eq!(s("AltLeft"), Some((0x38, false)));
        assert_eq!(s("AltRight"), Some((0x38, true)));
        assert_eq!(s("MetaLeft"), Some((0x5B, true)));
        assert_eq!(s("MetaRight"), Some((0x5C, true)));
        assert_eq!(s("OSLeft"), s("MetaLeft"));
        assert_eq!(s("OSRight"), s("MetaRight"));
        assert_eq!(s("ContextMenu"), Some((0x5D, true)));
        assert_eq!(s("CapsLock"), Some((0x3A, false)));
    }

    #[test]
    fn international_keys() {
        assert_eq!(s("IntlBackslash"), Some((0x56, false)));
        assert_eq!(s("IntlRo"), Some((0x73, false)));
        assert_eq!(s("IntlYen"), Some((0x7D, false)));
        assert_eq!(s("Lang1"), Some((0x72, false)));
        assert_eq!(s("Lang2"), Some((0x71, false)));
        assert_eq!(s("KanaMode"), Some((0x70, false)));
        assert_eq!(s("Convert"), Some((0x79, false)));
        assert_eq!(s("NonConvert"), Some((0x7B, false)));
    }

    #[test]
    fn system_and_media_keys() {
        assert_eq!(s("PrintScreen"), Some((0x37, true)));
        assert_eq!(s("ScrollLock"), Some((0x46, false)));
        assert_eq!(s("AudioVolumeMute"), Some((0x20, true)));
        assert_eq!(s("VolumeMute"), s("AudioVolumeMute"));
        assert_eq!(s("MediaPlayPause"), Some((0x22, true)));
        assert_eq!(s("BrowserBack"), Some((0x6A, true)));
        assert_eq!(s("LaunchMail"), Some((0x6C, true)));
    }

    #[test]
    fn pause_is_special_and_unknown_codes_are_none() {
        assert_eq!(key("Pause"), Some(Key::Pause));
        assert_eq!(scancode("Pause"), None);
        for unknown in ["", "Fn", "Unidentified", "keya", "KeyA ", "F0"] {
            assert_eq!(key(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn names_are_unique_and_only_aliases_share_a_scancode() {
        let aliases = [
            "OSLeft",
            "OSRight",
            "VolumeMute",
            "VolumeDown",
            "VolumeUp",
            "LaunchMediaPlayer",
        ];
        let mut names = HashMap::new();
        let mut codes = HashMap::new();
        for (name, code) in TABLE {
            assert!(names.insert(*name, ()).is_none(), "{name} twice");
            if !aliases.contains(name) {
                assert!(
                    codes.insert(*code, *name).is_none(),
                    "{name} reuses {code:?}"
                );
            }
        }
        assert!(TABLE.len() >= 150, "{} entries", TABLE.len());
    }

    #[test]
    fn converts_to_ironrdp_scancodes() {
        assert_eq!(
            Scancode::extended(0x38).to_ironrdp().as_u16(),
            0xE038,
            "AltRight"
        );
        assert_eq!(Scancode::plain(0x1E).to_ironrdp().as_u16(), 0x1E);
    }
}
