//! End to end against an AWS emulator (moto) holding the resources template.yaml declares:
//! upload handler → presigned PUT → S3 notification on SQS → processor → list handler.
//! `make test` starts the emulator and sets the variables; see the README.

use crate::common;

use std::time::{Duration, Instant};

use axum::body::Body;
use common::error_code;
use http::Request;
use picasso::api::AppState;
use picasso::lambda::ProcessorFunction;
use picasso::processor::Processor;
use serde_json::{Value, json};

pub(crate) struct Env {
    pub(crate) state: AppState,
    pub(crate) processor: ProcessorFunction,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    http: reqwest::Client,
}

pub(crate) async fn env() -> Env {
    for var in ["AWS_ENDPOINT_URL", "TABLE_NAME", "BUCKET_NAME", "QUEUE_URL"] {
        assert!(
            std::env::var_os(var).is_some(),
            "{var} is not set: these tests need the AWS emulator. Run `make test`, or start it with \
             `eval \"$(infra/emulator.sh start)\"` and run `cargo test` again"
        );
    }
    let sdk = picasso::aws::sdk_config().await.unwrap();
    Env {
        state: picasso::lambda::app_state().await.unwrap(),
        processor: picasso::lambda::ProcessorFunction::from_env().await.unwrap(),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        queue_url: std::env::var("QUEUE_URL").unwrap(),
        http: reqwest::Client::new(),
    }
}

