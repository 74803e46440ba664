//! The sweeper's redelivery through SQS.

use anyhow::Context;
use async_trait::async_trait;

/// The sweeper's redelivery on AWS: S3-shaped notifications back onto the processor's queue,
/// so they take the same path as S3's own (batches, retries, the DLQ).
pub struct SqsRedeliver {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsRedeliver {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl crate::sweeper::Redeliver for SqsRedeliver {
    async fn redeliver(&self, objects: &[crate::events::ObjectRef]) -> anyhow::Result<()> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for chunk in objects.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(o.notification().to_string())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("SQS SendMessageBatch")?;
            anyhow::ensure!(out.failed().is_empty(), "SQS refused {} redeliveries", out.failed().len());
        }
        Ok(())
    }
}
