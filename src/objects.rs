//! The local stack's object store: the processor's reads go straight to the files the
//! endpoint keeps (writes and deletes go through the endpoint, as do presigned URLs). On AWS a GET is a network call anyway; here it was a loopback HTTP
//! request signed by the SDK and verified by s3s for bytes already on this disk. s3s-fs writes
//! each object to a temporary file and renames it, so a file that exists is complete.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use picasso::aws::S3Store;
use picasso::domain::ObjectKey;
use picasso::store::{ObjectReader, ObjectStore, StoredObject};

pub struct LocalObjects {
    s3: Arc<S3Store>,
    /// The bucket's directory under the endpoint's root.
    bucket_dir: PathBuf,
}

impl LocalObjects {
    pub fn new(s3: Arc<S3Store>, bucket_dir: PathBuf) -> Self {
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
