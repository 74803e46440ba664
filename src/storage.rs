//! The embedded S3 endpoint: s3s verifies SigV4 (presigned URLs included: key, length,
//! content type, expiry) against credentials made for each run, s3s-fs keeps the bytes in
//! the data directory, and every completed PUT under `uploads/` becomes an S3
//! ObjectCreated notification.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use serde_json::json;
use tokio::sync::mpsc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use picasso::domain::ObjectKey;
use picasso::events::ObjectRef;

/// The endpoint's credentials: random for each run (nothing published signs anything), and
/// written to the data directory, readable by its owner only, for tools and tests.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Credentials {
    /// Where [`Credentials::write`] puts them, inside the data directory.
    pub const FILE: &'static str = "s3-credentials.json";

    /// From the operating system's CSPRNG (UUIDv4 uses `getrandom`): 48 random bits name
    /// the key, 244 make the secret.
    pub fn generate() -> Self {
        let hex = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            access_key_id: format!("PICASSO{}", hex()[..12].to_ascii_uppercase()),
            secret_access_key: format!("{}{}", hex(), hex()),
        }
    }

    /// `{"endpoint", "bucket", "region", "access_key_id", "secret_access_key"}`, mode 0600,
    /// replaced atomically so a reader never sees half a file or another run's secret.
    pub fn write(&self, path: &Path, endpoint: &str, bucket: &str, region: &str) -> anyhow::Result<()> {
        let body = json!({
            "endpoint": endpoint,
            "bucket": bucket,
            "region": region,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        });
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        crate::private_file::create(&tmp, format!("{body:#}\n").as_bytes())?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

/// s3s-fs with notifications. Only the operations the stack uses are exposed (PUT and
/// UploadPart by browsers; GET and HEAD by the processor and links; DELETE; the multipart
/// calls of the API); s3s answers every other one `NotImplemented`. Where s3s-fs differs
/// from S3 in what a client sees (ListParts without ETags, in directory order, for any id)
/// this layer answers as S3 does.
pub struct NotifyingStore {
    fs: FileSystem,
    /// s3s-fs's root: parts live there as `.upload_id-{id}.part-{n}`, the upload as `.upload-{id}.json`.
    root: PathBuf,
    events: mpsc::Sender<ObjectRef>,
}

impl NotifyingStore {
    pub fn new(fs: FileSystem, root: &Path, events: mpsc::Sender<ObjectRef>) -> Self {
        Self { fs, root: root.to_owned(), events }
    }

    /// Each part's ETag is kept beside it (s3s-fs's ListParts has none; S3's has).
    fn etag_path(&self, upload_id: &str, part: i32) -> PathBuf {
        self.root.join(format!(".upload_id-{upload_id}.etag-{part}"))
    }

    /// An upload id s3s-fs knows (it lists parts of any id, even a made-up one).
    fn upload_exists(&self, upload_id: &str) -> bool {
        uuid::Uuid::parse_str(upload_id).is_ok() && self.root.join(format!(".upload-{upload_id}.json")).exists()
    }

    async fn notify(&self, bucket: String, key: String) {
        // Same filter as the template's notification: derived objects never re-trigger processing.
        if key.starts_with(ObjectKey::PREFIX) {
            // Backpressure rather than loss: a full queue slows writes down.
            let _ = self.events.send(ObjectRef { bucket, key }).await;
        }
    }
}

#[async_trait::async_trait]
impl S3 for NotifyingStore {
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        // s3s-fs checks a checksum only after it has stored the bytes (and a PUT of the right
        // bytes would then find the key taken): check it on the way in, as S3 does.
        let mut req = req;
        let mut mismatch = None;
        if let Some(expected) = req.input.checksum_sha256.take()
            && let Some(body) = req.input.body.take()
        {
            let checked = Sha256Checked::new(body, expected);
            mismatch = Some(checked.mismatch.clone());
            req.input.body = Some(StreamingBlob::new(checked));
        }
        let resp = match self.fs.put_object(req).await {
            Err(_) if mismatch.is_some_and(|m| m.load(Ordering::SeqCst)) => {
                return Err(s3s::s3_error!(
                    BadDigest,
                    "The SHA256 you specified did not match the calculated checksum."
                ));
            }
            r => r?,
        };
        self.notify(bucket, key).await;
        Ok(resp)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let (upload_id, part) = (req.input.upload_id.clone(), req.input.part_number);
        if !(1..=10_000).contains(&part) {
            return Err(s3s::s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        if !self.upload_exists(&upload_id) {
            return Err(s3s::s3_error!(NoSuchUpload));
        }
        let resp = self.fs.upload_part(req).await?;
        if let Some(etag) = &resp.output.e_tag {
            let _ = tokio::fs::write(self.etag_path(&upload_id, part), etag.value()).await;
        }
        Ok(resp)
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        if !self.upload_exists(&upload_id) {
            return Err(s3s::s3_error!(NoSuchUpload));
        }
        let mut resp = self.fs.list_parts(req).await?;
        let parts = resp.output.parts.get_or_insert_default();
        parts.sort_by_key(|p| p.part_number);
        for p in parts.iter_mut() {
            let n = p.part_number.unwrap_or_default();
            if let Ok(etag) = tokio::fs::read_to_string(self.etag_path(&upload_id, n)).await {
                p.e_tag = Some(ETag::Strong(etag));
            }
        }
        Ok(resp)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key, upload_id) = (req.input.bucket.clone(), req.input.key.clone(), req.input.upload_id.clone());
        if !self.upload_exists(&upload_id) {
            return Err(s3s::s3_error!(NoSuchUpload));
        }
        let parts: Vec<i32> = req
            .input
            .multipart_upload
            .iter()
            .flat_map(|m| m.parts.iter().flatten())
            .filter_map(|p| p.part_number)
            .collect();
        let mut resp = self.fs.complete_multipart_upload(req).await?;
        // s3s-fs answers through a keep-alive future; the object is written by now.
        if let Some(done) = resp.output.future.take() {
            resp.output = done.await?;
        }
        for n in parts {
            let _ = tokio::fs::remove_file(self.etag_path(&upload_id, n)).await;
        }
        self.notify(bucket, key).await;
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        if !self.upload_exists(&req.input.upload_id) {
            return Err(s3s::s3_error!(NoSuchUpload));
        }
        // s3s-fs removes every file of the upload, ETags included.
        self.fs.abort_multipart_upload(req).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    /// Applies the `response-content-*` overrides of a signed GET, as S3 does (s3s-fs
    /// ignores them): download links are attachments typed `application/octet-stream`.
    async fn get_object(&self, mut req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = &mut req.input;
        let content_type = input.response_content_type.take();
        let disposition = input.response_content_disposition.take();
        let cache_control = input.response_cache_control.take();
        let encoding = input.response_content_encoding.take();
        let language = input.response_content_language.take();
        let mut resp = self.fs.get_object(req).await?;
        let out = &mut resp.output;
        out.content_type = content_type.or(out.content_type.take());
        out.content_disposition = disposition.or(out.content_disposition.take());
        out.cache_control = cache_control.or(out.cache_control.take());
        out.content_encoding = encoding.or(out.content_encoding.take());
        out.content_language = language.or(out.content_language.take());
        Ok(resp)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }
}

/// A request body that fails at its end, before the writer commits, unless its SHA-256 is
/// `expected` (base64, as `x-amz-checksum-sha256` carries it).
struct Sha256Checked {
    inner: StreamingBlob,
    hasher: Option<sha2::Sha256>,
    expected: String,
    mismatch: Arc<AtomicBool>,
}

impl Sha256Checked {
    fn new(inner: StreamingBlob, expected: String) -> Self {
        use sha2::Digest;
        Self { inner, hasher: Some(sha2::Sha256::new()), expected, mismatch: Arc::default() }
    }
}

impl futures_util::Stream for Sha256Checked {
    type Item = Result<bytes::Bytes, s3s::StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        use base64::Engine;
        use sha2::Digest;
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                let digest = this.hasher.take().map(|h| base64::engine::general_purpose::STANDARD.encode(h.finalize()));
                if digest.is_some_and(|d| d != this.expected) {
                    this.mismatch.store(true, Ordering::SeqCst);
                    return Poll::Ready(Some(Err("x-amz-checksum-sha256 does not match the body".into())));
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl s3s::stream::ByteStream for Sha256Checked {
    fn remaining_length(&self) -> s3s::stream::RemainingLength {
        self.inner.remaining_length()
    }
}

impl NotifyingStore {}

/// s3s-fs binds each multipart upload to the access key that created it, and each run has
/// its own: at start-up the uploads left in progress pass to this run's key, so they resume.
pub fn rebind_uploads(root: &Path, access_key_id: &str) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(".upload-") && name.ends_with(".json") {
            std::fs::write(&path, serde_json::to_vec(&Some(access_key_id))?)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The endpoint as an HTTP service, answering browsers' CORS preflights the way the
/// template's bucket CORS rule does (PUT/GET/HEAD, ETag exposed), for the given origins
/// only: those that serve the page. Every response says `X-Content-Type-Options: nosniff`.
pub fn router(service: s3s::service::S3Service, origins: Vec<HeaderValue>) -> Router {
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
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::PUT, Method::GET, Method::HEAD])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([HeaderName::from_static("etag")])
        .max_age(std::time::Duration::from_secs(3000));
    let nosniff = SetResponseHeaderLayer::overriding(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    Router::new().fallback_service(s3).layer(cors).layer(nosniff)
}
