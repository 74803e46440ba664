//! The processor: decodes S3 notifications (through SQS or direct), and moves each
//! file from `pending` to `processed` or `failed`, exactly once in effect.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;

use crate::budget::MemoryBudget;
use crate::catalog::{Catalog, Claim, Lease, Outcome, Transition};
use crate::config::Config;
use crate::domain::{Failure, FileRecord, ObjectKey, now};
use crate::events::{Notification, ObjectRef, S3Event};
use crate::inspect::{Inspection, Inspector};
use crate::store::ObjectStore;

/// How one object notification ended. Errors (`Err`) are transient: the caller retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Finished(Outcome),
    /// Already finished by an earlier delivery of the same event.
    Duplicate,
    /// Bytes whose record is gone (expired before the event came): deleted, not kept unaccounted.
    Orphaned,
    /// Nothing to do, and retrying would not change that.
    Ignored(&'static str),
}

pub struct Processor {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn ObjectStore>,
    bucket: String,
    inspector: Inspector,
    /// How long a claim holds at least (and at least until the invocation's deadline): longer
    /// than processing one file takes, shorter than the queue's visibility timeout, so a
    /// redelivery after a crash finds it expired.
    lease: Duration,
    /// The queue's `maxReceiveCount`: the delivery that would be the last one ends the file
    /// `failed` on a transient error instead of leaving it to the DLQ, and a file claimed
    /// more often than this (its processing kept dying) is given up on.
    max_receive_count: u32,
    /// The expiry a released file gets back (the upload function's `PENDING_TTL_SECS`).
    pending_ttl: Duration,
}

/// Time kept back from the invocation deadline to hand a file back and answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// When work must stop for an invocation whose deadline is `deadline`: [`DEADLINE_MARGIN`]
/// before it, so a file is handed back rather than stranded. A deadline already that close
/// is no real Lambda's (emulators stamp it when the event is queued, not when it starts):
/// then there is none.
pub fn work_deadline(deadline: std::time::SystemTime) -> Option<Instant> {
    let left = deadline.duration_since(std::time::SystemTime::now()).ok()?.checked_sub(DEADLINE_MARGIN)?;
    if left.is_zero() {
        return None;
    }
    Some(Instant::now() + left)
}

/// How a notification reached the processor.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// 1 for the first delivery (SQS `ApproximateReceiveCount`).
    pub receive_count: u32,
    /// When the work must have stopped (the invocation's deadline less a margin).
    pub deadline: Option<Instant>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self { receive_count: 1, deadline: None }
    }
}

/// Thumbnails live outside `uploads/`, so writing them never triggers processing.
pub const THUMBNAIL_PREFIX: &str = "thumbnails/";

impl Processor {
    /// Everything from the configuration; the memory for decoding is the deployment's to say.
    pub fn from_config(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn ObjectStore>,
        config: &Config,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        Self {
            catalog,
            store,
            bucket: config.bucket_name.clone(),
            inspector: Inspector::new(budget),
            lease: crate::config::LEASE,
            max_receive_count: config.max_receive_count,
            pending_ttl: config.pending_ttl,
        }
    }

    /// The same processor inspecting with `inspector` (tests: a decoder that panics).
    pub fn with_inspector(self, inspector: Inspector) -> Self {
        Self { inspector, ..self }
    }

    /// The same processor with claims of `lease` at least.
    pub fn with_lease(self, lease: Duration) -> Self {
        Self { lease, ..self }
    }

    /// How many deliveries a file gets before a transient error ends it `failed`.
    pub fn max_receive_count(&self) -> u32 {
        self.max_receive_count
    }

