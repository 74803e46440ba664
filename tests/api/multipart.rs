//! Large files and integrity through the API, on in-memory adapters: multipart uploads
//! (sign, list, complete), declared SHA-256, and delete.

use crate::common;

use common::{ALICE, BOB, MemoryApp, sha256_hex, test_config_with};
use picasso::catalog::Catalog;
use picasso::domain::{FileId, Status};
use picasso::events::ObjectRef;
use picasso::processor::{Delivery, Handled};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

/// Parts of 5 MiB above 6 MiB.
fn app() -> MemoryApp {
    MemoryApp::with_config(test_config_with(&[
        ("MAX_UPLOAD_BYTES", "104857600"),
        ("MULTIPART_THRESHOLD", "6291456"),
        ("MULTIPART_PART_BYTES", "5242880"),
    ]))
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 5000) as u8).collect()
}

async fn create(app: &MemoryApp, size: usize, extra: Value) -> (FileId, Value) {
    let mut body = json!({"filename": "big.bin", "content_type": "application/octet-stream", "size": size});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (s, b) = app.call("POST", "/upload", Some(body)).await;
    assert_eq!(s, 201, "{b}");
    (FileId::parse(b["id"].as_str().unwrap()).unwrap(), b)
}

/// Stores the parts as PUTs to their signed URLs would; returns `{part_number, etag}`s.
fn put_parts(app: &MemoryApp, upload_id: &str, data: &[u8], part_size: usize, numbers: &[u32]) -> Vec<Value> {
    numbers
        .iter()
        .map(|&n| {
            let start = (n as usize - 1) * part_size;
            let part = data[start..(start + part_size).min(data.len())].to_vec();
            let etag = app.store.put_part(upload_id, n, part).unwrap();
            json!({"part_number": n, "etag": etag})
        })
        .collect()
}

async fn process(app: &MemoryApp, id: FileId) -> Handled {
    let obj = ObjectRef { bucket: "picasso-uploads".into(), key: id.object_key().to_string() };
    app.processor().handle_object(&obj, Delivery::default()).await.unwrap()
}

#[tokio::test]
async fn a_large_file_comes_in_parts_resumes_from_the_listing_and_ends_processed() {
    let app = app();
    let data = bytes(12 * MIB + 3);
    let (id, file) = create(&app, data.len(), json!({"sha256": sha256_hex(&data)})).await;
    let up = &file["upload"];
    assert_eq!(up["method"], "MULTIPART");
    assert_eq!((up["part_size"].as_u64(), up["part_count"].as_u64()), (Some(5 * MIB as u64), Some(3)));
    assert!(up["expires_at"].as_str().unwrap().ends_with('Z') && up.get("url").is_none(), "{up}");
    let upload_id = up["upload_id"].as_str().unwrap();

    // Every part URL is bound to that part's exact length, the last one shorter.
    let (s, signed) = app.call("POST", &format!("/files/{id}/parts"), Some(json!({"part_numbers": [1, 2, 3]}))).await;
    assert_eq!(s, 200, "{signed}");
    let sizes: Vec<u64> = signed["parts"].as_array().unwrap().iter().map(|p| p["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![5 * MIB as u64, 5 * MIB as u64, 2 * MIB as u64 + 3]);
    for p in signed["parts"].as_array().unwrap() {
        assert!(p["url"].as_str().unwrap().contains(&format!("partNumber={}", p["part_number"])), "{p}");
        assert!(p["headers"].is_object());
    }

    // Two parts, then the page reloads: the listing says what is left.
    put_parts(&app, upload_id, &data, 5 * MIB, &[1, 2]);
    let (s, listed) = app.call("GET", &format!("/files/{id}/parts"), None).await;
    assert_eq!(s, 200, "{listed}");
    assert_eq!((listed["upload_id"].as_str(), listed["part_count"].as_u64()), (Some(upload_id), Some(3)));
    let have: Vec<u64> =
        listed["parts"].as_array().unwrap().iter().map(|p| p["part_number"].as_u64().unwrap()).collect();
    assert_eq!(have, vec![1, 2]);
    assert!(listed["parts"][0]["etag"].as_str().unwrap().starts_with('"'));

    // Completing early names a part storage does not hold.
    let mut parts = crate::common::parts_to_complete(&listed);
    parts.push(json!({"part_number": 3, "etag": "\"not-yet\""}));
    let (s, e) = app.call("POST", &format!("/files/{id}/complete"), Some(json!({"parts": parts.clone()}))).await;
    assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (409, Some("parts_missing")), "{e}");

    parts.pop();
    parts.extend(put_parts(&app, upload_id, &data, 5 * MIB, &[3]));
    let (s, done) = app.call("POST", &format!("/files/{id}/complete"), Some(json!({"parts": parts.clone()}))).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!((done["id"].as_str(), done["status"].as_str()), (Some(id.to_string().as_str()), Some("pending")));
    assert_eq!(app.store.get_bytes(&id.object_key().to_string()).unwrap(), data);

    // Completing again is refused, and so is signing: the upload is closed.
    let (s, e) = app.call("POST", &format!("/files/{id}/complete"), Some(json!({"parts": parts}))).await;
    assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (409, Some("upload_closed")), "{e}");
    assert!(matches!(process(&app, id).await, Handled::Finished(_)));
    let (_, got) = app.call("GET", &format!("/files/{id}"), None).await;
    assert_eq!((got["status"].as_str(), got["sha256"].as_str()), (Some("processed"), Some(sha256_hex(&data).as_str())));
    let (s, e) = app.call("POST", &format!("/files/{id}/parts"), Some(json!({"part_numbers": [1]}))).await;
    assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (409, Some("upload_closed")), "{e}");
}

