//! Shared helpers of the black-box tests.
#![allow(dead_code)]

pub mod order;
pub mod quota;
pub mod search;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use picasso::api::AppState;
use picasso::config::Config;
use picasso::domain::FileId;
use picasso::lambda::ProcessorFunction;
use picasso::memory::{MemoryCatalog, MemoryStore};
use serde_json::Value;
use tower::ServiceExt;

pub fn test_config() -> Config {
    test_config_with(&[])
}

/// The test configuration with some variables set, as the template would set them.
pub fn test_config_with(vars: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| match vars.iter().find(|(name, _)| *name == k) {
        Some((_, v)) => Some((*v).to_owned()),
        None => match k {
            "TABLE_NAME" => Some("files".into()),
            "BUCKET_NAME" => Some("picasso-uploads".into()),
            "MAX_UPLOAD_BYTES" => Some("1048576".into()),
            _ => None,
        },
    })
    .unwrap()
}

/// Where the bytes of the file with this id (as the API answers it) go.
pub fn key_of(id: &str) -> String {
    FileId::parse(id).expect("a file id").object_key().to_string()
}

/// The notification's object for a file of the test bucket.
pub fn object(id: FileId) -> picasso::events::ObjectRef {
    picasso::events::ObjectRef { bucket: "picasso-uploads".into(), key: id.object_key().to_string() }
}

/// A processor over these adapters, configured as the tests' functions are.
pub fn processor_over(
    catalog: Arc<dyn picasso::catalog::Catalog>,
    store: Arc<dyn picasso::store::ObjectStore>,
) -> picasso::processor::Processor {
    let budget = picasso::budget::MemoryBudget::new(picasso::budget::DEFAULT_BUDGET);
    picasso::processor::Processor::from_config(catalog, store, &test_config(), budget)
}

/// The API over in-memory adapters, which tests can look into.
pub struct MemoryApp {
    pub state: AppState,
    pub catalog: Arc<MemoryCatalog>,
    pub store: Arc<MemoryStore>,
}

impl MemoryApp {
    pub fn new() -> Self {
        Self::with_config(test_config())
    }

    pub fn with_config(config: Config) -> Self {
        let catalog = Arc::new(MemoryCatalog::default());
        let store = Arc::new(MemoryStore::default());
        // The Lambda functions' authenticator: tests send what API Gateway's JWT authorizer puts
        // in the request context.
        let auth = Arc::new(picasso::aws::ApiGatewayJwt { groups_claim: config.groups_claim.clone() });
        let state = AppState::new(catalog.clone(), store.clone(), store.clone(), config, auth);
        Self { state, catalog, store }
    }

    /// A file uploaded as [`ALICE`]: its slot asked for, then its bytes stored as S3 would.
    pub async fn uploaded(&self, name: &str, ctype: &str, body: &[u8]) -> FileId {
        let slot = serde_json::json!({"filename": name, "content_type": ctype, "size": body.len()});
        let (s, b) = self.call("POST", "/upload", Some(slot)).await;
        assert_eq!(s, 201, "{b}");
        let id = FileId::parse(b["id"].as_str().unwrap()).unwrap();
        self.store.put_bytes(&id.object_key().to_string(), body.to_vec());
        id
    }

    pub fn router(&self) -> Router {
        picasso::api::router(self.state.clone())
    }

    pub fn processor(&self) -> picasso::processor::Processor {
        processor_over(self.catalog.clone(), self.store.clone())
    }

    /// The processor function as Lambda invokes it (no sweeper).
    pub fn function(&self) -> ProcessorFunction {
        ProcessorFunction { processor: self.processor(), sweeper: None }
    }

    /// A sweeper over this app's adapters whose redeliveries are collected for the test.
    pub fn sweeper(&self, pending_grace: std::time::Duration) -> (picasso::sweeper::Sweeper, Arc<Collected>) {
        let collected = Arc::new(Collected::default());
        let sweeper = picasso::sweeper::Sweeper::from_config(
            self.catalog.clone(),
            self.store.clone(),
            collected.clone(),
            &self.state.config,
        )
        .with_grace(pending_grace);
        (sweeper, collected)
    }

    /// A request as [`ALICE`].
    pub async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_as(Some(&ALICE), method, uri, body).await
    }

    /// A request as `user`, or as nobody (no authorizer claims) with `None`.
    pub async fn call_as(
        &self,
        user: Option<&User>,
        method: &str,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
        let mut req = req.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).unwrap();
        if let Some(u) = user {
            req.extensions_mut().insert(u.request_context());
        }
        send(self.router(), req).await
    }

    /// A request as `user`, its groups in `claim` as API Gateway flattens an array claim.
    pub async fn call_as_claim(&self, user: &User, claim: &str, method: &str, uri: &str) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        req.extensions_mut().insert(user.request_context_in(claim));
        send(self.router(), req).await
    }

    pub async fn call_raw(&self, method: &str, uri: &str, body: &'static str) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri).body(Body::from(body)).unwrap();
        req.extensions_mut().insert(ALICE.request_context());
        send(self.router(), req).await
    }
}

