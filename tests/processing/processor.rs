//! The processor's event handling: decoding, idempotency, what is retried and what is not.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use common::{MemoryApp, processor_over};
use picasso::catalog::{Admission, Catalog, Claim, Lease, Limits, Order, Outcome, Scope, Transition, Usage};
use picasso::domain::{FileId, FileRecord, KeyLayout, Status};
use picasso::lambda::ProcessorFunction;
use serde_json::{Value, json};

fn s3_record(key: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-28T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "uploads",
               "bucket": {"name": "picasso-uploads", "arn": "arn:aws:s3:::picasso-uploads"},
               "object": {"key": key, "size": 3, "eTag": "0"}}
    })
}

fn sqs_event(bodies: &[Value]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "messageId": format!("m{i}"), "receiptHandle": "r", "body": b.to_string(),
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads", "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({"Records": records})
}

fn notification(keys: &[&str]) -> Value {
    json!({"Records": keys.iter().map(|k| s3_record(k)).collect::<Vec<_>>()})
}

async fn uploaded(app: &MemoryApp, body: &[u8]) -> FileId {
    app.uploaded("a.txt", "text/plain", body).await
}

async fn record(app: &MemoryApp, id: FileId) -> FileRecord {
    app.catalog.get(id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_duplicated_event_leaves_one_correct_record() {
    let app = MemoryApp::new();
    let id = uploaded(&app, b"abc").await;
    let event = sqs_event(&[notification(&[&id.object_key().to_string()])]);
    let out = app.function().handle_event(event.clone()).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": []}));
    let first = record(&app, id).await;
    assert_eq!(first.status, Status::Processed);
    assert!(first.processed_at.is_some());
    let out = app.function().handle_event(event).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": []}));
    assert_eq!(record(&app, id).await, first, "second delivery changes nothing");
    assert_eq!(app.catalog.newest(&Scope::All, None, None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn keys_are_url_decoded() {
    let app = MemoryApp::new();
    let id = uploaded(&app, b"abc").await;
    // Emulators escape the slash; S3 escapes spaces as '+'.
    app.function()
        .handle_event(sqs_event(&[notification(&[&id.object_key().to_string().replace('/', "%2F")])]))
        .await
        .unwrap();
    assert_eq!(record(&app, id).await.status, Status::Processed);
    let e: picasso::events::Notification =
        picasso::events::Notification::parse(&notification(&["uploads/a+b%2Bc%C3%A9"]).to_string()).unwrap();
    match e {
        picasso::events::Notification::Objects(o) => assert_eq!(o[0].key, "uploads/a b+cé"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_keys_missing_objects_and_test_events_are_acknowledged() {
    let app = MemoryApp::new();
    let pending = uploaded(&app, b"abc").await;
    app.store.put_bytes(&pending.object_key().to_string(), b"abc".to_vec());
    let not_put = {
        let (_, b) = app
            .call("POST", "/upload", Some(json!({"filename": "b.txt", "content_type": "text/plain", "size": 1})))
            .await;
        FileId::parse(b["id"].as_str().unwrap()).unwrap()
    };
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-28T00:00:00Z", "Bucket": "picasso-uploads"});
    let event = sqs_event(&[
        test_event,
        notification(&[&FileId::new().object_key().to_string()]),
        notification(&[&format!("thumbnails/{pending}")]),
        notification(&[&not_put.object_key().to_string()]),
    ]);
    let out = app.function().handle_event(event).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": []}));
    assert_eq!(record(&app, pending).await.status, Status::Pending, "thumbnail keys do not process uploads");
    assert_eq!(record(&app, not_put).await.status, Status::Pending);
}

#[tokio::test]
async fn an_unreadable_message_goes_back_to_the_queue_towards_the_dlq() {
    let app = MemoryApp::new();
    let out = app
        .function()
        .handle_event(sqs_event(&[json!({"Records": []}), json!("not an S3 notification")]))
        .await
        .unwrap();
    assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "m1"}]}));
}

#[tokio::test]
async fn a_size_other_than_declared_fails_with_a_reason() {
    let app = MemoryApp::new();
    let id = uploaded(&app, b"abc").await;
    app.store.put_bytes(&id.object_key().to_string(), b"abcdef".to_vec());
    app.function().handle_event(json!({"Records": [s3_record(&id.object_key().to_string())]})).await.unwrap();
    let r = record(&app, id).await;
    assert_eq!(r.status, Status::Failed);
    let e = r.error.unwrap();
    assert_eq!(e.code, "size_mismatch");
    assert!(e.message.contains("declared 3 bytes but more arrived"), "{}", e.message);
    let short = uploaded(&app, b"abcd").await;
    app.store.put_bytes(&short.object_key().to_string(), b"ab".to_vec());
    app.function().handle_event(json!({"Records": [s3_record(&short.object_key().to_string())]})).await.unwrap();
    let e = record(&app, short).await.error.unwrap();
    assert_eq!((e.code.as_str(), e.message.as_str()), ("size_mismatch", "declared 4 bytes but 2 arrived"));
}

/// A catalog whose writes fail while `down` is set, as DynamoDB does when throttling.
struct Flaky {
    inner: Arc<picasso::memory::MemoryCatalog>,
    down: AtomicBool,
}

#[async_trait]
impl Catalog for Flaky {
    async fn insert(&self, r: &FileRecord, e: DateTime<Utc>) -> anyhow::Result<()> {
        self.inner.insert(r, e).await
    }
    async fn admit(&self, r: &FileRecord, e: DateTime<Utc>, l: &Limits) -> anyhow::Result<Admission> {
        self.inner.admit(r, e, l).await
    }
    async fn usage(&self, o: &picasso::domain::Owner, now: DateTime<Utc>) -> anyhow::Result<Usage> {
        self.inner.usage(o, now).await
    }
    async fn get(&self, id: FileId) -> anyhow::Result<Option<FileRecord>> {
        self.inner.get(id).await
    }
    async fn find(
        &self,
        w: &Scope,
        s: Option<Status>,
        o: Order,
        a: Option<FileId>,
        n: usize,
    ) -> anyhow::Result<Vec<FileRecord>> {
        self.inner.find(w, s, o, a, n).await
    }
    async fn claim(&self, id: FileId, l: &Lease, now: DateTime<Utc>) -> anyhow::Result<Claim> {
        self.inner.claim(id, l, now).await
    }
    async fn finish(&self, id: FileId, l: &Lease, o: &Outcome, at: DateTime<Utc>) -> anyhow::Result<Transition> {
        anyhow::ensure!(!self.down.load(Ordering::SeqCst), "ProvisionedThroughputExceededException");
        self.inner.finish(id, l, o, at).await
    }
    async fn release(&self, id: FileId, l: &Lease, e: DateTime<Utc>) -> anyhow::Result<Transition> {
        self.inner.release(id, l, e).await
    }
    async fn keep(&self, id: FileId) -> anyhow::Result<Transition> {
        self.inner.keep(id).await
    }
    async fn delete(&self, id: FileId) -> anyhow::Result<bool> {
        self.inner.delete(id).await
    }
    async fn stale(&self, now: DateTime<Utc>, before: FileId, n: usize) -> anyhow::Result<Vec<FileRecord>> {
        self.inner.stale(now, before, n).await
    }
}

#[tokio::test]
async fn transient_errors_return_only_their_message_to_the_queue() {
    let app = MemoryApp::new();
    let a = uploaded(&app, b"abc").await;
    let b = uploaded(&app, b"xyz").await;
    let flaky = Arc::new(Flaky { inner: app.catalog.clone(), down: AtomicBool::new(true) });
    let processor = ProcessorFunction { processor: processor_over(flaky.clone(), app.store.clone()), sweeper: None };
    let event = sqs_event(&[
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
        notification(&[&a.object_key().to_string()]),
        notification(&[&b.object_key().to_string()]),
    ]);
    let out = processor.handle_event(event.clone()).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}));
    assert_eq!(record(&app, a).await.status, Status::Pending);
    // Redelivered once the catalog is back: processed, nothing lost.
    flaky.down.store(false, Ordering::SeqCst);
    let out = processor.handle_event(event).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": []}));
    assert_eq!(record(&app, a).await.status, Status::Processed);
    assert_eq!(record(&app, b).await.status, Status::Processed);
}

