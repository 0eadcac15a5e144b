//! Settings validation: provider settings JSON of every kind and outpost settings (file,
//! environment, flags) give `Ok` or a clear error, never a panic, and valid provider settings
//! stay valid and unchanged once stored. See `redoubt_outpost::fuzz_api::settings`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redoubt_outpost::fuzz_api::settings::SettingsTarget;
use std::sync::LazyLock;

static TARGET: LazyLock<SettingsTarget> = LazyLock::new(SettingsTarget::default);

fuzz_target!(|input: &[u8]| TARGET.run(input));
