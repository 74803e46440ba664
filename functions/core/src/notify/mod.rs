//! Telling the world about committed changes: the event every consumer receives (the same
//! JSON on EventBridge, in webhooks and on the live channels), webhook signatures and the
//! retry schedule of deliveries. Transports live with their adapters.

pub mod webhook;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::api::wire::FileView;
use crate::change::{Change, EventTypes};
use crate::domain::rfc3339;

/// Where published events go (EventBridge on AWS).
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Whether each change was accepted, in order.
    async fn publish(&self, changes: &[Change]) -> anyhow::Result<Vec<bool>>;
}

/// One record of a change log (a stream record): its position, and the change it carries if it
/// is an event (an unreadable record is an error).
pub struct Logged {
    pub position: String,
    pub change: anyhow::Result<Option<Change>>,
}

/// Publishes the events of `types` in a batch of the log. When not all went out, the position
/// to resume from: the first record unreadable or refused (those before it are done; those
/// after are tried again, and consumers dedupe by event id).
pub async fn publish_batch(batch: Vec<Logged>, types: &EventTypes, publisher: &dyn Publisher) -> Option<String> {
    let mut stop = None;
    let mut due: Vec<(String, Change)> = Vec::new();
    for logged in batch {
        match logged.change {
            Ok(Some(change)) if types.contains(change.kind) => due.push((logged.position, change)),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(position = logged.position, error = format!("{e:#}"), "unreadable change log record");
                stop = Some(logged.position);
                break;
            }
        }
    }
    if due.is_empty() {
        return stop;
    }
    let (positions, changes): (Vec<String>, Vec<Change>) = due.into_iter().unzip();
    match publisher.publish(&changes).await {
        Ok(accepted) => match accepted.iter().position(|ok| !ok) {
            Some(i) => {
                tracing::warn!(event = changes[i].id(), "event refused by the bus; the batch resumes from it");
                Some(positions[i].clone())
            }
            None => stop,
        },
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "publishing events failed; the batch is retried");
            Some(positions[0].clone())
        }
    }
}

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
