//! The HTTP API as axum routers, served by `lambda_http` in Lambda and by a TCP listener locally.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::{Catalog, Cursor, DEFAULT_LIMIT, MAX_LIMIT, Scope};
use crate::config::Config;
use crate::domain::{ContentType, FileId, FileName, FileRecord, FileSize, FileView, MultipartUpload, Status, rfc3339};
use crate::error::{ApiError, ErrorBody};
use crate::identity::{Authenticator, Caller};
use crate::integrity::Sha256Digest;
use crate::multipart::PartPlan;
use crate::store::ObjectStore;

/// What the handlers share: adapters behind their ports, the configuration, and who may call.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub store: Arc<dyn ObjectStore>,
    pub config: Arc<Config>,
    pub auth: Arc<dyn Authenticator>,
}

/// Every write: `POST /upload`, the multipart routes and `DELETE /files/{id}`.
pub fn upload_router(state: AppState) -> Router {
    finish(upload_routes(), state)
}

/// `GET /files` and `GET /files/{id}`.
pub fn list_router(state: AppState) -> Router {
    finish(list_routes(), state)
}

/// Every route of both functions, as the local stack serves them.
pub fn router(state: AppState) -> Router {
    finish(upload_routes().merge(list_routes()), state)
}

fn upload_routes() -> Router<AppState> {
    Router::new()
        .route("/upload", post(create_upload))
        .route("/files/{id}", delete(delete_file))
        .merge(crate::multipart::routes())
}

fn list_routes() -> Router<AppState> {
    Router::new()
        .route("/files", get(list_files))
        .route("/files/{id}", get(get_file))
        .route("/openapi.json", get(crate::openapi::serve))
}

/// Unknown paths and methods get the API's JSON error too.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(no_route)
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this path")
        })
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

/// What [`UploadRequest::parse`] reads, as the OpenAPI document describes it (the parser
/// itself walks the JSON, to give each field its own error code in a stable order).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadBody {
    /// 1–255 bytes of UTF-8, not a path, no control, invisible or direction-changing
    /// characters (Unicode format characters, line and paragraph separators), not ending in a
    /// dot or a space. (The pattern spells out those of the Basic Multilingual Plane: no control
    /// character, path separator, format character or line or paragraph separator anywhere, no
    /// dot or white space at the end.)
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f/\\\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\u0000-\u0020\u007f-\u00a0/\\.\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff\ufff9-\ufffb]$"
    )]
    filename: String,
    /// A MIME type (`type/subtype`), at most with a `charset` parameter; within
    /// `ALLOWED_CONTENT_TYPES` (any by default).
    #[schema(
        pattern = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(; ?charset=[A-Za-z0-9!#$%&'+^_`~-]{1,40})?$"
    )]
    content_type: String,
    /// Exact size in bytes, at most `MAX_UPLOAD_BYTES` (5 GiB by default, `413 too_large`
    /// above). Above `MULTIPART_THRESHOLD` (64 MiB) the file is uploaded in parts.
    #[schema(minimum = 1, maximum = 5368709120_u64)]
    size: u64,
    /// SHA-256 of the whole file: 64 hex digits or 44 characters of base64. Signed into a
    /// single PUT (storage refuses other bytes) and checked by processing (`checksum_mismatch`).
    #[schema(pattern = "^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$")]
    sha256: Option<String>,
}

/// The answer to `POST /upload`: the file, and where its bytes go.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Created<'a> {
    #[serde(flatten)]
    pub file: FileView<'a>,
    pub upload: UploadTarget,
}

/// One presigned PUT, or (above `MULTIPART_THRESHOLD`) a multipart upload whose part URLs
/// come from `POST /files/{id}/parts`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "method")]
pub enum UploadTarget {
    #[serde(rename = "PUT")]
    Put {
        /// Bound to the key, the content type, the exact length, `If-None-Match: *` and the
        /// declared SHA-256; send the bytes with `headers`.
        url: String,
        /// Signed headers to send: `content-type`, `if-none-match`, `x-amz-checksum-sha256`.
        headers: BTreeMap<String, String>,
        #[schema(format = DateTime)]
        expires_at: String,
    },
    #[serde(rename = "MULTIPART")]
    Multipart {
        upload_id: String,
        /// Every part but the last has exactly this many bytes.
        part_size: u64,
        part_count: u32,
        /// Until when the upload can be resumed and completed.
        #[schema(format = DateTime)]
        expires_at: String,
    },
}

/// The validated body of `POST /upload`.
#[derive(Debug)]
pub struct UploadRequest {
    pub filename: FileName,
    pub content_type: ContentType,
    pub size: FileSize,
    pub sha256: Option<Sha256Digest>,
}

