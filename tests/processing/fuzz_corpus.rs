//! The fuzz corpus as regression tests: every input in `fuzz/corpus/<target>/` (seeds and the
//! minimized inputs kept from fuzzing runs) and every crasher in `fuzz/artifacts/<target>/` goes
//! through the same entry point and assertions as in `cargo fuzz` (`fuzz/src/lib.rs`, included
//! here), so whatever the fuzzer once found stays fixed. Fuzzing itself is `make fuzz`, by hand.
//!
//! `cargo test --test processing -- --ignored write_seeds` writes the seeds again.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod entries;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use picasso::catalog::Outcome;

type Entry = fn(&[u8]) -> Option<Outcome>;

fn inspect(data: &[u8]) -> Option<Outcome> {
    let outcome = entries::inspect(data);
    assert!(outcome.is_some() || data.is_empty(), "no outcome");
    outcome
}

fn upload_request(data: &[u8]) -> Option<Outcome> {
    entries::upload_request(data);
    None
}

fn list_params(data: &[u8]) -> Option<Outcome> {
    entries::list_params(data);
    None
}

fn notification(data: &[u8]) -> Option<Outcome> {
    entries::notification(data);
    None
}

const TARGETS: [(&str, Entry); 4] = [
    ("inspect", inspect),
    ("upload_request", upload_request),
    ("list_params", list_params),
    ("notification", notification),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file() && !is_hidden(p)).collect();
    v.sort();
    v
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// Each target's inputs, and the names of the files that panicked.
fn replay(target: &str, entry: Entry) -> (usize, Vec<String>) {
    let dirs = [fuzz_dir().join("corpus").join(target), fuzz_dir().join("artifacts").join(target)];
    let mut failed = Vec::new();
    let mut n = 0;
    for file in dirs.iter().flat_map(|d| files(d)) {
        n += 1;
        let data = std::fs::read(&file).unwrap();
        if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
            failed.push(file.strip_prefix(fuzz_dir()).unwrap_or(&file).display().to_string());
        }
    }
    (n, failed)
}

fn check(target: &str) {
    let entry = TARGETS.iter().find(|(t, _)| *t == target).unwrap().1;
    let (n, failed) = replay(target, entry);
    assert!(n > 0, "no corpus for {target} in fuzz/corpus/{target}");
    assert!(failed.is_empty(), "{target}: {} of {n} inputs panicked: {failed:?}", failed.len());
}

#[test]
fn inspect_corpus_and_crashers() {
    check("inspect");
}

#[test]
fn upload_request_corpus_and_crashers() {
    check("upload_request");
}

#[test]
fn list_params_corpus_and_crashers() {
    check("list_params");
}

#[test]
fn notification_corpus_and_crashers() {
    check("notification");
}

/// A directory under `fuzz/corpus` or `fuzz/artifacts` with no entry here would be skipped.
#[test]
fn every_fuzz_target_is_replayed() {
    for kind in ["corpus", "artifacts"] {
        let Ok(dirs) = std::fs::read_dir(fuzz_dir().join(kind)) else { continue };
        for d in dirs {
            let name = d.unwrap().file_name().into_string().unwrap();
            assert!(TARGETS.iter().any(|(t, _)| *t == name), "fuzz/{kind}/{name} is not replayed by this test");
        }
    }
}

/// Every seed of the `inspect` corpus is a valid file of its declared type and is processed,
/// unless it is there to fail (its name says `fail-`).
#[test]
fn inspect_seeds_end_as_their_names_say() {
    for file in files(&fuzz_dir().join("corpus/inspect")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") {
            continue;
        }
        let outcome = entries::inspect(&std::fs::read(&file).unwrap()).unwrap();
        let want_failure = name.starts_with("seed-fail-");
        assert_eq!(matches!(outcome, Outcome::Failed(..)), want_failure, "{name}: {outcome:?}");
    }
}

mod seeds {
    //! The seeds: small valid inputs of every kind, and a few that must fail, so the fuzzer
    //! starts from every branch of the entry points.

    use std::io::Write;
    use std::path::Path;

    use image::{ImageEncoder, RgbImage, RgbaImage};

    /// EXIF with orientation 6 (rotate 90°), big-endian TIFF.
    const EXIF_ROTATE_90: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

