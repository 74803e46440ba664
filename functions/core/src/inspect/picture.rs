//! Image dimensions and thumbnails within the memory budget, read from the object stream.
//! PNG is decoded row by row and shrunk on the fly (memory O(width)); JPEG is decoded
//! already scaled down in the DCT; GIF and WebP need their whole file and pixels, which
//! are reserved first. Orientation (EXIF) is applied to the thumbnail, never the full image.

use std::cell::RefCell;
use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};
use std::rc::Rc;
use std::sync::Arc;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError};

use super::shrink::{Shrinker, fit};
use super::{Limits, Thumbnail};
use crate::budget::{MemoryBudget, OverBudget, Reservation};
use crate::domain::Failure;

const MIB: u64 = 1 << 20;
/// Decoder state that does not grow with the image: zlib window, Huffman tables, chunk buffers.
const FIXED: u64 = 2 * MIB;

/// The formats decoded for a thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageKind {
    /// From a MIME type (declared or sniffed).
    pub fn from_mime(mime: &str) -> Option<Self> {
        Some(match mime {
            "image/png" => Self::Png,
            "image/jpeg" => Self::Jpeg,
            "image/gif" => Self::Gif,
            "image/webp" => Self::Webp,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }
}

/// What one image job may use.
pub struct Job<'a> {
    pub limits: &'a Limits,
    pub budget: &'a Arc<MemoryBudget>,
    /// Bytes the file was declared to have: what a whole-file decoder holds.
    pub declared_size: u64,
}

impl Job<'_> {
    fn reserve(&self, bytes: u64) -> Result<Reservation, Failure> {
        self.budget.reserve(bytes).map_err(too_large)
    }

    fn check_pixels(&self, (w, h): (u32, u32)) -> Result<(), Failure> {
        if u64::from(w) * u64::from(h) > self.limits.max_pixels {
            return Err(Failure::new(
                "image_too_large",
                format!("{w}×{h} pixels is over the limit of {} (a decompression bomb?)", self.limits.max_pixels),
            ));
        }
        Ok(())
    }
}

/// Dimensions as shown (after orientation) and the thumbnail.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
    pub thumbnail: Thumbnail,
}

/// The signature of an image decoder: the processor's is [`decode`]; tests inject others.
pub type DecodeImage = fn(ImageKind, &mut dyn BufRead, &Job<'_>) -> Result<Picture, Failure>;

pub fn decode(kind: ImageKind, input: &mut dyn BufRead, job: &Job<'_>) -> Result<Picture, Failure> {
    match kind {
        ImageKind::Png => png(input, job),
        ImageKind::Jpeg => jpeg(input, job),
        ImageKind::Gif | ImageKind::Webp => whole(kind, input, job),
    }
}

fn too_large(e: OverBudget) -> Failure {
    Failure::new("image_too_large", format!("decoding this image {e}"))
}

fn corrupt(e: impl std::fmt::Display) -> Failure {
    Failure::new("corrupt_image", format!("the image cannot be decoded: {e}"))
}

/// The png decoder asks for `Seek` but only reads forward; a stream cannot go back.
struct ForwardOnly<R>(R, u64);

impl<R: Read> Read for ForwardOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for ForwardOnly<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.0.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.1 += n as u64;
        self.0.consume(n);
    }
}

impl<R> Seek for ForwardOnly<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match pos {
            SeekFrom::Current(0) => Ok(self.1),
            _ => Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "the object is read as a stream")),
        }
    }
}

