//! The fuzzed entry points, shared by the `cargo fuzz` targets (`fuzz_targets/`) and by the
//! regression test that replays the corpus and every crasher (`tests/fuzz_corpus.rs`, which
//! includes this file as a module). Each function takes the raw input, drives one entry of
//! `picasso` with it and asserts what must hold whatever the input: no panic escapes, errors
//! are client errors, what is accepted parses again to itself.
//!
//! Only `picasso`, `tokio`, `serde_json`, `sha2` and `urlencoding` are used here: the root
//! crate's tests have them too.

use std::collections::HashMap;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use picasso::api::{ListParams, UploadRequest};
use picasso::budget::MemoryBudget;
use picasso::catalog::{Catalog, Cursor as ListCursor, MAX_LIMIT, Order, Outcome, Scope};
use picasso::config::Config;
use picasso::domain::{AllowList, ContentType, FileId, FileName, FileRecord, FileSize, Owner, Status};
use picasso::error::ApiError;
use picasso::events::{Incoming, Notification};
use picasso::identity::{Caller, groups_in};
use picasso::inspect::{Inspection, Inspector};
use picasso::lambda::ProcessorFunction;
use picasso::memory::{MemoryCatalog, MemoryStore};
use picasso::processor::Processor;
use picasso::store::ObjectReader;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

/// The declared types the first byte of an `inspect` input picks from (its low 3 bits).
pub const DECLARED_TYPES: [&str; 8] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "application/json",
    "application/pdf",
    "application/octet-stream",
];

/// The pixel limit while fuzzing (the processor's is 256 Mpx): same code, less time per input.
pub const FUZZ_MAX_PIXELS: u64 = 2_000_000;

/// How the second reading of an `inspect` input is cut into reads (bits 5–7 of the first byte).
const STEPS: [usize; 8] = [1, 2, 3, 7, 64, 4096, 65536, usize::MAX];

/// The failure codes inspection may give a file. `processing_failed` is not one of them: it
/// means a panic outside the decoders' isolation, a bug of ours.
const CODES: [&str; 4] = ["size_mismatch", "type_mismatch", "corrupt_image", "image_too_large"];

thread_local! {
    /// As the processor runs: decoding on tokio's blocking pool, fed by an async reader.
    static RUNTIME: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(f))
}

/// A reader that hands out at most `step` bytes per read, as a slow network would.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = self.step.min(buf.remaining()).min(self.data.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// A caller's subject, with the separator cursors use in it.
fn owner() -> Owner {
    Owner::parse("fuzz:user|1").unwrap()
}

fn inspect_once(declared: &str, size: u64, reader: ObjectReader) -> Inspection {
    let record = FileRecord::pending(
        owner(),
        FileName::parse("f").unwrap(),
        ContentType::from_stored(declared.to_owned()),
        FileSize::from_stored(size),
    );
    let budget = MemoryBudget::new(256 << 20);
    let mut inspector = Inspector::new(budget.clone());
    // A few hundred bytes of JPEG may declare 100+ Mpx and take seconds to decode (time, not
    // memory, grows with pixels): a lower limit keeps the fuzzer exploring instead of waiting.
    inspector.limits.max_pixels = FUZZ_MAX_PIXELS;
    // A `Cursor` never fails to read: an `Err` here would be a transient error made up.
    let inspection =
        block_on(inspector.inspect(&record, reader)).expect("inspecting an in-memory body is never a read error");
    drop(inspector);
    // Whatever the file did, its job gave back all it reserved (or the budget shrinks for
    // good) and holds nothing of the budget any more (or something leaked).
    assert_eq!(budget.in_use(), 0, "{declared}: reservations outlive the inspection");
    assert_eq!(Arc::strong_count(&budget), 1, "{declared}: a reference to the memory budget leaked");
    inspection
}

