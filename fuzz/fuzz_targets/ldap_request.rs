//! LDAP requests: raw bytes through the server's codec into a fresh `Session` over a small
//! fixed directory; no panic, every reply encodes, every streamed entry reads back. See
//! `redoubt_outpost::fuzz_api::ldap`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redoubt_outpost::fuzz_api::ldap::LdapTarget;
use std::sync::LazyLock;

static TARGET: LazyLock<LdapTarget> = LazyLock::new(LdapTarget::default);

fuzz_target!(|input: &[u8]| TARGET.run(input));
