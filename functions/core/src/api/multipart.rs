//! Resumable uploads in parts, for files above `MULTIPART_THRESHOLD`. `POST /upload` creates
//! the storage's multipart upload and fixes the part size; then, each as often as needed:
//! - `POST /files/{id}/parts` signs PUT URLs for parts, each bound to its exact length;
//! - `GET /files/{id}/parts` lists what storage holds, to resume after a reload;
//! - `POST /files/{id}/complete` checks the parts against storage and assembles them,
//!   write-once; storage's ObjectCreated event then feeds the processor as for a single PUT.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::state::{AppState, owned_record};
use super::wire::{CompleteBody, FileView, HeldPart, PartNumbersBody, PartsHeld, SignedPart, SignedParts};
use crate::domain::{FileRecord, MultipartUpload, Status, rfc3339};
use crate::error::responses::{NotFound, Unauthorized};
use crate::error::{ApiError, ErrorBody};
use crate::identity::Caller;
use crate::parts::{PartPlan, check_parts};
use crate::store::Completion;

/// The body of `POST /files/{id}/parts`: distinct part numbers of this upload, at most 100.
pub fn parse_part_numbers(body: &[u8], plan: &PartPlan) -> Result<Vec<u32>, ApiError> {
    Ok(plan.to_sign(&PartNumbersBody::read(body)?.numbers()?)?)
}

/// The body of `POST /files/{id}/complete`: every part of the upload, each with the ETag its
/// PUT answered, in any order.
pub fn parse_completed(body: &[u8], plan: &PartPlan) -> Result<Vec<(u32, String)>, ApiError> {
    Ok(plan.to_complete(CompleteBody::read(body)?.named()?)?)
}

fn closed() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "upload_closed",
        "this file's upload is no longer open: it was completed (or has expired)",
    )
}

/// The caller's own file and its multipart upload, while it is still open.
async fn open_upload(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(FileRecord, MultipartUpload, PartPlan), ApiError> {
    let record = owned_record(st, caller, id).await?;
    let Some(upload) = record.multipart.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_multipart",
            "this file is uploaded with a single PUT (upload.method PUT), not in parts",
        ));
    };
    if record.status != Status::Pending {
        return Err(closed());
    }
    let plan = PartPlan::of(&record, &upload);
    Ok((record, upload, plan))
}

/// Sign part URLs.
///
/// A fresh presigned URL for each part asked for (at most 100 a call), each bound to its
/// part's exact length. Ask again at any time: each call signs anew.
#[utoipa::path(post, path = "/files/{id}/parts", tag = "uploads in parts", operation_id = "signParts",
    params(("id" = String, Path, description = "The file's id")),
    request_body = PartNumbersBody,
    responses(
        (status = 200, description = "A fresh URL for each part asked for", body = SignedParts),
        (status = 400, description = "`invalid_json`, `invalid_part_numbers`", body = ErrorBody),
        Unauthorized,
        NotFound,
        (status = 409, description = "`not_multipart`, `upload_closed`", body = ErrorBody),
    ))]
pub(super) async fn sign_parts(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SignedParts>, ApiError> {
    let (record, upload, plan) = open_upload(&st, &caller, &id).await?;
    let numbers = parse_part_numbers(&body, &plan)?;
    let ttl = st.config.upload_url_ttl;
    let mut parts = Vec::with_capacity(numbers.len());
    for n in numbers {
        let size = plan.len(n);
        let put = st.presigner.presign_part(record.key(), &upload.upload_id, n, size, ttl).await?;
        parts.push(SignedPart { part_number: n, url: put.url, headers: put.headers.into(), size });
    }
    let expires_at = crate::domain::now() + ttl;
    Ok(Json(SignedParts { parts, expires_at: rfc3339(&expires_at) }))
}

/// List stored parts.
///
/// The parts storage holds so far, with their `ETag`s: where a client resumes.
#[utoipa::path(get, path = "/files/{id}/parts", tag = "uploads in parts", operation_id = "listParts",
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The parts storage holds so far", body = PartsHeld),
        Unauthorized,
        NotFound,
        (status = 409, description = "`not_multipart`, `upload_closed`", body = ErrorBody),
    ))]
