//! The embedded S3 endpoint: s3s verifies SigV4 (presigned URLs included: key, length,
//! content type, expiry), s3s-fs keeps the bytes in the data directory, and every
//! completed PUT under `uploads/` becomes an S3 ObjectCreated notification.

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use http::{HeaderName, Method, Request, Response, StatusCode};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_http::cors::{AllowOrigin, CorsLayer};

use picasso::domain::{ObjectKey, rfc3339};

/// An object that has just been written.
#[derive(Debug, Clone)]
pub struct Created {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
}

impl Created {
    /// The notification AWS sends for it, field for field; keys are URL-encoded as S3 does.
    pub fn to_event(&self) -> Value {
        let key = urlencoding::encode(&self.key).replace("%2F", "/").replace("%20", "+");
        let now = picasso::domain::now();
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": rfc3339(&now),
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "picasso-local"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "0", "x-amz-id-2": "0"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "uploads",
                "bucket": {"name": self.bucket, "ownerIdentity": {"principalId": "picasso-local"}, "arn": format!("arn:aws:s3:::{}", self.bucket)},
                "object": {"key": key, "size": self.size, "eTag": self.etag, "sequencer": format!("{:016X}", now.timestamp_micros())}
            }
        }]})
    }
}

/// s3s-fs with notifications; only the operations the stack uses are exposed.
pub struct NotifyingStore {
    fs: FileSystem,
    events: mpsc::Sender<Created>,
}

impl NotifyingStore {
    pub fn new(fs: FileSystem, events: mpsc::Sender<Created>) -> Self {
        Self { fs, events }
    }
}

#[async_trait::async_trait]
impl S3 for NotifyingStore {
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let size = req.input.content_length.unwrap_or_default().max(0) as u64;
        let resp = self.fs.put_object(req).await?;
        // Same filter as the template's notification: derived objects never re-trigger processing.
        if key.starts_with(ObjectKey::PREFIX) {
            let etag = resp.output.e_tag.as_ref().map(|e| e.value().to_owned()).unwrap_or_default();
            // Backpressure rather than loss: a full queue slows PUTs down.
            let _ = self.events.send(Created { bucket, key, size, etag }).await;
        }
        Ok(resp)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }
}

/// The endpoint as an HTTP service, answering browsers' CORS preflights the way the
/// template's bucket CORS rule does (PUT/GET/HEAD from any origin, ETag exposed).
pub fn router(service: s3s::service::S3Service) -> Router {
    let s3 = tower::service_fn(move |req: Request<Body>| {
        let service = service.clone();
        async move {
            let resp = match service.call(req.map(s3s::Body::http_body_unsync)).await {
                Ok(r) => r.map(Body::new),
                Err(e) => {
                    tracing::error!(error = ?e, "storage endpoint error");
                    Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body(Body::empty()).unwrap()
                }
            };
            Ok::<_, Infallible>(resp)
        }
    });
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::PUT, Method::GET, Method::HEAD])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([HeaderName::from_static("etag")])
        .max_age(std::time::Duration::from_secs(3000));
    Router::new().fallback_service(s3).layer(cors)
}