    fn gradient_rgb(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 40) as u8, (y * 50) as u8, ((x + y) * 20) as u8]))
    }

    fn png(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, exif: bool) -> Vec<u8> {
        let mut info = png::Info::with_size(w, h);
        info.color_type = color;
        info.bit_depth = depth;
        if color == png::ColorType::Indexed {
            info.palette = Some(vec![0, 0, 0, 255, 128, 0].into());
        }
        if exif {
            info.exif_metadata = Some(EXIF_ROTATE_90.into());
        }
        let mut out = Vec::new();
        let mut writer = png::Encoder::with_info(&mut out, info).unwrap().write_header().unwrap();
        let bits = color.samples() * depth as usize;
        let row = (w as usize * bits).div_ceil(8);
        let data: Vec<u8> = (0..row * h as usize).map(|i| (i * 37) as u8).collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crate::common::crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// An 8×8 RGB PNG in Adam7 order (the png crate writes no interlaced images), in a zlib
    /// stream of stored blocks.
    fn interlaced_png() -> Vec<u8> {
        const PASSES: [(u32, u32, u32, u32); 7] =
            [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        let (w, h) = (8u32, 8u32);
        let img = gradient_rgb(w, h);
        let mut raw = Vec::new();
        for (x0, y0, dx, dy) in PASSES {
            for y in (y0..h).step_by(dy as usize) {
                raw.push(0);
                for x in (x0..w).step_by(dx as usize) {
                    raw.extend_from_slice(&img.get_pixel(x, y).0);
                }
            }
        }
        let mut z = vec![0x78, 0x01, 0x01];
        z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
        z.extend_from_slice(&raw);
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &raw {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 1]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn jpeg(img: &image::DynamicImage, exif: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 50);
        if exif {
            enc.set_exif_metadata(EXIF_ROTATE_90.to_vec()).unwrap();
        }
        enc.encode_image(img).unwrap();
        out
    }

    fn gif() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            for shift in [0u8, 100] {
                let frame = RgbaImage::from_fn(5, 4, |x, y| {
                    image::Rgba([((x * 50) as u8).wrapping_add(shift), (y * 60) as u8, 0, 255])
                });
                enc.encode_frame(image::Frame::new(frame)).unwrap();
            }
        }
        out
    }

    fn webp() -> Vec<u8> {
        let mut out = Vec::new();
        let img = RgbaImage::from_fn(6, 5, |x, y| image::Rgba([(x * 40) as u8, (y * 50) as u8, 90, 200]));
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(img.as_raw(), 6, 5, image::ExtendedColorType::Rgba8)
            .unwrap();
        out
    }

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
    const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0\xb8\0\0\0\0\0\0\0@\0\0\0\0\0\0\0";
    const ZIP: &[u8] = b"PK\x03\x04\x14\0\0\0\x08\0\0\0!\0\0\0\0\0\0\0\0\0\0\0\0\0\x05\0\0\0a.txtPK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::File::create(dir.join(name)).unwrap().write_all(bytes).unwrap();
    }

    fn typed(first: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![first];
        v.extend_from_slice(body);
        v
    }

    pub fn write_all(fuzz: &Path) {
        use png::{BitDepth as D, ColorType as C};
        let inspect = fuzz.join("corpus/inspect");
        let rgb = image::DynamicImage::ImageRgb8(gradient_rgb(16, 8));
        let gray =
            image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(8, 8, |x, y| image::Luma([(x * y * 4) as u8])));
        let text = "héllo wörld\nsecond line — ünïcode ✓\nlast\u{a0}word";
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("seed-png-rgba8", typed(0, &png(4, 3, C::Rgba, D::Eight, false))),
            ("seed-png-gray16", typed(0, &png(3, 2, C::Grayscale, D::Sixteen, false))),
            ("seed-png-indexed1", typed(0, &png(5, 3, C::Indexed, D::One, false))),
            ("seed-png-rgb8-exif6", typed(0, &png(3, 2, C::Rgb, D::Eight, true))),
            ("seed-png-adam7", typed(0, &interlaced_png())),
            ("seed-jpeg-rgb", typed(1, &jpeg(&rgb, false))),
            ("seed-jpeg-gray-exif6", typed(1, &jpeg(&gray, true))),
            ("seed-gif-2frames", typed(2, &gif())),
            ("seed-webp-lossless", typed(3, &webp())),
            ("seed-text", typed(4, text.as_bytes())),
            ("seed-text-read-7-bytes-at-a-time", typed(0x64, text.as_bytes())),
            ("seed-text-latin1", typed(4, b"caf\xe9 cr\xe8me\r\n")),
            ("seed-json", typed(5, br#"{"a": [1, 2.5e3, "x\u00e9", {"b": null}], "t": true}"#)),
            ("seed-json-invalid", typed(5, br#"{"a": [1, 2,}"#)),
            ("seed-pdf", typed(6, PDF)),
            ("seed-octet-zip", typed(7, ZIP)),
            ("seed-octet-exe", typed(7, EXE)),
            ("seed-png-declared-as-jpeg", typed(1, &png(2, 2, C::Rgb, D::Eight, false))),
            ("seed-fail-png-but-exe", typed(0, EXE)),
            ("seed-fail-text-but-png", typed(4, &png(2, 2, C::Rgb, D::Eight, false))),
            ("seed-fail-pdf-but-text", typed(6, b"not a pdf\n")),
            ("seed-fail-gif-truncated", typed(2, &gif()[..40])),
            ("seed-fail-jpeg-truncated", typed(1, &jpeg(&rgb, false)[..200])),
            ("seed-fail-text-one-byte-short", typed(0x10, b"declared one byte more\n")),
            ("seed-fail-text-one-byte-long", typed(0x18, b"declared one byte less\n")),
        ];
        for (name, bytes) in cases {
            write(&inspect, name, &bytes);
        }

        let upload = fuzz.join("corpus/upload_request");
        let bodies: [(&str, &str); 11] = [
            ("seed-valid", r#"{"filename": "cat.png", "content_type": "image/png", "size": 12345}"#),
            ("seed-charset", r#"{"filename":"notes.txt","content_type":"text/plain; charset=UTF-8","size":1}"#),
            ("seed-rlo", r#"{"filename":"invoice\u202Egpj.exe","content_type":"application/octet-stream","size":100}"#),
            ("seed-type-smuggled", r#"{"filename":"a.txt","content_type":"text/plain;,text/html","size":5}"#),
            ("seed-dots", r#"{"filename":"..","content_type":"image/png","size":0}"#),
            ("seed-huge", r#"{"filename":"x ","content_type":"image/*","size":1e30}"#),
            ("seed-missing", r#"{"filename":"x","size":-1}"#),
            ("seed-name", "photo 2024.jpg"),
            ("seed-zero-width-name", "zero\u{200b}width.txt"),
            ("seed-type-params", "Text/HTML; Charset=\"utf-8\"; q=1"),
            ("seed-groups-claim", "[admins users]"),
        ];
        for (name, body) in bodies {
            write(&upload, name, body.as_bytes());
        }

        use picasso::catalog::{Cursor, Order, Scope};
        use picasso::domain::{FileId, Owner, Status};
        let list = fuzz.join("corpus/list_params");
        // The owner `list_params` parses for (`owner()` in fuzz/src/lib.rs).
        let mine = Scope::Owner(Owner::parse("fuzz:user|1").unwrap());
        let processed =
            Cursor { scope: mine.clone(), status: Some(Status::Processed), order: Order::Newest, after: FileId::new() }
                .encode();
        let any = Cursor { scope: mine, status: None, order: Order::Oldest, after: FileId::new() }.encode();
        let all =
            Cursor { scope: Scope::All, status: Some(Status::Failed), order: Order::Newest, after: FileId::new() }
                .encode();
        let queries = [
            ("seed-all", format!("limit=10&status=processed&cursor={processed}")),
            ("seed-any-status", format!("limit=50&cursor={any}")),
            ("seed-cursor-alone", any.clone()),
            ("seed-admin-all", format!("scope=all&status=failed&cursor={all}")),
            ("seed-scope-mine", "scope=mine&limit=1".to_owned()),
            ("seed-owner-alone", "auth0|5f7c:x".to_owned()),
            ("seed-limits", "limit=0&limit=1001&limit=+7".to_owned()),
            ("seed-bad-status", "status=bogus%20value&cursor=".to_owned()),
            ("seed-encoded", "st%61tus=f%61iled&cursor=dj%45".to_owned()),
        ];
        for (name, q) in queries {
            write(&list, name, q.as_bytes());
        }

        let note = fuzz.join("corpus/notification");
        let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
        for name in ["s3-put.json", "sqs-s3-batch.json", "sqs-s3-test-event.json", "schedule-sweep.json"] {
            write(&note, &format!("seed-{name}"), &std::fs::read(events.join(name)).unwrap());
        }
        let sqs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(events.join("sqs-s3-batch.json")).unwrap()).unwrap();
        write(&note, "seed-sqs-body", sqs["Records"][0]["body"].as_str().unwrap().as_bytes());
        let odd_key =
            picasso::events::ObjectRef { bucket: "picasso-uploads".into(), key: "uploads/a b+c%2F/é".into() };
        write(&note, "seed-odd-key", odd_key.notification().to_string().as_bytes());
    }
}

#[test]
#[ignore = "writes the seeds into fuzz/corpus: run by hand"]
fn write_seeds() {
    seeds::write_all(&fuzz_dir());
}
