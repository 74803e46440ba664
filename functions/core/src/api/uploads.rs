//! `POST /upload` (an upload slot) and `DELETE /files/{id}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::state::{AppState, owned_record};
use super::wire::{Created, FileView, MultipartTarget, PutUpload, UploadRequest, UploadTarget};
use crate::catalog::{Admission, Quota, Usage};
use crate::domain::{FileRecord, MultipartUpload, rfc3339};
use crate::error::responses::{NotFound, Unauthorized};
use crate::error::{ApiError, ErrorBody, QuotaDetail, UsageCount};
use crate::identity::Caller;
use crate::parts::PartPlan;

/// Ask for an upload slot.
///
/// Records the file as `pending` and answers where to send its bytes: one presigned `PUT`,
/// or, above the multipart threshold (64 MiB by default), parts. Once the bytes are stored the
/// file is processed and ends `processed` or `failed`.
#[utoipa::path(post, path = "/upload", tag = "files", operation_id = "createUpload",
    request_body = super::wire::UploadBody,
    responses(
        (status = 201, description = "The file, `pending`, and its upload: one PUT or parts", body = Created,
            links(
                ("GetFile" = (operation_id = "getFile", parameters(("id" = "$response.body#/id")))),
                ("ListFiles" = (operation_id = "listFiles")),
                ("ListParts" = (operation_id = "listParts", parameters(("id" = "$response.body#/id")))),
                ("DeleteFile" = (operation_id = "deleteFile", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "`invalid_json`, `missing_field`, `invalid_field`, `invalid_filename`, `invalid_size`, `invalid_content_type`, `invalid_sha256`", body = ErrorBody),
        Unauthorized,
        (status = 413, description = "`too_large`: over the largest size this deployment accepts (5 GiB by default); `quota_exceeded`: the file would bring the caller's files over the bytes this deployment allows each user (the error carries the limit and the caller's usage)", body = ErrorBody),
        (status = 415, description = "`unsupported_content_type`: a type this deployment does not accept", body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: the caller holds as many files not yet final as this deployment allows each user (100 by default); `Retry-After` says when to try again, and the error carries the limit and the caller's usage", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ))]
pub(super) async fn create_upload(
    caller: Caller,
    State(st): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = UploadRequest::parse(&body, &st.config)?;
    let mut record = FileRecord::pending(caller.owner, req.filename, req.content_type, req.size);
    record.checksum = req.sha256;
    let ttl = st.config.upload_url_ttl;
    let size = record.size.bytes();
    // Storage first: it can fail, and a failure must leave no record behind.
    let upload = if size > st.config.multipart_threshold {
        let plan = PartPlan::new(size, st.config.part_bytes);
        let upload_id = st.presigner.create_multipart(record.key(), record.content_type.as_str()).await?;
        record.multipart = Some(MultipartUpload { upload_id: upload_id.clone(), part_size: plan.part_size });
        // Resumable for as long as the record waits for its bytes (the bucket's lifecycle
        // rule aborts older uploads, and never sooner).
        let expires_at = record.uploaded_at + st.config.pending_ttl.max(ttl);
        UploadTarget::Multipart(MultipartTarget::new(upload_id, plan.part_size, plan.count(), rfc3339(&expires_at)))
    } else {
        let put = st
            .presigner
            .presign_put(record.key(), record.content_type.as_str(), size, record.checksum.as_ref(), ttl)
            .await?;
        UploadTarget::Put(PutUpload::new(put.url, put.headers.into(), rfc3339(&(record.uploaded_at + ttl))))
    };
    let admitted = st.catalog.admit(&record, record.uploaded_at + st.config.pending_ttl.max(ttl), &st.config.limits);
    let refusal = match admitted.await {
        Ok(Admission::Admitted) => None,
        Ok(Admission::Refused(over, usage)) => Some(quota_exceeded(over, usage, size)),
        Err(e) => Some(e.into()),
    };
    if let Some(refusal) = refusal {
        if let Some(m) = &record.multipart {
            let _ = st.presigner.abort_multipart(record.key(), &m.upload_id).await;
        }
        return Err(refusal);
    }
    tracing::info!(file_id = %record.id, size, content_type = record.content_type.as_str(),
        multipart = record.multipart.is_some(), "upload slot issued");
    crate::metrics::upload_issued(record.multipart.is_some(), size);
    Ok((StatusCode::CREATED, Json(Created { file: FileView::from(&record), upload })).into_response())
}

/// Retried after this long: about when an upload in flight finishes.
const QUOTA_RETRY_AFTER_SECS: u64 = 60;

/// A refusal that says which limit, and what the caller holds.
fn quota_exceeded(over: Quota, usage: Usage, size: u64) -> ApiError {
    let (status, limit, message) = match over {
        Quota::Pending(limit) => (
            StatusCode::TOO_MANY_REQUESTS,
            limit,
            format!(
                "you have {} uploads not yet finished, the most this deployment allows at once is {limit}: \
                 finish or delete one, or wait for an unused slot to expire",
                usage.pending
            ),
        ),
        Quota::Bytes(limit) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            limit,
            format!(
                "your files hold {} bytes; {size} more would pass the {limit} bytes this deployment allows \
                 each user: delete files to make room",
                usage.bytes
            ),
        ),
    };
    ApiError {
        quota: Some(QuotaDetail { limit, usage: UsageCount { pending: usage.pending, bytes: usage.bytes } }),
        retry_after: matches!(over, Quota::Pending(_)).then_some(QUOTA_RETRY_AFTER_SECS),
        ..ApiError::new(status, "quota_exceeded", message)
    }
}

/// Delete a file.
///
/// Deletes the file's bytes, thumbnail and record, and aborts its upload in parts if one is in
/// progress.
// The record goes last, so a failure half-way is finished by calling again; an event that
// arrives afterwards finds no record and deletes what it brought.
#[utoipa::path(delete, path = "/files/{id}", tag = "files", operation_id = "deleteFile",
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 204, description = "Deleted: its upload in progress, bytes, thumbnail and record"),
        Unauthorized,
        NotFound,
    ))]
pub(super) async fn delete_file(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = owned_record(&st, &caller, &id).await?;
    if let Some(m) = &record.multipart {
        st.presigner.abort_multipart(record.key(), &m.upload_id).await?;
    }
    st.store.delete(&record.key().to_string()).await?;
    if let Some(thumb) = record.analysis.as_ref().and_then(|a| a.thumbnail.as_deref()) {
        st.store.delete(thumb).await?;
    }
    st.catalog.delete(record.id).await?;
    tracing::info!(file_id = %record.id, by = %caller.owner, "file deleted");
    Ok(StatusCode::NO_CONTENT)
}
