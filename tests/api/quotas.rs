//! Per-user quotas: files not yet final and bytes, checked when a slot is created, released
//! when a file ends, is deleted or its slot expires; `GET /usage`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use picasso::catalog::Catalog;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{self, ADMIN, ALICE, BOB, MemoryApp, User, error_code, quota, test_config_with};

fn slot(size: u64) -> Value {
    json!({"filename": "a.txt", "content_type": "text/plain", "size": size})
}

/// `POST /upload` as `user`: status, `Retry-After` and body.
async fn ask(app: &MemoryApp, user: &User, size: u64) -> (u16, Option<String>, Value) {
    let req = Request::builder().method("POST").uri("/upload").header("content-type", "application/json");
    let mut req = req.body(Body::from(slot(size).to_string())).unwrap();
    req.extensions_mut().insert(user.request_context());
    let resp = app.router().oneshot(req).await.unwrap();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status().as_u16();
    let body = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    (status, retry, body)
}

async fn usage(app: &MemoryApp, user: &User) -> Value {
    let (s, u) = app.call_as(Some(user), "GET", "/usage", None).await;
    assert_eq!(s, 200, "{u}");
    u
}

#[tokio::test]
async fn the_101st_pending_slot_is_refused_with_retry_after_until_one_finishes_or_is_deleted() {
    let app = MemoryApp::new();
    let mut ids = Vec::new();
    for _ in 0..100 {
        let (s, _, f) = ask(&app, &ALICE, 5).await;
        assert_eq!(s, 201, "{f}");
        ids.push(f["id"].as_str().unwrap().to_owned());
    }
    let (s, retry, e) = ask(&app, &ALICE, 5).await;
    assert_eq!((s, error_code(&e)), (429, "quota_exceeded"), "{e}");
    assert_eq!(retry.as_deref(), Some("60"));
    assert_eq!(
        (e["error"]["limit"].as_u64(), &e["error"]["usage"]),
        (Some(100), &json!({"pending": 100, "bytes": 500}))
    );
    assert_eq!(
        app.catalog.newest(&picasso::catalog::Scope::All, None, None, 1000).await.unwrap().len(),
        100,
        "nothing recorded"
    );
    // Other users are not affected.
    assert_eq!(ask(&app, &BOB, 5).await.0, 201);
    assert_eq!(
        usage(&app, &ALICE).await,
        json!({"pending": 100, "bytes": 500, "limits": {"pending": 100, "bytes": null}})
    );

    // One finishes: a slot is free again (its bytes still count).
    app.store.put_bytes(&common::key_of(&ids[0]), b"hello".to_vec());
    app.processor()
        .handle_object(&common::object(picasso::domain::FileId::parse(&ids[0]).unwrap()), Default::default())
        .await
        .unwrap();
    assert_eq!(usage(&app, &ALICE).await["pending"], 99);
    assert_eq!(ask(&app, &ALICE, 5).await.0, 201);
    assert_eq!(ask(&app, &ALICE, 5).await.0, 429);
    // One is deleted: its slot and its bytes are given back.
    let (s, _) = app.call("DELETE", &format!("/files/{}", ids[1]), None).await;
    assert_eq!(s, 204);
    assert_eq!(
        usage(&app, &ALICE).await,
        json!({"pending": 99, "bytes": 500, "limits": {"pending": 100, "bytes": null}})
    );
    assert_eq!(ask(&app, &ALICE, 5).await.0, 201);
}

#[tokio::test]
async fn an_expired_slot_no_longer_counts() {
    let app = MemoryApp::with_config(test_config_with(&[
        ("MAX_PENDING_PER_USER", "2"),
        ("PENDING_TTL_SECS", "1"),
        ("UPLOAD_URL_TTL_SECS", "1"),
    ]));
    assert_eq!(ask(&app, &ALICE, 5).await.0, 201);
    assert_eq!(ask(&app, &ALICE, 5).await.0, 201);
    assert_eq!(ask(&app, &ALICE, 5).await.0, 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(usage(&app, &ALICE).await["pending"], 0, "both slots expired unused");
    assert_eq!(usage(&app, &ALICE).await["bytes"], 0);
    assert_eq!(ask(&app, &ALICE, 5).await.0, 201);
}

#[tokio::test]
async fn bytes_over_the_limit_are_refused_with_413() {
    let app = MemoryApp::with_config(test_config_with(&[("MAX_BYTES_PER_USER", "1000")]));
    assert_eq!(ask(&app, &ALICE, 600).await.0, 201);
    let (s, retry, e) = ask(&app, &ALICE, 401).await;
    assert_eq!((s, error_code(&e)), (413, "quota_exceeded"), "{e}");
    assert_eq!(retry, None, "waiting frees no bytes");
    assert_eq!(
        (e["error"]["limit"].as_u64(), &e["error"]["usage"]),
        (Some(1000), &json!({"pending": 1, "bytes": 600}))
    );
    assert_eq!(ask(&app, &ALICE, 400).await.0, 201, "exactly up to the limit");
    assert_eq!(usage(&app, &ALICE).await["limits"], json!({"pending": 100, "bytes": 1000}));
}

#[tokio::test]
async fn admins_see_a_users_usage_and_nobody_else_does() {
    let app = MemoryApp::new();
    assert_eq!(ask(&app, &ALICE, 7).await.0, 201);
    let uri = format!("/usage?owner={}", ALICE.sub);
    let (s, u) = app.call_as(Some(&ADMIN), "GET", &uri, None).await;
    assert_eq!((s.as_u16(), u["pending"].as_u64(), u["bytes"].as_u64()), (200, Some(1), Some(7)));
    let (s, e) = app.call_as(Some(&BOB), "GET", &uri, None).await;
    assert_eq!((s.as_u16(), error_code(&e)), (403, "forbidden"));
    let (s, e) = app.call_as(None, "GET", "/usage", None).await;
    assert_eq!((s.as_u16(), error_code(&e)), (401, "unauthorized"));
    assert_eq!(usage(&app, &BOB).await["pending"], 0);
}

#[tokio::test]
async fn memory_and_sqlite_admit_one_of_two_at_the_limit_and_count_exactly() {
    let dir = std::env::temp_dir().join(format!("picasso-quota-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = picasso_local::open_catalog(&dir).unwrap();
    let memory: Arc<dyn Catalog> = Arc::new(picasso::memory::MemoryCatalog::default());
    for cat in [memory, sqlite] {
        quota::one_of_two_at_the_limit(cat.clone()).await;
        quota::a_burst_within_the_limit_is_all_admitted(cat.clone(), 20).await;
        quota::usage_follows_random_sequences(cat, 60).await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}
