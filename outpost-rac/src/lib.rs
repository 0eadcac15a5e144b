//! The RAC outpost module: remote desktops in the browser. A user signs in through the same
//! single sign-on as the proxy outpost, picks a desktop, and the outpost holds the RDP
//! connection (IronRDP), decodes it, and sends tiles to a small JavaScript client over a
//! WebSocket. It lives in a crate of its own so that the IronRDP stack never reaches the core's
//! binary (which links the outpost runtime for its embedded proxy outpost).

pub mod clipboard;
pub mod encode;
pub mod input;
pub mod keymap;
pub mod pacing;
pub mod tiles;

#[cfg(test)]
mod fuzz_tests;

use redoubt_outpost::module::{ExternalModule, ModuleContext, ProtocolModule, StartFuture};
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use std::sync::Arc;

/// The RAC module, for [`redoubt_outpost::start_with`].
pub const MODULE: ExternalModule = ExternalModule {
    kind: OutpostKind::Rac,
    start: start_module,
};

fn start_module(context: ModuleContext, config: Arc<ConfigSnapshot>) -> StartFuture {
    Box::pin(async move {
        let _ = (context, config);
        anyhow::bail!("the RAC module is not built yet")
    })
}

#[allow(dead_code)]
fn _assert_module(_: &dyn ProtocolModule) {}
