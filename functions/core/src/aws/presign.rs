//! Presigned S3 URLs signed with `aws-sigv4` directly. The SDK's `.presigned()` runs its whole
//! operation pipeline (interceptors, endpoint rules, identity cache) for what is one SigV4
//! computation; here the SDK is asked once where the bucket lives, credentials are cached until
//! they near expiry, and each URL costs the signature. `tests/presign.rs` holds the URLs equal to
//! the SDK's for the same clock and credentials.

use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use tokio::sync::OnceCell;

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// One S3 request to presign: the key's path, query parameters and headers the client will send.
pub struct Request<'a> {
    pub method: &'static str,
    pub key: &'a str,
    /// The operation, as the SDK names it in `x-id` (`PutObject`, `UploadPart`, `GetObject`).
    pub operation: &'static str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    pub ttl: Duration,
}

pub struct Signer {
    client: aws_sdk_s3::Client,
    provider: SharedCredentialsProvider,
    bucket: String,
    /// Scheme, host and the bucket's path prefix (path-style), as the SDK resolves them.
    base: OnceCell<String>,
    /// The credentials as the signer takes them, built once per credentials fetched.
    identity: RwLock<Option<Identity>>,
}

impl Signer {
    pub fn new(client: aws_sdk_s3::Client, provider: SharedCredentialsProvider, bucket: impl Into<String>) -> Self {
        Self { client, provider, bucket: bucket.into(), base: OnceCell::new(), identity: RwLock::new(None) }
    }

    /// The signed URL for `req` at the client's clock.
    pub async fn presign(&self, req: &Request<'_>) -> anyhow::Result<String> {
        let now = self.client.config().time_source().context("no time source")?.now();
        let identity = self.identity(now).await?;
        let region = self.client.config().region().context("no region configured")?;
        let base = self.base().await?;
        let mut url = format!("{base}/{}?x-id={}", encode_key(req.key), req.operation);
        for (k, v) in req.query {
            url.push('&');
            url.push_str(&urlencoding::encode(k));
            url.push('=');
            url.push_str(&urlencoding::encode(v));
        }

        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(req.ttl);
        // Headers never to sign: none of them (Authorization, User-Agent…) is ever passed here.
        settings.excluded_headers = None;
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region.as_ref())
            .name("s3")
            .time(now)
            .settings(settings)
            .build()?
            .into();
        let signable =
            SignableRequest::new(req.method, &url, req.headers.iter().copied(), SignableBody::UnsignedPayload)?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        // Query-string signing adds only parameters (X-Amz-Algorithm … X-Amz-Signature), in order.
        let (_, query) = instructions.into_parts();
        for (k, v) in query {
            url.push('&');
            url.push_str(k);
            url.push('=');
            url.push_str(&urlencoding::encode(&v));
        }
        Ok(url)
    }

    /// Cached credentials, fetched again when they come within `REFRESH_BEFORE` of expiring.
    async fn identity(&self, now: SystemTime) -> anyhow::Result<Identity> {
        let fresh = |i: &Identity| i.expiration().is_none_or(|e| e > now + REFRESH_BEFORE);
        if let Some(i) = self.identity.read().unwrap().as_ref().filter(|i| fresh(i)) {
            return Ok(i.clone());
        }
        let c: Credentials = self.provider.provide_credentials().await.context("loading credentials for presigning")?;
        let i = Identity::from(c);
        *self.identity.write().unwrap() = Some(i.clone());
        Ok(i)
    }

    /// Where the bucket lives, as the SDK resolves it (endpoint overrides, path style, FIPS…):
    /// one URL presigned through the SDK, cut before the key.
    async fn base(&self) -> anyhow::Result<&str> {
        let base = self
            .base
            .get_or_try_init(|| async {
                const PROBE: &str = "picasso-endpoint-probe";
                let probe = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(PROBE)
                    .presigned(PresigningConfig::expires_in(Duration::from_secs(60))?)
                    .await
                    .context("resolving the bucket's endpoint")?;
                let uri = probe.uri();
                let at = uri.find(&format!("/{PROBE}?")).context("the SDK's URL does not end in the key")?;
                anyhow::Ok(uri[..at].to_owned())
            })
            .await?;
        Ok(base)
    }
}

/// The key as a URL path: every byte but unreserved ones and `/` percent-encoded, as S3 wants.
fn encode_key(key: &str) -> String {
    key.split('/').map(|segment| urlencoding::encode(segment)).collect::<Vec<_>>().join("/")
}