pub(super) async fn list_parts(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PartsHeld>, ApiError> {
    let (record, upload, plan) = open_upload(&st, &caller, &id).await?;
    let stored = st.presigner.list_parts(record.key(), &upload.upload_id).await?.ok_or_else(closed)?;
    let parts = stored.into_iter().map(|p| HeldPart { part_number: p.number, etag: p.etag, size: p.size }).collect();
    Ok(Json(PartsHeld { upload_id: upload.upload_id, part_size: plan.part_size, part_count: plan.count(), parts }))
}

/// Complete an upload in parts.
///
/// Checks the named parts against storage (every part, its `ETag`, its length) and assembles
/// them, once. The file stays `pending` until processed.
#[utoipa::path(post, path = "/files/{id}/complete", tag = "uploads in parts", operation_id = "completeUpload",
    params(("id" = String, Path, description = "The file's id")),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "Assembled; the file, still `pending` until processed", body = FileView),
        (status = 400, description = "`invalid_json`, `invalid_parts`, `etag_mismatch`, `part_size_mismatch`", body = ErrorBody),
        Unauthorized,
        NotFound,
        (status = 409, description = "`not_multipart`, `upload_closed`, `parts_missing`", body = ErrorBody),
        (status = 412, description = "`already_exists`: the file's bytes are already stored", body = ErrorBody),
    ))]
pub(super) async fn complete(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (record, upload, plan) = open_upload(&st, &caller, &id).await?;
    let named = parse_completed(&body, &plan)?;
    let key = record.key();
    // A completed upload is gone from storage; its object says it was completed.
    let Some(stored) = st.presigner.list_parts(key, &upload.upload_id).await? else {
        return Err(closed());
    };
    let parts = check_parts(&plan, &named, &stored)?;
    match st.presigner.complete_multipart(key, &upload.upload_id, &parts).await? {
        Completion::Completed => {
            tracing::info!(file_id = %record.id, parts = parts.len(), size = record.size.bytes(), "multipart upload completed");
            Ok(Json(FileView::from(&record)).into_response())
        }
        Completion::AlreadyExists => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "already_exists",
            "this file's bytes are already stored: an upload writes its file once",
        )),
        Completion::NoSuchUpload => Err(closed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn plan() -> PartPlan {
        PartPlan::new(20 * MIB + 1, 5 * MIB)
    }

    #[test]
    fn part_numbers_must_be_distinct_parts_of_this_file() {
        assert_eq!(parse_part_numbers(br#"{"part_numbers":[5,1]}"#, &plan()).unwrap(), vec![5, 1]);
        let many = format!("{{\"part_numbers\":{:?}}}", (1..=101).collect::<Vec<_>>());
        for bad in [
            r#"{"part_numbers":[]}"#,
            r#"{"part_numbers":[0]}"#,
            r#"{"part_numbers":[6]}"#,
            r#"{"part_numbers":[1,1]}"#,
            r#"{"part_numbers":[1.5]}"#,
            r#"{"part_numbers":["1"]}"#,
            r#"{"part_numbers":[-1]}"#,
            r#"{"parts":[1]}"#,
            r#"[1]"#,
            &many,
        ] {
            let e = parse_part_numbers(bad.as_bytes(), &plan()).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_part_numbers"), "{bad}");
        }
        assert_eq!(parse_part_numbers(b"{", &plan()).unwrap_err().code, "invalid_json");
    }

    #[test]
    fn a_complete_names_every_part_once() {
        let all = r#"{"parts":[{"part_number":2,"etag":"b"},{"part_number":1,"etag":"a"},{"part_number":3,"etag":"c"},{"part_number":4,"etag":"d"},{"part_number":5,"etag":"e"}]}"#;
        let parts = parse_completed(all.as_bytes(), &plan()).unwrap();
        assert_eq!(parts.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        for bad in [
            r#"{"parts":[{"part_number":1,"etag":"a"}]}"#,
            r#"{"parts":[]}"#,
            r#"{"parts":[{"part_number":1}]}"#,
            r#"{"parts":[{"part_number":6,"etag":"x"}]}"#,
            r#"{"parts":[{"part_number":1,"etag":"a"},{"part_number":1,"etag":"a"}]}"#,
            r#"{"part_numbers":[1]}"#,
        ] {
            let e = parse_completed(bad.as_bytes(), &plan()).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "invalid_parts"), "{bad}");
        }
    }
}