impl Env {
    pub(crate) async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&common::ALICE, method, uri, body).await
    }

    /// A request as `user`, with the claims API Gateway's JWT authorizer passes on.
    pub(crate) async fn call_as(
        &self,
        user: &common::User,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        // Routed as API Gateway routes them: writes to the upload function, reads to the list function.
        let writes = uri == "/upload" || method == "DELETE" || uri.ends_with("/parts") || uri.ends_with("/complete");
        let router = if writes {
            picasso::api::upload_router(self.state.clone())
        } else {
            picasso::api::list_router(self.state.clone())
        };
        let req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        let mut req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
        req.extensions_mut().insert(user.request_context());
        let (s, b) = common::send(router, req).await;
        (s.as_u16(), b)
    }

    /// Asks for an upload slot and PUTs `bytes` to it, as a client would.
    pub(crate) async fn upload(&self, filename: &str, content_type: &str, declared: usize, bytes: Vec<u8>) -> String {
        self.upload_as(&common::ALICE, filename, content_type, declared, bytes).await
    }

    /// The same, as `user`.
    pub(crate) async fn upload_as(
        &self,
        user: &common::User,
        filename: &str,
        content_type: &str,
        declared: usize,
        bytes: Vec<u8>,
    ) -> String {
        let slot = json!({"filename": filename, "content_type": content_type, "size": declared});
        let (s, file) = self.call_as(user, "POST", "/upload", Some(slot)).await;
        assert_eq!(s, 201, "{file}");
        let up = &file["upload"];
        let mut put = self.http.put(up["url"].as_str().unwrap()).body(bytes);
        for (k, v) in up["headers"].as_object().unwrap() {
            put = put.header(k, v.as_str().unwrap());
        }
        let resp = put.send().await.unwrap();
        assert!(resp.status().is_success(), "PUT refused: {}", resp.status());
        file["id"].as_str().unwrap().to_owned()
    }

    /// Receives one batch from the queue as Lambda would, runs the processor on it and
    /// deletes what it acknowledged. Returns the event it built.
    async fn deliver_batch(&self) -> Option<Value> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            // Visible again at once if not deleted: tests need no 180 s wait, and concurrent
            // tests then deliver the same message twice, which processing must shrug off.
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        let msgs = out.messages();
        if msgs.is_empty() {
            return None;
        }
        let records: Vec<Value> = msgs
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                    "md5OfBody": m.md5_of_body(), "attributes": {}, "messageAttributes": {},
                    "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        let event = json!({"Records": records});
        let resp = self.processor.handle_event(event.clone()).await.unwrap();
        let failed: Vec<&str> = resp["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect();
        for m in msgs.iter().filter(|m| !failed.contains(&m.message_id().unwrap())) {
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        Some(event)
    }

    /// Delivers queued notifications until the file reaches a final status.
    pub(crate) async fn until_final(&self, id: &str) -> Value {
        self.until_final_as(&common::ALICE, id).await
    }

    /// The same, for a file of `user`.
    pub(crate) async fn until_final_as(&self, user: &common::User, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, file) = self.call_as(user, "GET", &format!("/files/{id}"), None).await;
            assert_eq!(s, 200, "{file}");
            if file["status"] == "processed" || file["status"] == "failed" {
                return file;
            }
            assert!(Instant::now() < deadline, "file {id} still {} after 60 s", file["status"]);
            self.deliver_batch().await;
        }
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn an_upload_goes_from_pending_to_processed() {
    let env = env().await;
    let bytes = b"hello, picasso\n".repeat(100);
    let id = env.upload("notes — été.txt", "text/plain", bytes.len(), bytes).await;
    let file = env.until_final(&id).await;
    assert_eq!(file["status"], "processed", "{file}");
    assert_eq!(file["processed"], true);
    assert_eq!(file["filename"], "notes — été.txt");
    assert!(file["processed_at"].is_string());
    assert_eq!(file["error"], Value::Null);

    let (_, list) = env.call("GET", "/files?status=processed&limit=1000", None).await;
    assert!(list["items"].as_array().unwrap().iter().any(|f| f["id"] == id.as_str()), "{list}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn a_duplicated_event_leaves_one_correct_record() {
    let env = env().await;
    let id = env.upload("dup.json", "application/json", 2, b"{}".to_vec()).await;
    let first = env.until_final(&id).await;
    assert_eq!(first["status"], "processed");
    // Redeliver the very notification S3 sent.
    let event = json!({"Records": [{
        "messageId": "redelivery", "receiptHandle": "r", "md5OfBody": "", "attributes": {},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
        "body": json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {
            "bucket": {"name": std::env::var("BUCKET_NAME").unwrap()},
            "object": {"key": picasso::domain::FileId::parse(&id).unwrap().object_key().to_string(), "size": 2}}}]}).to_string()
    }]});
    for _ in 0..2 {
        let resp = env.processor.handle_event(event.clone()).await.unwrap();
        assert_eq!(resp, json!({"batchItemFailures": []}));
    }
    let (_, mut again) = env.call("GET", &format!("/files/{id}"), None).await;
    // URLs are signed afresh on every GET (their X-Amz-Date moves with the clock): the record is the rest.
    let mut first = first;
    for f in [&mut first, &mut again] {
        f.as_object_mut().unwrap().remove("download_url");
    }
    assert_eq!(again, first, "one record, unchanged by redelivery");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn an_event_for_an_unknown_key_is_acknowledged() {
    let env = env().await;
    let bucket = std::env::var("BUCKET_NAME").unwrap();
    let unknown = picasso::domain::FileId::new();
    let event = json!({"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
         "s3": {"bucket": {"name": bucket}, "object": {"key": unknown.object_key().to_string()}}},
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
         "s3": {"bucket": {"name": bucket}, "object": {"key": "uploads/not-an-id"}}}
    ]});
    env.processor.handle_event(event).await.expect("acknowledged, not retried");
    let (s, b) = env.call("GET", &format!("/files/{unknown}"), None).await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn a_size_other_than_declared_ends_failed_with_a_reason() {
    // Real S3 refuses such a PUT (the length is signed); the emulator does not, which lets
    // this test reach the processor's own check.
    let env = env().await;
    let id = env.upload("short.csv", "text/csv", 10, b"a,b\n1,2\n".to_vec()).await;
    let file = env.until_final(&id).await;
    assert_eq!(file["status"], "failed");
    assert_eq!(file["processed"], false);
    assert_eq!(file["error"]["code"], "size_mismatch", "{file}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn rejected_uploads_write_nothing() {
    let env = env().await;
    let (_, before) = env.call("GET", "/files?limit=1", None).await;
    // Any type is accepted by default; a name that shows as another is not.
    let (s, b) = env
        .call(
            "POST",
            "/upload",
            Some(json!({"filename": "invoice\u{202E}gpj.exe", "content_type": "application/x-msdownload", "size": 5})),
        )
        .await;
    assert_eq!((s, error_code(&b)), (400, "invalid_filename"));
    let (_, after) = env.call("GET", "/files?limit=1", None).await;
    assert_eq!(before["items"], after["items"]);
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn listing_pages_through_dynamodb_newest_first() {
    let env = env().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (s, f) = env
            .call(
                "POST",
                "/upload",
                Some(json!({"filename": format!("p{i}.png"), "content_type": "image/png", "size": 1})),
            )
            .await;
        assert_eq!(s, 201);
        ids.push(f["id"].as_str().unwrap().to_owned());
    }
    // Walk pages of 2 through the unfiltered and the pending listings: each is strictly
    // newest first, without repeats, and has all our ids in reverse order of creation.
    for filter in ["", "&status=pending"] {
        let mut seen: Vec<String> = Vec::new();
        let mut uri = format!("/files?limit=2{filter}");
        loop {
            let (s, page) = env.call("GET", &uri, None).await;
            assert_eq!(s, 200, "{page}");
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|f| f["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => uri = format!("/files?limit=2{filter}&cursor={c}"),
                None => break,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(seen, sorted, "newest first, no repeats");
        let ours: Vec<&String> = seen.iter().filter(|i| ids.contains(i)).collect();
        let expected: Vec<&String> = ids.iter().rev().collect();
        assert_eq!(ours, expected);
    }
    let (s, b) = env.call("GET", "/files?cursor=djE6KjpzdXJwcmlzZQ", None).await;
    assert_eq!((s, error_code(&b)), (400, "invalid_cursor"));
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn an_image_gets_a_thumbnail_and_links_through_s3() {
    let env = env().await;
    let body = common::png(600, 400);
    let id = env.upload("wide photo.png", "image/png", body.len(), body.clone()).await;
    let file = env.until_final(&id).await;
    assert_eq!(file["status"], "processed", "{file}");
    assert_eq!(file["sha256"], common::sha256_hex(&body));
    assert_eq!((file["metadata"]["width"].as_u64(), file["metadata"]["height"].as_u64()), (Some(600), Some(400)));
    let thumb = env.http.get(file["thumbnail_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 171));
    let download = env.http.get(file["download_url"].as_str().unwrap()).send().await.unwrap();
    assert!(download.headers()["content-disposition"].to_str().unwrap().contains("wide photo.png"));
    assert_eq!(download.headers()["content-type"], "application/octet-stream", "never rendered");
    assert_eq!(download.bytes().await.unwrap().as_ref(), body.as_slice());
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn dynamodb_claims_are_exclusive_and_expired_leases_are_taken_over() {
    use picasso::catalog::{Claim, Lease, Outcome, Transition};
    use picasso::domain::{FileId, Status, now};
    let env = env().await;
    let (_, f) = env
        .call("POST", "/upload", Some(json!({"filename": "lease.txt", "content_type": "text/plain", "size": 1})))
        .await;
    let id = FileId::parse(f["id"].as_str().unwrap()).unwrap();
    let catalog = &env.state.catalog;
    let crashed = Lease::new(now(), Duration::from_millis(1500));
    let rival = Lease::new(now(), Duration::from_secs(60));
    assert!(
        matches!(catalog.claim(id, &crashed, now()).await.unwrap(), Claim::Claimed(r) if r.status == Status::Processing)
    );
    assert_eq!(catalog.claim(id, &rival, now()).await.unwrap(), Claim::Busy);
    let done = Outcome::Processed(Default::default());
    assert_eq!(catalog.finish(id, &rival, &done, now()).await.unwrap(), Transition::Skipped, "no lease, no write");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(matches!(catalog.claim(id, &rival, now()).await.unwrap(), Claim::Claimed(_)), "expired lease taken over");
    assert_eq!(
        catalog.finish(id, &crashed, &Outcome::failed("late", "late"), now()).await.unwrap(),
        Transition::Skipped
    );
    assert_eq!(catalog.finish(id, &rival, &done, now()).await.unwrap(), Transition::Applied);
    assert_eq!(catalog.claim(id, &Lease::new(now(), Duration::from_secs(1)), now()).await.unwrap(), Claim::Final);
    assert_eq!(catalog.claim(id, &rival, now()).await.unwrap(), Claim::Final);
    assert_eq!(catalog.claim(FileId::new(), &rival, now()).await.unwrap(), Claim::Missing);

    let (_, g) = env
        .call("POST", "/upload", Some(json!({"filename": "back.txt", "content_type": "text/plain", "size": 1})))
        .await;
    let id = FileId::parse(g["id"].as_str().unwrap()).unwrap();
    assert!(matches!(catalog.claim(id, &rival, now()).await.unwrap(), Claim::Claimed(_)));
    assert_eq!(
        catalog.release(id, &crashed, now() + Duration::from_secs(60)).await.unwrap(),
        Transition::Skipped,
        "only the holder releases"
    );
    assert_eq!(catalog.release(id, &rival, now() + Duration::from_secs(60)).await.unwrap(), Transition::Applied);
    assert_eq!(catalog.get(id).await.unwrap().unwrap().status, Status::Pending);
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn a_message_that_always_fails_ends_in_the_dead_letter_queue() {
    let env = env().await;
    let dlq = std::env::var("DLQ_URL").expect("DLQ_URL");
    let marker = format!("not an S3 notification {}", uuid::Uuid::now_v7());
    env.sqs.send_message().queue_url(&env.queue_url).message_body(&marker).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Each delivery fails and returns the message; after maxReceiveCount the queue moves it.
        env.deliver_batch().await;
        let out = env
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        if out.messages().iter().any(|m| m.body() == Some(marker.as_str())) {
            break;
        }
        assert!(Instant::now() < deadline, "message not in the DLQ after 60 s");
    }
}

/// The sweeper on the AWS path, in a bucket of its own (no notifications, so no other
/// test's processor races it) and a queue of its own: expired leases and pending files whose
/// The functions' configuration for another bucket.
fn sweep_config(bucket: &str) -> picasso::config::Config {
    picasso::config::Config::from_lookup(|k| match k {
        "BUCKET_NAME" => Some(bucket.to_owned()),
        _ => std::env::var(k).ok(),
    })
    .unwrap()
}

/// event was lost are found in DynamoDB, sent through SQS, and processed; bytes whose record
/// is gone are deleted; released claims get their TTL back.
#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn the_sweeper_requeues_stuck_files_through_sqs_and_nothing_is_orphaned() {
    use picasso::catalog::{Claim, Lease};
    use picasso::domain::{ContentType, FileId, FileName, FileRecord, FileSize, Status, now};
    use picasso::store::ObjectStore;
    let env = env().await;
    let sdk = picasso::aws::sdk_config().await.unwrap();
    let s3 = picasso::aws::s3_client(&sdk);
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let bucket = format!("sweep-{}", &tag[20..]);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let queue = env.sqs.create_queue().queue_name(format!("sweep-{tag}")).send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let catalog = env.state.catalog.clone();
    let store: std::sync::Arc<dyn ObjectStore> = std::sync::Arc::new(picasso::aws::s3_store(&sdk, &bucket).unwrap());
    let expires_at = |id: FileId| {
        let dynamo = dynamo.clone();
        async move {
            let table = std::env::var("TABLE_NAME").unwrap();
            let out = dynamo
                .get_item()
                .table_name(table)
                .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.to_string()));
            out.send().await.unwrap().item.unwrap().get("expires_at").cloned()
        }
    };
    let new_file = |name: &str| {
        FileRecord::pending(
            picasso::domain::Owner::parse("alice").unwrap(),
            FileName::parse(name).unwrap(),
            ContentType::from_stored("text/plain".into()),
            FileSize::from_stored(5),
        )
    };
    // One whose processor died mid-file, one whose event was lost, one whose bytes never came.
    let (died, lost, never) = (new_file("died.txt"), new_file("lost.txt"), new_file("never.txt"));
    for r in [&died, &lost, &never] {
        catalog.insert(r, now() + Duration::from_secs(3600)).await.unwrap();
    }
    for r in [&died, &lost] {
        let put = s3.put_object().bucket(&bucket).key(r.key().to_string()).body(b"hello".to_vec().into());
        put.send().await.unwrap();
    }
    let dead = Lease::new(now(), Duration::from_millis(1));
    assert!(matches!(catalog.claim(died.id, &dead, now()).await.unwrap(), Claim::Claimed(_)));
    assert_eq!(expires_at(died.id).await, None, "claimed: the bytes are there, no TTL");
    tokio::time::sleep(Duration::from_millis(20)).await;

    let redeliver = std::sync::Arc::new(picasso::aws::SqsRedeliver::new(env.sqs.clone(), &queue_url));
    let config = sweep_config(&bucket);
    let sweeper = picasso::sweeper::Sweeper::from_config(catalog.clone(), store.clone(), redeliver, &config)
        .with_grace(Duration::ZERO);
    let swept = sweeper.sweep(now()).await.unwrap();
    assert!(swept.expired_leases >= 1 && swept.arrived >= 1 && swept.waiting >= 1, "{swept:?}");
    assert_eq!(expires_at(lost.id).await, None, "bytes arrived: kept from the TTL");
    assert!(expires_at(never.id).await.is_some(), "no bytes: left for the TTL");

    // What the sweeper queued, delivered as Lambda would, to a processor of that bucket.
    let budget = picasso::budget::MemoryBudget::new(picasso::budget::DEFAULT_BUDGET);
    let processor = ProcessorFunction {
        processor: Processor::from_config(catalog.clone(), store.clone(), &config, budget)
            .with_lease(Duration::from_secs(60)),
        sweeper: None,
    };
    let mut records = Vec::new();
    loop {
        let out = env.sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).send().await.unwrap();
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            records.push(json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "md5OfBody": m.md5_of_body(), "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sweep", "awsRegion": "us-east-1"
            }));
            env.sqs
                .delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let bodies: Vec<&str> = records.iter().map(|r| r["body"].as_str().unwrap()).collect();
    for r in [&died, &lost] {
        assert!(
            bodies.iter().any(|b| b.contains(&r.key().to_string())),
            "{} was not queued again",
            r.filename.as_str()
        );
    }
    processor.handle_event(json!({"Records": records})).await.unwrap();
    for r in [&died, &lost] {
        let got = catalog.get(r.id).await.unwrap().unwrap();
        assert_eq!(got.status, Status::Processed, "{}", r.filename.as_str());
    }

    // A released claim is pending again, with its TTL back.
    let back = new_file("back.txt");
    catalog.insert(&back, now() + Duration::from_secs(3600)).await.unwrap();
    let lease = Lease::new(now(), Duration::from_secs(60));
    catalog.claim(back.id, &lease, now()).await.unwrap();
    catalog.release(back.id, &lease, now() + Duration::from_secs(600)).await.unwrap();
    assert!(expires_at(back.id).await.is_some());

    // Bytes whose record expired before their event: deleted, not kept unaccounted.
    let orphan = FileId::new().object_key();
    s3.put_object().bucket(&bucket).key(orphan.to_string()).body(b"late".to_vec().into()).send().await.unwrap();
    let obj = picasso::events::ObjectRef { bucket: bucket.clone(), key: orphan.to_string() };
    let handled = processor.processor.handle_object(&obj, picasso::processor::Delivery::default()).await.unwrap();
    assert_eq!(handled, picasso::processor::Handled::Orphaned);
    assert!(store.head(orphan).await.unwrap().is_none());
}

/// A user of this run only: the emulator's table is shared by every test.
fn fresh_user(name: &str, groups: &'static [&'static str]) -> common::User {
    let sub: &'static str = Box::leak(format!("{name}-{}", uuid::Uuid::now_v7()).into_boxed_str());
    common::User { sub, groups }
}

/// Pages through `uri` (which has a `?`) and returns every id, checking newest-first order.
async fn walk(env: &Env, user: &common::User, uri: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut next = uri.to_owned();
    loop {
        let (s, page) = env.call_as(user, "GET", &next, None).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => next = format!("{uri}&cursor={c}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "newest first, no repeats: {uri}");
    seen
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn each_user_lists_their_own_partition_and_admins_merge_everyones() {
    let env = env().await;
    let (carol, dave) = (fresh_user("carol", &[]), fresh_user("dave", &[]));
    let admin = fresh_user("root", &["admins"]);
    let mut theirs = Vec::new();
    for (user, n) in [(&carol, 3), (&dave, 2)] {
        for i in 0..n {
            let body = json!({"filename": format!("{i}.txt"), "content_type": "text/plain", "size": 1});
            let (s, f) = env.call_as(user, "POST", "/upload", Some(body)).await;
            assert_eq!(s, 201, "{f}");
            theirs.push((user.sub, f["id"].as_str().unwrap().to_owned()));
        }
    }
    let of = |sub: &str| theirs.iter().filter(|(s, _)| *s == sub).map(|(_, id)| id.clone()).rev().collect::<Vec<_>>();
    // Each sees exactly their own, newest first, across pages; the status filter too.
    assert_eq!(walk(&env, &carol, "/files?limit=2").await, of(carol.sub));
    assert_eq!(walk(&env, &carol, "/files?limit=2&status=pending").await, of(carol.sub));
    assert!(walk(&env, &carol, "/files?status=processed").await.is_empty());
    assert_eq!(walk(&env, &dave, "/files?limit=1").await, of(dave.sub));
    // Another's file is not found; another's cursor is not accepted.
    let (s, b) = env.call_as(&dave, "GET", &format!("/files/{}", of(carol.sub)[0]), None).await;
    assert_eq!((s, error_code(&b)), (404, "not_found"));
    let (_, page) = env.call_as(&carol, "GET", "/files?limit=1", None).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (s, b) = env.call_as(&dave, "GET", &format!("/files?limit=1&cursor={cursor}"), None).await;
    assert_eq!((s, error_code(&b)), (400, "invalid_cursor"));
    // An admin pages through everyone's, merged from the shards in order; others may not.
    let all = walk(&env, &admin, "/files?scope=all&limit=7").await;
    assert!(theirs.iter().all(|(_, id)| all.contains(id)), "every file in scope=all");
    let pending = walk(&env, &admin, "/files?scope=all&status=pending&limit=7").await;
    assert!(theirs.iter().all(|(_, id)| pending.contains(id)));
    let (s, b) = env.call_as(&admin, "GET", &format!("/files/{}", of(dave.sub)[0]), None).await;
    assert_eq!((s, b["id"].as_str()), (200, Some(of(dave.sub)[0].as_str())));
    let (s, b) = env.call_as(&dave, "GET", "/files?scope=all", None).await;
    assert_eq!((s, error_code(&b)), (403, "forbidden"));
}

/// PUTs `bytes` to a signed part URL with its headers; the status and the ETag.
async fn put_part(env: &Env, part: &Value, bytes: &[u8]) -> (u16, Option<String>) {
    let mut req = env.http.put(part["url"].as_str().unwrap()).body(bytes.to_vec());
    for (k, v) in part["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let resp = req.send().await.unwrap();
    let etag = resp.headers().get("etag").map(|e| e.to_str().unwrap().to_owned());
    (resp.status().as_u16(), etag)
}

#[tokio::test]
#[ignore = "needs the AWS emulator: `make test` starts it and runs these"]
async fn a_200_mib_file_in_four_parts_through_s3_multipart_resumes_and_ends_processed() {
    use sha2::{Digest, Sha256};
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut env = env().await;
    std::sync::Arc::make_mut(&mut env.state.config).part_bytes = 50 << 20;
    let data: Vec<u8> = (0..200usize << 20).map(|i| (i % 253) as u8 ^ (i >> 19) as u8).collect();
    let sha: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
    let req =
        json!({"filename": "big.bin", "content_type": "application/octet-stream", "size": data.len(), "sha256": sha});
    let (s, file) = env.call("POST", "/upload", Some(req)).await;
    assert_eq!(s, 201, "{file}");
    assert_eq!(
        (file["upload"]["method"].as_str(), file["upload"]["part_count"].as_u64()),
        (Some("MULTIPART"), Some(4))
    );
    let id = file["id"].as_str().unwrap().to_owned();
    let part = |n: usize| &data[(n - 1) * (50 << 20)..(n * (50 << 20)).min(data.len())];

    let (s, signed) = env.call("POST", &format!("/files/{id}/parts"), Some(json!({"part_numbers": [1, 2]}))).await;
    assert_eq!(s, 200, "{signed}");
    // One byte more: moto does not check the signed length (S3 and the local endpoint refuse
    // the PUT), so completing is what refuses it here.
    let mut longer = part(1).to_vec();
    longer.push(0);
    assert_eq!(put_part(&env, &signed["parts"][0], &longer).await.0, 200);
    assert_eq!(put_part(&env, &signed["parts"][1], part(2)).await.0, 200);
    let parts_of = |l: &Value| -> Vec<Value> {
        l["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!({"part_number": p["part_number"], "etag": p["etag"]}))
            .collect()
    };
    // A "reload": the listing is all the client has.
    let l = env.call("GET", &format!("/files/{id}/parts"), None).await.1;
    assert_eq!(l["parts"].as_array().map(Vec::len), Some(2), "{l}");
    let (_, rest) = env.call("POST", &format!("/files/{id}/parts"), Some(json!({"part_numbers": [3, 4]}))).await;
    assert_eq!(put_part(&env, &rest["parts"][0], part(3)).await.0, 200);
    assert_eq!(put_part(&env, &rest["parts"][1], part(4)).await.0, 200);
    let (s, e) = env
        .call(
            "POST",
            &format!("/files/{id}/complete"),
            Some(json!({"parts": parts_of(&env.call("GET", &format!("/files/{id}/parts"), None).await.1)})),
        )
        .await;
    assert_eq!((s, error_code(&e)), (400, "part_size_mismatch"), "{e}");
    // Part 1 again, at its length (a part is re-sent by PUTting it again), then complete.
    let (_, again) = env.call("POST", &format!("/files/{id}/parts"), Some(json!({"part_numbers": [1]}))).await;
    assert_eq!(put_part(&env, &again["parts"][0], part(1)).await.0, 200);
    let parts = parts_of(&env.call("GET", &format!("/files/{id}/parts"), None).await.1);
    let (s, done) = env.call("POST", &format!("/files/{id}/complete"), Some(json!({"parts": parts.clone()}))).await;
    assert_eq!(s, 200, "{done}");
    let file = env.until_final(&id).await;
    assert_eq!((file["status"].as_str(), file["sha256"].as_str()), (Some("processed"), Some(sha.as_str())), "{file}");
    let (s, e) = env.call("POST", &format!("/files/{id}/complete"), Some(json!({"parts": parts}))).await;
    assert_eq!((s, error_code(&e)), (409, "upload_closed"));

    // Delete: object and record gone, once.
    let (s, _) = env.call("DELETE", &format!("/files/{id}"), None).await;
    assert_eq!(s, 204);
    assert!(env.state.store.head(picasso::domain::FileId::parse(&id).unwrap().object_key()).await.unwrap().is_none());
    let (s, _) = env.call("GET", &format!("/files/{id}"), None).await;
    assert_eq!(s, 404);
    let (s, e) = env.call("DELETE", &format!("/files/{id}"), None).await;
    assert_eq!((s, error_code(&e)), (404, "not_found"));
}
