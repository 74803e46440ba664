//! Presigned URLs signed with aws-sigv4 directly are the SDK's presigned URLs, byte for byte, for
//! the same clock and credentials: same host and path, same signed headers (If-None-Match, the
//! checksum, lengths), same query, same signature. Virtual-hosted and path-style endpoints.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use picasso::aws::S3Store;
use picasso::domain::FileId;
use picasso::integrity::Sha256Digest;
use picasso::store::Presigner;

const BUCKET: &str = "picasso-uploads-123456789012";
const TTL: Duration = Duration::from_secs(900);

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_910_400) // 2026-11-29T00:00:00Z
}

/// A client and a store over it, on a fixed clock, with session credentials (a token, as on Lambda).
fn client_and_store(endpoint: Option<&str>) -> (aws_sdk_s3::Client, S3Store) {
    let creds = Credentials::new(
        "ASIAEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("FwoGZXIvYXdzEXAMPLE/+=".into()),
        None,
        "test",
    );
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-3"))
        .credentials_provider(creds.clone())
        .time_source(aws_smithy_async::time::StaticTimeSource::new(at()))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired);
    if let Some(e) = endpoint {
        conf = conf.endpoint_url(e).force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(conf.build());
    let store = S3Store::new(client.clone(), SharedCredentialsProvider::new(creds), BUCKET);
    (client, store)
}

fn config() -> PresigningConfig {
    PresigningConfig::builder().start_time(at()).expires_in(TTL).build().unwrap()
}

/// The headers a client must send: what `S3Store` returns beside its URL.
fn sendable(req: &PresignedRequest) -> Vec<(String, String)> {
    let mut h: Vec<_> = req
        .headers()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k == "content-type" || k == "if-none-match" || k.starts_with("x-amz-")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    h.sort();
    h
}

fn sorted(mut h: Vec<(String, String)>) -> Vec<(String, String)> {
    h.sort();
    h
}

#[tokio::test]
async fn presigned_urls_equal_the_sdks_on_aws_and_on_an_endpoint_override() {
    for endpoint in [None, Some("http://127.0.0.1:4566")] {
        let (client, store) = client_and_store(endpoint);
        let key = FileId::new().object_key();
        let sha = Sha256Digest::parse("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=").unwrap();

        for checksum in [None, Some(&sha)] {
            let ours = store.presign_put(key, "image/png", 12_345, checksum, TTL).await.unwrap();
            let sdk = client
                .put_object()
                .bucket(BUCKET)
                .key(key.to_string())
                .content_type("image/png")
                .content_length(12_345)
                .if_none_match("*")
                .set_checksum_sha256(checksum.map(Sha256Digest::to_base64))
                .presigned(config())
                .await
                .unwrap();
            assert_eq!(ours.url, sdk.uri(), "PutObject, {endpoint:?}, checksum {checksum:?}");
            assert_eq!(sorted(ours.headers), sendable(&sdk));
            assert!(ours.url.contains("if-none-match"), "If-None-Match is signed: {}", ours.url);
            if checksum.is_some() {
                assert!(ours.url.contains("x-amz-checksum-sha256"), "the checksum is a signed header: {}", ours.url);
            }
        }

        let ours = store.presign_part(key, "2~upload/id+with=odd&chars", 7, 5 << 20, TTL).await.unwrap();
        let sdk = client
            .upload_part()
            .bucket(BUCKET)
            .key(key.to_string())
            .upload_id("2~upload/id+with=odd&chars")
            .part_number(7)
            .content_length(5 << 20)
            .presigned(config())
            .await
            .unwrap();
        assert_eq!(ours.url, sdk.uri(), "UploadPart, {endpoint:?}");
        assert_eq!(sorted(ours.headers), sendable(&sdk));

        let name = "résumé \"final\".pdf";
        let ours = store.presign_get(&key.to_string(), TTL, Some(name)).await.unwrap();
        let disposition =
            format!("attachment; filename=\"r_sum_ _final_.pdf\"; filename*=UTF-8''{}", urlencoding::encode(name));
        let sdk = client
            .get_object()
            .bucket(BUCKET)
            .key(key.to_string())
            .response_content_type("application/octet-stream")
            .response_content_disposition(disposition)
            .presigned(config())
            .await
            .unwrap();
        assert_eq!(ours, sdk.uri(), "GetObject as a download, {endpoint:?}");

        let thumb = format!("thumbnails/{}.png", FileId::new());
        let ours = store.presign_get(&thumb, TTL, None).await.unwrap();
        let sdk = client.get_object().bucket(BUCKET).key(&thumb).presigned(config()).await.unwrap();
        assert_eq!(ours, sdk.uri(), "GetObject, {endpoint:?}");
    }
}