#[tokio::test]
async fn wrong_parts_are_refused_with_their_reasons() {
    let app = app();
    let data = bytes(11 * MIB);
    let (id, file) = create(&app, data.len(), json!({})).await;
    let upload_id = file["upload"]["upload_id"].as_str().unwrap().to_owned();
    let code = |(s, b): (http::StatusCode, Value)| (s.as_u16(), b["error"]["code"].as_str().unwrap_or("").to_owned());
    let (parts_path, complete_path) = (format!("/files/{id}/parts"), format!("/files/{id}/complete"));
    let parts_of = |body: Value| app.call("POST", &parts_path, Some(body));
    assert_eq!(code(parts_of(json!({"part_numbers": [4]})).await), (400, "invalid_part_numbers".into()));
    assert_eq!(code(parts_of(json!({"part_numbers": [1, 1]})).await), (400, "invalid_part_numbers".into()));
    assert_eq!(code(parts_of(json!({"part_numbers": []})).await), (400, "invalid_part_numbers".into()));
    assert_eq!(code(parts_of(json!([1])).await), (400, "invalid_part_numbers".into()));

    let mut parts = put_parts(&app, &upload_id, &data, 5 * MIB, &[1, 2]);
    // A last part one byte short: the parts do not add up to the declared size.
    let short = app.store.put_part(&upload_id, 3, data[10 * MIB..data.len() - 1].to_vec()).unwrap();
    parts.push(json!({"part_number": 3, "etag": short}));
    let complete = |parts: Vec<Value>| app.call("POST", &complete_path, Some(json!({"parts": parts})));
    assert_eq!(code(complete(parts.clone()).await), (400, "part_size_mismatch".into()));
    let right = app.store.put_part(&upload_id, 3, data[10 * MIB..].to_vec()).unwrap();
    parts[2] = json!({"part_number": 3, "etag": short});
    assert_eq!(code(complete(parts.clone()).await), (400, "etag_mismatch".into()), "the ETag of a replaced part");
    assert_eq!(code(complete(parts[..2].to_vec()).await), (400, "invalid_parts".into()), "part 3 not named");
    assert!(app.store.get_bytes(&id.object_key().to_string()).is_none(), "nothing assembled by a refused complete");

    // Someone else's upload does not exist for them.
    let (s, _) = app.call_as(Some(&BOB), "GET", &format!("/files/{id}/parts"), None).await;
    assert_eq!(s, 404);
    parts[2] = json!({"part_number": 3, "etag": right});
    let (s, _) = app.call_as(Some(&BOB), "POST", &format!("/files/{id}/complete"), Some(json!({"parts": parts}))).await;
    assert_eq!(s, 404);
    assert_eq!(code(complete(parts.clone()).await).0, 200, "the owner completes it");

    // A single-PUT file has no parts.
    let (small, _) = create(&app, 1000, json!({})).await;
    let (s, e) = app.call("GET", &format!("/files/{small}/parts"), None).await;
    assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (409, Some("not_multipart")));
}

