//! The API's JSON: each request body once (`Deserialize` for reading, `ToSchema` for the
//! document) with its conversion into the domain's request, and the response bodies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::config::Config;
use crate::domain::{
    ContentType, DomainError, Failure, FileId, FileName, FileRecord, FileSize, Owner, Status, rfc3339,
};
use crate::error::ApiError;
use crate::integrity::Sha256Digest;
use crate::parts::MAX_SIGN_PER_CALL;

/// A JSON request body of shape `T`. Not JSON at all is `invalid_json`; JSON of another shape
/// (not an object, or a field of the wrong kind where `T` says so) is `shape`'s error.
pub fn read<T: DeserializeOwned>(body: &[u8], shape: impl FnOnce() -> ApiError) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(shape());
    }
    T::deserialize(value).map_err(|_| shape())
}

/// The file an upload slot is asked for.
// Fields are read as any JSON, so that each gets its own error code, missing ones first, in a
// stable order (`into_request`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"filename": "cat.png", "content_type": "image/png", "size": 12345}))]
pub struct UploadBody {
    /// The file's name, kept as given: 1–255 bytes of UTF-8, not a path, no control, invisible
    /// or direction-changing characters (Unicode format characters, line and paragraph
    /// separators), not ending in a dot or a space. (The pattern spells out those of the Basic
    /// Multilingual Plane: no control character, path separator, format character or line or
    /// paragraph separator anywhere, no dot or white space at the end.)
    #[serde(default)]
    #[schema(
        value_type = String,
        required = true,
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f/\\\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]*[^\u0000-\u0020\u007f-\u00a0/\\.\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff\ufff9-\ufffb]$"
    )]
    filename: Value,
    /// A MIME type (`type/subtype`), at most with a `charset` parameter. A deployment may
    /// accept only some types (any by default; `415 unsupported_content_type` otherwise).
    #[serde(default)]
    #[schema(
        value_type = String,
        required = true,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(; ?charset=[A-Za-z0-9!#$%&'+^_`~-]{1,40})?$"
    )]
    content_type: Value,
    /// Exact size in bytes, at most the deployment's maximum (5 GiB by default; `413
    /// too_large` above). Files above the multipart threshold (64 MiB by default) are
    /// uploaded in parts.
    #[serde(default)]
    #[schema(value_type = u64, required = true, minimum = 1, maximum = 5368709120_u64)]
    size: Value,
    /// SHA-256 of the whole file, optional: 64 hex digits or 44 characters of base64. A single
    /// `PUT` of other bytes is refused by storage, and processing fails a file whose bytes
    /// differ (`checksum_mismatch`).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(?:[0-9A-Fa-f]{64}|[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)$")]
    sha256: Value,
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
        let shape = || ApiError::bad_request("invalid_json", "request body must be a JSON object");
        read::<UploadBody>(body, shape)?.into_request(config)
    }
}

impl UploadBody {
    /// The request, within the deployment's limits (largest size, allowed types).
    pub fn into_request(self, config: &Config) -> Result<UploadRequest, ApiError> {
        fn present(name: &str, v: Value) -> Result<Value, ApiError> {
            match v {
                Value::Null => Err(ApiError::bad_request("missing_field", format!("field {name:?} is required"))),
                v => Ok(v),
            }
        }
        fn text(name: &str, v: Value) -> Result<String, ApiError> {
            match v {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::bad_request("invalid_field", format!("field {name:?} must be a string"))),
            }
        }
        // Missing fields first, in a stable order, then each field's own rules.
        let filename = present("filename", self.filename)?;
        let content_type = present("content_type", self.content_type)?;
        let size = present("size", self.size)?;
        let (filename, content_type) = (text("filename", filename)?, text("content_type", content_type)?);
        Ok(UploadRequest {
            filename: FileName::parse(&filename)?,
            size: size_of(&size, config.max_upload_bytes)?,
            content_type: ContentType::parse(&content_type, &config.allowed_types)?,
            sha256: match self.sha256 {
                Value::Null => None,
                Value::String(s) => Some(Sha256Digest::parse(&s)?),
                _ => return Err(ApiError::bad_request("invalid_sha256", "sha256 must be a string")),
            },
        })
    }
}

