//! Browser input ([`BrowserMessage`]s) to RDP fast-path input events, through
//! `ironrdp-input`'s [`Database`], which remembers what is held so that a lost focus can lift
//! every key and button ([`InputState::release_all`]).
//!
//! Keys go as scancodes of their physical key ([`crate::keymap`]); in Unicode mode a printable
//! key typed without Ctrl, Alt or Meta held goes as the character it produced instead, which
//! makes the remote side independent of its keyboard layout. Pointer positions are clamped to
//! the desktop, wheel deltas are in 1/120 notches (positive `dy` scrolls down, positive `dx`
//! right, as in the browser).

use crate::keymap::{self, Key, PAUSE_CODE, PAUSE_PREFIX_CODE, Scancode};
use ironrdp_input::{Database, MouseButton, MousePosition, Operation, WheelRotations};
use ironrdp_pdu::input::fast_path::{FastPathInputEvent, KeyboardFlags};
use redoubt_outpost_proto::rac::{BrowserMessage, SpecialCombo};

/// Most wheel units in one RDP pointer event (the field is 9-bit two's complement).
const MAX_WHEEL_STEP: i32 = 240;

/// Most keys remembered as pressed in Unicode mode at once (more than hands can hold).
const MAX_UNICODE_HELD: usize = 16;

/// Browser button bits (`MouseEvent.buttons` order of the wire: 1 left, 2 right, 4 middle,
/// 8 back, 16 forward) and the RDP buttons they are.
const BUTTONS: [(u8, MouseButton); 5] = [
    (1, MouseButton::Left),
    (2, MouseButton::Right),
    (4, MouseButton::Middle),
    (8, MouseButton::X1),
    (16, MouseButton::X2),
];

const CONTROL_LEFT: Scancode = Scancode::plain(0x1D);
const ALT_LEFT: Scancode = Scancode::plain(0x38);
const DELETE: Scancode = Scancode::extended(0x53);
const TAB: Scancode = Scancode::plain(0x0F);
const META_LEFT: Scancode = Scancode::extended(0x5B);

/// Modifiers that turn a key into a shortcut (Unicode mode sends such keys as scancodes).
const SHORTCUT_MODIFIERS: [Scancode; 6] = [
    Scancode::plain(0x1D),
    Scancode::extended(0x1D),
    Scancode::plain(0x38),
    Scancode::extended(0x38),
    Scancode::extended(0x5B),
    Scancode::extended(0x5C),
];

/// The input state of one connection.
#[derive(Default)]
pub struct InputState {
    database: Database,
    /// Keys pressed in Unicode mode: their `code` and the character sent, so that the release
    /// lifts the same character even if Shift changed in between.
    unicode_held: Vec<(String, char)>,
}

impl std::fmt::Debug for InputState {
    /// Never shows which characters are held.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputState")
            .field("unicode_held", &self.unicode_held.len())
            .finish_non_exhaustive()
    }
}