#[tokio::test]
async fn a_direct_s3_event_with_a_transient_error_is_an_error_so_lambda_retries() {
    let app = MemoryApp::new();
    let a = uploaded(&app, b"abc").await;
    let flaky = Arc::new(Flaky { inner: app.catalog.clone(), down: AtomicBool::new(true) });
    let processor = ProcessorFunction { processor: processor_over(flaky, app.store.clone()), sweeper: None };
    let event = json!({"Records": [s3_record(&a.object_key().to_string())]});
    assert!(processor.handle_event(event).await.is_err());
    assert!(processor.handle_event(json!({"foo": 1})).await.is_err(), "unknown event shapes are refused");
}

#[tokio::test]
async fn new_files_spread_over_many_prefixes_and_are_processed() {
    let app = MemoryApp::new();
    let mut prefixes = std::collections::BTreeSet::new();
    let mut ids = Vec::new();
    for i in 0..32 {
        let id = app.uploaded(&format!("f{i}.txt"), "text/plain", b"abc").await;
        let key = id.object_key().to_string();
        let (hh, rest) = key["uploads/".len()..].split_once('/').expect("uploads/{hh}/{id}");
        assert_eq!((hh.len(), rest), (2, id.to_string().as_str()), "{key}");
        prefixes.insert(hh.to_owned());
        ids.push(id);
    }
    // 32 ids over 256 prefixes: all in one or a few would mean the bits are not random.
    assert!(prefixes.len() >= 16, "{prefixes:?}");
    let event = sqs_event(&ids.iter().map(|id| notification(&[&id.object_key().to_string()])).collect::<Vec<_>>());
    assert_eq!(app.function().handle_event(event).await.unwrap(), json!({"batchItemFailures": []}));
    for id in ids {
        assert_eq!(record(&app, id).await.status, Status::Processed);
    }
}

