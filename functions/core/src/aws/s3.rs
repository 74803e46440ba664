//! The S3 adapter: presigned PUT and GET URLs, streamed reads, derived objects.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;

use crate::domain::ObjectKey;
use crate::store::{ObjectReader, ObjectStore, PresignedPut, StoredObject};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .content_type(content_type)
            .content_length(i64::try_from(size)?)
            // Write-once: S3 refuses (412) a second PUT to the key while the URL lives, so the
            // bytes that were processed are the bytes that stay.
            .if_none_match("*")
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await
            .context("presigning PUT")?;
        // The client must send the signed headers it can set: Content-Type, If-None-Match and any x-amz-*.
        // Content-Length and Host are signed too, but browsers set those themselves; the
        // SDK also adds headers (a trace id in Lambda) that are neither signed nor needed.
        let headers = req
            .headers()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                k == "content-type" || k == "if-none-match" || k.starts_with("x-amz-")
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect();
        Ok(PresignedPut { url: req.uri().to_owned(), headers })
    }

    async fn presign_get(&self, key: &str, ttl: Duration, download_as: Option<&str>) -> anyhow::Result<String> {
        let disposition = download_as.map(|name| {
            // RFC 6266: an ASCII fallback plus the exact UTF-8 name.
            let ascii: String = name
                .chars()
                .map(|c| if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' { c } else { '_' })
                .collect();
            format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", urlencoding::encode(name))
        });
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            // Downloads are never rendered: on AWS a presigned GET cannot add
            // `X-Content-Type-Options: nosniff`, so the type itself says "bytes".
            .set_response_content_type(download_as.map(|_| "application/octet-stream".to_owned()))
            .set_response_content_disposition(disposition)
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await
            .context("presigning GET")?;
        Ok(req.uri().to_owned())
    }

    async fn open(&self, key: ObjectKey) -> anyhow::Result<Option<ObjectReader>> {
        match self.client.get_object().bucket(&self.bucket).key(key.to_string()).send().await {
            Ok(out) => Ok(Some(Box::pin(out.body.into_async_read()))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("GET {key}"))),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> anyhow::Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await
            .with_context(|| format!("PUT {key}"))?;
        Ok(())
    }

    async fn delete(&self, key: ObjectKey) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.to_string())
            .send()
            .await
            .with_context(|| format!("DELETE {key}"))?;
        Ok(())
    }

    async fn head(&self, key: ObjectKey) -> anyhow::Result<Option<StoredObject>> {
        match self.client.head_object().bucket(&self.bucket).key(key.to_string()).send().await {
            Ok(out) => Ok(Some(StoredObject { size: out.content_length().unwrap_or_default().max(0) as u64 })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("HEAD {key}"))),
        }
    }
}
