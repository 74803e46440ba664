//! Large files and integrity against the local stack's real S3 endpoint (s3s verifies the
//! SigV4 of every part URL, so lengths and checksums are enforced as S3 does).

use crate::harness as local;

use crate::common::sha256_hex;
use local::{Stack, User, client, put, request_upload, temp_dir, until_final};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

/// POSTs `body` to `path` as `user`; the status and JSON.
async fn post(user: &User, path: &str, body: Value) -> (u16, Value) {
    let resp = user.post(path).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// PUTs one part to its signed URL, with its signed headers; the status and the ETag.
async fn put_part(http: &reqwest::Client, part: &Value, bytes: Vec<u8>) -> (u16, Option<String>) {
    let mut req = http.put(part["url"].as_str().unwrap()).body(bytes);
    for (k, v) in part["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let resp = req.send().await.unwrap();
    let etag = resp.headers().get("etag").map(|e| e.to_str().unwrap().to_owned());
    (resp.status().as_u16(), etag)
}

/// PUTs bytes that storage must refuse: its status, or `None` when it answered before the body
/// was sent and closed the connection (the client then sees its write cut off, not the answer).
async fn refused_put(http: &reqwest::Client, url: &str, bytes: Vec<u8>) -> Option<u16> {
    match http.put(url).body(bytes).send().await {
        Ok(resp) => Some(resp.status().as_u16()),
        Err(e) => {
            assert!(e.is_request() && !e.is_timeout(), "{e}");
            None
        }
    }
}

fn slice(data: &[u8], part_size: usize, n: usize) -> Vec<u8> {
    data[(n - 1) * part_size..(n * part_size).min(data.len())].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_file_in_four_parts_resumes_after_a_reload_and_ends_processed() {
    let data_dir = temp_dir("multipart");
    let stack = Stack::start(&data_dir, &[], &[("MULTIPART_PART_BYTES", "52428800")]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let data: Vec<u8> = (0..200 * MIB).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect();
    let body = json!({"filename": "big.bin", "content_type": "application/octet-stream", "size": data.len(), "sha256": sha256_hex(&data)});
    let (s, file) = post(&alice, "/upload", body).await;
    assert_eq!(s, 201, "{file}");
    let up = &file["upload"];
    assert_eq!((up["method"].as_str(), up["part_count"].as_u64()), (Some("MULTIPART"), Some(4)), "{up}");
    let part_size = up["part_size"].as_u64().unwrap() as usize;
    let id = file["id"].as_str().unwrap().to_owned();

    let (s, signed) = post(&alice, &format!("/files/{id}/parts"), json!({"part_numbers": [1, 2]})).await;
    assert_eq!(s, 200, "{signed}");
    let one = &signed["parts"][0];
    // One byte more than the part's signed length: refused by storage. It may answer 403
    // before the body is sent, and close: the client then sees its write cut off instead.
    let mut longer = slice(&data, part_size, 1);
    longer.push(0);
    let refused = refused_put(&http, one["url"].as_str().unwrap(), longer).await;
    assert!(matches!(refused, None | Some(403)), "{refused:?}");
    let held = alice.get_json(&format!("/files/{id}/parts"), 200).await;
    assert_eq!(held["parts"], json!([]), "nothing of the longer part is stored");
    for (i, n) in [1, 2].into_iter().enumerate() {
        let (s, etag) = put_part(&http, &signed["parts"][i], slice(&data, part_size, n)).await;
        assert_eq!(s, 200, "part {n}");
        assert!(etag.is_some(), "the ETag is readable");
    }

    // The page reloads: it lists what storage holds, signs the rest, completes.
    let listed = alice.get_json(&format!("/files/{id}/parts"), 200).await;
    let have: Vec<(u64, u64)> = listed["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["part_number"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(have, vec![(1, part_size as u64), (2, part_size as u64)]);
    let mut parts = crate::common::parts_to_complete(&listed);
    let (_, rest) = post(&alice, &format!("/files/{id}/parts"), json!({"part_numbers": [3, 4]})).await;
    for (i, n) in [3, 4].into_iter().enumerate() {
        let (s, etag) = put_part(&http, &rest["parts"][i], slice(&data, part_size, n)).await;
        assert_eq!(s, 200, "part {n}");
        parts.push(json!({"part_number": n, "etag": etag.unwrap()}));
    }
    let (s, done) = post(&alice, &format!("/files/{id}/complete"), json!({"parts": parts.clone()})).await;
    assert_eq!(s, 200, "{done}");
    let processed = until_final(&alice, &id).await;
    assert_eq!(
        (processed["status"].as_str(), processed["sha256"].as_str()),
        (Some("processed"), Some(sha256_hex(&data).as_str()))
    );
    assert_eq!(processed["size"].as_u64(), Some(data.len() as u64));

    // A second complete is refused, and the processed bytes stay.
    let (s, e) = post(&alice, &format!("/files/{id}/complete"), json!({"parts": parts})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("upload_closed")), "{e}");
    let key = picasso::domain::FileId::parse(&id).unwrap().object_key();
    let stored = std::fs::read(data_dir.join(format!("objects/picasso-uploads/{key}"))).unwrap();
    assert!(stored == data, "the stored object is the uploaded file");
    stack.stop();
    std::fs::remove_dir_all(data_dir).unwrap();
}

#[tokio::test]
async fn storage_refuses_bytes_that_do_not_match_the_declared_sha256() {
    let data_dir = temp_dir("checksum");
    let stack = Stack::start(&data_dir, &[], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let bytes = b"exactly these bytes".to_vec();
    let body =
        json!({"filename": "c.txt", "content_type": "text/plain", "size": bytes.len(), "sha256": sha256_hex(&bytes)});
    let (s, file) = post(&alice, "/upload", body).await;
    assert_eq!(s, 201);
    assert!(file["upload"]["headers"]["x-amz-checksum-sha256"].is_string(), "{file}");
    let url = file["upload"]["url"].as_str().unwrap();
    let url_lower = url.to_ascii_lowercase();
    assert!(
        url_lower.contains("x-amz-signedheaders=") && url_lower.contains("x-amz-checksum-sha256&x-amz-signature"),
        "{url}"
    );
    assert!(!url_lower.contains("x-amz-checksum-sha256="), "a signed header, not a query parameter: {url}");
    let mut other = bytes.clone();
    other[0] = b'E';
    assert_eq!(put(&http, &file, url, other, None).await, 400, "BadDigest");
    let id = file["id"].as_str().unwrap();
    let key = picasso::domain::FileId::parse(id).unwrap().object_key();
    assert!(!data_dir.join(format!("objects/picasso-uploads/{key}")).exists(), "nothing stored");
    assert_eq!(put(&http, &file, url, bytes, None).await, 200);
    assert_eq!(until_final(&alice, id).await["status"], "processed");
    stack.stop();
    std::fs::remove_dir_all(data_dir).unwrap();
}

#[tokio::test]
async fn delete_removes_object_thumbnail_record_and_an_upload_in_progress() {
    let data_dir = temp_dir("delete");
    let stack =
        Stack::start(&data_dir, &[], &[("MULTIPART_THRESHOLD", "6291456"), ("MULTIPART_PART_BYTES", "5242880")]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let bob = stack.sign_in(&http, "bob").await;
    let png = image_png();
    let file = request_upload(&alice, "p.png", "image/png", png.len()).await;
    let id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(put(&http, &file, file["upload"]["url"].as_str().unwrap(), png, None).await, 200);
    let done = until_final(&alice, &id).await;
    let thumb_url = done["thumbnail_url"].as_str().unwrap().to_owned();
    let download = done["download_url"].as_str().unwrap().to_owned();
    assert_eq!(http.get(&thumb_url).send().await.unwrap().status(), 200);

    let delete = |u: &User, id: &str| u.http.delete(format!("{}/files/{id}", u.api)).bearer_auth(&u.token).send();
    assert_eq!(delete(&bob, &id).await.unwrap().status(), 404, "someone else's file does not exist for them");
    let resp = delete(&alice, &id).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(http.get(&download).send().await.unwrap().status(), 404, "object gone");
    assert_eq!(http.get(&thumb_url).send().await.unwrap().status(), 404, "thumbnail gone");
    alice.get_json(&format!("/files/{id}"), 404).await;
    let again = delete(&alice, &id).await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(again.json::<Value>().await.unwrap()["error"]["code"], "not_found");

    // An upload in parts, deleted half-way: its parts are gone and its URLs write nothing.
    let (_, file) = post(
        &alice,
        "/upload",
        json!({"filename": "b.bin", "content_type": "application/octet-stream", "size": 8 * MIB}),
    )
    .await;
    let id = file["id"].as_str().unwrap().to_owned();
    let (_, signed) = post(&alice, &format!("/files/{id}/parts"), json!({"part_numbers": [1, 2]})).await;
    assert_eq!(put_part(&http, &signed["parts"][0], vec![1; 5 * MIB]).await.0, 200);
    assert_eq!(delete(&alice, &id).await.unwrap().status(), 204);
    let refused = refused_put(&http, signed["parts"][1]["url"].as_str().unwrap(), vec![2; 3 * MIB]).await;
    assert!(matches!(refused, None | Some(404)), "NoSuchUpload: {refused:?}");
    let leftovers: Vec<_> = std::fs::read_dir(data_dir.join("objects"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    stack.stop();
    std::fs::remove_dir_all(data_dir).unwrap();
}

fn image_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 40, 30);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header().unwrap().write_image_data(&[120; 40 * 30 * 3]).unwrap();
    out
}

#[tokio::test]
async fn an_upload_in_parts_resumes_across_a_restart_of_the_stack() {
    let data_dir = temp_dir("multipart-restart");
    let env = [("MULTIPART_THRESHOLD", "6291456"), ("MULTIPART_PART_BYTES", "5242880")];
    let stack = Stack::start(&data_dir, &[], &env);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let data: Vec<u8> = (0..7 * MIB).map(|i| (i / 4096) as u8).collect();
    let body = json!({"filename": "r.bin", "content_type": "application/octet-stream", "size": data.len()});
    let (_, file) = post(&alice, "/upload", body).await;
    let id = file["id"].as_str().unwrap().to_owned();
    let (_, signed) = post(&alice, &format!("/files/{id}/parts"), json!({"part_numbers": [1]})).await;
    assert_eq!(put_part(&http, &signed["parts"][0], slice(&data, 5 * MIB, 1)).await.0, 200);
    stack.stop();

    // Another run: other S3 credentials, the same upload.
    let stack = Stack::start(&data_dir, &[], &env);
    let alice = stack.sign_in(&http, "alice").await;
    let listed = alice.get_json(&format!("/files/{id}/parts"), 200).await;
    assert_eq!(listed["parts"].as_array().map(Vec::len), Some(1), "{listed}");
    let (_, signed) = post(&alice, &format!("/files/{id}/parts"), json!({"part_numbers": [2]})).await;
    let (s, etag) = put_part(&http, &signed["parts"][0], slice(&data, 5 * MIB, 2)).await;
    assert_eq!(s, 200);
    let parts = json!([{"part_number": 1, "etag": listed["parts"][0]["etag"]}, {"part_number": 2, "etag": etag}]);
    let (s, done) = post(&alice, &format!("/files/{id}/complete"), json!({"parts": parts})).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(until_final(&alice, &id).await["sha256"].as_str(), Some(sha256_hex(&data).as_str()));
    stack.stop();
    std::fs::remove_dir_all(data_dir).unwrap();
}

#[tokio::test]
async fn an_abandoned_upload_in_parts_is_aborted_when_its_record_expires() {
    let data_dir = temp_dir("multipart-expiry");
    let env = [
        ("MULTIPART_THRESHOLD", "6291456"),
        ("MULTIPART_PART_BYTES", "5242880"),
        ("PENDING_TTL_SECS", "1"),
        ("UPLOAD_URL_TTL_SECS", "1"),
    ];
    let stack = Stack::start(&data_dir, &[], &env);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let body = json!({"filename": "gone.bin", "content_type": "application/octet-stream", "size": 7 * MIB});
    let (_, file) = post(&alice, "/upload", body).await;
    let id = file["id"].as_str().unwrap().to_owned();
    // (No part is sent: a URL that lives one second could expire on the way.)
    let registered = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir.join("objects"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    };
    assert_eq!(registered(&data_dir).len(), 1, "the upload exists in storage");
    stack.stop();
    std::thread::sleep(std::time::Duration::from_millis(2100));

    // The next start drops the expired record, as DynamoDB's TTL would, and its parts with it.
    let stack = Stack::start(&data_dir, &[], &env);
    let alice = stack.sign_in(&http, "alice").await;
    alice.get_json(&format!("/files/{id}"), 404).await;
    assert_eq!(registered(&data_dir), Vec::<String>::new(), "aborted");
    stack.stop();
    std::fs::remove_dir_all(data_dir).unwrap();
}
