//! Tests of browser input to fast-path events: exact events for every message kind.

use super::*;
use ironrdp_pdu::input::fast_path::SynchronizeFlags;
use ironrdp_pdu::input::mouse::PointerFlags;
use ironrdp_pdu::input::mouse_x::PointerXFlags;
use ironrdp_pdu::input::{MousePdu, MouseXPdu};

const DESKTOP: (u16, u16) = (1024, 768);

fn key(down: bool, code: &str, key: &str) -> BrowserMessage {
    BrowserMessage::Key {
        down,
        code: code.into(),
        key: key.into(),
    }
}

fn kb(flags: KeyboardFlags, code: u8) -> FastPathInputEvent {
    FastPathInputEvent::KeyboardEvent(flags, code)
}

fn uni(flags: KeyboardFlags, unit: u16) -> FastPathInputEvent {
    FastPathInputEvent::UnicodeKeyboardEvent(flags, unit)
}

fn mouse(flags: PointerFlags, units: i16, x: u16, y: u16) -> FastPathInputEvent {
    FastPathInputEvent::MouseEvent(MousePdu {
        flags,
        number_of_wheel_rotation_units: units,
        x_position: x,
        y_position: y,
    })
}

const NONE: KeyboardFlags = KeyboardFlags::empty();
const UP: KeyboardFlags = KeyboardFlags::RELEASE;
const EXT: KeyboardFlags = KeyboardFlags::EXTENDED;

#[test]
fn keys_go_as_scancodes_with_the_extended_flag() {
    let mut input = InputState::new();
    assert_eq!(
        input.event(&key(true, "KeyA", "a"), DESKTOP, false),
        [kb(NONE, 0x1E)]
    );
    assert_eq!(
        input.event(&key(false, "KeyA", "a"), DESKTOP, false),
        [kb(UP, 0x1E)]
    );
    assert_eq!(
        input.event(&key(true, "AltRight", "AltGraph"), DESKTOP, false),
        [kb(EXT, 0x38)]
    );
    assert_eq!(
        input.event(&key(false, "AltRight", "AltGraph"), DESKTOP, false),
        [kb(EXT | UP, 0x38)]
    );
    // Releasing a key that is not held sends nothing.
    assert!(
        input
            .event(&key(false, "KeyB", "b"), DESKTOP, false)
            .is_empty()
    );
    // Unknown physical keys without a character send nothing.
    assert!(
        input
            .event(&key(true, "Fn", "Fn"), DESKTOP, false)
            .is_empty()
    );
}

#[test]
fn auto_repeat_releases_then_presses_again() {
    let mut input = InputState::new();
    input.event(&key(true, "KeyA", "a"), DESKTOP, false);
    assert_eq!(
        input.event(&key(true, "KeyA", "a"), DESKTOP, false),
        [kb(UP, 0x1E), kb(NONE, 0x1E)]
    );
}

#[test]
fn pause_sends_the_e1_sequence_on_press_only() {
    let mut input = InputState::new();
    let e1 = KeyboardFlags::EXTENDED1;
    assert_eq!(
        input.event(&key(true, "Pause", "Pause"), DESKTOP, false),
        [
            kb(e1, 0x1D),
            kb(NONE, 0x45),
            kb(e1 | UP, 0x1D),
            kb(UP, 0x45)
        ]
    );
    assert!(
        input
            .event(&key(false, "Pause", "Pause"), DESKTOP, false)
            .is_empty()
    );
}

#[test]
fn unicode_mode_sends_printable_keys_as_characters() {
    let mut input = InputState::new();
    let shift = input.event(&key(true, "ShiftLeft", "Shift"), DESKTOP, true);
    assert_eq!(shift, [kb(NONE, 0x2A)]);
    assert_eq!(
        input.event(&key(true, "KeyQ", "A"), DESKTOP, true),
        [uni(NONE, u16::from(b'A'))]
    );
    input.event(&key(false, "ShiftLeft", "Shift"), DESKTOP, true);
    // The release lifts the character that was pressed, not the one the key now shows.
    assert_eq!(
        input.event(&key(false, "KeyQ", "a"), DESKTOP, true),
        [uni(UP, u16::from(b'A'))]
    );
    // Named keys still go as scancodes.
    assert_eq!(
        input.event(&key(true, "Enter", "Enter"), DESKTOP, true),
        [kb(NONE, 0x1C)]
    );
}

