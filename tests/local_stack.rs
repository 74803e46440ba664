//! The local stack (`cargo run`), started as a process on free ports in a temporary
//! data directory, driven with a plain HTTP client.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Stack {
    child: Child,
    api: String,
    s3: String,
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("picasso-test-{tag}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Stack {
    fn start(data: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_picasso"))
            .args(["--port", "0", "--s3-port", "0", "--data-dir"])
            .arg(data)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut api, mut s3) = (None, None);
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(u) = line.strip_prefix("API: ") {
                api = Some(u.to_owned());
            }
            if let Some(u) = line.strip_prefix("S3: ") {
                s3 = Some(u.split(' ').next().unwrap().to_owned());
            }
            if line.starts_with("Ready in") {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, api: api.expect("banner names the API"), s3: s3.expect("banner names S3") }
    }

    /// Ctrl-C, and the process must exit cleanly.
    fn stop(mut self) {
        Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return;
            }
            assert!(Instant::now() < deadline, "did not stop within 10 s of Ctrl-C");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap()
}

async fn request_upload(http: &reqwest::Client, api: &str, name: &str, ctype: &str, size: usize) -> Value {
    let resp = http
        .post(format!("{api}/upload"))
        .json(&json!({"filename": name, "content_type": ctype, "size": size}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

async fn put(http: &reqwest::Client, file: &Value, url: &str, body: Vec<u8>, override_type: Option<&str>) -> u16 {
    let mut req = http.put(url).body(body);
    for (k, v) in file["upload"]["headers"].as_object().unwrap() {
        req = req.header(k, override_type.filter(|_| k == "content-type").unwrap_or(v.as_str().unwrap()));
    }
    req.send().await.unwrap().status().as_u16()
}

/// The documented two steps: ask for a slot, PUT the bytes to it.
async fn upload(http: &reqwest::Client, api: &str, name: &str, ctype: &str, body: Vec<u8>) -> Value {
    let file = request_upload(http, api, name, ctype, body.len()).await;
    assert_eq!(put(http, &file, file["upload"]["url"].as_str().unwrap(), body, None).await, 200);
    file
}

async fn get_file(http: &reqwest::Client, api: &str, id: &str) -> Value {
    http.get(format!("{api}/files/{id}")).send().await.unwrap().json().await.unwrap()
}

async fn until_final(http: &reqwest::Client, api: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let f = get_file(http, api, id).await;
        if f["status"] == "processed" || f["status"] == "failed" {
            return f;
        }
        assert!(Instant::now() < deadline, "still {f} after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn upload_put_and_see_it_processed() {
    let data = temp_dir("flow");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let page = http.get(format!("{}/", stack.api)).send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("Picasso"));

    let bytes = b"hello from the local stack\n".to_vec();
    let file = request_upload(&http, &stack.api, "hello wörld.txt", "text/plain", bytes.len()).await;
    let url = file["upload"]["url"].as_str().unwrap();
    assert!(url.starts_with(&stack.s3), "presigned for the embedded endpoint: {url}");
    let resp = http
        .put(url)
        .header("content-type", "text/plain")
        .header("origin", &stack.api)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("etag"));
    assert_eq!(resp.headers()["access-control-expose-headers"], "etag");

    let id = file["id"].as_str().unwrap();
    let done = until_final(&http, &stack.api, id).await;
    assert_eq!((done["status"].as_str(), done["processed"].as_bool()), (Some("processed"), Some(true)), "{done}");
    let list: Value =
        http.get(format!("{}/files?status=processed", stack.api)).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["filename"], "hello wörld.txt");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn storage_answers_browser_preflights() {
    let data = temp_dir("cors");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let file = request_upload(&http, &stack.api, "a.png", "image/png", 4).await;
    let resp = http
        .request(reqwest::Method::OPTIONS, file["upload"]["url"].as_str().unwrap())
        .header("origin", "http://127.0.0.1:1234")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["access-control-allow-origin"], "http://127.0.0.1:1234");
    assert!(resp.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn refused_puts_store_nothing_and_process_nothing() {
    let data = temp_dir("refused");
    let stack = Stack::start(&data, &[], &[("UPLOAD_URL_TTL_SECS", "1")]);
    let http = client();
    let file = request_upload(&http, &stack.api, "a.txt", "text/plain", 5).await;
    let url = file["upload"]["url"].as_str().unwrap();
    let id = file["id"].as_str().unwrap();
    assert_eq!(put(&http, &file, url, b"hello!".to_vec(), None).await, 403, "longer than signed");
    assert_eq!(put(&http, &file, url, b"hell".to_vec(), None).await, 403, "shorter than signed");
    assert_eq!(put(&http, &file, url, b"hello".to_vec(), Some("image/png")).await, 403, "other content type");
    let other = url.replace(id, &picasso::domain::FileId::new().to_string());
    assert_eq!(put(&http, &file, &other, b"hello".to_vec(), None).await, 403, "other key");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(put(&http, &file, url, b"hello".to_vec(), None).await, 403, "expired");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_file(&http, &stack.api, id).await["status"], "pending");
    let stored: Vec<_> = std::fs::read_dir(data.join("objects/picasso-uploads")).unwrap().collect();
    assert!(stored.iter().all(|e| !e.as_ref().unwrap().path().is_file()), "no object written");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test]
async fn a_file_uploaded_before_a_restart_is_processed_after_it() {
    let data = temp_dir("restart");
    let stack = Stack::start(&data, &["--no-processing"], &[]);
    let http = client();
    let file = upload(&http, &stack.api, "later.csv", "text/csv", b"a,b\n".to_vec()).await;
    let never = request_upload(&http, &stack.api, "never.csv", "text/csv", 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = file["id"].as_str().unwrap();
    assert_eq!(get_file(&http, &stack.api, id).await["status"], "pending");
    stack.stop();

    let stack = Stack::start(&data, &[], &[]);
    assert_eq!(until_final(&http, &stack.api, id).await["status"], "processed");
    // The one whose bytes never came stays pending until its expiry.
    assert_eq!(get_file(&http, &stack.api, never["id"].as_str().unwrap()).await["status"], "pending");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_uploads_all_end_processed() {
    const N: usize = 200;
    let data = temp_dir("concurrent");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (http, api) = (http.clone(), stack.api.clone());
            tokio::spawn(async move {
                let body = format!("file number {i}\n").into_bytes();
                let file = upload(&http, &api, &format!("f{i}.txt"), "text/plain", body).await;
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
        let list: Value =
            http.get(format!("{}/files?limit=1000", stack.api)).send().await.unwrap().json().await.unwrap();
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
    let mut img = image::RgbImage::new(900, 300);
    img.pixels_mut().for_each(|p| *p = image::Rgb([10, 200, 30]));
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    let file = upload(&http, &stack.api, "banner.png", "image/png", png.clone()).await;
    let done = until_final(&http, &stack.api, file["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "processed", "{done}");
    assert_eq!(done["metadata"]["width"], 900);
    let thumb = http.get(done["thumbnail_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(thumb.status(), 200, "presigned GET verified by the embedded endpoint");
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 85));
    let download = http.get(done["download_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(download.bytes().await.unwrap().as_ref(), png.as_slice());

    let fake = b"MZ\x90\x00 this is not a PNG".to_vec();
    let file = upload(&http, &stack.api, "fake.png", "image/png", fake).await;
    let done = until_final(&http, &stack.api, file["id"].as_str().unwrap()).await;
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
    let file = upload(&http, &stack.api, "crash.txt", "text/plain", b"hello".to_vec()).await;
    stack.stop();
    // As if a processor had claimed it for an hour, then the process died.
    let id = picasso::domain::FileId::parse(file["id"].as_str().unwrap()).unwrap();
    let catalog = picasso_local::open_catalog(&data).unwrap();
    let now = picasso::domain::now();
    let claim = catalog.claim(id, &Lease::new(now, Duration::from_secs(3600)), now).await.unwrap();
    assert!(matches!(claim, Claim::Claimed(_)));
    drop(catalog);

    let stack = Stack::start(&data, &[], &[]);
    let done = until_final(&http, &stack.api, &id.to_string()).await;
    assert_eq!(done["status"], "processed");
    assert_eq!(done["metadata"]["words"], 1);
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}
