//! B7. What one presigned PUT costs the upload function, beside the HMAC it is built on.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use hmac::{Hmac, KeyInit, Mac};
use picasso::aws::S3Store;
use picasso::domain::FileId;
use picasso::store::Presigner;
use sha2_sigv4::{Digest, Sha256};

use crate::report::{Table, goal, us};

const ITERATIONS: u32 = 20_000;

pub async fn run() -> anyhow::Result<()> {
    // Static credentials and a fixed region: no network, no provider chain, only signing.
    let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "bench");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds.clone())
        .build();
    let store =
        S3Store::new(aws_sdk_s3::Client::from_conf(conf), SharedCredentialsProvider::new(creds), "picasso-uploads");
    let ttl = Duration::from_secs(900);
    let keys: Vec<_> = (0..ITERATIONS + 1000).map(|_| FileId::new().object_key()).collect();
    // Warm-up: the first calls resolve endpoints and fill caches a Lambda keeps between invocations.
    for k in &keys[..1000] {
        store.presign_put(*k, "image/png", 12_345, None, ttl).await?;
    }
    let t = Instant::now();
    for k in &keys[1000..] {
        black_box(store.presign_put(*k, "image/png", 12_345, None, ttl).await?);
    }
    let presign = t.elapsed() / ITERATIONS;

    let msg = b"AWS4-HMAC-SHA256\n20261128T000000Z\n20261128/us-east-1/s3/aws4_request\n0123456789abcdef";
    let t = Instant::now();
    for i in 0..ITERATIONS {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&i.to_le_bytes()).expect("any key length");
        m.update(black_box(msg));
        black_box(m.finalize().into_bytes());
    }
    let hmac = t.elapsed() / ITERATIONS;
    let t = Instant::now();
    for _ in 0..ITERATIONS {
        black_box(Sha256::digest(black_box(&msg[..])));
    }
    let sha = t.elapsed() / ITERATIONS;
    // SigV4's floor: four HMACs derive the signing key, one signs, one SHA-256 hashes the canonical request.
    let floor = hmac * 5 + sha;

    let mut table = Table::new(
        &format!("B7. Presign cost per call ({ITERATIONS} iterations)"),
        &["what", "per call", "vs one HMAC"],
    );
    let rel = |d: Duration| format!("{:.0}×", d.as_secs_f64() / hmac.as_secs_f64());
    table.row(vec!["`S3Store::presign_put`".into(), us(presign), rel(presign)]);
    table.row(vec!["SigV4 arithmetic floor (5 HMAC + 1 SHA-256)".into(), us(floor), rel(floor)]);
    table.row(vec!["one HMAC-SHA256, small message (reference)".into(), us(hmac), "1×".into()]);
    table.print();
    goal("B7 presign ≤ 5 µs", presign <= Duration::from_micros(5), us(presign));
    Ok(())
}
