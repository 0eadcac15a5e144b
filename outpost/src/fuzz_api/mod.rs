//! Entry points for the coverage-guided fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer), behind
//! the `fuzzing` feature: each takes raw bytes, drives one input surface the way the network
//! loop does, and panics only when an invariant breaks. Built on the fixtures the in-process
//! fuzz tests use; never part of a release build.
//!
//! Targets: [`settings`] (provider and outpost settings validation), [`ldap`] (LDAP requests
//! into a [`crate::ldap::session::Session`]), [`radius`] (datagrams into
//! [`crate::radius::server::handle`]), [`control`] (control-channel messages and their apply),
//! [`cookies`] (the proxy's cookie reader and sealed cookies), [`forwarded`] (the proxy's
//! forwarded headers). [`seeds`] are the valid inputs each target's corpus starts from.

pub mod control;
pub mod cookies;
pub mod forwarded;
pub mod ldap;
pub mod radius;
pub mod seeds;
pub mod settings;

/// A single-threaded runtime for targets whose path awaits (binds and credential checks that
/// try the core, which nothing answers).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}
