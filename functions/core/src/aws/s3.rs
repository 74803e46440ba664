//! The S3 adapter: presigned PUT and GET URLs, streamed reads, derived objects.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::domain::ObjectKey;
use crate::integrity::Sha256Digest;
use crate::store::{Completion, ObjectReader, ObjectStore, PresignedPut, StoredObject, StoredPart};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

/// The client must send the signed headers it can set: Content-Type, If-None-Match and any
/// x-amz-* (the checksum). Content-Length and Host are signed too, but browsers set those
/// themselves; the SDK also adds headers (a trace id in Lambda) that are neither signed nor needed.
fn presigned_put(req: PresignedRequest) -> PresignedPut {
    let headers = req
        .headers()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k == "content-type" || k == "if-none-match" || k.starts_with("x-amz-")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    PresignedPut { url: req.uri().to_owned(), headers }
}

/// The S3 error code of a failed call (`NoSuchUpload`, `PreconditionFailed`…), if S3 answered.
fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        sha256: Option<&Sha256Digest>,
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
            // A signed header (S3 ignores it as a query parameter): other bytes are refused.
            .set_checksum_sha256(sha256.map(Sha256Digest::to_base64))
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await
            .context("presigning PUT")?;
        Ok(presigned_put(req))
    }

    async fn create_multipart(&self, key: ObjectKey, content_type: &str) -> anyhow::Result<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.to_string())
            .content_type(content_type)
            .send()
            .await
            .with_context(|| format!("CreateMultipartUpload {key}"))?;
        out.upload_id.context("CreateMultipartUpload returned no upload id")
    }

    async fn presign_part(
        &self,
        key: ObjectKey,
        upload_id: &str,
        number: u32,
        size: u64,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        let req = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key.to_string())
            .upload_id(upload_id)
            .part_number(i32::try_from(number)?)
            .content_length(i64::try_from(size)?)
            .presigned(PresigningConfig::expires_in(ttl)?)
            .await
            .context("presigning UploadPart")?;
        Ok(presigned_put(req))
    }

    async fn list_parts(&self, key: ObjectKey, upload_id: &str) -> anyhow::Result<Option<Vec<StoredPart>>> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = match self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key.to_string())
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await
            {
                Ok(p) => p,
                Err(e) if error_code(&e) == Some("NoSuchUpload") => return Ok(None),
                Err(e) => return Err(anyhow::Error::new(e).context(format!("ListParts {key}"))),
            };
            for p in page.parts() {
                parts.push(StoredPart {
                    number: u32::try_from(p.part_number.unwrap_or_default())?,
                    etag: p.e_tag.clone().unwrap_or_default(),
                    size: u64::try_from(p.size.unwrap_or_default())?,
                });
            }
            match (page.is_truncated, page.next_part_number_marker) {
                (Some(true), Some(next)) => marker = Some(next),
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(Some(parts))
    }

    async fn complete_multipart(
        &self,
        key: ObjectKey,
        upload_id: &str,
        parts: &[StoredPart],
    ) -> anyhow::Result<Completion> {
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| Ok(CompletedPart::builder().part_number(i32::try_from(p.number)?).e_tag(&p.etag).build()))
                    .collect::<anyhow::Result<Vec<_>>>()?,
            ))
            .build();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key.to_string())
            .upload_id(upload_id)
            .multipart_upload(upload)
            // Write-once, like the single PUT: a second complete cannot replace the object.
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Completion::Completed),
            Err(e) if error_code(&e) == Some("PreconditionFailed") => Ok(Completion::AlreadyExists),
            Err(e) if error_code(&e) == Some("NoSuchUpload") => Ok(Completion::NoSuchUpload),
            Err(e) => Err(anyhow::Error::new(e).context(format!("CompleteMultipartUpload {key}"))),
        }
    }

    async fn abort_multipart(&self, key: ObjectKey, upload_id: &str) -> anyhow::Result<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key.to_string())
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("AbortMultipartUpload {key}"))),
        }
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

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
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
