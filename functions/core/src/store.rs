//! Object storage port: presigned uploads and downloads, reading back what arrived
//! (as a stream: objects can be far larger than memory), writing derived objects.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::domain::ObjectKey;

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

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A PUT bound to this key, this content type and exactly this many bytes.
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut>;

    /// A GET of any key; `download_as` makes browsers save it under that name.
    async fn presign_get(&self, key: &str, ttl: Duration, download_as: Option<&str>) -> anyhow::Result<String>;

    /// What is stored under `key`, or `None` if nothing is.
    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>>;

    /// The object's bytes as a stream, or `None` if nothing is stored.
    async fn open(&self, key: ObjectKey) -> anyhow::Result<Option<ObjectReader>>;

    /// Stores a derived object (a thumbnail), outside the `uploads/` prefix.
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> anyhow::Result<()>;

    /// Removes an upload (an orphan: bytes whose record is gone). Removing nothing is not an error.
    async fn delete(&self, key: ObjectKey) -> anyhow::Result<()>;
}
