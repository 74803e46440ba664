//! Shared helpers of the black-box tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use picasso::api::AppState;
use picasso::config::Config;
use picasso::memory::{MemoryCatalog, MemoryStore};
use serde_json::Value;
use tower::ServiceExt;

pub fn test_config() -> Config {
    Config::from_lookup(|k| match k {
        "TABLE_NAME" => Some("files".into()),
        "BUCKET_NAME" => Some("picasso-uploads".into()),
        "MAX_UPLOAD_BYTES" => Some("1048576".into()),
        _ => None,
    })
    .unwrap()
}

/// The API over in-memory adapters, which tests can look into.
pub struct MemoryApp {
    pub state: AppState,
    pub catalog: Arc<MemoryCatalog>,
    pub store: Arc<MemoryStore>,
}

impl MemoryApp {
    pub fn new() -> Self {
        let catalog = Arc::new(MemoryCatalog::default());
        let store = Arc::new(MemoryStore::default());
        let state = AppState {
            catalog: catalog.clone(),
            store: store.clone(),
            config: Arc::new(test_config()),
        };
        Self {
            state,
            catalog,
            store,
        }
    }

    pub fn router(&self) -> Router {
        picasso::api::router(self.state.clone())
    }

    pub fn processor(&self) -> picasso::processor::Processor {
        picasso::processor::Processor {
            catalog: self.catalog.clone(),
            store: self.store.clone(),
            bucket: self.state.config.bucket_name.clone(),
        }
    }

    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json");
        let req = req
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        send(self.router(), req).await
    }

    pub async fn call_raw(
        &self,
        method: &str,
        uri: &str,
        body: &'static str,
    ) -> (StatusCode, Value) {
        send(
            self.router(),
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

pub async fn send(router: Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

/// Asserts the API's error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    let e = &body["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error without a message: {body}"
    );
    e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}