#[tokio::test]
async fn a_declared_sha256_is_signed_into_the_put_and_checked_by_the_processor() {
    let app = app();
    let body = b"the bytes the client meant".to_vec();
    let digest = Sha256::digest(&body);
    let b64 = base64_of(&digest);
    let (id, file) = create(&app, body.len(), json!({"sha256": b64})).await;
    assert_eq!(file["upload"]["method"], "PUT");
    assert_eq!(file["upload"]["headers"]["x-amz-checksum-sha256"].as_str(), Some(b64.as_str()));
    app.store.put_bytes(&id.object_key().to_string(), body.clone());
    assert!(matches!(process(&app, id).await, Handled::Finished(_)));
    assert_eq!(app.catalog.get(id).await.unwrap().unwrap().status, Status::Processed);

    // Bytes that storage let through unchecked (an emulator, a multipart upload) still fail.
    let (id, _) = create(&app, body.len(), json!({"sha256": sha256_hex(&body)})).await;
    let mut other = body.clone();
    other[0] ^= 1;
    app.store.put_bytes(&id.object_key().to_string(), other.clone());
    process(&app, id).await;
    let (_, got) = app.call("GET", &format!("/files/{id}"), None).await;
    assert_eq!((got["status"].as_str(), got["error"]["code"].as_str()), (Some("failed"), Some("checksum_mismatch")));
    assert!(got["error"]["message"].as_str().unwrap().contains(&sha256_hex(&other)), "{got}");

    for bad in [json!("abc"), json!(12), json!(sha256_hex(&body)[..60])] {
        let req = json!({"filename": "a.txt", "content_type": "text/plain", "size": 3, "sha256": bad});
        let (s, e) = app.call("POST", "/upload", Some(req)).await;
        assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (400, Some("invalid_sha256")), "{bad}");
    }
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn delete_removes_object_thumbnail_and_record_once() {
    let app = app();
    let png = common::png(64, 48);
    let (id, _) = create(&app, png.len(), json!({"filename": "p.png", "content_type": "image/png"})).await;
    let key = id.object_key().to_string();
    app.store.put_bytes(&key, png);
    process(&app, id).await;
    let thumb = app.catalog.get(id).await.unwrap().unwrap().analysis.unwrap().thumbnail.unwrap();
    assert!(app.store.get_bytes(&thumb).is_some());

    // Only its owner (or an admin) may; to anyone else it does not exist.
    let (s, _) = app.call_as(Some(&BOB), "DELETE", &format!("/files/{id}"), None).await;
    assert_eq!(s, 404);
    assert!(app.store.get_bytes(&key).is_some());
    let (s, _) = app.call_as(Some(&ALICE), "DELETE", &format!("/files/{id}"), None).await;
    assert_eq!(s, 204);
    assert!(app.store.get_bytes(&key).is_none() && app.store.get_bytes(&thumb).is_none());
    assert!(app.catalog.get(id).await.unwrap().is_none());
    let (s, e) = app.call("DELETE", &format!("/files/{id}"), None).await;
    assert_eq!((s.as_u16(), e["error"]["code"].as_str()), (404, Some("not_found")));

    // An event for the deleted file (a late delivery, a PUT racing the delete) changes nothing.
    app.store.put_bytes(&key, b"late".to_vec());
    assert_eq!(process(&app, id).await, Handled::Orphaned);
    assert!(app.store.get_bytes(&key).is_none() && app.catalog.get(id).await.unwrap().is_none());

    // A multipart upload in progress is aborted with it.
    let (id, file) = create(&app, 8 * MIB, json!({})).await;
    put_parts(&app, file["upload"]["upload_id"].as_str().unwrap(), &bytes(8 * MIB), 5 * MIB, &[1]);
    assert_eq!(app.store.uploads_in_progress(), 1);
    let (s, _) = app.call("DELETE", &format!("/files/{id}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(app.store.uploads_in_progress(), 0);
}
