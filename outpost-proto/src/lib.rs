//! Wire types shared by the Redoubt core and its outposts: the protocol version, the settings of
//! each provider type as the outposts receive them, and the bodies of the outpost-facing REST
//! endpoints.
//!
//! Architecture invariant: this crate is serde only. It depends on no async runtime and does no
//! I/O, so both sides (and third-party tools) can use it freely.

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