#[tokio::test]
async fn files_from_before_spread_keys_are_still_processed_under_their_flat_key() {
    let app = MemoryApp::new();
    let mut old = FileRecord::pending(
        common::ALICE.owner(),
        picasso::domain::FileName::parse("old.png").unwrap(),
        picasso::domain::ContentType::from_stored("image/png".into()),
        picasso::domain::FileSize::from_stored(0),
    );
    let png = common::png(64, 48);
    old.size = picasso::domain::FileSize::from_stored(png.len() as u64);
    old.key_layout = KeyLayout::Flat;
    app.catalog.insert(&old, Utc::now() + chrono::Duration::hours(1)).await.unwrap();
    let flat = format!("uploads/{}", old.id);
    app.store.put_bytes(&flat, png);

    // The spread key of the same id names no object of this file: ignored, nothing written.
    let spread = old.id.object_key().to_string();
    app.store.put_bytes(&spread, b"not ours".to_vec());
    app.function().handle_event(sqs_event(&[notification(&[&spread])])).await.unwrap();
    assert_eq!(record(&app, old.id).await.status, Status::Pending);
    assert!(app.store.get_bytes(&spread).is_some(), "left as it is");

    app.function().handle_event(sqs_event(&[notification(&[&flat])])).await.unwrap();
    let done = record(&app, old.id).await;
    assert_eq!(done.status, Status::Processed, "{:?}", done.error);
    let thumbnail = done.analysis.unwrap().thumbnail.unwrap();
    assert_eq!(thumbnail, format!("thumbnails/{}.jpg", old.id), "beside the file's own key");
    assert!(app.store.get_bytes(&thumbnail).is_some());
}
