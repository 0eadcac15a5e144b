//! Control-channel messages: core and outpost messages decode (and round-trip) or are refused,
//! and a snapshot or change set applied on top of a held snapshot builds every module's view
//! without a panic, keeping the directory ordered. See `redoubt_outpost::fuzz_api::control`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redoubt_outpost::fuzz_api::control::ControlTarget;
use std::sync::LazyLock;

static TARGET: LazyLock<ControlTarget> = LazyLock::new(ControlTarget::default);

fuzz_target!(|input: &[u8]| TARGET.run(input));