    pub async fn handle_object(&self, obj: &ObjectRef, delivery: Delivery) -> anyhow::Result<Handled> {
        if obj.bucket != self.bucket {
            return Ok(Handled::Ignored("event for another bucket"));
        }
        let Some(key) = ObjectKey::parse(&obj.key) else {
            return Ok(Handled::Ignored("key is not an upload"));
        };
        // Cheap checks first: most duplicates stop here without a write.
        let Some(record) = self.catalog.get(key.file_id()).await? else {
            self.store.delete(&key.to_string()).await?;
            tracing::warn!(key = %key, "object without a record (expired before its event came): deleted");
            return Ok(Handled::Orphaned);
        };
        if record.key() != key {
            // The file's own object is under its other layout: this one was not issued by us.
            return Ok(Handled::Ignored("key is not where this file's bytes go"));
        }
        if record.status.is_final() {
            return Ok(Handled::Duplicate);
        }
        let Some(body) = self.store.open(key).await? else {
            return Ok(Handled::Ignored("object no longer exists"));
        };
        // A claim holds at least until this invocation must stop, so neither the sweeper nor a
        // redelivery takes over a large file that is still being read.
        let hold = delivery
            .deadline
            .map_or(self.lease, |d| (d.saturating_duration_since(Instant::now()) + DEADLINE_MARGIN).max(self.lease));
        let lease = Lease::new(now(), hold);
        let record = match self.catalog.claim(record.id, &lease, now()).await? {
            Claim::Claimed(r) => r,
            Claim::Final => return Ok(Handled::Duplicate),
            Claim::Missing => return Ok(Handled::Ignored("no record for this key")),
            // Retried later: by then the holder has finished, or its lease has run out.
            Claim::Busy => anyhow::bail!("file {} is being processed under another lease", record.id),
        };
        if record.attempts > 1 {
            crate::metrics::claim_taken_over();
        }
        if record.attempts > self.max_receive_count {
            let msg = format!(
                "processing never finished in {} attempts (each ended by a crash or a timeout)",
                self.max_receive_count
            );
            return self.give_up(&record, &lease, msg).await;
        }
        let started = Instant::now();
        let work = self.process(&record, body, &lease, started);
        let result = match delivery.deadline {
            Some(d) => tokio::time::timeout_at(d, work)
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the invocation's time ran out before the file was done"))),
            None => work.await,
        };
        match result {
            Ok(h) => Ok(h),
            Err(e) if delivery.receive_count >= self.max_receive_count => {
                let msg = format!("processing failed {} times; the last error: {e:#}", delivery.receive_count);
                self.give_up(&record, &lease, msg).await
            }
            Err(e) => {
                // Hand it back now rather than when the lease ends; a failure here only delays.
                let expires_at = now() + self.pending_ttl;
                if let Err(r) = self.catalog.release(record.id, &lease, expires_at).await {
                    tracing::warn!(file_id = %record.id, error = format!("{r:#}"), "could not release lease");
                }
                Err(e)
            }
        }
    }

    /// Ends a file `failed` rather than leaving it `processing` for ever.
    async fn give_up(&self, record: &FileRecord, lease: &Lease, message: String) -> anyhow::Result<Handled> {
        tracing::error!(file_id = %record.id, message, "giving up on the file");
        let outcome = Outcome::failed("processing_failed", message);
        Ok(match self.catalog.finish(record.id, lease, &outcome, now()).await? {
            Transition::Applied => {
                crate::metrics::finished(record, &outcome, std::time::Duration::ZERO);
                Handled::Finished(outcome)
            }
            Transition::Skipped => Handled::Duplicate,
        })
    }

