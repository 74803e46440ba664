//! Every file in `events/` (the ones `sam local invoke` and `cargo lambda invoke` take)
//! goes through the handler it is meant for, over in-memory adapters.

use crate::common;

use common::{MemoryApp, error_code, repo_path};
use picasso::catalog::Catalog;
use picasso::domain::{ContentType, FileId, FileName, FileRecord, FileSize, Status, now};
use serde_json::Value;

const A: &str = "0190a8a4-3f6e-7cc2-9b1e-2f4e5d6c7b8a";
const B: &str = "0190a8a4-3f6e-7cc2-9b1e-2f4e5d6c7b8b";
const DECLARED: u64 = 12345;

/// An app whose catalog holds the two files the events name, and whose store holds
/// A with its declared size and B with another size.
async fn seeded() -> MemoryApp {
    let app = MemoryApp::new();
    for id in [A, B] {
        let mut r = FileRecord::pending(
            common::ALICE.owner(),
            FileName::parse("cat.png").unwrap(),
            ContentType::from_stored("image/png".into()),
            FileSize::from_stored(DECLARED),
        );
        r.id = FileId::parse(id).unwrap();
        app.catalog.insert(&r, now()).await.unwrap();
    }
    // A: a real PNG of the declared size (trailing bytes after IEND are ignored); B: too short.
    let mut a = common::png(40, 30);
    a.resize(DECLARED as usize, 0);
    app.store.put_bytes(&common::key_of(A), a);
    app.store.put_bytes(&common::key_of(B), vec![0; 100]);
    app
}

async fn status_of(app: &MemoryApp, id: &str) -> Status {
    app.catalog.get(FileId::parse(id).unwrap()).await.unwrap().unwrap().status
}

async fn http_event(app: &MemoryApp, text: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(text).expect("an API Gateway HTTP API event");
    let req = req.map(|b| axum::body::Body::from(b.to_vec()));
    // The route decides which function's router serves it, as in template.yaml.
    let path = req.uri().path();
    let writes =
        path == "/upload" || req.method() == "DELETE" || path.ends_with("/parts") || path.ends_with("/complete");
    let router = if writes {
        picasso::api::upload_router(app.state.clone())
    } else {
        picasso::api::list_router(app.state.clone())
    };
    let (s, b) = common::send(router, req).await;
    (s.as_u16(), b)
}

