//! What processing does to one file: stream it once (SHA-256, real size, type from the
//! magic bytes, text counts), then type-specific work (image dimensions and thumbnail).
//! Memory stays bounded: only images and JSON up to configured sizes are kept whole.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::catalog::Outcome;
use crate::domain::{Analysis, Failure, FileRecord};
use crate::store::ObjectReader;

/// Bounds that keep a hostile or huge file from exhausting memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest image (compressed) that is decoded; larger ones get hash and type only.
    pub max_image_bytes: u64,
    /// Largest decoded image, in pixels: the decompression-bomb guard.
    pub max_pixels: u64,
    /// Largest allocation the image decoder may make.
    pub max_decode_alloc: u64,
    /// Largest JSON document parsed to check it.
    pub max_json_bytes: u64,
    pub thumbnail_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_image_bytes: 64 << 20,
            max_pixels: 64_000_000,
            max_decode_alloc: 512 << 20,
            max_json_bytes: 16 << 20,
            thumbnail_side: 256,
        }
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

/// Streams the object once. `Err` means the read failed (transient); every verdict about
/// the content itself is an `Outcome`.
pub async fn inspect(record: &FileRecord, mut body: ObjectReader, limits: &Limits) -> anyhow::Result<Inspection> {
    let declared = record.content_type.as_str().split(';').next().unwrap_or_default().trim().to_owned();
    let declared_size = record.size.bytes();
    let is_image = declared.starts_with("image/");
    let is_text = is_textual(&declared);
    // Whole copies only where the type needs them, and only up to a bound.
    let mut whole = match (is_image, declared == "application/json") {
        (true, _) if declared_size <= limits.max_image_bytes => Some(Vec::with_capacity(declared_size as usize)),
        (_, true) if declared_size <= limits.max_json_bytes => Some(Vec::with_capacity(declared_size as usize)),
        _ => None,
    };
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF);
    let mut text = is_text.then(TextStats::default);
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = body.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        size += n as u64;
        if size > declared_size {
            // Stop early: the verdict is known and the rest may be huge.
            return Ok(failed("size_mismatch", format!("declared {declared_size} bytes but more arrived"), None));
        }
        hasher.update(chunk);
        if head.len() < SNIFF {
            head.extend_from_slice(&chunk[..chunk.len().min(SNIFF - head.len())]);
        }
        if let Some(t) = text.as_mut() {
            t.feed(chunk);
        }
        if let Some(w) = whole.as_mut() {
            w.extend_from_slice(chunk);
        }
    }
    let sniffed = infer::get(&head);
    let mut analysis = Analysis {
        sha256: hex(&hasher.finalize()),
        detected_type: sniffed.map_or_else(|| fallback_type(&declared, text.as_ref()), |t| t.mime_type().to_owned()),
        ..Analysis::default()
    };
    if size != declared_size {
        let msg = format!("declared {declared_size} bytes but {size} arrived");
        return Ok(failed("size_mismatch", msg, Some(analysis)));
    }
    if let Some(why) = mismatch(&declared, sniffed.as_ref()) {
        let msg = format!("declared {declared} but the content is {} ({why})", analysis.detected_type);
        return Ok(failed("type_mismatch", msg, Some(analysis)));
    }
    if let Some(t) = text {
        analysis.metadata = t.finish();
    }
    if declared == "application/json" {
        let valid = whole.as_deref().map(|b| serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok());
        analysis.metadata.insert("json_valid".into(), json!(valid));
    }
    let mut thumbnail = None;
    if is_image && let Some(bytes) = whole {
        let limits = limits.clone();
        match tokio::task::spawn_blocking(move || picture(&bytes, &limits)).await? {
            Ok((meta, thumb)) => {
                analysis.metadata = meta;
                thumbnail = Some(thumb);
            }
            Err(f) => return Ok(Inspection { outcome: Outcome::Failed(f, Some(analysis)), thumbnail: None }),
        }
    }
    Ok(Inspection { outcome: Outcome::Processed(analysis), thumbnail })
}

fn failed(code: &str, message: String, analysis: Option<Analysis>) -> Inspection {
    Inspection { outcome: Outcome::Failed(Failure::new(code, message), analysis), thumbnail: None }
}

fn is_textual(declared: &str) -> bool {
    declared.starts_with("text/") || declared == "application/json"
}

fn fallback_type(declared: &str, text: Option<&TextStats>) -> String {
    match text {
        Some(t) if t.valid && is_textual(declared) => declared.to_owned(),
        _ => "application/octet-stream".to_owned(),
    }
}

