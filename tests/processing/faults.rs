//! Faults: no file stuck in `processing`, none lost to the pending TTL, no crash from a
//! decoder. In-memory adapters; the sweeper runs against DynamoDB and SQS in aws_e2e.rs.

use crate::common;

use std::time::Duration;

use common::{MemoryApp, object, png};
use picasso::budget::{DEFAULT_BUDGET, MemoryBudget};
use picasso::catalog::{Catalog, Claim, Lease};
use picasso::domain::{FileId, Status, now};
use picasso::inspect::{ImageKind, Inspector, Job, Picture};
use picasso::processor::{Delivery, Handled};
use picasso::store::ObjectStore;
use serde_json::json;

fn sqs_message(id: FileId, receive_count: u32) -> serde_json::Value {
    json!({"Records": [{
        "messageId": "m", "receiptHandle": "r", "md5OfBody": "", "messageAttributes": {},
        "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1",
        "body": object(id).notification().to_string()
    }]})
}

fn panicking_decoder(
    _: ImageKind,
    _: &mut dyn std::io::BufRead,
    _: &Job<'_>,
) -> Result<Picture, picasso::domain::Failure> {
    panic!("index out of bounds in a decoder")
}

#[tokio::test]
async fn a_decoder_that_panics_fails_the_file_and_the_processor_goes_on() {
    let app = MemoryApp::new();
    let id = app.uploaded("boom.png", "image/png", &png(40, 40)).await;
    let inspector = Inspector { decode_image: panicking_decoder, ..Inspector::new(MemoryBudget::new(DEFAULT_BUDGET)) };
    let p = app.processor().with_inspector(inspector);
    assert!(matches!(p.handle_object(&object(id), Delivery::default()).await.unwrap(), Handled::Finished(_)));
    let r = app.catalog.get(id).await.unwrap().unwrap();
    let e = r.error.unwrap();
    assert_eq!((r.status, e.code.as_str()), (Status::Failed, "corrupt_image"));
    assert!(e.message.contains("index out of bounds"), "{}", e.message);
    // The same processor handles the next file normally.
    let next = app.uploaded("fine.txt", "text/plain", b"fine").await;
    p.handle_object(&object(next), Delivery::default()).await.unwrap();
    assert_eq!(app.catalog.get(next).await.unwrap().unwrap().status, Status::Processed);
}

/// Reads that never make progress, as a stalled connection.
fn stalled(_: Vec<u8>) -> picasso::store::ObjectReader {
    let (reader, writer) = tokio::io::duplex(64);
    // Kept open and silent for as long as the test runs.
    std::mem::forget(writer);
    Box::pin(reader)
}

#[tokio::test]
async fn a_job_that_runs_out_of_time_hands_its_file_back_with_its_expiry() {
    let app = MemoryApp::new();
    let id = app.uploaded("slow.txt", "text/plain", b"slow").await;
    let p = app.function();
    app.store.fail_reads(Some(stalled));
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    let out = p.handle_event_by(sqs_message(id, 1), Some(deadline)).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "m"}]}), "back to the queue");
    let r = app.catalog.get(id).await.unwrap().unwrap();
    assert_eq!(r.status, Status::Pending, "released before the sandbox would be killed");
    assert!(app.catalog.expires_at(id).is_some_and(|t| t > now()), "a released file gets its TTL back");
    // A batch whose time is already up starts nothing.
    let out = p.handle_event_by(sqs_message(id, 2), Some(tokio::time::Instant::now())).await.unwrap();
    assert_eq!(out["batchItemFailures"].as_array().unwrap().len(), 1);
    assert_eq!(app.catalog.get(id).await.unwrap().unwrap().attempts, 1, "no claim taken");
}

