//! Object storage port: presigned uploads and reading back what arrived.

use std::time::Duration;

use async_trait::async_trait;

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

    /// What is stored under `key`, or `None` if nothing is.
    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>>;
}
