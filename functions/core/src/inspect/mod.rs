//! What processing does to one file: stream it once (SHA-256, real size, type from the
//! magic bytes, text counts), then type-specific work on the same stream (image dimensions
//! and thumbnail, JSON check). Nothing is kept whole: what a decoder must hold is reserved
//! against the memory budget first, and a decoder that panics fails the file, not the process.

mod picture;
mod shrink;
mod text;

use std::io::{BufRead, BufReader, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde_json::{Map, json};
use sha2::{Digest, Sha256};

pub use picture::{DecodeImage, ImageKind, Job, Picture, decode};
pub use text::TextStats;

use crate::budget::MemoryBudget;
use crate::catalog::Outcome;
use crate::domain::{Analysis, Failure, FileRecord};
use crate::integrity::hex;
use crate::store::ObjectReader;

/// Bounds that keep a hostile or huge file from exhausting the function.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest image, in pixels. Memory no longer depends on it (see the budget); time does.
    pub max_pixels: u64,
    pub thumbnail_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_pixels: 256_000_000, thumbnail_side: 256 }
    }
}

/// The result of inspecting one file, and the thumbnail to store if there is one.
pub struct Inspection {
    pub outcome: Outcome,
    pub thumbnail: Option<Thumbnail>,
}

pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
}

const CHUNK: usize = 256 << 10;
const SNIFF: usize = 8 << 10;

/// Inspects files within limits and a memory budget shared by every job that uses it.
#[derive(Clone)]
pub struct Inspector {
    pub limits: Limits,
    pub budget: Arc<MemoryBudget>,
    pub decode_image: DecodeImage,
}

/// What a type gets beyond the fingerprint (hash, size, detected type).
enum Kind {
    Image,
    Text {
        json: bool,
    },
    Pdf,
    /// Any other type: fingerprinted only.
    Other,
}

impl Kind {
    fn of(declared: &str) -> Self {
        if ImageKind::from_mime(declared).is_some() {
            return Kind::Image;
        }
        match declared {
            "application/json" => Kind::Text { json: true },
            "application/pdf" => Kind::Pdf,
            t if t.starts_with("text/") => Kind::Text { json: false },
            _ => Kind::Other,
        }
    }
}

