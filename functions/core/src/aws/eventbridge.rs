//! Publishing changes to an EventBridge bus: `source` the deployment's (`picasso` by default),
//! `detail-type` the event type, `detail` the event's JSON; ten entries per `PutEvents`.

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::change::Change;
use crate::notify::{Publisher, body};

pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    source: String,
}

/// `PutEvents` takes at most ten entries.
const ENTRIES: usize = 10;

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>, source: impl Into<String>) -> Self {
        Self { client, bus: bus.into(), source: source.into() }
    }
}

#[async_trait]
impl Publisher for EventBridgeBus {
    async fn publish(&self, changes: &[Change]) -> anyhow::Result<Vec<bool>> {
        let mut accepted = Vec::with_capacity(changes.len());
        for chunk in changes.chunks(ENTRIES) {
            let entries = chunk.iter().map(|c| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(&self.source)
                    .detail_type(c.kind.as_str())
                    .detail(body(c).to_string())
                    .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(c.at.timestamp_millis()))
                    .build()
            });
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .context("EventBridge PutEvents")?;
            // One result per entry, in order: an error code marks the refused ones.
            let results = out.entries();
            accepted.extend((0..chunk.len()).map(|i| results.get(i).is_some_and(|r| r.error_code().is_none())));
        }
        Ok(accepted)
    }
}