/// `inspect` input: the first byte picks the declared type (bits 0–2), the declared size
/// (bits 3–4: 0 and 1 the body's length, 2 one byte more, 3 one byte less) and how the body is
/// cut into reads the second time (bits 5–7: 1, 2, 3, 7, 64… bytes a read, at most 32 reads);
/// the rest is the file's body.
///
/// Asserted: inspection returns an outcome (a decoder's panic ends as `corrupt_image`, any
/// other panic would be `processing_failed` and fails here); the same bytes cut into other
/// reads give the same outcome and thumbnail; the hash is the body's; text counts are those
/// of the whole text.
pub fn inspect(data: &[u8]) -> Option<Outcome> {
    let (&first, body) = data.split_first()?;
    let declared = DECLARED_TYPES[usize::from(first & 7)];
    let len = body.len() as u64;
    let size = match (first >> 3) & 3 {
        2 => len + 1,
        3 => len.saturating_sub(1),
        _ => len,
    };
    // At most 32 reads: each costs the feeder a 256 KiB buffer and a trip to the blocking thread.
    let step = STEPS[usize::from(first >> 5)].max(body.len().div_ceil(32));

    let whole = inspect_once(declared, size, Box::pin(Cursor::new(body.to_vec())));
    let cut = inspect_once(declared, size, Box::pin(Chunked { data: body.to_vec(), at: 0, step }));
    assert_eq!(whole.outcome, cut.outcome, "{declared}: the outcome depends on how the body was read (step {step})");
    assert_eq!(
        whole.thumbnail.as_ref().map(|t| &t.bytes),
        cut.thumbnail.as_ref().map(|t| &t.bytes),
        "{declared}: the thumbnail depends on how the body was read (step {step})"
    );

    match &whole.outcome {
        Outcome::Failed(f, _) => {
            assert!(CODES.contains(&f.code.as_str()), "{declared}: unexpected failure {f:?}");
        }
        Outcome::Processed(a) => {
            assert_eq!(size, len, "{declared}: processed although {len} bytes came for {size} declared");
            assert_eq!(a.sha256, hex(&Sha256::digest(body)), "{declared}: wrong hash");
            let image = declared.starts_with("image/");
            assert_eq!(whole.thumbnail.is_some(), image, "{declared}: thumbnail {:?}", whole.thumbnail.is_some());
            if image {
                let px = |k: &str| a.metadata.get(k).and_then(Value::as_u64).unwrap_or(0);
                assert!(px("width") > 0 && px("height") > 0, "{declared}: processed without dimensions: {a:?}");
            }
            if declared.starts_with("text/") || declared == "application/json" {
                check_text_counts(body, &a.metadata);
            }
        }
    }
    Some(whole.outcome)
}

/// The counts of the whole text, computed here at once.
fn check_text_counts(body: &[u8], meta: &serde_json::Map<String, Value>) {
    let text = std::str::from_utf8(body);
    let lines = body.iter().filter(|&&b| b == b'\n').count() + usize::from(body.last().is_some_and(|&b| b != b'\n'));
    let mut want = serde_json::Map::new();
    want.insert("utf8".into(), text.is_ok().into());
    want.insert("lines".into(), lines.into());
    if let Ok(t) = text {
        want.insert("words".into(), t.split_whitespace().count().into());
        want.insert("chars".into(), t.chars().count().into());
    }
    let got: serde_json::Map<String, Value> =
        meta.iter().filter(|(k, _)| *k != "json_valid").map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, want, "text statistics differ from the whole text's");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn config(allowed: &str) -> Config {
    config_of("uploads", allowed)
}

fn config_of(bucket: &str, allowed: &str) -> Config {
    let env = [("TABLE_NAME", "files"), ("BUCKET_NAME", bucket), ("ALLOWED_CONTENT_TYPES", allowed)];
    Config::from_lookup(|k| env.iter().find(|(name, _)| *name == k).map(|(_, v)| (*v).to_owned())).unwrap()
}

/// An error the API answers with: always the client's fault, never a 5xx.
fn client_error<E: Clone + Into<ApiError>>(e: &E, what: &str) {
    let e: ApiError = e.clone().into();
    assert!(e.status.is_client_error(), "{what}: {} {} {}", e.status, e.code, e.message);
}

/// Format (Cf) characters and separators refused in names (the deceptive names).
fn deceptive(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}')
        || matches!(c, '\u{FEFF}' | '\u{00AD}')
        || matches!(c, '\u{2028}' | '\u{2029}')
}

fn check_filename(name: &FileName) {
    let s = name.as_str();
    assert!(!s.chars().any(|c| c.is_control() || deceptive(c) || c == '/' || c == '\\'), "accepted {s:?}");
    assert!(!s.ends_with('.') && !s.ends_with(char::is_whitespace) && !s.trim().is_empty(), "accepted {s:?}");
    assert!(s.len() <= FileName::MAX_BYTES, "accepted {} bytes", s.len());
    assert_eq!(FileName::parse(s).map(|n| n.as_str().to_owned()), Ok(s.to_owned()), "a name accepted once");
}

