//! Real processing: fingerprint, type, type-specific results, limits, and exactly-once
//! effect under duplicate, racing and crashed deliveries. In-memory adapters; the same
//! cases run against DynamoDB (aws_e2e.rs) and the local stack (local_stack.rs).

use crate::common;

use std::time::Duration;

use common::{MemoryApp, jpeg_rotated, object, png, png_bomb, sha256_hex};
use picasso::catalog::{Catalog, Claim, Lease};
use picasso::domain::{FileRecord, Status, now};
use picasso::processor::{Delivery, Handled};
use serde_json::{Value, json};

async fn processed(app: &MemoryApp, name: &str, ctype: &str, body: &[u8]) -> (FileRecord, Value) {
    let id = app.uploaded(name, ctype, body).await;
    app.processor().handle_object(&object(id), Delivery::default()).await.unwrap();
    let (s, view) = app.call("GET", &format!("/files/{id}"), None).await;
    assert_eq!(s, 200);
    (app.catalog.get(id).await.unwrap().unwrap(), view)
}

#[tokio::test]
async fn text_gets_hash_and_counts() {
    let app = MemoryApp::new();
    let body = "première ligne\nsecond line here\nno newline at end".as_bytes();
    let (r, view) = processed(&app, "notes.txt", "text/plain", body).await;
    assert_eq!(r.status, Status::Processed);
    assert_eq!(view["sha256"], sha256_hex(body));
    assert_eq!(view["detected_type"], "text/plain");
    assert_eq!(view["metadata"], json!({"utf8": true, "lines": 3, "words": 9, "chars": body.len() - 1}));
    assert_eq!(view["thumbnail_url"], Value::Null);
    assert!(view["download_url"].as_str().unwrap().contains("notes.txt"), "{view}");

    let (_, view) = processed(&app, "latin1.csv", "text/csv", b"caf\xe9,1\n").await;
    assert_eq!(view["status"], "processed");
    assert_eq!(view["metadata"], json!({"utf8": false, "lines": 1}));
}

#[tokio::test]
async fn json_is_parsed() {
    let app = MemoryApp::new();
    let (_, ok) = processed(&app, "a.json", "application/json", br#"{"a": [1, 2, {"b": null}]}"#).await;
    assert_eq!((ok["status"].as_str(), &ok["metadata"]["json_valid"]), (Some("processed"), &json!(true)));
    let (_, bad) = processed(&app, "b.json", "application/json", br#"{"a": [1, 2"#).await;
    assert_eq!((bad["status"].as_str(), &bad["metadata"]["json_valid"]), (Some("processed"), &json!(false)));
}

#[tokio::test]
async fn images_get_dimensions_and_a_thumbnail() {
    let app = MemoryApp::new();
    let body = png(600, 400);
    let (r, view) = processed(&app, "wide.png", "image/png", &body).await;
    assert_eq!(view["status"], "processed", "{view}");
    assert_eq!(view["detected_type"], "image/png");
    assert_eq!((view["metadata"]["width"].as_u64(), view["metadata"]["height"].as_u64()), (Some(600), Some(400)));
    assert!(view["thumbnail_url"].as_str().unwrap().contains("thumbnails/"), "{view}");
    let key = r.analysis.as_ref().unwrap().thumbnail.clone().unwrap();
    assert_eq!(key, r.key().thumbnail("thumbnails/", "jpg"), "beside the file's own prefix");
    let thumb = image::load_from_memory(&app.store.get_bytes(&key).unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 171), "longest side 256, aspect kept");
}

#[tokio::test]
async fn gif_and_webp_are_understood_too() {
    let app = MemoryApp::new();
    let img =
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(320, 160, |x, _| image::Rgba([x as u8, 9, 9, 255])));
    for (format, ctype, name) in
        [(image::ImageFormat::Gif, "image/gif", "a.gif"), (image::ImageFormat::WebP, "image/webp", "a.webp")]
    {
        let mut bytes = std::io::Cursor::new(Vec::new());
        img.write_to(&mut bytes, format).unwrap();
        let (r, view) = processed(&app, name, ctype, &bytes.into_inner()).await;
        assert_eq!(
            (view["status"].as_str(), view["detected_type"].as_str()),
            (Some("processed"), Some(ctype)),
            "{view}"
        );
        assert_eq!((view["metadata"]["width"].as_u64(), view["metadata"]["height"].as_u64()), (Some(320), Some(160)));
        let thumb =
            image::load_from_memory(&app.store.get_bytes(&r.analysis.unwrap().thumbnail.unwrap()).unwrap()).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (256, 128), "{name}");
    }
}

