//! Domain types. Each input type parses rather than validates: once a value of
//! it exists, it is valid, so nothing past the HTTP edge re-checks it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::integrity::Sha256Digest;
pub use crate::refusal::{DomainError, Refusal};

/// Time-ordered file id (UUIDv7): its text sorts in creation order, which the
/// catalog's "newest first" index relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(Uuid);

impl FileId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Accepts only UUIDv7 in the canonical hyphenated lowercase form, so one id has one spelling.
    pub fn parse(s: &str) -> Option<Self> {
        let u = Uuid::try_parse(s).ok()?;
        (u.get_version_num() == 7 && u.hyphenated().to_string() == s).then_some(Self(u))
    }

    /// When the id was made (its UUIDv7 timestamp, to the millisecond).
    pub fn created_at(self) -> DateTime<Utc> {
        let ms = self.0.get_timestamp().map_or(0, |t| {
            let (secs, nanos) = t.to_unix();
            secs * 1000 + u64::from(nanos / 1_000_000)
        });
        DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX)).unwrap_or_default()
    }

    /// Where a new file's bytes go: under a prefix of its own random bits (see [`ObjectKey`]).
    pub fn object_key(self) -> ObjectKey {
        ObjectKey { id: self, layout: KeyLayout::Spread }
    }

    /// The id's last two hex digits, from its random end: 256 ways to spread files apart (S3
    /// prefixes, the catalog's open index).
    pub fn spread(self) -> String {
        format!("{:02x}", self.0.as_bytes()[15])
    }
}

impl Default for FileId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for FileId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where the bytes of a file live, chosen by the server: `uploads/{hh}/{id}`, hh two hex
/// digits of the id's random bits, so uploads spread over 256 prefixes that S3 scales
/// independently (about 3,500 PUTs/s each); files from before that live at `uploads/{id}`.
/// Only this prefix triggers processing, so derived objects (thumbnails) never loop back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectKey {
    id: FileId,
    layout: KeyLayout,
}

/// Which of the two key layouts a file's object uses; a record remembers its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyLayout {
    /// `uploads/{id}`: files recorded before keys were spread.
    #[default]
    Flat,
    /// `uploads/{hh}/{id}`.
    Spread,
}

impl KeyLayout {
    /// As the catalogs store it: only spread keys are marked, so records from before read as flat.
    pub fn stored(self) -> Option<&'static str> {
        (self == Self::Spread).then_some("spread")
    }

    pub fn from_stored(mark: Option<&str>) -> Self {
        if mark == Some("spread") { Self::Spread } else { Self::Flat }
    }
}

impl ObjectKey {
    pub const PREFIX: &'static str = "uploads/";

    pub fn of(id: FileId, layout: KeyLayout) -> Self {
        Self { id, layout }
    }

    /// Either layout; a spread key only with the prefix its id implies, so one file has one key.
    pub fn parse(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(Self::PREFIX)?;
        match rest.split_once('/') {
            None => FileId::parse(rest).map(|id| Self { id, layout: KeyLayout::Flat }),
            Some((hh, id)) => FileId::parse(id).filter(|id| id.spread() == hh).map(FileId::object_key),
        }
    }

    pub fn file_id(self) -> FileId {
        self.id
    }

    pub fn layout(self) -> KeyLayout {
        self.layout
    }

