//! Telling the world about committed changes: the event every consumer receives (the same
//! JSON on EventBridge, in webhooks and on the live channels), webhook signatures and the
//! retry schedule of deliveries. Transports live with their adapters.

pub mod webhook;

use serde_json::{Value, json};

use crate::api::wire::FileView;
use crate::change::Change;
use crate::domain::rfc3339;

/// `{"type", "id", "timestamp", "data": {file view without links, "owner", "version"}}`,
/// described by `events.schema.json`.
pub fn body(change: &Change) -> Value {
    let mut data = serde_json::to_value(FileView::from(&change.record)).unwrap_or_default();
    if let Some(data) = data.as_object_mut() {
        // Links expire within minutes: an event may be read hours later.
        data.remove("thumbnail_url");
        data.insert("version".into(), change.version.into());
    }
    json!({
        "type": change.kind.as_str(),
        "id": change.id(),
        "timestamp": rfc3339(&change.at),
        "data": data,
    })
}
