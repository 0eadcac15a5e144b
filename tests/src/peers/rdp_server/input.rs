//! The server's input handler: records every keyboard and mouse event the client sent, in
//! order, as plain values tests can compare.

use super::record::Recorded;
use ironrdp_server::{KeyboardEvent, MouseEvent, RdpServerInputHandler};
use std::sync::Arc;

/// A mouse button as the server saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseButton {
    Left,
    Right,
    Middle,
    /// X1 ("back").
    Back,
    /// X2 ("forward").
    Forward,
}

/// One input event from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEvent {
    /// A scancode key (set 1), `extended` for the E0 prefix.
    Key {
        code: u8,
        extended: bool,
        down: bool,
    },
    /// A UTF-16 code unit typed as a character.
    Unicode {
        unit: u16,
        down: bool,
    },
    /// Lock-key synchronisation: bit 0 scroll, 1 num, 2 caps, 3 kana lock.
    Sync {
        flags: u8,
    },
    /// The pointer moved to (`x`, `y`).
    Move {
        x: u16,
        y: u16,
    },
    Button {
        button: MouseButton,
        down: bool,
    },
    /// A vertical wheel turn, in the units the client sent (positive: away from the user).
    /// ironrdp-server 0.13 reports a horizontal wheel event as a [`InputEvent::Move`] to the
    /// event's position, so horizontal scrolling cannot be observed here.
    Wheel {
        units: i16,
    },
    /// A wheel event from the extended-input channel.
    Scroll {
        x: i32,
        y: i32,
    },
    /// Relative pointer motion.
    RelativeMove {
        dx: i32,
        dy: i32,
    },
}

/// Records into `events`.
pub(crate) struct InputRecorder {
    pub(crate) events: Arc<Recorded<InputEvent>>,
}

impl RdpServerInputHandler for InputRecorder {
    fn keyboard(&mut self, event: KeyboardEvent) {
        self.events.push(match event {
            KeyboardEvent::Pressed { code, extended } => InputEvent::Key {
                code,
                extended,
                down: true,
            },
            KeyboardEvent::Released { code, extended } => InputEvent::Key {
                code,
                extended,
                down: false,
            },
            KeyboardEvent::UnicodePressed(unit) => InputEvent::Unicode { unit, down: true },
            KeyboardEvent::UnicodeReleased(unit) => InputEvent::Unicode { unit, down: false },
            KeyboardEvent::Synchronize(flags) => InputEvent::Sync {
                flags: flags.bits(),
            },
        });
    }

    fn mouse(&mut self, event: MouseEvent) {
        let button = |button, down| InputEvent::Button { button, down };
        self.events.push(match event {
            MouseEvent::Move { x, y } => InputEvent::Move { x, y },
            MouseEvent::LeftPressed => button(MouseButton::Left, true),
            MouseEvent::LeftReleased => button(MouseButton::Left, false),
            MouseEvent::RightPressed => button(MouseButton::Right, true),
            MouseEvent::RightReleased => button(MouseButton::Right, false),
            MouseEvent::MiddlePressed => button(MouseButton::Middle, true),
            MouseEvent::MiddleReleased => button(MouseButton::Middle, false),
            MouseEvent::Button4Pressed => button(MouseButton::Back, true),
            MouseEvent::Button4Released => button(MouseButton::Back, false),
            MouseEvent::Button5Pressed => button(MouseButton::Forward, true),
            MouseEvent::Button5Released => button(MouseButton::Forward, false),
            MouseEvent::VerticalScroll { value } => InputEvent::Wheel { units: value },
            MouseEvent::Scroll { x, y } => InputEvent::Scroll { x, y },
            MouseEvent::RelMove { x, y } => InputEvent::RelativeMove { dx: x, dy: y },
        });
    }
}

/// The key events (`code`, `extended`, `down`) among `events`, in order.
pub fn keys(events: &[InputEvent]) -> Vec<(u8, bool, bool)> {
    events
        .iter()
        .filter_map(|e| match *e {
            InputEvent::Key {
                code,
                extended,
                down,
            } => Some((code, extended, down)),
            _ => None,
        })
        .collect()
}

/// The text typed as Unicode events among `events` (key downs only).
pub fn unicode_text(events: &[InputEvent]) -> String {
    let units: Vec<u16> = events
        .iter()
        .filter_map(|e| match *e {
            InputEvent::Unicode { unit, down: true } => Some(unit),
            _ => None,
        })
        .collect();
    String::from_utf16_lossy(&units)
}