#[tokio::test]
async fn jpeg_thumbnails_honour_exif_orientation() {
    let app = MemoryApp::new();
    let (r, view) = processed(&app, "portrait.jpg", "image/jpeg", &jpeg_rotated(400, 200)).await;
    assert_eq!(view["status"], "processed", "{view}");
    // Stored 400×200, shown rotated a quarter turn: 200 wide, 400 high.
    assert_eq!((view["metadata"]["width"].as_u64(), view["metadata"]["height"].as_u64()), (Some(200), Some(400)));
    let thumb =
        image::load_from_memory(&app.store.get_bytes(&r.analysis.unwrap().thumbnail.unwrap()).unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (128, 256));

    // Large enough for the decoder to scale down by 8 before the thumbnail is made.
    let (r, view) = processed(&app, "big.jpg", "image/jpeg", &jpeg_rotated(2400, 1600)).await;
    assert_eq!((view["metadata"]["width"].as_u64(), view["metadata"]["height"].as_u64()), (Some(1600), Some(2400)));
    let thumb =
        image::load_from_memory(&app.store.get_bytes(&r.analysis.unwrap().thumbnail.unwrap()).unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (171, 256));
}

/// A progressive JPEG, as phones and mozjpeg write them.
fn progressive_jpeg(w: usize, h: usize) -> Vec<u8> {
    mozjpeg_file(w, h, true, |i| [(i % w) as u8, (i / w) as u8, 128])
}

/// A baseline JPEG of noise: megabytes, so the decoder reads it in many buffers.
fn noisy_baseline_jpeg(w: usize, h: usize) -> Vec<u8> {
    mozjpeg_file(w, h, false, |i| {
        let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        [x as u8, (x >> 8) as u8, (x >> 16) as u8]
    })
}

fn mozjpeg_file(w: usize, h: usize, progressive: bool, pixel: impl Fn(usize) -> [u8; 3]) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h).flat_map(pixel).collect();
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w, h);
    // mozjpeg's defaults write progressive files; its fastest profile writes baseline.
    if progressive {
        c.set_progressive_mode();
    } else {
        c.set_fastest_defaults();
    }
    let mut c = c.start_compress(Vec::new()).unwrap();
    c.write_scanlines(&pixels).unwrap();
    c.finish().unwrap()
}

#[tokio::test]
async fn a_progressive_jpeg_gets_its_thumbnail() {
    let app = MemoryApp::new();
    let (r, view) = processed(&app, "progressive.jpg", "image/jpeg", &progressive_jpeg(1200, 800)).await;
    assert_eq!(view["status"], "processed", "{view}");
    assert_eq!((view["metadata"]["width"].as_u64(), view["metadata"]["height"].as_u64()), (Some(1200), Some(800)));
    let thumb =
        image::load_from_memory(&app.store.get_bytes(&r.analysis.unwrap().thumbnail.unwrap()).unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 171));
}

