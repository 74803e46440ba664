//! Resumable uploads in parts, for files above `MULTIPART_THRESHOLD`. `POST /upload` creates
//! the storage's multipart upload and fixes the part size; then, each as often as needed:
//! - `POST /files/{id}/parts` signs PUT URLs for parts, each bound to its exact length;
//! - `GET /files/{id}/parts` lists what storage holds, to resume after a reload;
//! - `POST /files/{id}/complete` checks the parts against storage and assembles them,
//!   write-once; storage's ObjectCreated event then feeds the processor as for a single PUT.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::api::{AppState, json_body, visible_record};
use crate::domain::{FileRecord, FileView, MultipartUpload, Status, rfc3339};
use crate::error::{ApiError, ErrorBody};
use crate::identity::Caller;
use crate::store::{Completion, StoredPart};

/// `POST /files/{id}/parts`'s body, as [`parse_part_numbers`] reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PartNumbersBody {
    /// Distinct numbers from 1 to `part_count`, at most 100.
    #[schema(min_items = 1, max_items = 100)]
    part_numbers: Vec<u32>,
}

/// `POST /files/{id}/complete`'s body, as [`parse_completed`] reads it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CompleteBody {
    /// Every part from 1 to `part_count` once, in any order.
    parts: Vec<CompletedPartBody>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CompletedPartBody {
    part_number: u32,
    /// The `ETag` the part's PUT answered (quotes optional).
    etag: String,
}

/// Part URLs, each bound to its part's exact length.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedParts {
    pub parts: Vec<SignedPart>,
    /// When these URLs stop working; ask again for fresh ones at any time.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedPart {
    pub part_number: u32,
    /// PUT the part's bytes here.
    pub url: String,
    /// Signed headers to send with it (none today).
    pub headers: BTreeMap<String, String>,
    /// The part's exact length.
    pub size: u64,
}

/// What storage holds of a multipart upload: where a client resumes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PartsHeld {
    pub upload_id: String,
    pub part_size: u64,
    pub part_count: u32,
    pub parts: Vec<HeldPart>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HeldPart {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
}

/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Most part URLs signed by one call.
pub const MAX_SIGN_PER_CALL: usize = 100;

/// How a file of `size` bytes is cut: parts of `part_size`, the last one shorter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    pub size: u64,
    pub part_size: u64,
}

impl PartPlan {
    /// The configured part size, or more (whole MiB) for a file it would cut in over 10,000 parts.
    pub fn new(size: u64, configured: u64) -> Self {
        const MIB: u64 = 1 << 20;
        let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        Self { size, part_size: configured.max(needed) }
    }

    pub fn count(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.part_size)).unwrap_or(u32::MAX)
    }

    /// The exact length of part `n` (1-based).
    pub fn len(&self, n: u32) -> u64 {
        if n < self.count() { self.part_size } else { self.size - u64::from(self.count() - 1) * self.part_size }
    }

    pub fn of(record: &FileRecord, upload: &MultipartUpload) -> Self {
        Self { size: record.size.bytes(), part_size: upload.part_size }
    }
}

/// The body of `POST /files/{id}/parts`: distinct part numbers of this upload, at most 100.
pub fn parse_part_numbers(body: &[u8], plan: &PartPlan) -> Result<Vec<u32>, ApiError> {
    let invalid = |why: String| ApiError::bad_request("invalid_part_numbers", why);
    let value = json_body(body)?;
    let list = value.get("part_numbers").and_then(Value::as_array).ok_or_else(|| {
        invalid("the body must be {\"part_numbers\": [1, 2, …]}: a list of part numbers to sign".into())
    })?;
    if list.is_empty() || list.len() > MAX_SIGN_PER_CALL {
        return Err(invalid(format!("part_numbers must list from 1 to {MAX_SIGN_PER_CALL} parts")));
    }
    let count = plan.count();
    let mut numbers = Vec::with_capacity(list.len());
    for v in list {
        let n =
            v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=count).contains(n)).ok_or_else(|| {
                invalid(format!("part numbers are whole numbers from 1 to {count} for this file; got {v}"))
            })?;
        if numbers.contains(&n) {
            return Err(invalid(format!("part {n} is listed twice")));
        }
        numbers.push(n);
    }
    Ok(numbers)
}

