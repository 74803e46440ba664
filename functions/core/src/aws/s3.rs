//! The S3 adapter: presigned PUT and GET URLs, streamed reads, derived objects.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::presign::{Request, Signer};
use crate::domain::ObjectKey;
use crate::integrity::Sha256Digest;
use crate::store::{Completion, ObjectReader, ObjectStore, PresignedPut, Presigner, StoredObject, StoredPart};

pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    presigner: Signer,
}

impl S3Store {
    /// `credentials` sign the presigned URLs: the same the client's configuration was given
    /// (an SDK client does not hand its provider back).
    pub fn new(client: aws_sdk_s3::Client, credentials: SharedCredentialsProvider, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        Self { presigner: Signer::new(client.clone(), credentials, &bucket), client, bucket }
    }
}

/// A presigned PUT and the headers the client must send with it: the signed ones it can set
/// (Content-Type, If-None-Match, the checksum). Content-Length and Host are signed too, but
/// browsers set those themselves.
async fn presigned_put(presigner: &Signer, req: Request<'_>) -> anyhow::Result<PresignedPut> {
    let url = presigner.presign(&req).await?;
    let headers = req
        .headers
        .iter()
        .filter(|(k, _)| *k != "content-length")
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Ok(PresignedPut { url, headers })
}

/// The S3 error code of a failed call (`NoSuchUpload`, `PreconditionFailed`…), if S3 answered.
fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(ProvideErrorMetadata::code)
}

#[async_trait]
impl Presigner for S3Store {
    async fn presign_put(
        &self,
        key: ObjectKey,
        content_type: &str,
        size: u64,
        sha256: Option<&Sha256Digest>,
        ttl: Duration,
    ) -> anyhow::Result<PresignedPut> {
        let (key, length, checksum) = (key.to_string(), size.to_string(), sha256.map(Sha256Digest::to_base64));
        let mut headers = vec![("content-length", length.as_str()), ("content-type", content_type)];
        // Write-once: S3 refuses (412) a second PUT to the key while the URL lives, so the
        // bytes that were processed are the bytes that stay.
        headers.push(("if-none-match", "*"));
        // A signed header (S3 ignores it as a query parameter): other bytes are refused.
        if let Some(c) = &checksum {
            headers.push(("x-amz-checksum-sha256", c));
        }
        let req = Request { method: "PUT", key: &key, operation: "PutObject", query: &[], headers: &headers, ttl };
        presigned_put(&self.presigner, req).await.context("presigning PUT")
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
        let (key, number, length) = (key.to_string(), number.to_string(), size.to_string());
        let req = Request {
            method: "PUT",
            key: &key,
            operation: "UploadPart",
            query: &[("partNumber", &number), ("uploadId", upload_id)],
            headers: &[("content-length", &length)],
            ttl,
        };
        presigned_put(&self.presigner, req).await.context("presigning UploadPart")
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
        // Downloads are never rendered: on AWS a presigned GET cannot add
        // `X-Content-Type-Options: nosniff`, so the type itself says "bytes".
        let query = match &disposition {
            Some(d) => vec![
                ("response-content-disposition", d.as_str()),
                ("response-content-type", "application/octet-stream"),
            ],
            None => vec![],
        };
        let req = Request { method: "GET", key, operation: "GetObject", query: &query, headers: &[], ttl };
        self.presigner.presign(&req).await.context("presigning GET")
    }
}

#[async_trait]
impl ObjectStore for S3Store {
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