/// A declared size as JSON gives it: a whole number, possibly written as a float.
fn size_of(v: &Value, max: u64) -> Result<FileSize, DomainError> {
    let not_whole = || DomainError::invalid("invalid_size", "size must be a whole number of bytes");
    let Value::Number(n) = v else { return Err(not_whole()) };
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(b), ..) => FileSize::new(b, max),
        (None, Some(_), _) => FileSize::new(0, max),
        (None, None, Some(f)) if f > max as f64 => Err(DomainError::too_large(f, max)),
        // 18929.0 is the integer 18929 to JSON Schema (and to clients that only have floats).
        (None, None, Some(f)) if f >= 1.0 && f.fract() == 0.0 => FileSize::new(f as u64, max),
        (None, None, Some(f)) if f.fract() == 0.0 => FileSize::new(0, max),
        _ => Err(not_whole()),
    }
}

/// The parts to sign.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"part_numbers": [1, 2, 3]}))]
pub struct PartNumbersBody {
    /// Distinct numbers from 1 to `part_count`, at most 100.
    #[schema(value_type = Vec<u32>, required = true, min_items = 1, max_items = 100)]
    part_numbers: Vec<Value>,
}

impl PartNumbersBody {
    pub fn read(body: &[u8]) -> Result<Self, ApiError> {
        read(body, || {
            ApiError::bad_request(
                "invalid_part_numbers",
                "the body must be {\"part_numbers\": [1, 2, …]}: a list of part numbers to sign",
            )
        })
    }

    /// The numbers asked for, each a whole number; whether they are parts of the file is the plan's to say.
    pub fn numbers(&self) -> Result<Vec<u64>, ApiError> {
        let invalid = |why: String| ApiError::bad_request("invalid_part_numbers", why);
        if self.part_numbers.is_empty() || self.part_numbers.len() > MAX_SIGN_PER_CALL {
            return Err(invalid(format!("part_numbers must list from 1 to {MAX_SIGN_PER_CALL} parts")));
        }
        self.part_numbers
            .iter()
            .map(|v| v.as_u64().ok_or_else(|| invalid(format!("part numbers are whole numbers from 1; got {v}"))))
            .collect()
    }
}

/// Every part of the upload, each with the `ETag` its `PUT` answered.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"parts": [{"part_number": 1, "etag": "\"9b2cf535f27731c974343645a3985328\""}, {"part_number": 2, "etag": "\"6f5902ac237024bdd0c176cb93063dc4\""}]}))]
pub struct CompleteBody {
    /// Every part from 1 to `part_count` once, in any order.
    #[schema(value_type = Vec<CompletedPartBody>, required = true)]
    parts: Vec<Value>,
}

/// A part, and the `ETag` its upload answered.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CompletedPartBody {
    #[schema(value_type = u32, required = true)]
    #[serde(default)]
    part_number: Value,
    /// The `ETag` the part's PUT answered (quotes optional).
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    etag: Value,
}

impl CompleteBody {
    pub fn read(body: &[u8]) -> Result<Self, ApiError> {
        read(body, || {
            ApiError::bad_request(
                "invalid_parts",
                "the body must be {\"parts\": [{\"part_number\": 1, \"etag\": \"…\"}, …]}",
            )
        })
    }

    /// Each named part's number and ETag; whether they make the whole file is the plan's to say.
    pub fn named(&self) -> Result<Vec<(u64, String)>, ApiError> {
        self.parts
            .iter()
            .map(|p| {
                let part = CompletedPartBody::deserialize(p).ok();
                let n = part.as_ref().and_then(|b| b.part_number.as_u64());
                let etag = part.as_ref().and_then(|b| b.etag.as_str()).filter(|e| !e.trim().is_empty());
                match (n, etag) {
                    (Some(n), Some(etag)) => Ok((n, etag.to_owned())),
                    _ => Err(ApiError::bad_request(
                        "invalid_parts",
                        format!("each part needs a part_number and the etag its upload answered; got {p}"),
                    )),
                }
            })
            .collect()
    }
}

fn ser_time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

fn ser_opt_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(t)),
        None => s.serialize_none(),
    }
}