/// A mismatch that matters: content of a kind the declared type would never hold.
fn mismatch(declared: &str, sniffed: Option<&infer::Type>) -> Option<&'static str> {
    use infer::MatcherType as M;
    if declared == "application/pdf" {
        return (sniffed.map(infer::Type::mime_type) != Some("application/pdf")).then_some("not a PDF");
    }
    let sniffed = sniffed.map(infer::Type::matcher_type);
    if declared.starts_with("image/") {
        return match sniffed {
            Some(M::Image) => None,
            Some(M::App) => Some("an executable"),
            Some(M::Archive) => Some("an archive"),
            _ => Some("not an image"),
        };
    }
    if is_textual(declared) {
        return match sniffed {
            Some(M::App) => Some("an executable"),
            Some(M::Archive) => Some("an archive"),
            Some(M::Image | M::Audio | M::Video | M::Font | M::Doc | M::Book) => Some("binary content"),
            _ => None,
        };
    }
    None
}

/// Decodes an image within limits; returns its metadata and a thumbnail.
fn picture(bytes: &[u8], limits: &Limits) -> Result<(Map<String, Value>, Thumbnail), Failure> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| corrupt(e.into()))?;
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_decode_alloc);
    reader.limits(l);
    let format = reader.format();
    let scaled = match format {
        Some(image::ImageFormat::Jpeg) => scaled_jpeg(bytes, limits)?,
        _ => None,
    };
    let (mut img, (w, h), orientation) = match scaled {
        Some(decoded) => decoded,
        None => {
            let mut decoder = reader.into_decoder().map_err(corrupt)?;
            let dims = decoder.dimensions();
            check_pixels(dims, limits)?;
            let orientation = decoder.orientation().map_err(corrupt)?;
            (DynamicImage::from_decoder(decoder).map_err(corrupt)?, dims, orientation)
        }
    };
    img.apply_orientation(orientation);
    let side = limits.thumbnail_side;
    let thumb = img.thumbnail(side, side);
    let mut out = Cursor::new(Vec::new());
    let (content_type, extension) = if thumb.color().has_alpha() {
        thumb.write_to(&mut out, image::ImageFormat::Png).map_err(corrupt)?;
        ("image/png", "png")
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&thumb.to_rgb8())
            .map_err(corrupt)?;
        ("image/jpeg", "jpg")
    };
    // Dimensions as the picture is shown: a quarter turn swaps them.
    use image::metadata::Orientation as O;
    let turned = matches!(orientation, O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH);
    let (width, height) = if turned { (h, w) } else { (w, h) };
    let mut meta = Map::new();
    meta.insert("width".into(), json!(width));
    meta.insert("height".into(), json!(height));
    meta.insert("format".into(), json!(format.and_then(|f| f.extensions_str().first().copied()).unwrap_or("?")));
    Ok((meta, Thumbnail { bytes: out.into_inner(), content_type, extension }))
}

fn corrupt(e: ImageError) -> Failure {
    match e {
        ImageError::Limits(l) => Failure::new("image_too_large", format!("image exceeds decoding limits ({l})")),
        other => Failure::new("corrupt_image", format!("the image cannot be decoded: {other}")),
    }
}

fn check_pixels((w, h): (u32, u32), limits: &Limits) -> Result<(), Failure> {
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(Failure::new(
            "image_too_large",
            format!("{w}×{h} pixels is over the limit of {} (a decompression bomb?)", limits.max_pixels),
        ));
    }
    Ok(())
}

type Decoded = (DynamicImage, (u32, u32), image::metadata::Orientation);

/// JPEG's DCT can decode straight at 1/2, 1/4 or 1/8 scale: a thumbnail never needs the
/// full 12 megapixels. `None` for what this path does not handle (CMYK…): the full decode does.
fn scaled_jpeg(bytes: &[u8], limits: &Limits) -> Result<Option<Decoded>, Failure> {
    let bad = |e: jpeg_decoder::Error| Failure::new("corrupt_image", format!("the image cannot be decoded: {e}"));
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.read_info().map_err(bad)?;
    let Some(info) = d.info() else { return Ok(None) };
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_pixels((w, h), limits)?;
    let orientation = d
        .exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let k = f64::from(limits.thumbnail_side) / f64::from(w.max(h));
    let want = |n: u32| ((f64::from(n) * k).ceil() as u16).max(1);
    let (sw, sh) = d.scale(want(w), want(h)).map_err(bad)?;
    d.set_max_decoding_buffer_size(usize::try_from(limits.max_decode_alloc).unwrap_or(usize::MAX));
    let pixels = d.decode().map_err(bad)?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let img = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => image::RgbImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageRgb8),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageLuma8),
        _ => None,
    };
    Ok(img.map(|img| (img, (w, h), orientation)))
}