    /// The key of a file's thumbnail, spread like the file's own.
    pub fn thumbnail(self, prefix: &str, extension: &str) -> String {
        match self.layout {
            KeyLayout::Flat => format!("{prefix}{}.{extension}", self.id),
            KeyLayout::Spread => format!("{prefix}{}/{}.{extension}", self.id.spread(), self.id),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layout {
            KeyLayout::Flat => write!(f, "{}{}", Self::PREFIX, self.id),
            KeyLayout::Spread => write!(f, "{}{}/{}", Self::PREFIX, self.id.spread(), self.id),
        }
    }
}

/// A client-supplied file name, kept as given (Unicode intact) but never usable as a path,
/// and never able to show a person something other than what it is: no invisible or
/// direction-changing characters, no trailing dot or space that a file system would drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FileName(String);

impl FileName {
    pub const MAX_BYTES: usize = 255;

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| Err(DomainError::invalid("invalid_filename", format!("filename {why}")));
        if s.trim().is_empty() {
            return bad("must not be empty");
        }
        if s.len() > Self::MAX_BYTES {
            return bad(&format!("must be at most {} bytes of UTF-8", Self::MAX_BYTES));
        }
        if s.chars().any(char::is_control) {
            return bad("must not contain control characters");
        }
        if let Some(c) = s.chars().find(|&c| is_invisible(c)) {
            return bad(&format!(
                "must not contain invisible or text-direction characters (U+{:04X} here): they make a name look like another",
                u32::from(c)
            ));
        }
        if s.contains(['/', '\\']) || s.chars().all(|c| c == '.') {
            return bad("must be a plain name, without path separators");
        }
        if s.ends_with('.') || s.ends_with(char::is_whitespace) {
            return bad("must not end with a dot or a space");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Format characters (general category Cf: bidirectional overrides and isolates, zero-width
/// spaces and joiners, soft hyphens…) and line or paragraph separators.
fn is_invisible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        GeneralCategory::Format | GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
    )
}

/// A MIME type, stored lowercased as `type/subtype` or `type/subtype; charset=x`: the only
/// parameter kept is a valid `charset`; the allow-list applies to `type/subtype`.
/// A file name as search compares it: Unicode default case folding (`Straße` and `STRASSE`
/// are both `strasse`), so a prefix matches whatever the case it was typed in.
pub fn name_key(name: &str) -> String {
    caseless::default_case_fold_str(name)
}

/// What `GET /files?q=` searches: the start of a name, folded as [`name_key`] folds names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamePrefix(String);

impl NamePrefix {
    /// At most as long as a name may be; an empty prefix is no search at all.
    pub fn parse(q: &str) -> Result<Option<Self>, DomainError> {
        if q.chars().count() > FileName::MAX_BYTES {
            return Err(DomainError::invalid(
                "invalid_query",
                format!("q is {} characters: at most {} (the longest name)", q.chars().count(), FileName::MAX_BYTES),
            ));
        }
        Ok((!q.is_empty()).then(|| Self(name_key(q))))
    }

    /// The folded prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` starts with it, compared folded.
    pub fn matches(&self, name: &str) -> bool {
        name_key(name).starts_with(&self.0)
    }

