//! The events function (the files table's stream → EventBridge, and each owner's WebSocket
//! connections) and the webhook function (the bus's queue → signed POSTs, retried on a backoff
//! kept by the queue's visibility).

use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::future::join_all;

use crate::aws::{EventBridgeBus, change_of, sdk_config, webhook_secret};
use crate::change::EventTypes;
use crate::config::{EventsConfig, WebhookConfig};
use crate::notify::webhook::{Attempt, Backoff, Sender, WebhookUrl, from_envelope};
use crate::notify::{Logged, publish_batch};

pub struct EventsFunction {
    bus: EventBridgeBus,
    types: EventTypes,
    live: Option<crate::aws::Connections>,
}

impl EventsFunction {
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = EventsConfig::from_lookup(|k| std::env::var(k).ok())?;
        let sdk = sdk_config().await?;
        let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), &config.bus_name, &config.source);
        let live = config.live.map(|(table, endpoint)| crate::aws::Connections::new(&sdk, table, Some(&endpoint)));
        Ok(Self { bus, types: config.types, live })
    }

    /// One batch of stream records: every event to its owner's live connections (best effort:
    /// a browser that missed one reloads), the published types to the bus. A record that could
    /// not go out is reported, so Lambda retries the batch from it (bisecting, then the
    /// on-failure queue).
    pub async fn handle(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let batch: Vec<Logged> = event
            .records
            .iter()
            .map(|r| Logged { position: r.change.sequence_number.clone().unwrap_or_default(), change: change_of(r) })
            .collect();
        if let Some(live) = &self.live {
            let changes: Vec<_> = batch.iter().filter_map(|l| l.change.as_ref().ok()?.as_ref()).collect();
            live.push_all(&changes).await;
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(position) = publish_batch(batch, &self.types, &self.bus).await {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(position);
            response.batch_item_failures.push(failure);
        }
        response
    }
}

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

pub struct WebhookFunction {
    sender: Sender,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    backoff: Backoff,
}

impl WebhookFunction {
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = WebhookConfig::from_lookup(|k| std::env::var(k).ok())?;
        let url = WebhookUrl::parse(&config.url).map_err(|e| anyhow::anyhow!("WEBHOOK_URL: {e}"))?;
        let sdk = sdk_config().await?;
        let secret = webhook_secret(&aws_sdk_secretsmanager::Client::new(&sdk), &config.secret_arn).await?;
        Ok(Self {
            sender: Sender::new(url, secret),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            queue_url: config.queue_url,
            backoff: Backoff::STANDARD,
        })
    }

    /// Each message once, at the same time; those not delivered come back after their delay.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures =
            join_all(event.records.iter().map(|m| self.deliver(m))).await.into_iter().flatten().collect();
        response
    }

    async fn deliver(&self, m: &SqsMessage) -> Option<BatchItemFailure> {
        let attempt = match from_envelope(m.body.as_deref().unwrap_or_default()) {
            Ok((id, body)) => self.sender.send(&id, &body).await,
            // Kept, not dropped: after the last attempt it rests in the DLQ for someone to read.
            Err(e) => Attempt::Failed(format!("not an EventBridge event: {e:#}")),
        };
        let Attempt::Failed(why) = attempt else { return None };
        let received: u32 = m.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let delay = self.backoff.delay(received).min(MAX_VISIBILITY);
        tracing::warn!(
            message_id = m.message_id,
            attempt = received,
            error = why,
            retry_in_s = delay.as_secs(),
            "webhook delivery failed"
        );
        if let Some(handle) = &m.receipt_handle {
            let spaced = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .visibility_timeout(delay.as_secs() as i32)
                .send()
                .await;
            if let Err(e) = spaced {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not space the next attempt");
            }
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = m.message_id.clone().unwrap_or_default();
        Some(failure)
    }
}