/// Accepted types are stored canonical (`type/subtype` or with `; charset=x`, lowercase) and
/// parse again to themselves under the same allow-list.
fn check_content_type(ct: &ContentType, allowed: &AllowList) {
    let s = ct.as_str();
    assert_eq!(s, s.to_ascii_lowercase(), "stored in lowercase");
    let essence = s.split(';').next().unwrap_or_default();
    assert!(allowed.permits(essence), "{s:?} accepted outside {allowed:?}");
    if let Some((_, param)) = s.split_once(';') {
        assert!(param.starts_with(" charset=") && !param[9..].is_empty(), "{s:?}: only a charset is kept");
    }
    assert_eq!(ContentType::parse(s, allowed).as_ref(), Ok(ct), "{s:?} does not parse again to itself");
}

/// `upload_request` input: the body of `POST /upload`, under the default configuration (any
/// type) and a narrowed one; as UTF-8 it is also a file name, a content type and a groups
/// claim on their own.
pub fn upload_request(data: &[u8]) {
    for allowed in ["*", "image/png,text/plain, application/json"] {
        let config = config(allowed);
        match UploadRequest::parse(data, &config) {
            Ok(req) => {
                check_filename(&req.filename);
                check_content_type(&req.content_type, &config.allowed_types);
                assert!((1..=config.max_upload_bytes).contains(&req.size.bytes()), "size {:?}", req.size);
            }
            Err(e) => client_error(&e, "POST /upload"),
        }
        if let Ok(s) = std::str::from_utf8(data) {
            match ContentType::parse(s, &config.allowed_types) {
                Ok(ct) => check_content_type(&ct, &config.allowed_types),
                Err(e) => client_error(&e, "content_type"),
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        match FileName::parse(s) {
            Ok(name) => check_filename(&name),
            Err(e) => client_error(&e, "filename"),
        }
        // The groups claim as API Gateway flattens it.
        let _ = (groups_in(s, true), groups_in(s, false));
    }
}

/// The query of `GET /files` as axum decodes it (`+` is a space, `%XX` escapes, the last of
/// a repeated key wins); `None` when axum would refuse it first (not UTF-8 once decoded).
pub fn query_map(query: &[u8]) -> Option<HashMap<String, String>> {
    let decode = |s: &[u8]| -> Option<String> {
        let s: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        String::from_utf8(urlencoding::decode_binary(&s).into_owned()).ok()
    };
    let mut map = HashMap::new();
    for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        map.insert(decode(k)?, decode(v)?);
    }
    Some(map)
}

/// `list_params` input: a query string for `GET /files`, parsed for a user and for an admin;
/// as UTF-8 it is also a cursor, decoded for every listing (whose files, which status), and an
/// owner, whose cursors must decode back. What is accepted is within bounds, belongs to the
/// caller's listing and encodes back to itself.
pub fn list_params(data: &[u8]) {
    if let Some(q) = query_map(data) {
        for admin in [false, true] {
            let caller = Caller { owner: owner(), admin };
            match ListParams::parse(&q, &caller) {
                Ok(p) => {
                    assert!((1..=MAX_LIMIT).contains(&p.limit), "limit {}", p.limit);
                    assert!(admin || p.scope == Scope::Owner(owner()), "a user lists {:?}", p.scope);
                    if let Some(c) = p.cursor {
                        assert_eq!(
                            (&c.scope, c.status, c.order),
                            (&p.scope, p.status, p.order),
                            "a cursor of another listing"
                        );
                        assert_eq!(ListCursor::decode(&c.encode(), &p.scope, p.status, p.order).as_ref(), Ok(&c));
                    }
                }
                Err(e) => client_error(&e, "GET /files"),
            }
        }
    }
    let Ok(s) = std::str::from_utf8(data) else { return };
    let scopes = [Scope::Owner(owner()), Scope::All];
    for scope in &scopes {
        for status in std::iter::once(None).chain(Status::ALL.map(Some)) {
            for order in [Order::Newest, Order::Oldest] {
                match ListCursor::decode(s, scope, status, order) {
                    Ok(c) => {
                        assert_eq!(
                            (&c.scope, c.status, c.order),
                            (scope, status, order),
                            "a cursor of another listing"
                        );
                        assert_eq!(ListCursor::decode(&c.encode(), scope, status, order).as_ref(), Ok(&c));
                    }
                    Err(e) => client_error(&e, "cursor"),
                }
            }
        }
    }
    if let Some(o) = Owner::parse(s) {
        let scope = Scope::Owner(o);
        let c = ListCursor {
            scope: scope.clone(),
            status: Some(Status::Processed),
            order: Order::Oldest,
            after: FileId::new(),
        };
        assert_eq!(ListCursor::decode(&c.encode(), &scope, c.status, c.order).as_ref(), Ok(&c), "{s:?}'s cursor");
        for other in &scopes {
            if *other != scope {
                assert!(
                    ListCursor::decode(&c.encode(), other, c.status, c.order).is_err(),
                    "{s:?}'s cursor opens {other:?}"
                );
            }
        }
    }
}

/// The object the notification seeds name (`events/`), known to the in-memory catalog below.
pub const KNOWN_KEY: &str = "uploads/8a/0190a8a4-3f6e-7cc2-9b1e-2f4e5d6c7b8a";

/// `notification` input: JSON, as an SQS message body (an S3 notification or S3's test
/// event) and as a whole Lambda event for the processor, which then handles it against an
/// in-memory catalog holding one pending file. What the sweeper would send for each object
/// parses back to that object.
pub fn notification(data: &[u8]) {
    if let Ok(body) = std::str::from_utf8(data) {
        check_notification(body);
    }
    let Ok(event) = serde_json::from_slice::<Value>(data) else { return };
    if let Ok(Incoming::Sqs(sqs)) = Incoming::from_value(event.clone()) {
        for msg in &sqs.records {
            check_notification(msg.body.as_deref().unwrap_or_default());
        }
    }
    block_on(async {
        let catalog = Arc::new(MemoryCatalog::default());
        let store = Arc::new(MemoryStore::default());
        let mut record = FileRecord::pending(
            owner(),
            FileName::parse("hello.txt").unwrap(),
            ContentType::from_stored("text/plain".into()),
            FileSize::from_stored(6),
        );
        record.id = picasso::domain::ObjectKey::parse(KNOWN_KEY).unwrap().file_id();
        catalog.insert(&record, record.uploaded_at + std::time::Duration::from_secs(3600)).await.unwrap();
        store.put_bytes(KNOWN_KEY, b"hello\n".to_vec());
        let budget = MemoryBudget::new(picasso::budget::DEFAULT_BUDGET);
        let config = config_of("picasso-uploads", "*");
        let processor = ProcessorFunction {
            processor: Processor::from_config(catalog.clone(), store, &config, budget),
            sweeper: None,
        };
        // Errors are fine (an unsupported event, a message returned to the queue); panics are not.
        let _ = processor.handle_event(event).await;
        // Whatever happened, the file is not lost and not left `processing` (stuck).
        let after = catalog.get(record.id).await.unwrap().expect("the known file is never lost");
        assert_ne!(after.status, Status::Processing, "left processing: {after:?}");
    });
}

fn check_notification(body: &str) {
    if let Ok(Notification::Objects(objects)) = Notification::parse(body) {
        for obj in objects {
            let again = Notification::parse(&obj.notification().to_string());
            match again {
                Ok(Notification::Objects(v)) => assert_eq!(v, vec![obj], "the sweeper's notification round trip"),
                other => panic!("the sweeper's notification for {obj:?} parses as {other:?}"),
            }
        }
    }
}

/// In the fuzzer, every panic aborts (libFuzzer's hook): right for a panic that escapes, but
/// a decoder's panic is caught by inspection and fails the file, which is the behaviour under
/// test. Panics on the fuzzing thread (the one calling this, in the target's `init`) still
/// abort; those on other threads (tokio's blocking pool: the decoders) are printed once per
/// place and left to the code that catches them.
/// `PICASSO_FUZZ_STRICT=1` keeps libFuzzer's hook: any panic is a crash (to hunt decoder bugs).
pub fn tolerate_caught_panics() {
    if std::env::var_os("PICASSO_FUZZ_STRICT").is_some_and(|v| v == "1") {
        return;
    }
    // libFuzzer's `main` is not Rust's: this thread has no name to tell it by.
    let fuzzing = std::thread::current().id();
    let abort = std::panic::take_hook();
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == fuzzing {
            return abort(info);
        }
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if seen.lock().unwrap_or_else(|e| e.into_inner()).insert(at.clone()) {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            eprintln!("picasso-fuzz: caught panic (first at {at}): {msg}");
        }
    }));
}