#[tokio::test]
async fn the_last_delivery_of_a_message_ends_its_file_failed_instead_of_the_dlq() {
    let app = MemoryApp::new();
    let id = app.uploaded("stuck.txt", "text/plain", b"stuck").await;
    let p = app.function();
    app.store.fail_reads(Some(stalled));
    for receive_count in 1..5 {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        let out = p.handle_event_by(sqs_message(id, receive_count), Some(deadline)).await.unwrap();
        assert_eq!(out["batchItemFailures"].as_array().unwrap().len(), 1, "receive {receive_count} is retried");
        assert_eq!(app.catalog.get(id).await.unwrap().unwrap().status, Status::Pending);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
    let out = p.handle_event_by(sqs_message(id, 5), Some(deadline)).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": []}), "acknowledged: nothing left for the DLQ");
    let r = app.catalog.get(id).await.unwrap().unwrap();
    let e = r.error.unwrap();
    assert_eq!((r.status, e.code.as_str()), (Status::Failed, "processing_failed"));
    assert!(e.message.contains("5 times") && e.message.contains("time ran out"), "{}", e.message);
}

#[tokio::test]
async fn a_file_whose_processing_keeps_dying_is_given_up_on() {
    let app = MemoryApp::new();
    let id = app.uploaded("crashy.txt", "text/plain", b"crash").await;
    // Five processors claimed it and died (out of memory, killed at the timeout…).
    for _ in 0..5 {
        let dead = Lease::new(now(), Duration::from_millis(1));
        assert!(matches!(app.catalog.claim(id, &dead, now()).await.unwrap(), Claim::Claimed(_)));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The sweeper's redelivery: a fresh message, receive count 1.
    let h = app.processor().handle_object(&object(id), Delivery::default()).await.unwrap();
    assert!(matches!(h, Handled::Finished(_)), "{h:?}");
    let r = app.catalog.get(id).await.unwrap().unwrap();
    assert_eq!((r.status, r.error.unwrap().code.as_str()), (Status::Failed, "processing_failed"));
}

#[tokio::test]
async fn bytes_whose_record_expired_are_deleted_not_orphaned() {
    let app = MemoryApp::new();
    let id = app.uploaded("late.txt", "text/plain", b"late").await;
    // The record's TTL ran and DynamoDB removed it; then the event came (a backlog, a redrive).
    assert!(app.catalog.remove(id));
    let h = app.processor().handle_object(&object(id), Delivery::default()).await.unwrap();
    assert_eq!(h, Handled::Orphaned);
    assert!(app.store.get_bytes(&id.object_key().to_string()).is_none(), "no bytes left unaccounted");
}

#[tokio::test]
async fn a_late_event_for_a_record_past_its_expiry_still_processes_it() {
    let app = MemoryApp::new();
    let id = app.uploaded("backlog.txt", "text/plain", b"backlog").await;
    assert!(app.catalog.expires_at(id).is_some());
    // DynamoDB removes expired items eventually, not at once: the record may still be there.
    let h = app.processor().handle_object(&object(id), Delivery::default()).await.unwrap();
    assert!(matches!(h, Handled::Finished(_)));
    assert_eq!(app.catalog.get(id).await.unwrap().unwrap().status, Status::Processed);
    assert!(app.catalog.expires_at(id).is_none(), "a file whose bytes arrived never expires");
}

#[tokio::test]
async fn the_sweeper_sends_lost_and_abandoned_work_through_processing_again() {
    let app = MemoryApp::new();
    // An upload whose event was lost, one whose processor died, one whose bytes never came.
    let lost = app.uploaded("lost.txt", "text/plain", b"lost").await;
    let died = app.uploaded("died.txt", "text/plain", b"died").await;
    let never = app.uploaded("never.txt", "text/plain", b"never").await;
    app.store.delete(&never.object_key().to_string()).await.unwrap();
    let dead = Lease::new(now(), Duration::from_millis(20));
    app.catalog.claim(died, &dead, now()).await.unwrap();
    let young = app.uploaded("young.txt", "text/plain", b"young").await;

    let (sweeper, collected) = app.sweeper(Duration::from_millis(30));
    tokio::time::sleep(Duration::from_millis(40)).await;
    let young_too = app.uploaded("younger.txt", "text/plain", b"younger").await;
    let swept = sweeper.sweep(now()).await.unwrap();
    let again = collected.keys();
    let keys = |ids: &[FileId]| ids.iter().map(|i| i.object_key().to_string()).collect::<Vec<_>>();
    assert_eq!(again, keys(&[died, lost, young]), "expired leases, then old pending files with their bytes");
    assert_eq!((swept.expired_leases, swept.arrived), (1, 2), "{swept:?}: lost and young have their bytes");
    assert_eq!(swept.waiting, 1, "never's bytes never came: left for the TTL");
    assert!(app.catalog.expires_at(lost).is_none(), "bytes arrived: kept from expiring");
    assert!(app.catalog.expires_at(never).is_some());
    assert!(app.catalog.expires_at(young_too).is_some(), "too young to look at");
    // What the sweeper sends is a notification the processor handles like S3's own.
    let p = app.processor();
    let redelivered = collected.0.lock().unwrap().clone();
    for obj in redelivered {
        let h = p.handle_object(&obj, Delivery::default()).await.unwrap();
        assert!(matches!(h, Handled::Finished(_)), "{h:?}");
    }
    for id in [lost, died, young] {
        assert_eq!(app.catalog.get(id).await.unwrap().unwrap().status, Status::Processed);
    }
}

#[tokio::test]
async fn a_claim_holds_until_the_invocations_deadline_so_nothing_takes_over_a_long_file() {
    let app = MemoryApp::new();
    let id = app.uploaded("long.txt", "text/plain", b"long").await;
    app.store.fail_reads(Some(stalled));
    let p = app.processor();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let work = tokio::spawn(async move {
        p.handle_object(&object(id), Delivery { receive_count: 1, deadline: Some(deadline) }).await
    });
    while app.catalog.get(id).await.unwrap().unwrap().status != Status::Processing {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Far past the default lease (120 s), still before the deadline: the file is not up for grabs.
    let later = now() + chrono::Duration::seconds(500);
    let other = Lease::new(later, Duration::from_secs(60));
    assert_eq!(app.catalog.claim(id, &other, later).await.unwrap(), Claim::Busy);
    work.abort();
}