impl UploadRequest {
    pub fn parse(body: &[u8], config: &Config) -> Result<Self, ApiError> {
        let value = json_body(body)?;
        let Value::Object(obj) = value else {
            return Err(ApiError::bad_request("invalid_json", "request body must be a JSON object"));
        };
        let field = |name: &str| -> Result<&Value, ApiError> {
            obj.get(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| ApiError::bad_request("missing_field", format!("field {name:?} is required")))
        };
        let text = |name: &'static str| -> Result<&str, ApiError> {
            field(name)?
                .as_str()
                .ok_or_else(|| ApiError::bad_request("invalid_field", format!("field {name:?} must be a string")))
        };
        // Missing fields first, in a stable order, then each field's own rules.
        let (filename, content_type, size) = (text("filename")?, text("content_type")?, field("size")?);
        Ok(Self {
            filename: FileName::parse(filename)?,
            size: FileSize::parse(size, config.max_upload_bytes)?,
            content_type: ContentType::parse(content_type, &config.allowed_types)?,
            sha256: match obj.get("sha256") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(Sha256Digest::parse(s)?),
                Some(_) => return Err(ApiError::bad_request("invalid_sha256", "sha256 must be a string")),
            },
        })
    }
}

/// Records the file as `pending` and answers where to send its bytes.
#[utoipa::path(post, path = "/upload", tag = "files", operation_id = "create_upload",
    request_body = UploadBody,
    responses(
        (status = 201, description = "The file, `pending`, and its upload: one PUT or parts", body = Created,
            links(
                ("GetFile" = (operation_id = "get_file", parameters(("id" = "$response.body#/id")))),
                ("ListFiles" = (operation_id = "list_files")),
                ("ListParts" = (operation_id = "list_parts", parameters(("id" = "$response.body#/id")))),
                ("DeleteFile" = (operation_id = "delete_file", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "`invalid_json`, `missing_field`, `invalid_field`, `invalid_filename`, `invalid_size`, `invalid_content_type`, `invalid_sha256`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 413, description = "`too_large`: over `MAX_UPLOAD_BYTES`", body = ErrorBody),
        (status = 415, description = "`unsupported_content_type`: outside `ALLOWED_CONTENT_TYPES`", body = ErrorBody),
    ))]
pub(crate) async fn create_upload(
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
        let upload_id =
            st.store.create_multipart(record.key(), record.content_type.as_str()).await.map_err(ApiError::internal)?;
        record.multipart = Some(MultipartUpload { upload_id: upload_id.clone(), part_size: plan.part_size });
        // Resumable for as long as the record waits for its bytes (the bucket's lifecycle
        // rule aborts older uploads, and never sooner).
        let expires_at = record.uploaded_at + st.config.pending_ttl.max(ttl);
        UploadTarget::Multipart {
            upload_id,
            part_size: plan.part_size,
            part_count: plan.count(),
            expires_at: rfc3339(&expires_at),
        }
    } else {
        let put = st
            .store
            .presign_put(record.key(), record.content_type.as_str(), size, record.checksum.as_ref(), ttl)
            .await
            .map_err(ApiError::internal)?;
        UploadTarget::Put {
            url: put.url,
            headers: put.headers.into_iter().collect(),
            expires_at: rfc3339(&(record.uploaded_at + ttl)),
        }
    };
    if let Err(e) = st.catalog.insert(&record, record.uploaded_at + st.config.pending_ttl.max(ttl)).await {
        if let Some(m) = &record.multipart {
            let _ = st.store.abort_multipart(record.key(), &m.upload_id).await;
        }
        return Err(ApiError::internal(e));
    }
    tracing::info!(file_id = %record.id, size, content_type = record.content_type.as_str(),
        multipart = record.multipart.is_some(), "upload slot issued");
    crate::metrics::upload_issued(record.multipart.is_some(), size);
    Ok((StatusCode::CREATED, Json(Created { file: FileView::from(&record), upload })).into_response())
}

/// `DELETE /files/{id}`: the upload in progress, the object, its thumbnail, then the record
/// (last, so a failure half-way is finished by calling again). An event that arrives
/// afterwards finds no record and deletes what it brought.
#[utoipa::path(delete, path = "/files/{id}", tag = "files", operation_id = "delete_file",
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 204, description = "Deleted: its upload in progress, bytes, thumbnail and record"),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such file, or someone else's", body = ErrorBody),
    ))]
pub(crate) async fn delete_file(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = visible_record(&st, &caller, &id).await?;
    if let Some(m) = &record.multipart {
        st.store.abort_multipart(record.key(), &m.upload_id).await.map_err(ApiError::internal)?;
    }
    st.store.delete(&record.key().to_string()).await.map_err(ApiError::internal)?;
    if let Some(thumb) = record.analysis.as_ref().and_then(|a| a.thumbnail.as_deref()) {
        st.store.delete(thumb).await.map_err(ApiError::internal)?;
    }
    st.catalog.delete(record.id).await.map_err(ApiError::internal)?;
    tracing::info!(file_id = %record.id, "file deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A request body as JSON, or the API's `invalid_json`: every JSON route reads it this way.
pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))
}

