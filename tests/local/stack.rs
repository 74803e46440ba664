//! The local stack (`cargo run`), started as a process on free ports in a temporary
//! data directory, driven with a plain HTTP client signed in through its dev issuer
//! (tests/local_auth.rs: what it takes to get in).

use crate::common;
use crate::harness as local;

use std::time::{Duration, Instant};

use local::{Stack, client, get_file, put, request_upload, temp_dir, until_final, upload};
use serde_json::{Value, json};

#[tokio::test]
async fn upload_put_and_see_it_processed() {
    let data = temp_dir("flow");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let page = http.get(format!("{}/", stack.api)).send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Picasso"));

    let alice = stack.sign_in(&http, "alice").await;
    let bytes = b"hello from the local stack\n".to_vec();
    let file = request_upload(&alice, "hello wörld.txt", "text/plain", bytes.len()).await;
    let url = file["upload"]["url"].as_str().unwrap();
    assert!(url.starts_with(&stack.s3), "presigned for the embedded endpoint: {url}");
    let resp = http
        .put(url)
        .header("content-type", "text/plain")
        .header("if-none-match", "*")
        .header("origin", &stack.api)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("etag"));
    assert_eq!(resp.headers()["access-control-expose-headers"], "etag");

    let id = file["id"].as_str().unwrap();
    let done = until_final(&alice, id).await;
    assert_eq!((done["status"].as_str(), done["processed"].as_bool()), (Some("processed"), Some(true)), "{done}");
    let list = alice.get_json("/files?status=processed", 200).await;
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["filename"], "hello wörld.txt");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

/// The `access-control-allow-origin` a request from `origin` gets, if any.
async fn allowed_origin(req: reqwest::RequestBuilder, origin: &str) -> Option<String> {
    let resp = req.header("origin", origin).send().await.unwrap();
    resp.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn only_the_pages_own_origins_and_those_given_may_read_from_a_browser() {
    let data = temp_dir("cors");
    let stack = Stack::start(&data, &["--cors-origin", "http://app.example:8080"], &[]);
    let http = client();
    let port = stack.api.rsplit(':').next().unwrap();
    let own = [stack.api.clone(), format!("http://localhost:{port}")];
    let allowed = [&own[..], &["http://app.example:8080".to_owned()]].concat();
    let foreign = ["http://evil.example", "http://127.0.0.1:1234", "null"];
    let alice = stack.sign_in(&http, "alice").await;

    // The API: a foreign page cannot read the catalog (nor mint download links).
    let files = || alice.get("/files");
    for origin in &allowed {
        assert_eq!(allowed_origin(files(), origin).await.as_deref(), Some(origin.as_str()), "{origin}");
    }
    for origin in foreign {
        assert_eq!(allowed_origin(files(), origin).await, None, "{origin} may not read GET /files");
    }
    let preflight = |url: &str| {
        http.request(reqwest::Method::OPTIONS, url)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
    };
    let upload = format!("{}/upload", stack.api);
    let resp = preflight(&upload).header("origin", &own[0]).send().await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], own[0].as_str());
    let headers = resp.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "the page may send its token: {headers}"
    );
    assert_eq!(allowed_origin(preflight(&upload), "http://evil.example").await, None);

    // The S3 endpoint: browsers' preflights for a PUT, from the same origins only.
    let file = request_upload(&alice, "a.png", "image/png", 4).await;
    let url = file["upload"]["url"].as_str().unwrap();
    let put_preflight = || {
        http.request(reqwest::Method::OPTIONS, url)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
    };
    for origin in &allowed {
        let resp = put_preflight().header("origin", origin).send().await.unwrap();
        assert!(resp.status().is_success());
        assert_eq!(resp.headers()["access-control-allow-origin"], origin.as_str());
        assert!(resp.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    }
    for origin in foreign {
        assert_eq!(allowed_origin(put_preflight(), origin).await, None, "{origin} may not PUT from a browser");
    }
    stack.stop();

    // The same list from the environment, comma-separated.
    let stack = Stack::start(&data, &[], &[("PICASSO_CORS_ORIGINS", "http://a.example,https://b.example:8443")]);
    let alice = stack.sign_in(&http, "alice").await;
    for origin in ["http://a.example", "https://b.example:8443"] {
        let req = alice.get("/files");
        assert_eq!(allowed_origin(req, origin).await.as_deref(), Some(origin));
    }
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

/// The credentials a run wrote for tools, and a client of the S3 endpoint signing with them.
fn s3_client(data: &std::path::Path, access_key: Option<(&str, &str)>) -> (aws_sdk_s3::Client, Value) {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let file: Value = serde_json::from_slice(&std::fs::read(data.join("s3-credentials.json")).unwrap()).unwrap();
    let (id, secret) =
        access_key.unwrap_or((file["access_key_id"].as_str().unwrap(), file["secret_access_key"].as_str().unwrap()));
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(file["region"].as_str().unwrap().to_owned()))
        .endpoint_url(file["endpoint"].as_str().unwrap())
        .force_path_style(true)
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .build();
    (aws_sdk_s3::Client::from_conf(conf), file)
}