impl InputState {
    /// A state with nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// The RDP events for one browser message, on a desktop of `desktop` (width, height)
    /// pixels; `unicode_keyboard` is the connection's current keyboard mode. Messages that are
    /// not input (clipboard, resize, ack, credentials) give no events.
    pub fn event(
        &mut self,
        message: &BrowserMessage,
        desktop: (u16, u16),
        unicode_keyboard: bool,
    ) -> Vec<FastPathInputEvent> {
        match message {
            BrowserMessage::Key { down, code, key } => self.key(*down, code, key, unicode_keyboard),
            BrowserMessage::Unicode { text } => text
                .encode_utf16()
                .flat_map(|unit| {
                    [
                        FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::empty(), unit),
                        FastPathInputEvent::UnicodeKeyboardEvent(KeyboardFlags::RELEASE, unit),
                    ]
                })
                .collect(),
            BrowserMessage::Mouse { x, y, buttons } => self.mouse(*x, *y, *buttons, desktop),
            BrowserMessage::Wheel { dx, dy } => self.wheel(*dx, *dy),
            BrowserMessage::SyncLocks { locks } => vec![ironrdp_input::synchronize_event(
                locks & 4 != 0,
                locks & 2 != 0,
                locks & 1 != 0,
                locks & 8 != 0,
            )],
            BrowserMessage::Special { combo } => self.special(*combo),
            BrowserMessage::ReleaseAll => self.release_all(),
            BrowserMessage::Clipboard { .. }
            | BrowserMessage::Resize { .. }
            | BrowserMessage::Ack { .. }
            | BrowserMessage::Credentials(_) => Vec::new(),
        }
    }

    /// Lifts every held key and button (the tab lost focus, or the browser went away).
    pub fn release_all(&mut self) -> Vec<FastPathInputEvent> {
        self.unicode_held.clear();
        self.database.release_all().into_vec()
    }

    fn apply(
        &mut self,
        operations: impl IntoIterator<Item = Operation>,
    ) -> Vec<FastPathInputEvent> {
        self.database.apply(operations).into_vec()
    }

    fn key(&mut self, down: bool, code: &str, key: &str, unicode: bool) -> Vec<FastPathInputEvent> {
        let physical = keymap::key(code);
        if !down && let Some(at) = self.unicode_held.iter().position(|(c, _)| c == code) {
            let (_, character) = self.unicode_held.swap_remove(at);
            let mut operations = vec![Operation::UnicodeKeyReleased(character)];
            // A repeat while a shortcut modifier was held went as the scancode: lift it too.
            if let Some(Key::Scancode(scancode)) = physical {
                operations.push(Operation::KeyReleased(scancode.to_ironrdp()));
            }
            return self.apply(operations);
        }
        if down
            && let Some(character) = printable(key)
            && ((unicode && !self.shortcut_held()) || physical.is_none())
        {
            return self.unicode_press(code, character, physical.is_some());
        }
        match physical {
            Some(Key::Scancode(scancode)) => {
                let scancode = scancode.to_ironrdp();
                self.apply([if down {
                    Operation::KeyPressed(scancode)
                } else {
                    Operation::KeyReleased(scancode)
                }])
            }
            Some(Key::Pause) if down => pause(),
            Some(Key::Pause) | None => Vec::new(),
        }
    }

    /// Presses a character; it stays held until the key's release when the key is known
    /// (bounded), otherwise it is typed (pressed and released) at once.
    fn unicode_press(
        &mut self,
        code: &str,
        character: char,
        known: bool,
    ) -> Vec<FastPathInputEvent> {
        if known && let Some(held) = self.unicode_held.iter_mut().find(|(c, _)| c == code) {
            // Auto-repeat; if Shift changed the character meanwhile, lift the old one first.
            let previous = std::mem::replace(&mut held.1, character);
            let mut operations = Vec::with_capacity(2);
            if previous != character {
                operations.push(Operation::UnicodeKeyReleased(previous));
            }
            operations.push(Operation::UnicodeKeyPressed(character));
            return self.apply(operations);
        }
        if known && self.unicode_held.len() < MAX_UNICODE_HELD {
            self.unicode_held.push((code.to_owned(), character));
            return self.apply([Operation::UnicodeKeyPressed(character)]);
        }
        self.apply([
            Operation::UnicodeKeyPressed(character),
            Operation::UnicodeKeyReleased(character),
        ])
    }

    fn shortcut_held(&self) -> bool {
        SHORTCUT_MODIFIERS
            .iter()
            .any(|m| self.database.is_key_pressed(m.to_ironrdp()))
    }

    fn mouse(
        &mut self,
        x: u16,
        y: u16,
        buttons: u8,
        desktop: (u16, u16),
    ) -> Vec<FastPathInputEvent> {
        let position = MousePosition {
            x: x.min(desktop.0.saturating_sub(1)),
            y: y.min(desktop.1.saturating_sub(1)),
        };
        let mut operations = vec![Operation::MouseMove(position)];
        for (bit, button) in BUTTONS {
            let wanted = buttons & bit != 0;
            if wanted != self.database.is_mouse_button_pressed(button) {
                operations.push(if wanted {
                    Operation::MouseButtonPressed(button)
                } else {
                    Operation::MouseButtonReleased(button)
                });
            }
        }
        self.apply(operations)
    }

    fn wheel(&mut self, dx: i16, dy: i16) -> Vec<FastPathInputEvent> {
        // RDP (like Windows) counts a vertical rotation away from the user, which scrolls up,
        // as positive; a horizontal one to the right as positive.
        let mut operations = Vec::new();
        for (is_vertical, mut units) in [(true, -i32::from(dy)), (false, i32::from(dx))] {
            while units != 0 {
                let step = units.clamp(-MAX_WHEEL_STEP, MAX_WHEEL_STEP);
                units -= step;
                operations.push(Operation::WheelRotations(WheelRotations {
                    is_vertical,
                    rotation_units: i16::try_from(step).unwrap_or(0),
                }));
            }
        }
        self.apply(operations)
    }

    fn special(&mut self, combo: SpecialCombo) -> Vec<FastPathInputEvent> {
        let press = |s: Scancode| Operation::KeyPressed(s.to_ironrdp());
        let release = |s: Scancode| Operation::KeyReleased(s.to_ironrdp());
        match combo {
            SpecialCombo::CtrlAltDel => self.apply([
                press(CONTROL_LEFT),
                press(ALT_LEFT),
                press(DELETE),
                release(DELETE),
                release(ALT_LEFT),
                release(CONTROL_LEFT),
            ]),
            SpecialCombo::Windows => self.apply([press(META_LEFT), release(META_LEFT)]),
            SpecialCombo::AltTab => {
                self.apply([press(ALT_LEFT), press(TAB), release(TAB), release(ALT_LEFT)])
            }
        }
    }
}

/// The character a `KeyboardEvent.key` value types, if it is one printable character
/// (`"a"`, `"€"`, `" "`), not a named key (`"Enter"`, `"Shift"`) or a control character.
fn printable(key: &str) -> Option<char> {
    let mut chars = key.chars();
    let first = chars.next()?;
    (chars.next().is_none() && !first.is_control()).then_some(first)
}

/// Pause/Break: the whole E1 sequence, press and release (the key sends nothing on release).
fn pause() -> Vec<FastPathInputEvent> {
    vec![
        FastPathInputEvent::KeyboardEvent(KeyboardFlags::EXTENDED1, PAUSE_PREFIX_CODE),
        FastPathInputEvent::KeyboardEvent(KeyboardFlags::empty(), PAUSE_CODE),
        FastPathInputEvent::KeyboardEvent(
            KeyboardFlags::EXTENDED1 | KeyboardFlags::RELEASE,
            PAUSE_PREFIX_CODE,
        ),
        FastPathInputEvent::KeyboardEvent(KeyboardFlags::RELEASE, PAUSE_CODE),
    ]
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