/// A signed-in user, as API Gateway's JWT authorizer describes one.
pub struct User {
    pub sub: &'static str,
    pub groups: &'static [&'static str],
}

pub const ALICE: User = User { sub: "11111111-1111-4111-8111-111111111111", groups: &[] };
pub const BOB: User = User { sub: "22222222-2222-4222-8222-222222222222", groups: &[] };
pub const ADMIN: User = User { sub: "33333333-3333-4333-8333-333333333333", groups: &["admins"] };

impl User {
    pub fn owner(&self) -> picasso::domain::Owner {
        picasso::domain::Owner::parse(self.sub).unwrap()
    }

    /// What `lambda_http` puts in a request's extensions for an authorized HTTP API event.
    pub fn request_context(&self) -> lambda_http::request::RequestContext {
        self.request_context_in("cognito:groups")
    }

    /// The same, the groups in `claim` (`[a b]`: how API Gateway flattens an array claim).
    pub fn request_context_in(&self, claim: &str) -> lambda_http::request::RequestContext {
        use lambda_http::aws_lambda_events::apigw::{
            ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription, ApiGatewayV2httpRequestContext,
        };
        let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
        jwt.claims.insert("sub".into(), self.sub.into());
        jwt.claims.insert(claim.into(), format!("[{}]", self.groups.join(" ")));
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.jwt = Some(jwt);
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.authorizer = Some(authorizer);
        lambda_http::request::RequestContext::ApiGatewayV2(ctx)
    }
}

pub async fn send(router: Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    if status == StatusCode::NO_CONTENT {
        assert!(bytes.is_empty(), "204 with a body");
        return (status, Value::Null);
    }
    let json =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

/// Asserts the API's error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    let e = &body["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {body}");
    e["code"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A PNG of `w`×`h` with a gradient, so thumbnails have something to keep.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A JPEG of `w`×`h` whose EXIF says to rotate it (orientation 6: 90° clockwise).
pub fn jpeg_rotated(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([(x % 256) as u8, 0, 0]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    // APP1 "Exif": big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1, value 6.
    let tiff: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(tiff);
    let len = (app1.len() + 2) as u16;
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend_from_slice(&[0xff, 0xe1]);
    with_exif.extend_from_slice(&len.to_be_bytes());
    with_exif.extend_from_slice(&app1);
    with_exif.extend_from_slice(&jpeg[2..]);
    with_exif
}

/// A tiny PNG whose header claims 100 000 × 100 000 pixels: 30 GB once decoded.
pub fn png_bomb() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// CRC-32 (ISO-HDLC, as PNG chunks use).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A complete's `parts`, from what `GET /files/{id}/parts` answered.
pub fn parts_to_complete(listed: &Value) -> Vec<Value> {
    let parts = listed["parts"].as_array().unwrap();
    parts.iter().map(|p| serde_json::json!({"part_number": p["part_number"], "etag": p["etag"]})).collect()
}

/// Redeliveries the sweeper made, in order.
#[derive(Default)]
pub struct Collected(pub std::sync::Mutex<Vec<picasso::events::ObjectRef>>);

#[async_trait::async_trait]
impl picasso::sweeper::Redeliver for Collected {
    async fn redeliver(&self, objects: &[picasso::events::ObjectRef]) -> anyhow::Result<()> {
        self.0.lock().unwrap().extend_from_slice(objects);
        Ok(())
    }
}

impl Collected {
    pub fn keys(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|o| o.key.clone()).collect()
    }
}

/// EXIF with orientation 6 (rotate 90° clockwise), big-endian TIFF.
pub const EXIF_ROTATE_90: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

/// A PNG encoded row by row (the pixels are never whole in memory): zeros, or a pattern.
/// 8000×8000 RGBA 16-bit of zeros is 512 MB decoded and about 2.4 MB encoded.
pub fn png_rows(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth, exif: bool, pattern: bool) -> Vec<u8> {
    let mut info = png::Info::with_size(w, h);
    info.color_type = color;
    info.bit_depth = depth;
    if exif {
        info.exif_metadata = Some(EXIF_ROTATE_90.into());
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::with_info(&mut out, info).unwrap();
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let mut row = vec![0u8; w as usize * color.samples() * (depth as usize).div_ceil(8)];
    for y in 0..h {
        if pattern {
            row.iter_mut().enumerate().for_each(|(i, b)| *b = (i as u32 ^ y) as u8);
        }
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
    drop(writer);
    out
}

/// The three PNGs of issue 8 that took the stack to 1.4 GiB: 16-bit RGBA zeros, the same
/// turned by EXIF, and 8-bit RGBA turned by EXIF.
pub fn hostile_pngs() -> Vec<(&'static str, Vec<u8>)> {
    use png::{BitDepth, ColorType};
    vec![
        ("rgba16-8000.png", png_rows(8000, 8000, ColorType::Rgba, BitDepth::Sixteen, false, false)),
        ("rgba16-8000-exif6.png", png_rows(8000, 8000, ColorType::Rgba, BitDepth::Sixteen, true, false)),
        ("rgba8-7900-exif6.png", png_rows(7900, 7900, ColorType::Rgba, BitDepth::Eight, true, false)),
    ]
}
