//! Forwarded headers: the proxy's original-URL reconstruction (every reverse proxy flavour)
//! and the X-Forwarded-*/X-Real-IP/Forwarded headers it sets for the upstream; no panic, a
//! well-formed URL, no claim believed from an untrusted peer. See
//! `redoubt_outpost::fuzz_api::forwarded`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redoubt_outpost::fuzz_api::forwarded::ForwardedTarget;
use std::sync::LazyLock;

static TARGET: LazyLock<ForwardedTarget> = LazyLock::new(ForwardedTarget::default);

fuzz_target!(|input: &[u8]| TARGET.run(input));
