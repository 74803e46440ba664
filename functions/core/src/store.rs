//! Object storage, as two ports: the [`Presigner`] hands clients signed URLs and keeps the
//! books of multipart uploads (what the API needs); the [`ObjectStore`] reads back what
//! arrived (as a stream: objects can be far larger than memory), writes derived objects and
//! deletes (what processing needs).

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::domain::ObjectKey;
use crate::integrity::Sha256Digest;

/// A URL the client PUTs the bytes to, with the headers it must send along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedPut {
    pub url: String,
    /// Only headers a browser may set (never `Host` or `Content-Length`).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
}

pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// A part that storage holds for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: u32,
    /// As storage reports it, quotes included (what clients read from the part PUT's `ETag`).
    pub etag: String,
    pub size: u64,
}

/// How completing a multipart upload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Completed,
    /// Something is already stored under the key (`If-None-Match: *`): nothing changed.
    AlreadyExists,
    /// The upload is gone: completed, aborted, or cleaned by the bucket's lifecycle rule.
    NoSuchUpload,
}

#[async_trait]
pub trait Presigner: Send + Sync + 'static {
    /// A write-once PUT bound to this key, this content type, exactly this many bytes and,
    /// when given, exactly these bytes (their SHA-256, checked by storage).
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        sha256: Option<&Sha256Digest>,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut>;

    /// Starts a multipart upload to `key`; returns its id.
    async fn create_multipart(&self, key: ObjectKey, content_type: &str) -> anyhow::Result<String>;

    /// A PUT of one part, bound to exactly `size` bytes.
    async fn presign_part(
        &self,
        key: ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut>;

    /// Every part stored so far, by number (all pages); `None` when the upload does not exist.
    async fn list_parts(&self, key: ObjectKey, upload_id: &str) -> anyhow::Result<Option<Vec<StoredPart>>>;

    /// Assembles the parts into the object, only if nothing is stored under `key` yet.
    async fn complete_multipart(
        &self,
        key: ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Completion>;

    /// Drops an upload and its parts. Aborting an upload that is gone is not an error.
    async fn abort_multipart(&self, key: ObjectKey, upload_id: &str) -> anyhow::Result<()>;

    /// A GET of any key; `download_as` makes browsers save it under that name.
    async fn presign_get(&self, key: &str, ttl: Duration, download_as: Option<&str>) -> anyhow::Result<String>;
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// What is stored under `key`, or `None` if nothing is.
    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>>;

    /// The object's bytes as a stream, or `None` if nothing is stored.
    async fn open(&self, key: ObjectKey) -> anyhow::Result<Option<ObjectReader>>;

    /// Stores a derived object (a thumbnail), outside the `uploads/` prefix.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> anyhow::Result<()>;

    /// Removes an object: an upload (deleted, or an orphan whose record is gone) or a
    /// thumbnail. Removing nothing is not an error.
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
}