/// The body of `POST /files/{id}/complete`: every part of the upload, each with the ETag its
/// PUT answered, in any order.
pub fn parse_completed(body: &[u8], plan: &PartPlan) -> Result<Vec<(u32, String)>, ApiError> {
    let invalid = |why: String| ApiError::bad_request("invalid_parts", why);
    let value = json_body(body)?;
    let list = value
        .get("parts")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the body must be {\"parts\": [{\"part_number\": 1, \"etag\": \"…\"}, …]}".into()))?;
    let count = plan.count();
    let mut parts: Vec<(u32, String)> = Vec::with_capacity(list.len());
    for p in list {
        let n = p.get("part_number").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
        let etag = p.get("etag").and_then(Value::as_str).filter(|e| !e.trim().is_empty());
        let (Some(n), Some(etag)) = (n, etag) else {
            return Err(invalid(format!("each part needs a part_number and the etag its upload answered; got {p}")));
        };
        if !(1..=count).contains(&n) {
            return Err(invalid(format!("part {n} is not a part of this file, which has parts 1 to {count}")));
        }
        if parts.iter().any(|(m, _)| *m == n) {
            return Err(invalid(format!("part {n} is listed twice")));
        }
        parts.push((n, etag.to_owned()));
    }
    parts.sort_by_key(|(n, _)| *n);
    let missing: Vec<String> =
        (1..=count).filter(|n| parts.binary_search_by_key(n, |(m, _)| *m).is_err()).map(|n| n.to_string()).collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "a complete names every part from 1 to {count}; missing: {}",
            abbreviate(&missing)
        )));
    }
    Ok(parts)
}

fn abbreviate(items: &[String]) -> String {
    match items.len() {
        0..=10 => items.join(", "),
        n => format!("{}… ({n} in all)", items[..10].join(", ")),
    }
}

/// ETags compare without their quotes: some clients drop them.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

/// Whether storage holds exactly the parts the client names, each of its planned length.
/// Returns the parts to assemble, with storage's own ETags.
pub fn check_parts(
    plan: &PartPlan,
    named: &[(u32, String)],
    stored: &[StoredPart],
) -> Result<Vec<StoredPart>, ApiError> {
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(named.len());
    for (n, etag) in named {
        let Some(s) = stored.iter().find(|s| s.number == *n) else {
            missing.push(n.to_string());
            continue;
        };
        if !same_etag(&s.etag, etag) {
            return Err(ApiError::bad_request(
                "etag_mismatch",
                format!(
                    "part {n}: storage holds ETag {}, not {etag} (upload it again, or send the ETag its PUT answered)",
                    s.etag
                ),
            ));
        }
        if s.size != plan.len(*n) {
            return Err(ApiError::bad_request(
                "part_size_mismatch",
                format!(
                    "part {n} has {} bytes; it must have {} (parts add up to the declared size)",
                    s.size,
                    plan.len(*n)
                ),
            ));
        }
        out.push(s.clone());
    }
    if !missing.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "parts_missing",
            format!("storage does not hold parts {} yet: upload them, then complete", abbreviate(&missing)),
        ));
    }
    Ok(out)
}

fn closed() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "upload_closed",
        "this file's upload is no longer open: it was completed (or has expired)",
    )
}

/// The caller's file and its multipart upload, while it is still open.
async fn open_upload(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(FileRecord, MultipartUpload, PartPlan), ApiError> {
    let record = visible_record(st, caller, id).await?;
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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/files/{id}/parts", post(sign_parts).get(list_parts))
        .route("/files/{id}/complete", post(complete))
}

#[utoipa::path(post, path = "/files/{id}/parts", tag = "uploads in parts", operation_id = "sign_parts",
    params(("id" = String, Path, description = "The file's id")),
    request_body = PartNumbersBody,
    responses(
        (status = 200, description = "A fresh URL for each part asked for", body = SignedParts),
        (status = 400, description = "`invalid_json`, `invalid_part_numbers`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such file, or someone else's", body = ErrorBody),
        (status = 409, description = "`not_multipart`, `upload_closed`", body = ErrorBody),
    ))]
pub(crate) async fn sign_parts(
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
        let put =
            st.store.presign_part(record.key(), &upload.upload_id, n, size, ttl).await.map_err(ApiError::internal)?;
        parts.push(SignedPart { part_number: n, url: put.url, headers: put.headers.into_iter().collect(), size });
    }
    let expires_at = crate::domain::now() + ttl;
    Ok(Json(SignedParts { parts, expires_at: rfc3339(&expires_at) }))
}