#[test]
fn unicode_repeat_follows_a_changed_character_and_a_shortcut() {
    let mut input = InputState::new();
    input.event(&key(true, "KeyQ", "a"), DESKTOP, true);
    // Shift pressed during auto-repeat: the held 'a' is lifted, 'A' pressed.
    input.event(&key(true, "ShiftLeft", "Shift"), DESKTOP, true);
    assert_eq!(
        input.event(&key(true, "KeyQ", "A"), DESKTOP, true),
        [uni(UP, u16::from(b'a')), uni(NONE, u16::from(b'A'))]
    );
    // Ctrl pressed during auto-repeat: the repeat goes as the scancode; the release lifts both.
    input.event(&key(true, "ControlLeft", "Control"), DESKTOP, true);
    assert_eq!(
        input.event(&key(true, "KeyQ", "A"), DESKTOP, true),
        [kb(NONE, 0x10)]
    );
    assert_eq!(
        input.event(&key(false, "KeyQ", "A"), DESKTOP, true),
        [uni(UP, u16::from(b'A')), kb(UP, 0x10)]
    );
    assert_eq!(
        input.release_all(),
        [kb(UP, 0x1D), kb(UP, 0x2A)],
        "only the modifiers are still held"
    );
}

#[test]
fn unicode_mode_sends_shortcuts_as_scancodes() {
    let mut input = InputState::new();
    input.event(&key(true, "ControlLeft", "Control"), DESKTOP, true);
    assert_eq!(
        input.event(&key(true, "KeyC", "c"), DESKTOP, true),
        [kb(NONE, 0x2E)]
    );
    input.event(&key(false, "ControlLeft", "Control"), DESKTOP, true);
    // Pressed as a scancode, released as one.
    assert_eq!(
        input.event(&key(false, "KeyC", "c"), DESKTOP, true),
        [kb(UP, 0x2E)]
    );
    input.event(&key(true, "MetaLeft", "Meta"), DESKTOP, true);
    assert_eq!(
        input.event(&key(true, "KeyE", "e"), DESKTOP, true),
        [kb(NONE, 0x12)]
    );
}

#[test]
fn keys_without_a_scancode_type_their_character() {
    let mut input = InputState::new();
    assert_eq!(
        input.event(&key(true, "", "é"), DESKTOP, false),
        [uni(NONE, 0xE9), uni(UP, 0xE9)]
    );
    assert!(input.event(&key(false, "", "é"), DESKTOP, false).is_empty());
}

#[test]
fn unicode_text_is_pressed_and_released_per_utf16_unit() {
    let mut input = InputState::new();
    let text = BrowserMessage::Unicode {
        text: "a😀".into()
    };
    assert_eq!(
        input.event(&text, DESKTOP, false),
        [
            uni(NONE, 0x61),
            uni(UP, 0x61),
            uni(NONE, 0xD83D),
            uni(UP, 0xD83D),
            uni(NONE, 0xDE00),
            uni(UP, 0xDE00),
        ]
    );
}

#[test]
fn mouse_moves_are_clamped_and_buttons_diffed() {
    let mut input = InputState::new();
    let at = |x, y, buttons| BrowserMessage::Mouse { x, y, buttons };
    assert_eq!(
        input.event(&at(5000, 10, 0), DESKTOP, false),
        [mouse(PointerFlags::MOVE, 0, 1023, 10)]
    );
    assert_eq!(
        input.event(&at(5000, 10, 1 | 4), DESKTOP, false),
        [
            mouse(PointerFlags::DOWN | PointerFlags::LEFT_BUTTON, 0, 1023, 10),
            mouse(
                PointerFlags::DOWN | PointerFlags::MIDDLE_BUTTON_OR_WHEEL,
                0,
                1023,
                10
            ),
        ]
    );
    assert_eq!(
        input.event(&at(3, 4, 4 | 2), DESKTOP, false),
        [
            mouse(PointerFlags::MOVE, 0, 3, 4),
            mouse(PointerFlags::LEFT_BUTTON, 0, 3, 4),
            mouse(PointerFlags::DOWN | PointerFlags::RIGHT_BUTTON, 0, 3, 4),
        ]
    );
    let x = |flags| {
        FastPathInputEvent::MouseEventEx(MouseXPdu {
            flags,
            x_position: 3,
            y_position: 4,
        })
    };
    assert_eq!(
        input.event(&at(3, 4, 8 | 16 | 0xE0), DESKTOP, false),
        [
            mouse(PointerFlags::RIGHT_BUTTON, 0, 3, 4),
            mouse(PointerFlags::MIDDLE_BUTTON_OR_WHEEL, 0, 3, 4),
            x(PointerXFlags::DOWN | PointerXFlags::BUTTON1),
            x(PointerXFlags::DOWN | PointerXFlags::BUTTON2),
        ]
    );
    assert_eq!(
        input.event(&at(3, 4, 16), DESKTOP, false),
        [x(PointerXFlags::BUTTON1)]
    );
    // A zero-sized desktop pins the pointer to the origin.
    assert_eq!(
        input.event(&at(9, 9, 16), (0, 0), false),
        [mouse(PointerFlags::MOVE, 0, 0, 0)]
    );
}

