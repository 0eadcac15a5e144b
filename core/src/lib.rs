//! Redoubt core: identities, storage, the REST API, the outpost control plane and the admin CLI.
//!
//! The binary (`main.rs`) is a thin shell around [`server::run`] and the [`cli`] commands; tests
//! start the same server in-process through [`server::Core`].

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod channel;
pub mod cli;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod embedded;
pub mod metrics;
pub mod model;
pub mod net;
pub mod oidc;
pub mod rac;
pub mod secret_key;
pub mod server;
pub mod session_keys;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;

/// The software version reported in logs, metrics and the API.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