impl Inspector {
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self { limits: Limits::default(), budget, decode_image: decode }
    }

    /// Streams the object once, on a blocking thread. `Err` means the read failed (transient);
    /// every verdict about the content itself is an `Outcome`.
    ///
    /// An async task feeds the blocking side through a small channel. Dropping this future
    /// (a deadline) drops the feeder, so the blocking side sees its input end in an error and
    /// returns at once, giving back its memory, instead of waiting on a stalled stream.
    pub async fn inspect(&self, record: &FileRecord, body: ObjectReader) -> anyhow::Result<Inspection> {
        let (this, record) = (self.clone(), record.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let blocking = tokio::task::spawn_blocking(move || this.inspect_blocking(&record, Fed::new(rx)));
        let (_, joined) = tokio::join!(feed(body, tx), blocking);
        match joined {
            Ok(result) => result,
            // A bug of ours, not a property of the file: it still must not crash-loop.
            Err(e) if e.is_panic() => {
                let why = panic_message(e.into_panic().as_ref());
                Ok(failed("processing_failed", format!("processing stopped on an internal error: {why}"), None))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn inspect_blocking(&self, record: &FileRecord, input: impl Read) -> anyhow::Result<Inspection> {
        let declared = record.content_type.as_str().split(';').next().unwrap_or_default().trim().to_owned();
        let declared_size = record.size.bytes();
        let kind = Kind::of(&declared);
        let mut src = Source {
            inner: input,
            declared: declared_size,
            size: 0,
            hasher: Sha256::new(),
            text: matches!(kind, Kind::Text { .. }).then(TextStats::default),
            read_error: None,
            too_long: false,
        };
        let mut head = Vec::with_capacity(SNIFF);
        let _ = (&mut src).take(SNIFF as u64).read_to_end(&mut head);
        let sniffed = infer::get(&head);
        let mismatch = mismatch(&declared, sniffed.as_ref());
        let readable = src.read_error.is_none() && !src.too_long;
        let mut input = std::io::Cursor::new(head).chain(BufReader::with_capacity(CHUNK, &mut src));
        let mut picture = None;
        let mut json_valid = None;
        if mismatch.is_none() && readable {
            match kind {
                Kind::Image => {
                    let job = Job { limits: &self.limits, budget: &self.budget, declared_size };
                    let sniffed_kind = sniffed.and_then(|t| ImageKind::from_mime(t.mime_type()));
                    picture = Some(match sniffed_kind {
                        Some(k) => isolate(|| (self.decode_image)(k, &mut input, &job)),
                        None => Err(Failure::new("corrupt_image", "the content is not a PNG, JPEG, GIF or WebP image")),
                    });
                }
                Kind::Text { json: true } => json_valid = Some(is_json(&mut input)),
                _ => {}
            }
        }
        // The rest still counts for the hash and the size.
        let _ = std::io::copy(&mut input, &mut std::io::sink());
        drop(input);
        if let Some(e) = src.read_error {
            return Err(anyhow::Error::new(e).context("reading the object"));
        }
        if src.too_long {
            // Stopped early: the verdict is known and the rest may be huge.
            return Ok(failed("size_mismatch", format!("declared {declared_size} bytes but more arrived"), None));
        }
        let mut analysis = Analysis {
            sha256: hex(&src.hasher.finalize()),
            detected_type: sniffed
                .map_or_else(|| fallback_type(&declared, src.text.as_ref()), |t| t.mime_type().to_owned()),
            ..Analysis::default()
        };
        if src.size != declared_size {
            let msg = format!("declared {declared_size} bytes but {} arrived", src.size);
            return Ok(failed("size_mismatch", msg, Some(analysis)));
        }
        if let Some(why) = mismatch {
            let msg = format!("declared {declared} but the content is {} ({why})", analysis.detected_type);
            return Ok(failed("type_mismatch", msg, Some(analysis)));
        }
        if let Some(t) = src.text {
            analysis.metadata = t.finish();
        }
        if let Some(valid) = json_valid {
            analysis.metadata.insert("json_valid".into(), json!(valid));
        }
        let thumbnail = match picture {
            None => None,
            Some(Err(f)) => return Ok(Inspection { outcome: Outcome::Failed(f, Some(analysis)), thumbnail: None }),
            Some(Ok(p)) => {
                let mut meta = Map::new();
                meta.insert("width".into(), json!(p.width));
                meta.insert("height".into(), json!(p.height));
                meta.insert("format".into(), json!(p.format));
                analysis.metadata = meta;
                Some(p.thumbnail)
            }
        };
        Ok(Inspection { outcome: Outcome::Processed(analysis), thumbnail })
    }
}

/// Reads the object in chunks into the channel until the end, an error, or the reader is gone.
async fn feed(mut body: ObjectReader, tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>) {
    use tokio::io::AsyncReadExt;
    loop {
        // Filled without zeroing first: streams often return a few KiB per read.
        let mut chunk = Vec::with_capacity(CHUNK);
        let item = body.read_buf(&mut chunk).await.map(|_| chunk);
        let last = !matches!(&item, Ok(c) if !c.is_empty());
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// The blocking side of [`feed`]: an empty chunk is the end; a closed channel without it
/// means the work was called off.
struct Fed {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Fed {
    fn new(rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>) -> Self {
        Self { rx, chunk: Vec::new(), at: 0, ended: false }
    }
}

impl Read for Fed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(c)) if c.is_empty() => self.ended = true,
                Some(Ok(c)) => (self.chunk, self.at) = (c, 0),
                Some(Err(e)) => return Err(e),
                None => return Err(std::io::Error::other("reading was called off (deadline)")),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Hashes, counts and measures every byte the decoders read, and remembers why reading
/// stopped: a failed read (transient, retried) or more bytes than declared (a verdict).
struct Source<R> {
    inner: R,
    declared: u64,
    size: u64,
    hasher: Sha256,
    text: Option<TextStats>,
    read_error: Option<std::io::Error>,
    too_long: bool,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.too_long || self.read_error.is_some() {
            return Err(std::io::Error::other("reading stopped"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.read_error = Some(e);
                return Err(copy);
            }
        };
        let chunk = &buf[..n];
        if self.size + n as u64 > self.declared {
            self.too_long = true;
            return Err(std::io::Error::other("more bytes than declared"));
        }
        self.size += n as u64;
        self.hasher.update(chunk);
        if let Some(t) = self.text.as_mut() {
            t.feed(chunk);
        }
        Ok(n)
    }
}

/// A decoder's panic is a verdict on the file, like any decoding error.
fn isolate<T>(work: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|p| {
        Err(Failure::new(
            "corrupt_image",
            format!("the image decoder failed on this file: {}", panic_message(p.as_ref())),
        ))
    })
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Streams the document through the parser: validity without holding it.
fn is_json(input: &mut dyn BufRead) -> bool {
    let mut de = serde_json::Deserializer::from_reader(input);
    serde::de::Deserialize::deserialize(&mut de).map(|_: serde::de::IgnoredAny| ()).and_then(|()| de.end()).is_ok()
}

fn failed(code: &str, message: String, analysis: Option<Analysis>) -> Inspection {
    Inspection { outcome: Outcome::Failed(Failure::new(code, message), analysis), thumbnail: None }
}

fn fallback_type(declared: &str, text: Option<&TextStats>) -> String {
    match text {
        Some(t) if t.is_valid() => declared.to_owned(),
        _ => "application/octet-stream".to_owned(),
    }
}

/// A mismatch that matters: content of a kind the declared type would never hold. Only the
/// types checked deeply have one; any other type is fingerprinted and its detected type shown.
fn mismatch(declared: &str, sniffed: Option<&infer::Type>) -> Option<&'static str> {
    use infer::MatcherType as M;
    let kind = sniffed.map(infer::Type::matcher_type);
    match Kind::of(declared) {
        Kind::Pdf => (sniffed.map(infer::Type::mime_type) != Some("application/pdf")).then_some("not a PDF"),
        Kind::Image => match kind {
            Some(M::Image) => None,
            Some(M::App) => Some("an executable"),
            Some(M::Archive) => Some("an archive"),
            _ => Some("not an image"),
        },
        Kind::Text { .. } => match kind {
            Some(M::App) => Some("an executable"),
            Some(M::Archive) => Some("an archive"),
            Some(M::Image | M::Audio | M::Video | M::Font | M::Doc | M::Book) => Some("binary content"),
            _ => None,
        },
        Kind::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_that_matter() {
        let png = infer::get(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        let exe = infer::get(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0").unwrap();
        let zip = infer::get(b"PK\x03\x04\x14\0\0\0\x08\0").unwrap();
        let pdf = infer::get(b"%PDF-1.7\n").unwrap();
        assert!(mismatch("image/png", Some(&png)).is_none());
        assert!(mismatch("image/jpeg", Some(&png)).is_none(), "another image type is not worth failing");
        assert_eq!(mismatch("image/png", Some(&exe)), Some("an executable"));
        assert_eq!(mismatch("image/png", Some(&zip)), Some("an archive"));
        assert!(mismatch("image/png", None).is_some());
        assert!(mismatch("text/plain", None).is_none());
        assert!(mismatch("text/csv", Some(&zip)).is_some());
        assert!(mismatch("application/json", Some(&exe)).is_some());
        assert!(mismatch("application/pdf", Some(&pdf)).is_none());
        assert!(mismatch("application/pdf", None).is_some());
        assert!(mismatch("application/pdf", Some(&zip)).is_some());
        // Types not checked deeply are fingerprinted, never refused for their content.
        assert!(mismatch("image/heic", None).is_none());
        assert!(mismatch("application/octet-stream", Some(&exe)).is_none());
        assert!(mismatch("application/zip", Some(&zip)).is_none());
    }
}