/// A file: what its uploader declared, where it stands, and what processing found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = FileObject)]
pub struct FileView<'a> {
    /// UUIDv7: sorts in creation order.
    #[schema(value_type = String, format = "uuid")]
    pub id: FileId,
    /// The `sub` of the token that asked for the upload (null for files from before owners).
    #[schema(value_type = Option<String>)]
    pub owner: Option<&'a str>,
    /// As given: 1–255 bytes of UTF-8, no control, invisible or direction-changing characters.
    #[schema(value_type = String)]
    pub filename: &'a FileName,
    /// Lowercase `type/subtype`, or `type/subtype; charset=x`.
    #[schema(value_type = String)]
    pub content_type: &'a ContentType,
    /// Declared size in bytes.
    #[schema(value_type = u64, minimum = 1)]
    pub size: FileSize,
    pub status: Status,
    /// `true` exactly when `status` is `processed`.
    pub processed: bool,
    #[serde(serialize_with = "ser_time")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: DateTime<Utc>,
    #[serde(serialize_with = "ser_opt_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub processed_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Failure>)]
    pub error: Option<&'a Failure>,
    /// SHA-256 of the stored bytes (hex), once processed.
    #[schema(value_type = Option<String>)]
    pub sha256: Option<&'a str>,
    /// MIME type detected from the content.
    #[schema(value_type = Option<String>)]
    pub detected_type: Option<&'a str>,
    /// What processing found, by type: `width`, `height`, `format` for images; `utf8`,
    /// `lines`, `words`, `chars` (and `json_valid`) for text; null until processed.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// Short-lived presigned GET of the thumbnail (images).
    pub thumbnail_url: Option<String>,
}

impl<'a> From<&'a FileRecord> for FileView<'a> {
    fn from(r: &'a FileRecord) -> Self {
        Self {
            id: r.id,
            owner: r.owner.as_ref().map(Owner::as_str),
            filename: &r.filename,
            content_type: &r.content_type,
            size: r.size,
            status: r.status,
            processed: r.status == Status::Processed,
            uploaded_at: r.uploaded_at,
            processed_at: r.processed_at,
            error: r.error.as_ref(),
            sha256: r.analysis.as_ref().map(|a| a.sha256.as_str()),
            detected_type: r.analysis.as_ref().map(|a| a.detected_type.as_str()),
            metadata: r.analysis.as_ref().map(|a| &a.metadata),
            thumbnail_url: None,
        }
    }
}

/// The answer to `POST /upload`: the file, `pending`, and where to send its bytes.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedUpload)]
pub struct Created<'a> {
    #[serde(flatten)]
    pub file: FileView<'a>,
    pub upload: UploadTarget,
}

/// Headers to send with a presigned request, exactly as given: they are part of its signature.
// Inlined where used: generators handle a map inline better than a named map schema.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(example = json!({"content-type": "image/png", "if-none-match": "*"}))]
pub struct SignedHeaders(pub BTreeMap<String, String>);

impl From<Vec<(String, String)>> for SignedHeaders {
    fn from(headers: Vec<(String, String)>) -> Self {
        Self(headers.into_iter().collect())
    }
}

/// Where a file's bytes go: one presigned PUT (`method` `PUT`), or, for files above the
/// multipart threshold (64 MiB by default), parts (`method` `MULTIPART`) whose URLs come from
/// `POST /files/{id}/parts`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "method", mapping(
    ("PUT" = "#/components/schemas/PutUpload"),
    ("MULTIPART" = "#/components/schemas/MultipartUpload"),
)))]
pub enum UploadTarget {
    Put(PutUpload),
    Multipart(MultipartTarget),
}

#[derive(Serialize, utoipa::ToSchema)]
enum PutMethod {
    #[serde(rename = "PUT")]
    Put,
}

#[derive(Serialize, utoipa::ToSchema)]
enum MultipartMethod {
    #[serde(rename = "MULTIPART")]
    Multipart,
}

/// Send the whole file in one `PUT` to `url`, with `headers`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PutUpload {
    #[schema(inline)]
    method: PutMethod,
    /// Presigned URL, bound to the file's key, content type, exact length, `If-None-Match: *`
    /// and, when declared, its SHA-256: storage refuses any other request.
    pub url: String,
    #[schema(inline)]
    pub headers: SignedHeaders,
    /// When the URL stops working (15 minutes after the slot by default).
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl PutUpload {
    pub fn new(url: String, headers: SignedHeaders, expires_at: String) -> Self {
        Self { method: PutMethod::Put, url, headers, expires_at }
    }
}

