//! The plug-in point for protocol types (LDAP, RADIUS, proxy, RAC): the runtime hands a module
//! every new configuration together with a summary of what changed, so it can evict cached binds,
//! end sessions, or rebind a listener without a restart.

use crate::apply::ChangeSummary;
use redoubt_outpost_proto::config::{ConfigSnapshot, OutpostKind};
use std::sync::Arc;

/// A protocol served by an outpost.
pub trait ProtocolModule: Send + Sync {
    /// The outpost kind it serves.
    fn kind(&self) -> OutpostKind;

    /// Called after every applied snapshot or change set, in revision order. Must not block:
    /// hand heavy work to a task.
    fn apply(&self, config: Arc<ConfigSnapshot>, summary: &ChangeSummary);
}
