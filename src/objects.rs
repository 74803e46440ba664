//! The local stack's object store: the S3 adapter over the embedded endpoint for everything a
//! client sees (presigned URLs, multipart), but the processor's reads go straight to the files
//! the endpoint keeps. On AWS a GET is a network call anyway; here it was a loopback HTTP
//! request signed by the SDK and verified by s3s for bytes already on this disk. s3s-fs writes
//! each object to a temporary file and renames it, so a file that exists is complete.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use picasso::aws::S3Store;
use picasso::domain::ObjectKey;
use picasso::integrity::Sha256Digest;
use picasso::store::{Completion, ObjectReader, ObjectStore, PresignedPut, StoredObject, StoredPart};

pub struct LocalObjects {
    s3: S3Store,
    /// The bucket's directory under the endpoint's root.
    bucket_dir: PathBuf,
}

impl LocalObjects {
    pub fn new(s3: S3Store, bucket_dir: PathBuf) -> Self {
        Self { s3, bucket_dir }
    }

    fn path(&self, key: ObjectKey) -> PathBuf {
        self.bucket_dir.join(key.to_string())
    }
}

/// `None` when the file is not there.
fn found<T>(r: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        sha256: Option<&Sha256Digest>,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        self.s3.presign_put(key, content_type, size, sha256, ttl).await
    }

    async fn create_multipart(&self, key: ObjectKey, content_type: &str) -> anyhow::Result<String> {
        self.s3.create_multipart(key, content_type).await
    }

    async fn presign_part(
        &self,
        key: ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        self.s3.presign_part(key, upload_id, number, size, ttl).await
    }

    async fn list_parts(&self, key: ObjectKey, upload_id: &str) -> anyhow::Result<Option<Vec<StoredPart>>> {
        self.s3.list_parts(key, upload_id).await
    }

    async fn complete_multipart(
        &self,
        key: ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Completion> {
        self.s3.complete_multipart(key, upload_id, parts).await
    }

    async fn abort_multipart(&self, key: ObjectKey, upload_id: &str) -> anyhow::Result<()> {
        self.s3.abort_multipart(key, upload_id).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration, download_as: Option<&str>) -> anyhow::Result<String> {
        self.s3.presign_get(key, ttl, download_as).await
    }

    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>> {
        let meta = found(tokio::fs::metadata(self.path(key)).await).with_context(|| format!("HEAD {key}"))?;
        Ok(meta.filter(|m| m.is_file()).map(|m| StoredObject { size: m.len() }))
    }

    async fn open(&self, key: ObjectKey) -> anyhow::Result<Option<ObjectReader>> {
        let file = found(tokio::fs::File::open(self.path(key)).await).with_context(|| format!("GET {key}"))?;
        Ok(file.map(|f| Box::pin(f) as ObjectReader))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> anyhow::Result<()> {
        self.s3.put(key, bytes, content_type).await
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.s3.delete(key).await
    }
}
