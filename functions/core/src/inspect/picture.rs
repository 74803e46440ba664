//! Image dimensions and thumbnails within the memory budget, read from the object stream.
//! PNG is decoded row by row and shrunk on the fly (memory O(width)); JPEG is decoded
//! already scaled down in the DCT; GIF and WebP need their whole file and pixels, which
//! are reserved first. Orientation (EXIF) is applied to the thumbnail, never the full image.

use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};
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

/// JPEG's DCT decodes straight at 1/2, 1/4 or 1/8 scale: a thumbnail never needs every pixel.
fn jpeg(input: &mut dyn BufRead, job: &Job<'_>) -> Result<Picture, Failure> {
    let mut d = jpeg_decoder::Decoder::new(input);
    d.read_info().map_err(corrupt)?;
    let info = d.info().ok_or_else(|| corrupt("no frame header"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    job.check_pixels((w, h))?;
    let orientation = d.exif_data().and_then(Orientation::from_exif_chunk);
    let k = f64::from(job.limits.thumbnail_side) / f64::from(w.max(h));
    let want = |n: u32| ((f64::from(n) * k).ceil() as u16).max(1);
    let (sw, sh) = d.scale(want(w), want(h)).map_err(corrupt)?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let px = info.pixel_format.pixel_bytes() as u64;
    let scaled = u64::from(sw) * u64::from(sh) * px;
    // Component planes and the output at the scaled size; a progressive JPEG also keeps
    // every DCT coefficient (2 bytes per sample, blocks of 8) until its last scan.
    let coefficients = match info.coding_process {
        jpeg_decoder::CodingProcess::DctProgressive => {
            u64::from(w.next_multiple_of(16)) * u64::from(h.next_multiple_of(16)) * px * 2
        }
        _ => 0,
    };
    let need = FIXED + 2 * scaled + u64::from(w) * 16 * px + coefficients;
    let _r = job.reserve(need)?;
    d.set_max_decoding_buffer_size(usize::try_from(need).unwrap_or(usize::MAX));
    let pixels = d.decode().map_err(corrupt)?;
    use jpeg_decoder::PixelFormat as P;
    let img = match info.pixel_format {
        P::RGB24 => image::RgbImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageRgb8),
        P::L8 => image::GrayImage::from_raw(sw, sh, pixels).map(DynamicImage::ImageLuma8),
        // Big-endian 16-bit gray: the high byte is enough for a thumbnail.
        P::L16 => image::GrayImage::from_raw(sw, sh, pixels.chunks_exact(2).map(|p| p[0]).collect())
            .map(DynamicImage::ImageLuma8),
        P::CMYK32 => {
            let ink = |c: u8, k: u8| ((255 - u16::from(c)) * (255 - u16::from(k)) / 255) as u8;
            let rgb = pixels.chunks_exact(4).flat_map(|p| [ink(p[0], p[3]), ink(p[1], p[3]), ink(p[2], p[3])]);
            image::RgbImage::from_raw(sw, sh, rgb.collect()).map(DynamicImage::ImageRgb8)
        }
    };
    picture(ImageKind::Jpeg, img.ok_or_else(|| corrupt("unexpected pixel layout"))?, (w, h), orientation, job)
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