#[utoipa::path(get, path = "/files/{id}/parts", tag = "uploads in parts", operation_id = "list_parts",
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The parts storage holds so far", body = PartsHeld),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such file, or someone else's", body = ErrorBody),
        (status = 409, description = "`not_multipart`, `upload_closed`", body = ErrorBody),
    ))]
pub(crate) async fn list_parts(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PartsHeld>, ApiError> {
    let (record, upload, plan) = open_upload(&st, &caller, &id).await?;
    let stored =
        st.store.list_parts(record.key(), &upload.upload_id).await.map_err(ApiError::internal)?.ok_or_else(closed)?;
    let parts = stored.into_iter().map(|p| HeldPart { part_number: p.number, etag: p.etag, size: p.size }).collect();
    Ok(Json(PartsHeld { upload_id: upload.upload_id, part_size: plan.part_size, part_count: plan.count(), parts }))
}

#[utoipa::path(post, path = "/files/{id}/complete", tag = "uploads in parts", operation_id = "complete_upload",
    params(("id" = String, Path, description = "The file's id")),
    request_body = CompleteBody,
    responses(
        (status = 200, description = "Assembled; the file, still `pending` until processed", body = FileView),
        (status = 400, description = "`invalid_json`, `invalid_parts`, `etag_mismatch`, `part_size_mismatch`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such file, or someone else's", body = ErrorBody),
        (status = 409, description = "`not_multipart`, `upload_closed`, `parts_missing`", body = ErrorBody),
        (status = 412, description = "`already_exists`: the file's bytes are already stored", body = ErrorBody),
    ))]
pub(crate) async fn complete(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (record, upload, plan) = open_upload(&st, &caller, &id).await?;
    let named = parse_completed(&body, &plan)?;
    let key = record.key();
    // A completed upload is gone from storage; its object says it was completed.
    let Some(stored) = st.store.list_parts(key, &upload.upload_id).await.map_err(ApiError::internal)? else {
        return Err(closed());
    };
    let parts = check_parts(&plan, &named, &stored)?;
    match st.store.complete_multipart(key, &upload.upload_id, &parts).await.map_err(ApiError::internal)? {
        Completion::Completed => {
            tracing::info!(file_id = %record.id, parts = parts.len(), size = record.size.bytes(), "multipart upload completed");
            Ok(Json(serde_json::to_value(FileView::from(&record)).map_err(ApiError::internal)?))
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

    #[test]
    fn plans_cut_exact_parts_and_stay_within_ten_thousand() {
        let p = PartPlan::new(200 * MIB, 64 * MIB);
        assert_eq!((p.count(), p.len(1), p.len(3), p.len(4)), (4, 64 * MIB, 64 * MIB, 8 * MIB));
        let p = PartPlan::new(48 * MIB, 16 * MIB);
        assert_eq!((p.count(), p.len(3)), (3, 16 * MIB), "an exact multiple ends with a whole part");
        let p = PartPlan::new(5 << 40, 16 * MIB);
        assert!(p.count() as u64 <= MAX_PARTS && p.part_size % MIB == 0, "{p:?}");
        let total: u64 = (1..=p.count()).map(|n| p.len(n)).sum();
        assert_eq!(total, 5 << 40);
    }

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

    #[test]
    fn stored_parts_must_match_names_etags_and_lengths() {
        let plan = PartPlan::new(12 * MIB, 5 * MIB);
        let stored = |sizes: &[u64]| -> Vec<StoredPart> {
            sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| StoredPart { number: i as u32 + 1, etag: format!("\"e{i}\""), size })
                .collect()
        };
        let named: Vec<(u32, String)> = (0..3).map(|i| (i + 1, format!("e{i}"))).collect();
        let ok = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB, 2 * MIB])).unwrap();
        assert_eq!(ok.len(), 3);
        let e = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB])).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (409, "parts_missing"));
        let e = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB + 1, 2 * MIB])).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "part_size_mismatch"));
        let e = check_parts(&plan, &named, &stored(&[5 * MIB, 5 * MIB, 2 * MIB - 1])).unwrap_err();
        assert_eq!(e.code, "part_size_mismatch", "parts add up to the declared size");
        let mut wrong = named.clone();
        wrong[1].1 = "other".into();
        let e = check_parts(&plan, &wrong, &stored(&[5 * MIB, 5 * MIB, 2 * MIB])).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "etag_mismatch"));
    }
}