/// Memory is reserved from the frame header: a baseline JPEG needs a row of blocks, a
/// progressive one keeps every coefficient until its last scan (36 MB at 3000×2000).
#[tokio::test]
async fn a_jpeg_reserves_memory_by_its_kind_baseline_or_progressive() {
    use picasso::budget::MemoryBudget;
    use picasso::catalog::Outcome;
    use picasso::domain::{ContentType, FileName, FileSize, Owner};
    use picasso::inspect::Inspector;
    let inspector = Inspector::new(MemoryBudget::new(24 << 20));
    for (name, jpeg, expect) in [
        ("baseline", jpeg_rotated(3000, 2000), "processed"),
        ("baseline, noise", noisy_baseline_jpeg(3000, 2000), "processed"),
        ("progressive", progressive_jpeg(3000, 2000), "image_too_large"),
    ] {
        let record = FileRecord::pending(
            Owner::parse("alice").unwrap(),
            FileName::parse("photo.jpg").unwrap(),
            ContentType::from_stored("image/jpeg".into()),
            FileSize::from_stored(jpeg.len() as u64),
        );
        let reader: picasso::store::ObjectReader = Box::pin(std::io::Cursor::new(jpeg));
        let got = match inspector.inspect(&record, reader).await.unwrap().outcome {
            Outcome::Processed(_) => "processed".to_owned(),
            Outcome::Failed(f, _) => f.code.to_string(),
        };
        assert_eq!(got, expect, "{name}");
    }
}

/// libjpeg paints what is missing gray and carries on; a file cut short or damaged must fail.
#[tokio::test]
async fn a_jpeg_cut_short_or_damaged_fails_instead_of_getting_a_gray_thumbnail() {
    let app = MemoryApp::new();
    for (name, jpeg) in [("baseline.jpg", jpeg_rotated(800, 600)), ("progressive.jpg", progressive_jpeg(800, 600))] {
        let cut = &jpeg[..jpeg.len() * 2 / 3];
        let (_, view) = processed(&app, name, "image/jpeg", cut).await;
        assert_eq!(view["status"], "failed", "{name}: {view}");
        assert_eq!(view["error"]["code"], "corrupt_image", "{name}: {view}");
        assert!(view["error"]["message"].as_str().unwrap().contains("ends before"), "{name}: {view}");
    }
    // The header intact, the second half of the entropy-coded data all one bits (0xFF, stuffed
    // with 0x00 as JPEG requires): longer than any Huffman code.
    let mut damaged = jpeg_rotated(800, 600);
    let n = damaged.len();
    for (i, b) in damaged[n / 2..n - 2].iter_mut().enumerate() {
        *b = if i % 2 == 0 { 0xff } else { 0x00 };
    }
    let (_, view) = processed(&app, "damaged.jpg", "image/jpeg", &damaged).await;
    assert_eq!(
        (view["status"].as_str(), view["error"]["code"].as_str()),
        (Some("failed"), Some("corrupt_image")),
        "{view}"
    );
}