/// The file with this id if the caller may see it. Someone else's file is answered as if it
/// did not exist: no existence oracle.
pub(crate) async fn visible_record(st: &AppState, caller: &Caller, id: &str) -> Result<FileRecord, ApiError> {
    let missing = || ApiError::not_found(format!("no file with id {id:?}"));
    let file_id = FileId::parse(id).ok_or_else(missing)?;
    let record = st.catalog.get(file_id).await.map_err(ApiError::internal)?.ok_or_else(missing)?;
    if !record.visible_to(&caller.owner, caller.admin) {
        return Err(missing());
    }
    Ok(record)
}

/// The query of `GET /files`, parsed for one caller.
#[derive(Debug, PartialEq, Eq)]
pub struct ListParams {
    pub scope: Scope,
    pub limit: usize,
    pub status: Option<Status>,
    pub cursor: Option<Cursor>,
}

impl ListParams {
    pub fn parse(q: &HashMap<String, String>, caller: &Caller) -> Result<Self, ApiError> {
        let scope = match q.get("scope").map(String::as_str) {
            None | Some("mine") => Scope::Owner(caller.owner.clone()),
            Some("all") if caller.admin => Scope::All,
            Some("all") => return Err(ApiError::forbidden("scope=all lists everyone's files: admins only")),
            Some(_) => return Err(ApiError::bad_request("invalid_scope", "scope must be mine or all")),
        };
        let limit = match q.get("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::bad_request("invalid_limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
            })?,
        };
        let status = match q.get("status").map(String::as_str) {
            None => None,
            Some(s) => Some(s.parse::<Status>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_status",
                    format!("status must be one of {}", Status::ALL.map(Status::as_str).join(", ")),
                )
            })?),
        };
        let cursor = match q.get("cursor").map(String::as_str) {
            None | Some("") => None,
            Some(c) => Some(Cursor::decode(c, &scope, status)?),
        };
        Ok(Self { scope, limit, status, cursor })
    }
}

/// `scope` of `GET /files`, as [`ListParams::parse`] reads it.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ListScope {
    Mine,
    All,
}

/// One page of files, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FilePage<'a> {
    pub items: Vec<FileView<'a>>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A file with a link to its bytes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FileDetail<'a> {
    #[serde(flatten)]
    pub file: FileView<'a>,
    /// Short-lived presigned GET of the bytes (as an attachment), once processed.
    pub download_url: Option<String>,
}

#[utoipa::path(get, path = "/files", tag = "files", operation_id = "list_files",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 50 by default"),
        ("status" = Option<Status>, Query, description = "Only files of this status"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the page before, for the same listing"),
        ("scope" = Option<ListScope>, Query, description = "`mine` (default) or `all` (admins: everyone's files)"),
    ),
    responses(
        (status = 200, description = "The caller's files, newest first", body = FilePage),
        (status = 400, description = "`invalid_query`, `invalid_limit`, `invalid_status`, `invalid_cursor`, `invalid_scope`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 403, description = "`forbidden`: `scope=all` outside the admin group", body = ErrorBody),
    ))]
pub(crate) async fn list_files(
    caller: Caller,
    State(st): State<AppState>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let p = ListParams::parse(&q, &caller)?;
    let page = st.catalog.list(&p.scope, p.status, p.cursor.as_ref(), p.limit).await.map_err(ApiError::internal)?;
    let mut items = Vec::with_capacity(page.items.len());
    for r in &page.items {
        items.push(view(&st, r).await?);
    }
    let body = FilePage { items, next_cursor: page.next.map(|c| c.encode()) };
    Ok(Json(serde_json::to_value(body).map_err(ApiError::internal)?))
}

#[utoipa::path(get, path = "/files/{id}", tag = "files", operation_id = "get_file",
    params(("id" = String, Path, description = "The file's id")),
    responses(
        (status = 200, description = "The file, with a download link once processed", body = FileDetail),
        (status = 401, description = "`unauthorized`: no valid bearer token", body = ErrorBody),
        (status = 404, description = "`not_found`: no such file, or someone else's", body = ErrorBody),
    ))]
pub(crate) async fn get_file(
    caller: Caller,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = visible_record(&st, &caller, &id).await?;
    let download_url = match r.status {
        Status::Processed => Some(
            st.store
                .presign_get(&r.key().to_string(), LINK_TTL, Some(r.filename.as_str()))
                .await
                .map_err(ApiError::internal)?,
        ),
        _ => None,
    };
    let body = FileDetail { file: view(&st, &r).await?, download_url };
    Ok(Json(serde_json::to_value(body).map_err(ApiError::internal)?))
}

/// How long the links in file objects stay valid.
const LINK_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The file object, with its thumbnail's short-lived link.
async fn view<'a>(st: &AppState, r: &'a FileRecord) -> Result<FileView<'a>, ApiError> {
    let mut v = FileView::from(r);
    if let Some(thumb) = r.analysis.as_ref().and_then(|a| a.thumbnail.as_deref()) {
        v.thumbnail_url = Some(st.store.presign_get(thumb, LINK_TTL, None).await.map_err(ApiError::internal)?);
    }
    Ok(v)
}