fn png(input: &mut dyn BufRead, job: &Job<'_>) -> Result<Picture, Failure> {
    let png_err = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => too_large(OverBudget { needed: u64::MAX, total: job.budget.total() }),
        other => corrupt(other),
    };
    // Metadata chunks (ICC profiles, EXIF) are bounded separately from pixels.
    let mut d = png::Decoder::new_with_limits(ForwardOnly(input, 0), png::Limits { bytes: FIXED as usize });
    d.set_transformations(png::Transformations::normalize_to_color8());
    d.set_ignore_text_chunk(true);
    let mut reader = d.read_info().map_err(png_err)?;
    let info = reader.info();
    let (w, h) = (info.width, info.height);
    job.check_pixels((w, h))?;
    let orientation = info.exif_metadata.as_deref().and_then(Orientation::from_exif_chunk);
    let interlaced = info.interlaced;
    let raw_row = info.raw_row_length() as u64;
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let line = reader.output_line_size(w).ok_or_else(|| corrupt("row too long"))?;
    let (tw, th) = fit(w, h, job.limits.thumbnail_side);
    // Rows: the raw one, the previous one (filters), the transformed one. Interlaced
    // images are only complete at the last pass, so they need every pixel at once.
    let whole = if interlaced { line as u64 * u64::from(h) } else { 0 };
    let _r = job.reserve(FIXED + 3 * raw_row + line as u64 + whole + Shrinker::footprint(w, tw, th, channels))?;
    let mut shrink = Shrinker::new(w, h, tw, th, channels);
    if interlaced {
        let mut pixels = vec![0u8; whole as usize];
        reader.next_frame(&mut pixels).map_err(png_err)?;
        pixels.chunks_exact(line).for_each(|row| shrink.push(row));
    } else {
        while let Some(row) = reader.next_row().map_err(png_err)? {
            shrink.push(row.data());
        }
    }
    let samples = shrink.finish().ok_or_else(|| corrupt("the image data ends early"))?;
    let img = match channels {
        1 => image::GrayImage::from_raw(tw, th, samples).map(DynamicImage::ImageLuma8),
        2 => image::GrayAlphaImage::from_raw(tw, th, samples).map(DynamicImage::ImageLumaA8),
        3 => image::RgbImage::from_raw(tw, th, samples).map(DynamicImage::ImageRgb8),
        _ => image::RgbaImage::from_raw(tw, th, samples).map(DynamicImage::ImageRgba8),
    };
    picture(ImageKind::Png, img.ok_or_else(|| corrupt("unexpected pixel layout"))?, (w, h), orientation, job)
}

/// JPEG through libjpeg-turbo (`mozjpeg`), decoded straight at n/8 scale in the DCT, as
/// Pillow's draft mode does: a thumbnail never needs every pixel, and the entropy decoding that
/// remains is libjpeg-turbo's.
fn jpeg(input: &mut dyn BufRead, job: &Job<'_>) -> Result<Picture, Failure> {
    // libjpeg reports errors by unwinding (`jpeg_errors`): the decoder runs inside `isolate`.
    let exif = [mozjpeg::Marker::APP(1)];
    let header = Rc::new(RefCell::new(Vec::new()));
    let reader = Recording { inner: input, seen: header.clone(), at: 0 };
    let mut d = mozjpeg::Decompress::builder()
        .with_err(jpeg_errors())
        .with_markers(&exif)
        .from_reader(reader)
        .map_err(corrupt)?;
    // The header has been read; unknown (a header past the recording) counts as progressive.
    let progressive = is_progressive(&header.borrow()).unwrap_or(true);
    header.borrow_mut().clear();
    header.borrow_mut().shrink_to_fit();
    let (w, h) = (d.width() as u32, d.height() as u32);
    job.check_pixels((w, h))?;
    let orientation =
        d.markers().filter_map(|m| m.data.strip_prefix(b"Exif\0\0")).find_map(Orientation::from_exif_chunk);
    // The smallest n/8 that keeps the longer side at least the thumbnail's.
    let side = u64::from(job.limits.thumbnail_side);
    let n = (8 * side).div_ceil(u64::from(w.max(h)).max(1)).clamp(1, 8);
    d.scale(n as u8);
    let px = d.components().len().max(1) as u64;
    let scaled = (u64::from(w) * n).div_ceil(8) * (u64::from(h) * n).div_ceil(8) * px;
    // The output at the scaled size, a row of MCUs; a progressive JPEG also keeps every DCT
    // coefficient (2 bytes per sample, blocks of 8) until its last scan.
    let coefficients =
        if progressive { u64::from(w.next_multiple_of(16)) * u64::from(h.next_multiple_of(16)) * px * 2 } else { 0 };
    let _r = job.reserve(FIXED + 2 * scaled + u64::from(w) * 16 * px + coefficients)?;
    let img = match d.image().map_err(corrupt)? {
        mozjpeg::Format::RGB(mut rgb) => {
            let (sw, sh) = (rgb.width() as u32, rgb.height() as u32);
            let pixels: Vec<u8> = rgb.read_scanlines().map_err(corrupt)?;
            rgb.finish().map_err(corrupt)?;
            image::RgbImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageRgb8)
        }
        mozjpeg::Format::Gray(mut gray) => {
            let (sw, sh) = (gray.width() as u32, gray.height() as u32);
            let pixels: Vec<u8> = gray.read_scanlines().map_err(corrupt)?;
            gray.finish().map_err(corrupt)?;
            image::GrayImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageLuma8)
        }
        mozjpeg::Format::CMYK(mut cmyk) => {
            let (sw, sh) = (cmyk.width() as u32, cmyk.height() as u32);
            let pixels: Vec<u8> = cmyk.read_scanlines().map_err(corrupt)?;
            cmyk.finish().map_err(corrupt)?;
            let ink = |c: u8, k: u8| ((255 - u16::from(c)) * (255 - u16::from(k)) / 255) as u8;
            let rgb = pixels.chunks_exact(4).flat_map(|p| [ink(p[0], p[3]), ink(p[1], p[3]), ink(p[2], p[3])]);
            image::RgbImage::from_raw(sw, sh, rgb.collect()).map(DynamicImage::ImageRgb8)
        }
    };
    picture(ImageKind::Jpeg, img.ok_or_else(|| corrupt("unexpected pixel layout"))?, (w, h), orientation, job)
}