#[tokio::test]
async fn the_s3_endpoint_takes_only_this_runs_credentials_and_the_operations_the_stack_uses() {
    use std::os::unix::fs::PermissionsExt;
    let data = temp_dir("creds");
    let stack = Stack::start(&data, &[], &[]);
    let alice = stack.sign_in(&client(), "alice").await;
    let file = upload(&alice, "a.txt", "text/plain", b"hello".to_vec()).await;
    let key = picasso::domain::FileId::parse(file["id"].as_str().unwrap()).unwrap().object_key().to_string();

    let path = data.join("s3-credentials.json");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "owner only");
    let (s3, creds) = s3_client(&data, None);
    assert_eq!(creds["endpoint"], stack.s3);
    assert_eq!(creds["bucket"], "picasso-uploads");
    let bucket = "picasso-uploads";
    let got = s3.get_object().bucket(bucket).key(&key).send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"hello");
    assert_eq!(s3.head_object().bucket(bucket).key(&key).send().await.unwrap().content_length(), Some(5));

    // The operations the stack does not use are not served, even to the right credentials.
    let e = s3.head_bucket().bucket(bucket).send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(501), "HeadBucket: {e:?}");
    let e = s3.list_objects_v2().bucket(bucket).send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(501), "ListObjectsV2");
    let e = s3.list_buckets().send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(501), "ListBuckets");

    // The credentials once published in the code sign nothing.
    let (old, _) = s3_client(&data, Some(("picasso-local", "picasso-local-secret-key")));
    let e = old.get_object().bucket(bucket).key(&key).send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403), "old credentials");
    let e = old.delete_object().bucket(bucket).key(&key).send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403), "old credentials");
    stack.stop();

    // Each run has its own: the last run's no longer work.
    let stack = Stack::start(&data, &[], &[]);
    let last = (creds["access_key_id"].as_str().unwrap(), creds["secret_access_key"].as_str().unwrap());
    let (s3, _) = s3_client(&data, Some(last));
    let e = s3.get_object().bucket(bucket).key(&key).send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403), "last run's credentials");
    let (s3, again) = s3_client(&data, None);
    assert_ne!(again["access_key_id"], creds["access_key_id"]);
    assert_ne!(again["secret_access_key"], creds["secret_access_key"]);
    assert!(s3.get_object().bucket(bucket).key(&key).send().await.is_ok());
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

/// Reads until the server closes the connection; how long that took.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    use tokio::io::AsyncReadExt;
    let t0 = Instant::now();
    let mut sink = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await {
        Ok(_) => t0.elapsed(), // EOF or reset: closed
        Err(_) => panic!("connection still open after {limit:?}; read {:?}", String::from_utf8_lossy(&sink)),
    }
}

