//! The local stack's metrics: the functions' names, in Prometheus text at `GET /metrics`.

use crate::harness as local;

use local::{Stack, client, request_upload, temp_dir, until_final, upload};

/// The value of the sample `name{labels}` (or `name` alone), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn counters_follow_uploads_and_their_verdicts() {
    let data = temp_dir("metrics");
    let stack = Stack::start(&data, &[], &[]);
    let http = client();
    let alice = stack.sign_in(&http, "alice").await;
    let ok = upload(&alice, "a.txt", "text/plain", b"hello metrics\n".to_vec()).await;
    let bad = upload(&alice, "b.png", "image/png", b"not a picture".to_vec()).await;
    until_final(&alice, ok["id"].as_str().unwrap()).await;
    until_final(&alice, bad["id"].as_str().unwrap()).await;
    request_upload(&alice, "big.bin", "application/octet-stream", 100 << 20).await;

    let resp = http.get(format!("{}/metrics", stack.api)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    assert_eq!(sample(&text, r#"uploads_issued{method="single"}"#), Some(2.0), "{text}");
    assert_eq!(sample(&text, r#"uploads_issued{method="multipart"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, "upload_bytes_granted"), Some((14 + 13 + (100 << 20)) as f64));
    assert_eq!(sample(&text, "files_processed"), Some(1.0));
    assert_eq!(sample(&text, r#"files_failed{code="type_mismatch"}"#), Some(1.0));
    assert_eq!(sample(&text, "bytes_processed"), Some(14.0));
    assert_eq!(sample(&text, "processing_duration_seconds_count"), Some(2.0));
    assert_eq!(sample(&text, "upload_to_processed_seconds_count"), Some(2.0));
    assert!(text.contains("# HELP files_failed Files that ended failed, by error code"), "{text}");
    stack.stop();
    std::fs::remove_dir_all(data).unwrap();
}