/// How much of a JPEG's start is kept to find its frame header: APP segments (EXIF with its
/// thumbnail, ICC profiles) come first and are at most 64 KiB each.
const HEADER_RECORDING: usize = 1 << 20;

/// Passes a stream through, keeping the first bytes the reader was shown (libjpeg has no
/// "is progressive?", and its source manager consumes a buffer only when it asks for the next).
struct Recording<'a> {
    inner: &'a mut dyn BufRead,
    seen: Rc<RefCell<Vec<u8>>>,
    /// Stream offset of `inner`'s buffer.
    at: usize,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.fill_buf()?[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Recording<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let buf = self.inner.fill_buf()?;
        let mut seen = self.seen.borrow_mut();
        let end = (self.at + buf.len()).min(HEADER_RECORDING);
        // Only a contiguous start: once the recording is cleared (or full) it stays so.
        if (self.at..end).contains(&seen.len()) {
            let from = seen.len() - self.at.min(seen.len());
            seen.extend_from_slice(&buf[from..end - self.at]);
        }
        Ok(buf)
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
        self.inner.consume(n);
    }
}

/// Whether the frame header (the first SOFn marker, walking the segments from SOI) says
/// progressive; `None` when the bytes end before it or are not JPEG segments.
fn is_progressive(jpeg: &[u8]) -> Option<bool> {
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xff {
            return None;
        }
        let marker = jpeg[i + 1];
        if marker == 0xff {
            i += 1; // fill byte
            continue;
        }
        // SOF0–SOF15 but DHT (C4), JPG (C8) and DAC (CC); progressive are C2, C6, CA, CE.
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            return Some(matches!(marker, 0xc2 | 0xc6 | 0xca | 0xce));
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
    None
}

/// libjpeg's error manager, stricter than its default: a file that ends early or whose
/// entropy-coded data is damaged fails (libjpeg would warn and paint the rest gray); warnings
/// about harmless oddities (extraneous bytes before a marker) are let through, as Pillow does.
fn jpeg_errors() -> mozjpeg_sys::jpeg_error_mgr {
    use mozjpeg_sys::{JWRN_HUFF_BAD_CODE, JWRN_JPEG_EOF, jpeg_common_struct};
    use std::os::raw::c_int;

    fn code(cinfo: &jpeg_common_struct) -> c_int {
        // SAFETY: libjpeg passes its live decompressor, whose `err` is this manager.
        unsafe { cinfo.err.as_ref() }.map_or(-1, |e| e.msg_code)
    }
    fn message(c: c_int) -> String {
        match c {
            c if c == JWRN_JPEG_EOF as c_int => "the file ends before its image data does".into(),
            c if c == JWRN_HUFF_BAD_CODE as c_int => "damaged image data (bad Huffman code)".into(),
            c => format!("libjpeg error {c}"),
        }
    }
    extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
        // Unwinds back to `isolate` without the panic hook, as the mozjpeg crate's own does.
        std::panic::resume_unwind(Box::new(message(code(cinfo))));
    }
    extern "C-unwind" fn warn(cinfo: &mut jpeg_common_struct, level: c_int) {
        let c = code(cinfo);
        if level < 0 && (c == JWRN_JPEG_EOF as c_int || c == JWRN_HUFF_BAD_CODE as c_int) {
            std::panic::resume_unwind(Box::new(message(c)));
        }
    }
    // SAFETY: a zeroed manager is what `jpeg_std_error` expects to fill in.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(fail);
    err.emit_message = Some(warn);
    err
}