    /// An already folded prefix (from a cursor this API issued).
    pub fn from_folded(folded: String) -> Self {
        Self(folded)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ContentType(String);

impl ContentType {
    /// RFC 6838 limits each of type and subtype to 127 characters.
    const MAX_NAME: usize = 127;
    /// The longest registered charset name is 40 characters (RFC 2978 allows no more).
    const MAX_CHARSET: usize = 40;

    pub fn parse(s: &str, allowed: &AllowList) -> Result<Self, DomainError> {
        let invalid = |why: &str| {
            DomainError::invalid(
                "invalid_content_type",
                format!(
                    "content_type {s:?} is refused: {why} (expected a MIME type such as image/png, with at most a charset parameter)"
                ),
            )
        };
        let mime: mime::Mime = s.trim().parse().map_err(|e: mime::FromStrError| invalid(&e.to_string()))?;
        // RFC 6838 restricted names: no wildcards, quotes or other token characters.
        let name = |t: &str| {
            (1..=Self::MAX_NAME).contains(&t.len())
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        let essence = mime.essence_str().to_ascii_lowercase();
        if !essence.split_once('/').is_some_and(|(t, st)| name(t) && name(st)) {
            return Err(invalid("type and subtype must be names such as image/png"));
        }
        let mut charset = None;
        for (param, value) in mime.params() {
            if !param.as_str().eq_ignore_ascii_case("charset") {
                return Err(invalid(&format!("parameter {:?} is not accepted, only charset", param.as_str())));
            }
            if charset.is_some() {
                return Err(invalid("charset is given twice"));
            }
            // RFC 2978 mime-charset characters that are also token characters, so the stored
            // value parses again unquoted (the fuzzer found `charset="{"` did not).
            let value = value.as_str().to_ascii_lowercase();
            let valid = (1..=Self::MAX_CHARSET).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'+-^_`~".contains(&b));
            if !valid {
                return Err(invalid("charset must be a name such as utf-8"));
            }
            charset = Some(value);
        }
        if !allowed.permits(&essence) {
            return Err(DomainError::unsupported_type(&essence, &allowed.describe()));
        }
        Ok(Self(match charset {
            Some(c) => format!("{essence}; charset={c}"),
            None => essence,
        }))
    }

    /// Trusted value read back from our own catalog.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The configured content types; `*` alone allows any well-formed type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<String>);

impl AllowList {
    pub fn parse(s: &str) -> Self {
        Self(s.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect())
    }

    pub fn permits(&self, essence: &str) -> bool {
        self.0.iter().any(|t| t == "*" || t == essence)
    }

    pub fn describe(&self) -> String {
        self.0.join(", ")
    }
}

/// Declared size in bytes: at least one, at most the configured single-PUT maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FileSize(u64);

impl FileSize {
    /// A size the client declared: at least one byte, at most `max`.
    pub fn new(bytes: u64, max: u64) -> Result<Self, DomainError> {
        match bytes {
            0 => Err(DomainError::invalid("invalid_size", "size must be at least 1 byte")),
            b if b > max => Err(DomainError::too_large(b, max)),
            b => Ok(Self(b)),
        }
    }

    pub fn from_stored(n: u64) -> Self {
        Self(n)
    }

    pub fn bytes(self) -> u64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Processing,
    Processed,
    Failed,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Pending, Status::Processing, Status::Processed, Status::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Processed => "processed",
            Status::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Processed | Status::Failed)
    }
}

impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file ended `failed`: a stable code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Failure {
    /// `size_mismatch` (more or fewer bytes than declared), `type_mismatch` (the content is not
    /// of the declared type), `corrupt_image`, `image_too_large`, `checksum_mismatch` (the bytes
    /// differ from the declared SHA-256) or `processing_failed` (processing kept failing).
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// What reading a file taught us: its fingerprint, its real type and type-specific facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analysis {
    pub sha256: String,
    /// MIME type detected from the content.
    pub detected_type: String,
    /// Type-specific results: width/height for images, counts for text…
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Key of the stored thumbnail, for images.
    pub thumbnail: Option<String>,
}

/// Whose a file is: the `sub` of the token that asked for its upload slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

impl Owner {
    pub const MAX_BYTES: usize = 255;

    /// Any non-empty subject without control characters (issuers differ: UUIDs, `auth0|…`).
    pub fn parse(sub: &str) -> Option<Self> {
        let ok = !sub.is_empty() && sub.len() <= Self::MAX_BYTES && !sub.chars().any(char::is_control);
        ok.then(|| Self(sub.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One row of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: FileId,
    /// `None` for records made before files had owners: only admins see those.
    pub owner: Option<Owner>,
    pub filename: FileName,
    pub content_type: ContentType,
    pub size: FileSize,
    pub status: Status,
    pub uploaded_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub error: Option<Failure>,
    pub analysis: Option<Analysis>,
    /// Claims taken so far: a file whose processing keeps dying is given up on, not retried forever.
    pub attempts: u32,
    /// The SHA-256 the client declared; processing fails the file when the bytes differ.
    pub checksum: Option<Sha256Digest>,
    /// Set when the bytes come in parts: the storage's multipart upload and its part size.
    pub multipart: Option<MultipartUpload>,
    /// Where its object lives: spread for every new file, flat for files from before.
    pub key_layout: KeyLayout,
    /// State changes committed so far (1 once created; claims, verdicts and releases each add
    /// one): an event's id is `{id}.{version}`, so consumers dedupe and order by it.
    pub version: u64,
}

/// A storage multipart upload in progress for one file. The part size is fixed when the
/// upload is created, so every part's exact length follows from it and the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    pub upload_id: String,
    pub part_size: u64,
}

impl FileRecord {
    pub fn pending(owner: Owner, filename: FileName, content_type: ContentType, size: FileSize) -> Self {
        Self {
            id: FileId::new(),
            owner: Some(owner),
            filename,
            content_type,
            size,
            status: Status::Pending,
            uploaded_at: now(),
            processed_at: None,
            error: None,
            analysis: None,
            attempts: 0,
            checksum: None,
            multipart: None,
            key_layout: KeyLayout::Spread,
            version: 1,
        }
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey::of(self.id, self.key_layout)
    }

    /// Whether `caller` may see this file. Anyone else gets the same answer as for a file
    /// that does not exist.
    pub fn visible_to(&self, owner: &Owner, admin: bool) -> bool {
        admin || self.owned_by(owner)
    }

    /// Whether `owner` may change this file (delete it, send or complete its parts): its
    /// owner only, admins included, who read everyone's files but change only their own.
    pub fn owned_by(&self, owner: &Owner) -> bool {
        self.owner.as_ref() == Some(owner)
    }
}

/// Millisecond precision everywhere, so a stored and re-read time compares equal.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_v7_and_sort_by_creation() {
        let ids: Vec<FileId> = (0..1000).map(|_| FileId::new()).collect();
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
        assert_eq!(FileId::parse(&texts[0]), Some(ids[0]));
    }

    #[test]
    fn file_id_rejects_other_spellings_and_versions() {
        let id = FileId::new().to_string();
        assert!(FileId::parse(&id.to_uppercase()).is_none());
        assert!(FileId::parse(&id.replace('-', "")).is_none());
        assert!(FileId::parse("6f1c1f4e-8d7e-4c1a-9a7e-2b1c3d4e5f60").is_none(), "v4");
        assert!(FileId::parse("").is_none());
    }

    #[test]
    fn object_keys_round_trip_and_reject_other_prefixes() {
        let id = FileId::new();
        let key = id.object_key().to_string();
        let hh = format!("{:02x}", id.0.as_bytes()[15]);
        assert_eq!(key, format!("uploads/{hh}/{id}"));
        assert_eq!(ObjectKey::parse(&key), Some(id.object_key()));
        let flat = ObjectKey::parse(&format!("uploads/{id}")).unwrap();
        assert_eq!((flat.file_id(), flat.layout(), flat.to_string()), (id, KeyLayout::Flat, format!("uploads/{id}")));
        let other = if hh == "00" { "01" } else { "00" };
        for bad in [
            format!("thumbnails/{id}"),
            format!("uploads/{id}/x"),
            format!("uploads/{other}/{id}"),
            format!("uploads/{hh}/{hh}/{id}"),
            format!("uploads/{hh}{id}"),
        ] {
            assert!(ObjectKey::parse(&bad).is_none(), "{bad}");
        }
        assert_eq!(id.object_key().thumbnail("thumbnails/", "jpg"), format!("thumbnails/{hh}/{id}.jpg"));
        assert_eq!(flat.thumbnail("thumbnails/", "jpg"), format!("thumbnails/{id}.jpg"));
    }

    #[test]
    fn filenames() {
        for ok in ["cat.png", "résumé final.pdf", "日本語.txt", "a", &"x".repeat(255)] {
            assert_eq!(FileName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "  ", "a/b", "..\\x", "..", "tab\there", "nul\0", "new\nline", &"x".repeat(256)] {
            let e = FileName::parse(bad).unwrap_err();
            assert_eq!((e.kind, e.code), (Refusal::Invalid, "invalid_filename"), "{bad:?}");
        }
        // 255 bytes is the limit, not 255 characters.
        assert!(FileName::parse(&"é".repeat(128)).is_err());
    }

    #[test]
    fn deceptive_filenames() {
        for ok in ["photo.v2.png", ".bashrc", "a..b", "x .txt", "مرحبا.txt", "😀.png"] {
            assert_eq!(FileName::parse(ok).unwrap().as_str(), ok);
        }
        let bidi = [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        let format = [
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{061C}',
        ];
        let separators = ['\u{2028}', '\u{2029}'];
        for c in bidi.into_iter().chain(format).chain(separators) {
            let name = format!("invoice{c}gpj.exe");
            let e = FileName::parse(&name).unwrap_err();
            assert_eq!((e.kind, e.code), (Refusal::Invalid, "invalid_filename"), "{name:?}");
            assert!(e.message.contains(&format!("U+{:04X}", u32::from(c))), "{}", e.message);
        }
        for bad in [".", "..", "...", "....", "a.", "report.pdf.", "a ", "a.txt ", "a.txt\u{00A0}", "a.txt\u{3000}"] {
            let e = FileName::parse(bad).unwrap_err();
            assert_eq!((e.kind, e.code), (Refusal::Invalid, "invalid_filename"), "{bad:?}");
        }
    }

    #[test]
    fn content_types() {
        let allow = AllowList::parse("image/png, text/plain");
        assert_eq!(ContentType::parse("Image/PNG", &allow).unwrap().as_str(), "image/png");
        assert_eq!(
            ContentType::parse("text/plain; charset=utf-8", &allow).unwrap().as_str(),
            "text/plain; charset=utf-8"
        );
        let e = ContentType::parse("application/x-msdownload", &allow).unwrap_err();
        assert_eq!((e.kind, e.code), (Refusal::Unsupported, "unsupported_content_type"));
        for bad in ["", "png", "image/", "/png", "image/png\r\nx: y", "imäge/png"] {
            let e = ContentType::parse(bad, &allow).unwrap_err();
            assert_eq!((e.kind, e.code), (Refusal::Invalid, "invalid_content_type"), "{bad:?}");
        }
        assert!(ContentType::parse("application/zip", &AllowList::parse("*")).is_ok());
    }

    #[test]
    fn content_types_are_parsed_as_mime_types() {
        let any = AllowList::parse("*");
        let stored = |s: &str| ContentType::parse(s, &any).map(|t| t.as_str().to_owned());
        assert_eq!(stored("Text/Plain; Charset=UTF-8").unwrap(), "text/plain; charset=utf-8");
        assert_eq!(stored("text/plain;charset=\"ISO-8859-1\"").unwrap(), "text/plain; charset=iso-8859-1");
        assert_eq!(stored("  text/csv  ").unwrap(), "text/csv");
        assert_eq!(stored("text/plain;").unwrap(), "text/plain");
        assert_eq!(stored("image/svg+xml").unwrap(), "image/svg+xml");
        assert_eq!(
            stored("application/vnd.openxmlformats-officedocument.wordprocessingml.document").unwrap(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        for bad in [
            "text/plain;,text/html",
            "text/plain,text/html",
            "text/plain; foo=bar",
            "text/html; charset=utf-8; boundary=x",
            "text/plain; charset",
            "e/l; charset=\"{\"",
            "text/plain; charset=",
            "text/plain; charset=\"a b\"",
            "text/plain; charset=\"utf-8\\\"\"",
            "text/plain; charset=utf-8; charset=latin1",
            "text/plain;;charset=utf-8",
            "*/*",
            "image/*",
            "text/pl\"ain",
            "a/b/c",
            &format!("text/{}", "x".repeat(128)),
            &format!("text/plain; charset={}", "x".repeat(41)),
        ] {
            let e = ContentType::parse(bad, &any).unwrap_err();
            assert_eq!((e.kind, e.code), (Refusal::Invalid, "invalid_content_type"), "{bad:?}");
        }
        // The allow-list applies to the essence, whatever the parameters.
        let text = AllowList::parse("text/plain");
        assert!(ContentType::parse("text/plain; charset=utf-8", &text).is_ok());
        let e = ContentType::parse("text/html; charset=utf-8", &text).unwrap_err();
        assert_eq!((e.kind, e.code), (Refusal::Unsupported, "unsupported_content_type"));
        assert!(e.message.contains("text/html") && !e.message.contains("charset"), "{}", e.message);
    }
}