#[tokio::test]
async fn stalled_clients_are_disconnected() {
    use tokio::io::AsyncWriteExt;
    let data = temp_dir("timeouts");
    let env = [("PICASSO_HEADER_TIMEOUT_MS", "500"), ("PICASSO_IDLE_TIMEOUT_MS", "3000")];
    let stack = Stack::start(&data, &[], &env);
    let alice = stack.sign_in(&client(), "alice").await;
    let file = request_upload(&alice, "stalled.txt", "text/plain", 100).await;
    let url = reqwest::Url::parse(file["upload"]["url"].as_str().unwrap()).unwrap();
    let put =
        format!("PUT {}?{} HTTP/1.1\r\ncontent-type: text/plain\r\nif-none-match: *", url.path(), url.query().unwrap());
    let post = format!("POST /upload HTTP/1.1\r\nauthorization: Bearer {}", alice.token);
    for (base, request) in [(&stack.api, post), (&stack.s3, put)] {
        let addr = base.trim_start_matches("http://");
        // Half a request line, then nothing: closed once the header timeout passes.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /fi").await.unwrap();
        let took = closed_within(&mut slow, Duration::from_secs(5)).await;
        assert!(took >= Duration::from_millis(400) && took < Duration::from_millis(2500), "{base}: {took:?}");

        // Headers in time, then a body that stops: closed once the idle timeout passes.
        let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("{request}\r\nhost: {addr}\r\ncontent-length: 100\r\n\r\n{{\"file");
        stalled.write_all(head.as_bytes()).await.unwrap();
        let took = closed_within(&mut stalled, Duration::from_secs(10)).await;
        assert!(took >= Duration::from_millis(2800), "{base}: closed after {took:?}, before the idle timeout");
    }
    let stored = data.join("objects/picasso-uploads").join(url.path().trim_start_matches("/picasso-uploads/"));
    assert!(!stored.exists(), "nothing stored from the stalled PUT");
    // A client that sends slowly, but keeps sending, is not cut: 4 s for its body.
    let addr = stack.api.trim_start_matches("http://");
    let body = br#"{"filename": "slow.txt", "content_type": "text/plain", "size": 1}"#;
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        alice.token,
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    for part in body.chunks(body.len().div_ceil(10)) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        slow.write_all(part).await.unwrap();
    }
    let mut answer = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut slow, &mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 201");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn refused_puts_store_nothing_and_process_nothing() {
    let data = temp_dir("refused");
    let stack = Stack::start(&data, &[], &[("UPLOAD_URL_TTL_SECS", "1")]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let file = request_upload(&alice, "a.txt", "text/plain", 5).await;
    let url = file["upload"]["url"].as_str().unwrap();
    let id = file["id"].as_str().unwrap();
    assert_eq!(put(&http, &file, url, b"hello!".to_vec(), None).await, 403, "longer than signed");
    assert_eq!(put(&http, &file, url, b"hell".to_vec(), None).await, 403, "shorter than signed");
    assert_eq!(put(&http, &file, url, b"hello".to_vec(), Some("image/png")).await, 403, "other content type");
    // Without the signed If-None-Match the signature does not match either.
    let mut no_guard = file.clone();
    no_guard["upload"]["headers"].as_object_mut().unwrap().remove("if-none-match");
    assert_eq!(put(&http, &no_guard, url, b"hello".to_vec(), None).await, 403, "write-once header left out");
    let other = url.replace(id, &picasso::domain::FileId::new().to_string());
    assert_eq!(put(&http, &file, &other, b"hello".to_vec(), None).await, 403, "other key");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(put(&http, &file, url, b"hello".to_vec(), None).await, 403, "expired");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_file(&alice, id).await["status"], "pending");
    let stored: Vec<_> = std::fs::read_dir(data.join("objects/picasso-uploads")).unwrap().collect();
    assert!(stored.iter().all(|e| !e.as_ref().unwrap().path().is_file()), "no object written");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn an_upload_url_writes_once_and_the_processed_bytes_stay() {
    let data = temp_dir("write-once");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let file = request_upload(&alice, "once.txt", "text/plain", 5).await;
    assert_eq!(file["upload"]["headers"]["if-none-match"], "*", "{file}");
    let (url, id) = (file["upload"]["url"].as_str().unwrap(), file["id"].as_str().unwrap());
    assert_eq!(put(&http, &file, url, b"hello".to_vec(), None).await, 200);
    let done = until_final(&alice, id).await;
    assert_eq!(done["status"], "processed");
    // The same URL, still valid, with other bytes of the same length: refused.
    assert_eq!(put(&http, &file, url, b"HELLO".to_vec(), None).await, 412);
    let key = format!("objects/picasso-uploads/{}", picasso::domain::FileId::parse(id).unwrap().object_key());
    assert_eq!(std::fs::read(data.join(key)).unwrap(), b"hello", "the processed bytes are the stored bytes");
    assert_eq!(get_file(&alice, id).await["sha256"], done["sha256"]);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn a_file_uploaded_before_a_restart_is_processed_after_it() {
    let data = temp_dir("restart");
    let stack = Stack::start(&data, &["--no-processing"], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let file = upload(&alice, "later.csv", "text/csv", b"a,b\n".to_vec()).await;
    let never = request_upload(&alice, "never.csv", "text/csv", 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = file["id"].as_str().unwrap();
    assert_eq!(get_file(&alice, id).await["status"], "pending");
    stack.stop();

    // On another port, so another issuer URL: alice signs in again, and her files are hers.
    let stack = Stack::start(&data, &[], &[]);
    let alice = stack.sign_in(&http, "alice").await;
    assert_eq!(until_final(&alice, id).await["status"], "processed");
    // The one whose bytes never came stays pending until its expiry.
    assert_eq!(get_file(&alice, never["id"].as_str().unwrap()).await["status"], "pending");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_uploads_all_end_processed() {
    const N: usize = 200;
    let data = temp_dir("concurrent");
    // One user with 200 slots open at once: above the default quota of 100 (tests/api/quotas.rs).
    let stack = Stack::start(&data, &[], &[("MAX_PENDING_PER_USER", "unlimited")]);
    let alice = stack.sign_in(&client(), "alice").await;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let alice = alice.clone();
            tokio::spawn(async move {
                let body = format!("file number {i}\n").into_bytes();
                let file = upload(&alice, &format!("f{i}.txt"), "text/plain", body).await;
                file["id"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = alice.get_json("/files?limit=1000", 200).await;
        let items = list["items"].as_array().unwrap();
        let processed = items.iter().filter(|f| f["status"] == "processed").count();
        if processed == N {
            let mut listed: Vec<&str> = items.iter().map(|f| f["id"].as_str().unwrap()).collect();
            assert_eq!(listed.len(), N, "no duplicates, nothing extra");
            listed.sort();
            ids.sort();
            assert_eq!(listed, ids, "every upload listed once");
            break;
        }
        assert!(Instant::now() < deadline, "{processed}/{N} processed after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn images_get_thumbnails_and_links_and_bad_files_a_reason() {
    let data = temp_dir("images");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let mut img = image::RgbImage::new(900, 300);
    img.pixels_mut().for_each(|p| *p = image::Rgb([10, 200, 30]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let file = upload(&alice, "banner.png", "image/png", png.clone()).await;
    let done = until_final(&alice, file["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "processed", "{done}");
    assert_eq!(done["metadata"]["width"], 900);
    let thumb = http.get(done["thumbnail_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(thumb.status(), 200, "presigned GET verified by the embedded endpoint");
    assert_eq!(thumb.headers()["x-content-type-options"], "nosniff");
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 85));
    let download = http.get(done["download_url"].as_str().unwrap()).send().await.unwrap();
    // Never rendered by a browser: an attachment, typed as bytes, not to be sniffed.
    let header = |name: &str| download.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "application/octet-stream");
    assert!(header("content-disposition").starts_with("attachment;"), "{}", header("content-disposition"));
    assert!(header("content-disposition").contains("banner.png"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(download.bytes().await.unwrap().as_ref(), png.as_slice());

    let fake = b"MZ\x90\x00 this is not a PNG".to_vec();
    let file = upload(&alice, "fake.png", "image/png", fake).await;
    let done = until_final(&alice, file["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["status"].as_str(), done["error"]["code"].as_str()),
        (Some("failed"), Some("type_mismatch")),
        "{done}"
    );
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn a_file_left_mid_processing_by_a_crash_is_processed_after_restart() {
    use picasso::catalog::{Claim, Lease};
    let data = temp_dir("crash");
    let stack = Stack::start(&data, &["--no-processing"], &[]);
    let http = client();
    let file = upload(&stack.sign_in(&http, "alice").await, "crash.txt", "text/plain", b"hello".to_vec()).await;
    stack.stop();
    // As if a processor had claimed it for an hour, then the process died.
    let id = picasso::domain::FileId::parse(file["id"].as_str().unwrap()).unwrap();
    let catalog = picasso_local::open_catalog(&data).unwrap();
    let now = picasso::domain::now();
    let claim = catalog.claim(id, &Lease::new(now, Duration::from_secs(3600)), now).await.unwrap();
    assert!(matches!(claim, Claim::Claimed(_)));
    drop(catalog);

    let stack = Stack::start(&data, &[], &[]);
    let done = until_final(&stack.sign_in(&http, "alice").await, &id.to_string()).await;
    assert_eq!(done["status"], "processed");
    assert_eq!(done["metadata"]["words"], 1);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn any_file_type_is_accepted_and_processed_by_default() {
    let data = temp_dir("any-type");
    let stack = Stack::start(&data, &[], &[]);
    let alice = stack.sign_in(&client(), "alice").await;
    // An empty zip archive (its end-of-central-directory record), the start of an MP4 (an
    // `ftyp` box) and bytes of no known kind.
    let mut zip = b"PK\x05\x06".to_vec();
    zip.resize(22, 0);
    let mut mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom".to_vec();
    mp4.extend_from_slice(&[0u8; 64]);
    let blob: Vec<u8> = (0..=255u8).rev().cycle().take(1000).collect();
    for (name, ctype, bytes) in [
        ("a.zip", "application/zip", zip),
        ("clip.mp4", "video/mp4", mp4),
        ("blob.bin", "application/octet-stream", blob),
    ] {
        let file = upload(&alice, name, ctype, bytes.clone()).await;
        let done = until_final(&alice, file["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "processed", "{done}");
        assert_eq!(done["sha256"], common::sha256_hex(&bytes), "{name}");
    }
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

/// Peak resident memory of a process, from the kernel's high-water mark.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_huge_images_is_processed_within_the_stacks_memory() {
    let data = temp_dir("burst");
    let stack = Stack::start(&data, &[], &[]);
    let alice = stack.sign_in(&client(), "alice").await;
    // Three of each at once, with the default concurrency and memory budget.
    let pngs = common::hostile_pngs();
    let tasks: Vec<_> = (0..3)
        .flat_map(|_| pngs.clone())
        .map(|(name, bytes)| {
            let alice = alice.clone();
            tokio::spawn(
                async move { upload(&alice, name, "image/png", bytes).await["id"].as_str().unwrap().to_owned() },
            )
        })
        .collect();
    for t in tasks {
        let id = t.await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        let done = loop {
            let f = get_file(&alice, &id).await;
            if f["status"] == "processed" || f["status"] == "failed" || Instant::now() > deadline {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(done["status"], "processed", "{done}");
        assert!(done["thumbnail_url"].is_string(), "{done}");
    }
    let peak = peak_rss(stack.child.id());
    println!("local stack peak RSS after 9 huge PNGs: {} MiB", peak >> 20);
    assert!(peak < 300 << 20, "the stack peaked at {} MiB (goal: under 300 MiB)", peak >> 20);
    stack.stop();
}

#[tokio::test]
async fn at_the_quota_concurrent_slot_requests_admit_exactly_the_room_left() {
    let data = temp_dir("quota");
    let stack = Stack::start(&data, &[], &[("MAX_PENDING_PER_USER", "3")]);
    let alice = stack.sign_in(&client(), "alice").await;
    request_upload(&alice, "first.txt", "text/plain", 5).await;
    // Two slots left, ten asked for at once: exactly two are given.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let alice = alice.clone();
            tokio::spawn(async move {
                let body = json!({"filename": format!("f{i}.txt"), "content_type": "text/plain", "size": 5});
                let resp = alice.post("/upload").json(&body).send().await.unwrap();
                let (status, retry) = (resp.status().as_u16(), resp.headers().get("retry-after").cloned());
                let body: Value = resp.json().await.unwrap();
                (status, retry, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|(s, ..)| *s == 201).count(), 2, "{answers:?}");
    for (status, retry, body) in answers.iter().filter(|(s, ..)| *s != 201) {
        assert_eq!((*status, body["error"]["code"].as_str()), (429, Some("quota_exceeded")), "{body}");
        assert_eq!((body["error"]["limit"].as_u64(), body["error"]["usage"]["pending"].as_u64()), (Some(3), Some(3)));
        assert_eq!(retry.as_ref().map(|v| v.to_str().unwrap()), Some("60"));
    }
    assert_eq!(alice.get_json("/usage", 200).await["pending"], 3);
    let listed = alice.get_json("/files", 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "the refused wrote nothing");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn the_stack_searches_a_users_files_by_name() {
    let data = temp_dir("search");
    let stack = Stack::start(&data, &["--no-processing"], &[]);
    let http = client();
    let (alice, bob) = (stack.sign_in(&http, "alice").await, stack.sign_in(&http, "bob").await);
    for name in ["Überweisung-März.pdf", "überweisung-april.pdf", "Rechnung.pdf"] {
        request_upload(&alice, name, "application/pdf", 10).await;
    }
    request_upload(&bob, "Überweisung-bob.pdf", "application/pdf", 10).await;
    let found = alice.get_json("/files?q=%C3%9CBERWEISUNG", 200).await;
    let names: Vec<&str> = found["items"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap()).collect();
    assert_eq!(names, ["überweisung-april.pdf", "Überweisung-März.pdf"]);
    let refused = alice.get_json(&format!("/files?q={}", "x".repeat(256)), 400).await;
    assert_eq!(refused["error"]["code"], "invalid_query");
    stack.stop();
}
