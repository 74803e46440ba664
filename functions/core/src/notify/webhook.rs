//! Webhooks per the Standard Webhooks specification: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` under a `whsec_`
//! secret, so receivers verify with any Standard Webhooks library; and the retry schedule.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A signing secret: `whsec_` and the base64 of its bytes (24 to 64 of them).
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    pub fn parse(s: &str) -> Result<Self, String> {
        let b64 = s.trim().strip_prefix("whsec_").ok_or("a webhook secret starts with whsec_")?;
        let bytes = STANDARD.decode(b64).map_err(|_| "a webhook secret is whsec_ and base64")?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(format!("a webhook secret holds 24 to 64 bytes, not {}", bytes.len()));
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The three headers of one delivery attempt at `timestamp` (Unix seconds).
    pub fn headers(&self, id: &str, timestamp: i64, body: &str) -> [(&'static str, String); 3] {
        let tag = hmac::sign(&self.0, format!("{id}.{timestamp}.{body}").as_bytes());
        [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", format!("v1,{}", STANDARD.encode(tag.as_ref()))),
        ]
    }
}

/// The event an EventBridge rule put on a queue: its id and its JSON (the envelope's `detail`).
pub fn from_envelope(message: &str) -> anyhow::Result<(String, String)> {
    let envelope: serde_json::Value = serde_json::from_str(message)?;
    let detail = envelope.get("detail").filter(|d| d.is_object()).ok_or_else(|| anyhow::anyhow!("no detail"))?;
    let id = detail.get("id").and_then(|i| i.as_str()).ok_or_else(|| anyhow::anyhow!("the detail has no id"))?;
    Ok((id.to_owned(), detail.to_string()))
}

/// How long each attempt may take before it counts as failed.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Delays between attempts: `first`, doubling, at most `cap`; given up once `window` has
/// passed since the first attempt (so retries go on for at least `window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
    pub window: Duration,
}

impl Backoff {
    /// A minute, doubling up to six hours, for at least a day.
    pub const STANDARD: Backoff = Backoff::from_first(Duration::from_secs(60));

    pub const fn from_first(first: Duration) -> Self {
        Self { first, cap: Duration::from_secs(6 * 3600), window: Duration::from_secs(24 * 3600) }
    }

    /// The wait after the `attempt`-th failed attempt (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self.first.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
        doubled.min(self.cap)
    }

    /// After `attempts` failed attempts, the first of them `elapsed` ago: when to try again, or
    /// `None` when the window has passed.
    pub fn next(&self, attempts: u32, elapsed: Duration) -> Option<Duration> {
        (elapsed < self.window).then(|| self.delay(attempts))
    }

    /// Attempts made when every one fails and each waits its full delay: the queue's
    /// `maxReceiveCount` on AWS, where the schedule is kept by redelivery.
    pub fn attempts(&self) -> u32 {
        let (mut n, mut elapsed) = (1, Duration::ZERO);
        while elapsed < self.window {
            elapsed += self.delay(n);
            n += 1;
        }
        n
    }
}

/// Where webhooks go: an `https` URL, or plain `http` to this machine only (a receiver on
/// loopback, for tests and the local stack): events leave the machine encrypted or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(http::Uri);

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let uri: http::Uri = s.trim().parse().map_err(|_| format!("webhook URL {s:?} is not a URL"))?;
        let host = uri.host().ok_or_else(|| format!("webhook URL {s:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        match uri.scheme_str() {
            Some("https") => Ok(Self(uri)),
            Some("http") if loopback => Ok(Self(uri)),
            _ => Err(format!("webhook URL {s:?} must be https (plain http only to this machine)")),
        }
    }

    pub fn as_uri(&self) -> &http::Uri {
        &self.0
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx.
    Delivered,
    /// Another status, a timeout or a connection error: worth another try.
    Failed(String),
}

/// Posts signed events to one receiver: HTTPS with the Mozilla roots compiled in.
#[derive(Clone)]
pub struct Sender {
    url: WebhookUrl,
    secret: WebhookSecret,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("url", &self.url.to_string()).finish_non_exhaustive()
    }
}

impl Sender {
    pub fn new(url: WebhookUrl, secret: WebhookSecret) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Self { url, secret, client: Client::builder(TokioExecutor::new()).build(https) }
    }

    pub fn url(&self) -> &WebhookUrl {
        &self.url
    }

    /// One attempt to deliver event `id` with JSON `body`, signed now, within [`ATTEMPT_TIMEOUT`].
    pub async fn send(&self, id: &str, body: &str) -> Attempt {
        let mut req = http::Request::post(self.url.as_uri().clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("picasso-webhooks/", env!("CARGO_PKG_VERSION")));
        for (name, value) in self.secret.headers(id, chrono::Utc::now().timestamp(), body) {
            req = req.header(name, value);
        }
        let req = match req.body(Full::new(Bytes::copy_from_slice(body.as_bytes()))) {
            Ok(req) => req,
            Err(e) => return Attempt::Failed(format!("request: {e}")),
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(req)).await {
            Err(_) => Attempt::Failed(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            Ok(Err(e)) => Attempt::Failed(format!("connection: {e}")),
            Ok(Ok(res)) if res.status().is_success() => Attempt::Delivered,
            Ok(Ok(res)) => Attempt::Failed(format!("answered {}", res.status())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn signs_like_the_reference_libraries() {
        let s = WebhookSecret::parse(SECRET).unwrap();
        let [id, ts, sig] = s.headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!((id.0, id.1.as_str()), ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"));
        assert_eq!(ts.1, "1614265330");
        assert_eq!(sig.1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_that_are_not_whsec_base64_are_refused() {
        for bad in ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ=", ""] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{:?}", WebhookSecret::parse(SECRET).unwrap()).contains("MfKQ"), "never printed");
    }

    #[test]
    fn webhooks_go_over_https_or_stay_on_this_machine() {
        for ok in [
            "https://hooks.example.com/picasso",
            "http://127.0.0.1:9000/hook",
            "http://localhost/x",
            "http://[::1]:80/",
        ] {
            assert!(WebhookUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["http://hooks.example.com/", "ftp://x.test/", "not a url", "/relative", "http://10.0.0.1/"] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_double_up_to_the_cap_for_at_least_a_day() {
        let b = Backoff::STANDARD;
        assert_eq!([1, 2, 3, 4].map(|n| b.delay(n).as_secs()), [60, 120, 240, 480]);
        assert_eq!(b.delay(40), b.cap);
        let n = b.attempts();
        let waited = |attempts: u32| (1..attempts).map(|k| b.delay(k)).sum::<Duration>();
        assert!(waited(n) >= b.window && waited(n - 1) < b.window, "{n} attempts");
        assert_eq!(n, 13, "the template's WebhookQueue maxReceiveCount");
        assert_eq!(b.next(3, Duration::from_secs(3600)), Some(Duration::from_secs(240)));
        assert_eq!(b.next(3, b.window), None);
        let fast = Backoff::from_first(Duration::from_millis(10));
        assert_eq!(fast.delay(3), Duration::from_millis(40));
    }
}
