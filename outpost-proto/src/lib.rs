//! Wire types shared by the Redoubt core and its outposts: the protocol version, the settings of
//! each provider type as the outposts receive them, and the bodies of the outpost-facing REST
//! endpoints.
//!
//! Architecture invariant: this crate is serde only. It depends on no async runtime and does no
//! I/O, so both sides (and third-party tools) can use it freely.
//!
//! Everything here parses or validates what others send (outposts, admins), so indexing, string
//! slicing and `as` conversions, which can panic or truncate, are refused by lint outside tests.

#![deny(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)]
#![cfg_attr(
    test,
    allow(clippy::indexing_slicing, clippy::string_slice, clippy::as_conversions)
)]

pub mod clock;
pub mod config;
pub mod control;
pub mod credentials;
pub mod oidc;
pub mod provider;
pub mod rac;
pub mod secret;
pub mod session;

/// The control-channel protocol version this build speaks. Bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;