#[tokio::test]
async fn permanent_failures_are_recorded_with_a_reason_and_not_retried() {
    let app = MemoryApp::new();
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.resize(1024, 0);
    let mut corrupt = png(64, 64);
    corrupt.truncate(corrupt.len() / 2);
    let mut zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip.resize(100, 7);
    for (name, ctype, body, code) in [
        ("cat.png", "image/png", exe, "type_mismatch"),
        ("data.csv", "text/csv", zip, "type_mismatch"),
        ("half.png", "image/png", corrupt, "corrupt_image"),
        ("bomb.png", "image/png", png_bomb(), "image_too_large"),
    ] {
        let id = app.uploaded(name, ctype, &body).await;
        // Through the queue path: a permanent failure is acknowledged, not retried.
        let event = json!({"Records": [{
            "messageId": "m", "receiptHandle": "r", "md5OfBody": "", "attributes": {}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1",
            "body": json!({"Records": [{"eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "picasso-uploads"}, "object": {"key": id.object_key().to_string()}}}]}).to_string()
        }]});
        assert_eq!(app.function().handle_event(event).await.unwrap(), json!({"batchItemFailures": []}), "{name}");
        let (_, view) = app.call("GET", &format!("/files/{id}"), None).await;
        assert_eq!((view["status"].as_str(), view["error"]["code"].as_str()), (Some("failed"), Some(code)), "{view}");
        assert!(!view["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(view["sha256"], sha256_hex(&body), "what was learnt is kept");
        assert_eq!(view["download_url"], Value::Null);
    }
}

#[tokio::test]
async fn two_processors_racing_on_one_event_end_with_one_result() {
    let app = MemoryApp::new();
    let id = app.uploaded("race.png", "image/png", &png(300, 300)).await;
    let (a, b) = (app.processor(), app.processor());
    let obj = object(id);
    let (ra, rb) = tokio::join!(a.handle_object(&obj, Delivery::default()), b.handle_object(&obj, Delivery::default()));
    let finished = [&ra, &rb].iter().filter(|r| matches!(r, Ok(Handled::Finished(_)))).count();
    assert_eq!(finished, 1, "{ra:?} {rb:?}");
    // The loser is a duplicate, or busy (retried later): then it finds the file final.
    for r in [ra, rb] {
        if r.is_err() {
            assert_eq!(a.handle_object(&obj, Delivery::default()).await.unwrap(), Handled::Duplicate);
        }
    }
    assert_eq!(app.catalog.get(id).await.unwrap().unwrap().status, Status::Processed);
}

#[tokio::test]
async fn a_crash_mid_file_ends_processed_after_redelivery() {
    let app = MemoryApp::new();
    let id = app.uploaded("crash.txt", "text/plain", b"hello").await;
    // A processor claimed the file, then died without finishing.
    let dead = Lease::new(now(), Duration::from_millis(300));
    assert!(matches!(app.catalog.claim(id, &dead, now()).await.unwrap(), Claim::Claimed(_)));
    let p = app.processor().with_lease(Duration::from_secs(60));
    // Redelivered while the dead lease still runs: transient, back to the queue.
    assert!(p.handle_object(&object(id), Delivery::default()).await.is_err());
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Redelivered after the lease ran out: taken over and finished.
    assert!(matches!(p.handle_object(&object(id), Delivery::default()).await.unwrap(), Handled::Finished(_)));
    let r = app.catalog.get(id).await.unwrap().unwrap();
    assert_eq!(r.status, Status::Processed);
    // The dead processor, coming back, cannot overwrite the result.
    let late = picasso::catalog::Outcome::failed("late", "too late");
    assert_eq!(app.catalog.finish(id, &dead, &late, now()).await.unwrap(), picasso::catalog::Transition::Skipped);
    assert_eq!(app.catalog.get(id).await.unwrap().unwrap(), r);
}

/// Reads that break halfway, as a dropped connection does.
fn broken(bytes: Vec<u8>) -> picasso::store::ObjectReader {
    Box::pin(broken_after(bytes[..bytes.len() / 2].to_vec()))
}

/// Yields `bytes`, then a connection reset.
fn broken_after(bytes: Vec<u8>) -> impl tokio::io::AsyncRead + Send {
    use tokio::io::AsyncReadExt;
    std::io::Cursor::new(bytes).chain(Failing)
}

struct Failing;
impl tokio::io::AsyncRead for Failing {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
    }
}

#[tokio::test]
async fn a_read_error_is_transient_and_releases_the_claim() {
    let app = MemoryApp::new();
    let id = app.uploaded("big.txt", "text/plain", &vec![b'x'; 100_000]).await;
    app.store.fail_reads(Some(broken));
    assert!(app.processor().handle_object(&object(id), Delivery::default()).await.is_err());
    app.store.fail_reads(None);
    assert_eq!(
        app.catalog.get(id).await.unwrap().unwrap().status,
        Status::Pending,
        "released at once, not after the lease"
    );
    assert!(matches!(
        app.processor().handle_object(&object(id), Delivery::default()).await.unwrap(),
        Handled::Finished(_)
    ));
}