/// GIF and WebP decoders need the whole file (WebP seeks) and the whole first frame.
fn whole(kind: ImageKind, input: &mut dyn BufRead, job: &Job<'_>) -> Result<Picture, Failure> {
    let mut reservation = job.reserve(FIXED + job.declared_size)?;
    let mut bytes = Vec::with_capacity(job.declared_size as usize);
    input.take(job.declared_size).read_to_end(&mut bytes).map_err(corrupt)?;
    let format = match kind {
        ImageKind::Gif => image::ImageFormat::Gif,
        _ => image::ImageFormat::WebP,
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(&bytes[..]), format);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(image_err)?;
    let (w, h) = decoder.dimensions();
    job.check_pixels((w, h))?;
    // The frame as decoded (RGBA) plus the decoder's own canvas.
    let pixels = decoder.total_bytes() + u64::from(w) * u64::from(h) * 4;
    reservation = reservation.grow(pixels).map_err(too_large)?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(reservation.bytes());
    decoder.set_limits(limits).map_err(image_err)?;
    let orientation = decoder.orientation().ok();
    let img = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    let side = job.limits.thumbnail_side;
    let small = img.thumbnail(side, side);
    drop(img);
    picture(kind, small, (w, h), orientation, job)
}

fn image_err(e: ImageError) -> Failure {
    match e {
        ImageError::Limits(l) => Failure::new("image_too_large", format!("image exceeds decoding limits ({l})")),
        other => corrupt(other),
    }
}

/// Shrinks (if the decoder left it larger), turns the thumbnail upright and encodes it.
fn picture(
    kind: ImageKind,
    img: DynamicImage,
    (w, h): (u32, u32),
    orientation: Option<Orientation>,
    job: &Job<'_>,
) -> Result<Picture, Failure> {
    let side = job.limits.thumbnail_side;
    let mut thumb = if img.width() > side || img.height() > side { img.thumbnail(side, side) } else { img };
    let orientation = orientation.unwrap_or(Orientation::NoTransforms);
    thumb.apply_orientation(orientation);
    let mut out = Cursor::new(Vec::new());
    let (content_type, extension) = if thumb.color().has_alpha() {
        thumb.to_rgba8().write_to(&mut out, image::ImageFormat::Png).map_err(image_err)?;
        ("image/png", "png")
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&thumb.to_rgb8())
            .map_err(image_err)?;
        ("image/jpeg", "jpg")
    };
    // Dimensions as the picture is shown: a quarter turn swaps them.
    use Orientation as O;
    let turned = matches!(orientation, O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH);
    let (width, height) = if turned { (h, w) } else { (w, h) };
    let thumbnail = Thumbnail { bytes: out.into_inner(), content_type, extension };
    Ok(Picture { width, height, format: kind.name(), thumbnail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(progressive: bool, exif_thumbnail: usize) -> Vec<u8> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(64, 48);
        // mozjpeg's defaults write progressive files; its fastest profile writes baseline.
        if progressive {
            c.set_progressive_mode();
        } else {
            c.set_fastest_defaults();
        }
        let mut c = c.start_compress(Vec::new()).unwrap();
        // An APP1 segment before the frame header, holding bytes that look like SOF2 markers.
        c.write_marker(mozjpeg::Marker::APP(1), &[0xff, 0xc2].repeat(exif_thumbnail));
        c.write_scanlines(&vec![90u8; 64 * 48 * 3]).unwrap();
        c.finish().unwrap()
    }

    #[test]
    fn the_frame_header_says_whether_a_jpeg_is_progressive() {
        for exif in [0, 1000] {
            assert_eq!(is_progressive(&encoded(false, exif)), Some(false), "baseline, {exif}");
            assert_eq!(is_progressive(&encoded(true, exif)), Some(true), "progressive, {exif}");
        }
        let jpeg = encoded(false, 1000);
        assert_eq!(is_progressive(&jpeg[..1000]), None, "cut before the frame header");
        assert_eq!(is_progressive(b"\xff\xd8not segments"), None);
    }

    #[test]
    fn the_recording_holds_the_header_libjpeg_read() {
        for progressive in [false, true] {
            let jpeg = encoded(progressive, 1000);
            let seen = Rc::new(RefCell::new(Vec::new()));
            // A small buffer, so libjpeg asks for many: each shown once, in order.
            let mut input = std::io::BufReader::with_capacity(100, &jpeg[..]);
            let reader = Recording { inner: &mut input, seen: seen.clone(), at: 0 };
            let d = mozjpeg::Decompress::builder().from_reader(reader).unwrap();
            assert_eq!(d.width(), 64);
            {
                let seen = seen.borrow();
                assert!(seen.len() > 2000 && jpeg.starts_with(&seen), "{} bytes recorded", seen.len());
                assert_eq!(is_progressive(&seen), Some(progressive));
            }
            // Cleared as `jpeg` does, then decoded to the end: nothing more is recorded.
            seen.borrow_mut().clear();
            let mut rgb = d.rgb().unwrap();
            let pixels: Vec<u8> = rgb.read_scanlines().unwrap();
            rgb.finish().unwrap();
            assert_eq!((pixels.len(), seen.borrow().len()), (64 * 48 * 3, 0));
        }
    }
}