#[test]
fn wheel_is_split_into_steps_the_pdu_can_carry() {
    let mut input = InputState::new();
    let vertical = PointerFlags::VERTICAL_WHEEL;
    let horizontal = PointerFlags::HORIZONTAL_WHEEL;
    assert_eq!(
        input.event(&BrowserMessage::Wheel { dx: 0, dy: 120 }, DESKTOP, false),
        [mouse(vertical, -120, 0, 0)]
    );
    assert_eq!(
        input.event(
            &BrowserMessage::Wheel { dx: -120, dy: -360 },
            DESKTOP,
            false
        ),
        [
            mouse(vertical, 240, 0, 0),
            mouse(vertical, 120, 0, 0),
            mouse(horizontal, -120, 0, 0),
        ]
    );
    let extreme = input.event(
        &BrowserMessage::Wheel {
            dx: i16::MIN,
            dy: i16::MIN,
        },
        DESKTOP,
        false,
    );
    let mut vertical_total = 0i32;
    for event in &extreme {
        let FastPathInputEvent::MouseEvent(pdu) = event else {
            panic!("only wheel events expected");
        };
        assert!((-256..=255).contains(&pdu.number_of_wheel_rotation_units));
        if pdu.flags.contains(vertical) {
            vertical_total += i32::from(pdu.number_of_wheel_rotation_units);
        }
    }
    assert_eq!(vertical_total, 32768);
    assert!(
        input
            .event(&BrowserMessage::Wheel { dx: 0, dy: 0 }, DESKTOP, false)
            .is_empty()
    );
}

#[test]
fn lock_keys_are_synchronised() {
    let mut input = InputState::new();
    assert_eq!(
        input.event(&BrowserMessage::SyncLocks { locks: 1 | 4 }, DESKTOP, false),
        [FastPathInputEvent::SyncEvent(
            SynchronizeFlags::CAPS_LOCK | SynchronizeFlags::SCROLL_LOCK
        )]
    );
    assert_eq!(
        input.event(&BrowserMessage::SyncLocks { locks: 2 | 8 }, DESKTOP, false),
        [FastPathInputEvent::SyncEvent(
            SynchronizeFlags::NUM_LOCK | SynchronizeFlags::KANA_LOCK
        )]
    );
}

#[test]
fn special_combinations_press_and_release_in_order() {
    let mut input = InputState::new();
    let special = |combo| BrowserMessage::Special { combo };
    assert_eq!(
        input.event(&special(SpecialCombo::CtrlAltDel), DESKTOP, false),
        [
            kb(NONE, 0x1D),
            kb(NONE, 0x38),
            kb(EXT, 0x53),
            kb(EXT | UP, 0x53),
            kb(UP, 0x38),
            kb(UP, 0x1D),
        ]
    );
    assert_eq!(
        input.event(&special(SpecialCombo::Windows), DESKTOP, false),
        [kb(EXT, 0x5B), kb(EXT | UP, 0x5B)]
    );
    assert_eq!(
        input.event(&special(SpecialCombo::AltTab), DESKTOP, false),
        [kb(NONE, 0x38), kb(NONE, 0x0F), kb(UP, 0x0F), kb(UP, 0x38)]
    );
}

#[test]
fn release_all_lifts_keys_buttons_and_characters() {
    let mut input = InputState::new();
    input.event(&key(true, "ControlRight", "Control"), DESKTOP, false);
    input.event(
        &BrowserMessage::Mouse {
            x: 1,
            y: 2,
            buttons: 1,
        },
        DESKTOP,
        false,
    );
    input.event(&key(true, "KeyZ", "z"), DESKTOP, true);
    assert_eq!(
        input.event(&BrowserMessage::ReleaseAll, DESKTOP, false),
        [
            mouse(PointerFlags::LEFT_BUTTON, 0, 1, 2),
            kb(UP, 0x2C),
            kb(EXT | UP, 0x1D),
        ]
    );
    // Typed while Ctrl was down, `KeyZ` went as a scancode; now nothing is held.
    assert!(
        input
            .event(&BrowserMessage::ReleaseAll, DESKTOP, false)
            .is_empty()
    );

    input.event(&key(true, "KeyZ", "z"), DESKTOP, true);
    assert_eq!(input.release_all(), [uni(UP, u16::from(b'z'))]);
    assert!(
        input
            .event(&key(false, "KeyZ", "z"), DESKTOP, true)
            .is_empty()
    );
}

#[test]
fn other_messages_are_not_input() {
    let mut input = InputState::new();
    for message in [
        BrowserMessage::Ack { seq: 1 },
        BrowserMessage::Clipboard { text: "x".into() },
        BrowserMessage::Resize {
            width: 800,
            height: 600,
        },
    ] {
        assert!(input.event(&message, DESKTOP, false).is_empty());
    }
}