    async fn process(
        &self,
        record: &FileRecord,
        body: crate::store::ObjectReader,
        lease: &Lease,
        started: Instant,
    ) -> anyhow::Result<Handled> {
        let mut inspection = self.inspector.inspect(record, body).await?;
        if let (Some(declared), Outcome::Processed(analysis)) = (&record.checksum, &inspection.outcome)
            && declared.to_hex() != analysis.sha256
        {
            let msg =
                format!("the client declared SHA-256 {declared} but the stored bytes hash to {}", analysis.sha256);
            inspection = Inspection {
                outcome: Outcome::Failed(Failure::new("checksum_mismatch", msg), Some(analysis.clone())),
                thumbnail: None,
            };
        }
        let mut thumbnail = None;
        if let (Some(thumb), Outcome::Processed(analysis)) = (inspection.thumbnail.take(), &mut inspection.outcome) {
            let key = record.key().thumbnail(THUMBNAIL_PREFIX, thumb.extension);
            self.store.put(&key, thumb.bytes, thumb.content_type).await?;
            analysis.thumbnail = Some(key.clone());
            thumbnail = Some(key);
        }
        Ok(match self.catalog.finish(record.id, lease, &inspection.outcome, now()).await? {
            Transition::Applied => {
                crate::metrics::finished(record, &inspection.outcome, started.elapsed());
                Handled::Finished(inspection.outcome)
            }
            // Our lease ran out and another processor took over (its result stands), or the
            // file was deleted meanwhile: then nothing of it may stay.
            Transition::Skipped => {
                if let Some(key) = thumbnail
                    && self.catalog.get(record.id).await?.is_none()
                {
                    self.store.delete(&key).await?;
                }
                Handled::Duplicate
            }
        })
    }

    /// Logs each object's outcome; the first transient error is returned.
    async fn handle_all(&self, objects: &[ObjectRef], delivery: Delivery) -> anyhow::Result<()> {
        let mut first_err = None;
        for obj in objects {
            let file_id = ObjectKey::parse(&obj.key).map(|k| k.file_id().to_string());
            match self.handle_object(obj, delivery).await {
                Ok(h) => {
                    match &h {
                        Handled::Duplicate => crate::metrics::duplicate(),
                        Handled::Ignored(reason) => crate::metrics::ignored(reason),
                        Handled::Orphaned => crate::metrics::ignored("orphaned"),
                        Handled::Finished(_) => {}
                    }
                    tracing::info!(file_id, key = %obj.key, outcome = ?h, "object handled")
                }
                Err(e) => {
                    tracing::warn!(file_id, key = %obj.key, error = format!("{e:#}"), "transient failure, will retry");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// An SQS batch: failed messages are reported so only they come back (ReportBatchItemFailures).
    /// One message at a time: an image may hold up to 64 MiB while decoded, and ten at once
    /// would not fit a 512 MB function; Lambda scales out across batches instead.
    pub async fn handle_sqs(&self, event: &SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for msg in &event.records {
            let receive_count = msg.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
            let delivery = Delivery { receive_count, deadline };
            let result = match deadline {
                // Not started: it goes back whole, without a claim to undo.
                Some(d) if Instant::now() >= d => Err(anyhow::anyhow!("no time left in this invocation")),
                _ => self.handle_message(msg, delivery).await,
            };
            if let Err(e) = result {
                let id = msg.message_id.clone().unwrap_or_default();
                tracing::warn!(message_id = id, error = format!("{e:#}"), "message returned to the queue");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }

    async fn handle_message(&self, msg: &SqsMessage, delivery: Delivery) -> anyhow::Result<()> {
        let body = msg.body.as_deref().unwrap_or_default();
        match Notification::parse(body) {
            Ok(Notification::Test) => {
                tracing::info!("s3:TestEvent skipped");
                Ok(())
            }
            Ok(Notification::Objects(objs)) => self.handle_all(&objs, delivery).await,
            // Kept, not dropped: after maxReceiveCount it rests in the DLQ for someone to read.
            Err(e) => Err(e.context("message is not an S3 notification")),
        }
    }

    /// A direct S3 invocation: an error makes Lambda retry the whole event.
    pub async fn handle_s3(&self, event: &S3Event, deadline: Option<Instant>) -> anyhow::Result<()> {
        self.handle_all(&event.objects(), Delivery { receive_count: 1, deadline }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn work_stops_a_margin_before_the_deadline_and_a_stale_deadline_is_none() {
        let at = work_deadline(SystemTime::now() + Duration::from_secs(30)).unwrap();
        let left = at - Instant::now();
        assert!(left <= Duration::from_secs(28) && left > Duration::from_secs(27), "{left:?}");
        assert_eq!(work_deadline(SystemTime::now() + Duration::from_secs(1)), None);
        assert_eq!(work_deadline(SystemTime::now() - Duration::from_secs(60)), None);
    }
}
