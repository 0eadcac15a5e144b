//! Recording administrative actions in the event log.

use super::state::AppState;
use crate::model::{NewEvent, Outcome};
/// Records a successful administrative action; a failure to record is logged, not fatal, since
/// the change itself has committed.
pub async fn record(
    state: &AppState,
    actor: &str,
    action: &'static str,
    target: String,
    source: &str,
) {
    let event = NewEvent {
        actor: actor.to_owned(),
        action,
        target,
        source_address: source.to_owned(),
        outcome: Outcome::Success,
        detail: serde_json::json!({}),
    };
    if let Err(error) = state.store.record_event(&event).await {
        tracing::warn!(%error, action, "could not record event");
    }
}
