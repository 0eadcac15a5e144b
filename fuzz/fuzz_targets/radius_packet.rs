//! RADIUS packets: a raw datagram from a known client through the request path the UDP loop
//! calls; no panic, replies decode and are authentic, nothing but Status-Server is accepted
//! without the core. See `redoubt_outpost::fuzz_api::radius`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redoubt_outpost::fuzz_api::radius::RadiusTarget;
use std::sync::LazyLock;

static TARGET: LazyLock<RadiusTarget> = LazyLock::new(RadiusTarget::default);

fuzz_target!(|input: &[u8]| TARGET.run(input));
