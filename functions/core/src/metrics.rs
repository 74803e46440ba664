//! What Picasso measures, through the `metrics` facade: one set of names for both targets,
//! CloudWatch Embedded Metric Format on Lambda (flushed after each invocation) and
//! Prometheus text at `GET /metrics` in the local stack. Without a recorder (tests, tools)
//! every call is a no-op.

use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::catalog::Outcome;
use crate::domain::{FileRecord, now};

/// Upload slots issued, by `method` (`single` or `multipart`).
pub const UPLOADS_ISSUED: &str = "uploads_issued";
/// Bytes those slots were granted for (declared sizes).
pub const BYTES_GRANTED: &str = "upload_bytes_granted";
/// Files that ended `processed`.
pub const FILES_PROCESSED: &str = "files_processed";
/// Files that ended `failed`, by error `code`.
pub const FILES_FAILED: &str = "files_failed";
/// Bytes read by processing.
pub const BYTES_PROCESSED: &str = "bytes_processed";
/// Time to process one file, from its claim to its verdict.
pub const PROCESSING_SECONDS: &str = "processing_duration_seconds";
/// Time from the upload slot to the verdict: what a user waits.
pub const UPLOAD_TO_PROCESSED_SECONDS: &str = "upload_to_processed_seconds";
/// Notifications for files already final (at-least-once delivery at work).
pub const EVENTS_DUPLICATE: &str = "events_duplicate";
/// Notifications with nothing to do (another bucket, not an upload, no object), by `reason`;
/// `orphaned` for bytes whose record was gone (deleted).
pub const EVENTS_IGNORED: &str = "events_ignored";
/// Claims of a file claimed before: a retry after a transient error or an expired lease.
pub const CLAIMS_TAKEN_OVER: &str = "claims_taken_over";
/// Lambda sandboxes started (the first invocation of each).
pub const COLD_STARTS: &str = "cold_starts";

/// Units and help texts, for both exporters (EMF maps the unit; Prometheus prints the help).
pub fn describe() {
    describe_counter!(UPLOADS_ISSUED, Unit::Count, "Upload slots issued, by method (single or multipart)");
    describe_counter!(BYTES_GRANTED, Unit::Bytes, "Declared bytes of the upload slots issued");
    describe_counter!(FILES_PROCESSED, Unit::Count, "Files that ended processed");
    describe_counter!(FILES_FAILED, Unit::Count, "Files that ended failed, by error code");
    describe_counter!(BYTES_PROCESSED, Unit::Bytes, "Bytes read by processing");
    describe_histogram!(PROCESSING_SECONDS, Unit::Seconds, "Time to process one file");
    describe_histogram!(UPLOAD_TO_PROCESSED_SECONDS, Unit::Seconds, "Time from upload slot to verdict");
    describe_counter!(EVENTS_DUPLICATE, Unit::Count, "Notifications for files already final");
    describe_counter!(EVENTS_IGNORED, Unit::Count, "Notifications with nothing to do, by reason");
    describe_counter!(CLAIMS_TAKEN_OVER, Unit::Count, "Claims of a file claimed before");
    describe_counter!(COLD_STARTS, Unit::Count, "Lambda sandboxes started");
}

pub fn upload_issued(multipart: bool, bytes: u64) {
    counter!(UPLOADS_ISSUED, "method" => if multipart { "multipart" } else { "single" }).increment(1);
    counter!(BYTES_GRANTED).increment(bytes);
}

/// A file reached its verdict after `took` of processing.
pub fn finished(record: &FileRecord, outcome: &Outcome, took: Duration) {
    match outcome {
        Outcome::Processed(_) => {
            counter!(FILES_PROCESSED).increment(1);
            counter!(BYTES_PROCESSED).increment(record.size.bytes());
        }
        Outcome::Failed(f, _) => counter!(FILES_FAILED, "code" => f.code.clone()).increment(1),
    }
    histogram!(PROCESSING_SECONDS).record(took.as_secs_f64());
    let waited = (now() - record.uploaded_at).to_std().unwrap_or_default();
    histogram!(UPLOAD_TO_PROCESSED_SECONDS).record(waited.as_secs_f64());
}

pub fn duplicate() {
    counter!(EVENTS_DUPLICATE).increment(1);
}

pub fn ignored(reason: &'static str) {
    counter!(EVENTS_IGNORED, "reason" => reason).increment(1);
}

pub fn claim_taken_over() {
    counter!(CLAIMS_TAKEN_OVER).increment(1);
}

/// The Lambda functions' recorder: EMF documents on stdout after each invocation, in the
/// namespace `METRICS_NAMESPACE` (`Picasso`), with the dimension `service` =
/// `METRICS_SERVICE` (the function's name), the request id as a property, and `cold_starts`.
pub fn emf() -> Result<&'static metrics_cloudwatch_embedded::Collector, metrics_cloudwatch_embedded::Error> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let namespace = env("METRICS_NAMESPACE").unwrap_or_else(|| "Picasso".into());
    let service =
        env("METRICS_SERVICE").or_else(|| env("AWS_LAMBDA_FUNCTION_NAME")).unwrap_or_else(|| "picasso".into());
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace)
        .with_dimension("service", service)
        .lambda_cold_start_metric(COLD_STARTS)
        .with_lambda_request_id("request_id")
        .init()?;
    describe();
    Ok(collector)
}