async fn check(name: &str, text: &str) {
    let app = seeded().await;
    let event: Value = serde_json::from_str(text).unwrap();
    match name {
        "upload-valid.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!(s, 201, "{b}");
            assert_eq!((b["filename"].as_str(), b["status"].as_str()), (Some("cat.png"), Some("pending")));
        }
        "upload-invalid.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, error_code(&b)), (400, "invalid_filename"));
        }
        "upload-too-large.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, error_code(&b)), (413, "too_large"));
        }
        "list.json" | "list-status.json" | "list-cursor.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!(s, 200, "{b}");
            let ids: Vec<&str> = b["items"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
            let expected: &[&str] = match name {
                "list.json" => &[B, A],
                "list-status.json" => &[], // status=processed: nothing processed yet
                _ => &[],                  // the cursor points at A: nothing older
            };
            assert_eq!(ids, expected);
        }
        "upload-multipart.json" => {
            let app = MemoryApp::with_config(common::test_config_with(&[("MAX_UPLOAD_BYTES", "5368709120")]));
            let (s, b) = http_event(&app, text).await;
            assert_eq!(s, 201, "{b}");
            let up = &b["upload"];
            assert_eq!((up["method"].as_str(), up["part_count"].as_u64()), (Some("MULTIPART"), Some(13)), "{b}");
            assert_eq!(app.store.uploads_in_progress(), 1);
        }
        "delete.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, b), (204, Value::Null));
            assert!(app.catalog.get(FileId::parse(A).unwrap()).await.unwrap().is_none());
            assert!(app.store.get_bytes(&common::key_of(A)).is_none());
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, error_code(&b)), (404, "not_found"), "once");
        }
        "get.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, b["id"].as_str()), (200, Some(A)));
        }
        "get-other-owner.json" => {
            // Bob asks for alice's file: not found, as if it did not exist.
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, error_code(&b)), (404, "not_found"));
        }
        "list-admin-all.json" => {
            // Bob is in the admins group: everyone's files.
            let (s, b) = http_event(&app, text).await;
            assert_eq!(s, 200, "{b}");
            let ids: Vec<&str> = b["items"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
            assert_eq!(ids, [B, A]);
        }
        "list-no-claims.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, error_code(&b)), (401, "unauthorized"));
        }
        "get-missing.json" => {
            let (s, b) = http_event(&app, text).await;
            assert_eq!((s, error_code(&b)), (404, "not_found"));
        }
        "sqs-s3-batch.json" => {
            let out = app.function().handle_event(event).await.unwrap();
            assert_eq!(out["batchItemFailures"], serde_json::json!([]));
            assert_eq!(status_of(&app, A).await, Status::Processed);
            let b = app.catalog.get(FileId::parse(B).unwrap()).await.unwrap().unwrap();
            assert_eq!((b.status, b.error.unwrap().code.as_str()), (Status::Failed, "size_mismatch"));
        }
        "s3-put.json" => {
            app.function().handle_event(event).await.unwrap();
            assert_eq!(status_of(&app, A).await, Status::Processed);
            assert_eq!(status_of(&app, B).await, Status::Pending);
        }
        "sqs-s3-test-event.json" => {
            let out = app.function().handle_event(event).await.unwrap();
            assert_eq!(out["batchItemFailures"], serde_json::json!([]));
            assert_eq!((status_of(&app, A).await, status_of(&app, B).await), (Status::Pending, Status::Pending));
        }
        "schedule-sweep.json" => {
            // The seeded files are from 2024: long past the grace, with their bytes.
            let (sweeper, collected) = app.sweeper(app.state.config.upload_url_ttl);
            let p = picasso::lambda::ProcessorFunction { processor: app.processor(), sweeper: Some(sweeper) };
            let out = p.handle_event(event).await.unwrap();
            assert_eq!(out, serde_json::json!({"expired_leases": 0, "arrived": 2, "waiting": 0}));
            assert_eq!(collected.keys(), [common::key_of(A), common::key_of(B)]);
            assert!(
                app.function().handle_event(serde_json::from_str(text).unwrap()).await.is_err(),
                "no sweeper, no sweep"
            );
        }
        // The events binary's: run through it in tests/api/changes.rs and, against the
        // emulator, tests/test_events_aws.py; here, each is what its role takes.
        "dynamodb-stream.json" => {
            let e: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(event).unwrap();
            let changes = e.records.iter().filter_map(|r| picasso::aws::change_of(r).unwrap()).count();
            assert_eq!(changes, 3, "created, processed, deleted");
        }
        "sqs-webhook.json" => {
            let e: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
            assert!(picasso::notify::webhook::from_envelope(e.records[0].body.as_deref().unwrap()).is_ok());
        }
        "websocket-authorizer.json" => {
            let e: aws_lambda_events::event::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest =
                serde_json::from_value(event).unwrap();
            assert!(e.query_string_parameters.first("token").is_some() && e.method_arn.is_some());
        }
        "websocket-connect.json" => {
            assert_eq!(event["requestContext"]["routeKey"], "$connect");
            assert!(event["requestContext"]["authorizer"]["audience"].as_str().unwrap().starts_with("owner#"));
        }
        "page.json" => {
            // The one route without the authorizer: the page, its settings the function's own,
            // whatever the URL says.
            use http_body_util::BodyExt;
            use picasso::api::page::{Origin, Page, PageSettings};
            use tower::ServiceExt;
            assert!(event["requestContext"].get("authorizer").is_none());
            let storage = Origin::parse("https://uploads.s3.us-east-1.amazonaws.com").unwrap();
            let live = |k: &str| (k == "PAGE_LIVE_URL").then(|| "wss://live.example.com/live".to_string());
            let page = Page::new(&PageSettings::from_lookup(live, storage).unwrap()).unwrap();
            let router = picasso::api::list_router(app.state.clone()).merge(picasso::api::page::router(page));
            let req = lambda_http::request::from_str(text).unwrap().map(|b| axum::body::Body::from(b.to_vec()));
            let resp = router.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let header = |n: &str| resp.headers()[n].to_str().unwrap().to_string();
            assert!(header("content-type").starts_with("text/html"));
            assert!(header("content-security-policy").contains("wss://live.example.com"));
            let html = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
            assert!(html.contains(r#""live":{"websocket":"wss://live.example.com/live"}"#), "{html:.200}");
            assert!(!html.contains("elsewhere.example"), "nothing of the URL in the page");
        }
        other => panic!("events/{other} has no expectation here: add one"),
    }
}

#[tokio::test]
async fn every_event_file_runs_through_its_handler() {
    let mut names: Vec<String> = std::fs::read_dir(repo_path("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 17, "{names:?}");
    for name in &names {
        let text = std::fs::read_to_string(repo_path("events").join(name)).unwrap();
        check(name, &text).await;
    }
}