/// Send the file in parts: ask `POST /files/{id}/parts` for their URLs, `PUT` each part, then
/// `POST /files/{id}/complete`. `GET /files/{id}/parts` tells what storage holds, to resume.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = MultipartUpload)]
pub struct MultipartTarget {
    #[schema(inline)]
    method: MultipartMethod,
    /// Storage's id of this multipart upload.
    pub upload_id: String,
    /// Bytes in every part but the last, which holds the rest.
    pub part_size: u64,
    /// Number of parts, from 1 to 10,000.
    pub part_count: u32,
    /// Until when the upload can be resumed and completed.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl MultipartTarget {
    pub fn new(upload_id: String, part_size: u64, part_count: u32, expires_at: String) -> Self {
        Self { method: MultipartMethod::Multipart, upload_id, part_size, part_count, expires_at }
    }
}

/// One page of files, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FilePage<'a> {
    pub items: Vec<FileView<'a>>,
    /// Pass as `cursor` for the next page; null on the last (only null means the end: a
    /// page filtered by status may be short).
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

/// Presigned part URLs, each bound to its part's exact length.
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
    /// Presigned URL: `PUT` the part's bytes here; keep the `ETag` it answers.
    pub url: String,
    #[schema(inline)]
    pub headers: SignedHeaders,
    /// The part's exact length.
    pub size: u64,
}

/// What storage holds of a multipart upload: where a client resumes after a reload or a crash.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Refusal, now};
    use serde_json::json;

    #[test]
    fn sizes() {
        let max = 100;
        assert_eq!(size_of(&json!(1), max).unwrap().bytes(), 1);
        assert_eq!(size_of(&json!(100), max).unwrap().bytes(), 100);
        // Found by schemathesis: a whole number written as a float is that number.
        assert_eq!(size_of(&json!(42.0), max).unwrap().bytes(), 42);
        assert_eq!(size_of(&json!(0.0), max).unwrap_err().code, "invalid_size");
        assert_eq!(size_of(&json!(-3.0), max).unwrap_err().code, "invalid_size");
        let code = |v| {
            let e = size_of(&v, max).unwrap_err();
            (e.kind, e.code)
        };
        assert_eq!(code(json!(101)), (Refusal::TooLarge, "too_large"));
        assert_eq!(code(json!(1e30)), (Refusal::TooLarge, "too_large"));
        assert_eq!(code(json!(0)), (Refusal::Invalid, "invalid_size"));
        assert_eq!(code(json!(-5)), (Refusal::Invalid, "invalid_size"));
        assert_eq!(code(json!(1.5)), (Refusal::Invalid, "invalid_size"));
        assert_eq!(code(json!("12")), (Refusal::Invalid, "invalid_size"));
    }

    #[test]
    fn view_mirrors_processed_flag() {
        let mut r = FileRecord::pending(
            Owner::parse("alice").unwrap(),
            FileName::parse("a.txt").unwrap(),
            ContentType::from_stored("text/plain".into()),
            FileSize::from_stored(3),
        );
        let v = serde_json::to_value(FileView::from(&r)).unwrap();
        assert_eq!(v["status"], "pending");
        assert_eq!(v["processed"], false);
        assert_eq!(v["processed_at"], serde_json::Value::Null);
        r.status = Status::Processed;
        r.processed_at = Some(now());
        let v = serde_json::to_value(FileView::from(&r)).unwrap();
        assert_eq!(v["processed"], true);
        assert!(v["processed_at"].as_str().unwrap().ends_with('Z'));
    }
}

/// What one user holds, against the limits this deployment sets on each.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    /// Files not yet final (`pending` or `processing`) whose upload slot has not expired.
    pub pending: u64,
    /// Bytes of all the user's files, pending ones included (declared sizes).
    pub bytes: u64,
    pub limits: UsageLimits,
}

/// Per-user limits; null: none.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageLimits {
    pub pending: Option<u64>,
    pub bytes: Option<u64>,
}