/// The ASCII characters `char::is_whitespace` accepts.
static ASCII_SPACE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = (i as u8 as char).is_ascii_whitespace() || i == 0x0b;
        i += 1;
    }
    t
};

/// UTF-8 validity and line, word and character counts, fed chunk by chunk.
#[derive(Debug)]
pub struct TextStats {
    valid: bool,
    /// Bytes of a character split across chunks.
    carry: Vec<u8>,
    lines: u64,
    words: u64,
    chars: u64,
    in_word: bool,
    last: Option<u8>,
}

impl Default for TextStats {
    fn default() -> Self {
        Self { valid: true, carry: Vec::new(), lines: 0, words: 0, chars: 0, in_word: false, last: None }
    }
}

impl TextStats {
    pub fn feed(&mut self, mut chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        self.last = chunk.last().copied();
        if !self.valid {
            return;
        }
        // Complete a character split by the previous chunk.
        while !self.carry.is_empty() && !chunk.is_empty() {
            self.carry.push(chunk[0]);
            chunk = &chunk[1..];
            match std::str::from_utf8(&self.carry) {
                Ok(s) => {
                    let s = s.to_owned();
                    self.count(&s);
                    self.carry.clear();
                }
                Err(e) if e.error_len().is_some() || self.carry.len() >= 4 => {
                    self.valid = false;
                    return;
                }
                Err(_) => {}
            }
        }
        match std::str::from_utf8(chunk) {
            Ok(s) => self.count(s),
            Err(e) => {
                let (ok, rest) = chunk.split_at(e.valid_up_to());
                self.count(std::str::from_utf8(ok).unwrap_or_default());
                if e.error_len().is_some() {
                    self.valid = false;
                } else {
                    self.carry.extend_from_slice(rest);
                }
            }
        }
    }

    /// Byte-wise and branch-light: a `char` walk with `is_whitespace` on every character
    /// ran at a fifth of the hashing speed. Only non-ASCII lead bytes take the slow path.
    fn count(&mut self, s: &str) {
        for (i, &b) in s.as_bytes().iter().enumerate() {
            let space = if b >= 0xc0 {
                s[i..].chars().next().is_some_and(char::is_whitespace)
            } else {
                ASCII_SPACE[b as usize]
            };
            // Continuation bytes belong to the character their lead byte started.
            let starts_char = b & 0xc0 != 0x80;
            let in_word = if starts_char { !space } else { self.in_word };
            self.chars += u64::from(starts_char);
            self.words += u64::from(in_word && !self.in_word);
            self.in_word = in_word;
        }
    }

    pub fn finish(self) -> Map<String, Value> {
        let valid = self.valid && self.carry.is_empty();
        // A last line without a newline still counts.
        let lines = self.lines + u64::from(self.last.is_some_and(|b| b != b'\n'));
        let mut m = Map::new();
        m.insert("utf8".into(), json!(valid));
        m.insert("lines".into(), json!(lines));
        if valid {
            m.insert("words".into(), json!(self.words));
            m.insert("chars".into(), json!(self.chars));
        }
        m
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(chunks: &[&[u8]]) -> Map<String, Value> {
        let mut t = TextStats::default();
        for c in chunks {
            t.feed(c);
        }
        t.finish()
    }

    #[test]
    fn text_counts_do_not_depend_on_chunk_boundaries() {
        let text = "héllo wörld\nsecond line — ünïcode ✓\nlast\u{a0}word\u{2003}em\u{3000}ideographic";
        let whole = stats(&[text.as_bytes()]);
        assert_eq!(whole["utf8"], true);
        assert_eq!(whole["lines"], 3);
        // Unicode spaces (no-break, em, ideographic) separate words too.
        assert_eq!(whole["words"], 11);
        assert_eq!(whole["chars"], text.chars().count());
        let bytes = text.as_bytes();
        for cut in 1..bytes.len() {
            assert_eq!(stats(&[&bytes[..cut], &bytes[cut..]]), whole, "cut at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(stats(&singles), whole);
    }

    #[test]
    fn the_ascii_table_agrees_with_is_whitespace() {
        for b in 0u8..128 {
            assert_eq!(ASCII_SPACE[b as usize], (b as char).is_whitespace(), "{b:#x}");
        }
    }

    #[test]
    fn invalid_utf8_is_reported_wherever_it_is() {
        assert_eq!(stats(&[b"ok\n", b"\xff\n"])["utf8"], false);
        assert_eq!(stats(&[b"ends mid char \xc3"])["utf8"], false);
        assert_eq!(stats(&[b"\xc3", b"("])["utf8"], false);
        let m = stats(&[b"a\n\xfe\nb\n"]);
        assert_eq!((m["lines"].as_u64(), m.get("words")), (Some(3), None));
    }

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
    }
}
