//! The web page at `GET /`: served by the list function on AWS and by the local stack, the
//! same file with the serving side's settings written into it. The page takes nothing from
//! its own URL, so a crafted link cannot point it (and a freshly minted token) at another
//! origin, and its Content-Security-Policy lets it reach only the origins its settings name.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use http::{HeaderValue, header};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::Presigner;

const TEMPLATE: &str = include_str!("page.html");
const PLACEHOLDER: &str = "{{SETTINGS}}";

/// What the page is told by the server that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageSettings {
    /// The API the page calls; `None`: the origin that served it.
    pub api: Option<Origin>,
    pub auth: PageAuth,
    /// Members of this group are offered everyone's files.
    pub admin_group: String,
    /// Where live status comes from; `None`: the page polls.
    pub live: Option<Live>,
    /// Where presigned URLs point (uploads, downloads, thumbnails): for the policy only.
    #[serde(skip)]
    pub storage: Origin,
}

/// How users sign in on the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum PageAuth {
    /// The local stack's dev issuer: "Sign in as…".
    Dev,
    /// A pasted bearer token (of this issuer, when known).
    Token { issuer: Option<Origin> },
    /// Cognito's hosted UI: authorization code with PKCE, then the token endpoint.
    Cognito { issuer: Option<Origin>, client_id: String, domain: String },
    /// `--no-auth`: nobody signs in.
    None,
}

/// The live channel: Server-Sent Events at a path of the API, or a WebSocket API's URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Live {
    Sse(&'static str),
    Websocket(WebSocketUrl),
}

/// `scheme://host[:port]` of an http(s) URL, and nothing that could break out of a header or
/// a policy: the host is letters, digits, dots, hyphens or a bracketed IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Origin(String);

impl Origin {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        Self::with_schemes(url, &["https", "http"]).map(|(origin, _)| origin)
    }

    fn with_schemes(url: &str, schemes: &[&str]) -> anyhow::Result<(Self, String)> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").with_context(|| format!("{url:?} is not an absolute URL"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !schemes.contains(&scheme.as_str()) {
            bail!("{url:?} must be a {} URL", schemes.join(" or "));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let host_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
        if authority.is_empty() || !authority.chars().all(host_ok) {
            bail!("{url:?} has no plain host[:port] (letters, digits, dots and hyphens)");
        }
        let path_ok = |c: char| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '\'' | '"' | '<' | '>' | '\\');
        if !tail.chars().all(path_ok) {
            bail!("{url:?} has characters a page setting does not take");
        }
        Ok((Self(format!("{scheme}://{}", authority.to_ascii_lowercase())), tail.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A WebSocket API's URL (`wss://`, or `ws://` for a stand-in on this machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketUrl {
    url: String,
    origin: Origin,
}

impl WebSocketUrl {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let (origin, tail) = Origin::with_schemes(url, &["wss", "ws"])?;
        Ok(Self { url: format!("{}{tail}", origin.0), origin })
    }
}

impl Serialize for WebSocketUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.url)
    }
}

/// A Cognito app client and its hosted-UI domain (`PREFIX.auth.REGION.amazoncognito.com`, or
/// a custom one), both checked, however they were given (the stack's variables, the local
/// stack's flags): the id goes into the page's sign-in URL, the domain into its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedUi {
    pub client_id: String,
    pub domain: String,
}

impl HostedUi {
    pub fn parse(client_id: &str, domain: &str) -> anyhow::Result<Self> {
        let id = client_id.trim();
        anyhow::ensure!(
            !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "client id {id:?} is not an app client id (letters and digits)"
        );
        let domain = domain.trim().trim_start_matches("https://").trim_end_matches('/');
        let domain = Origin::parse(&format!("https://{domain}")).context("hosted-UI domain")?;
        Ok(Self { client_id: id.to_owned(), domain: domain.0.trim_start_matches("https://").to_owned() })
    }

    /// The page's sign-in through this hosted UI, for tokens of `issuer`.
    pub fn sign_in(self, issuer: Option<Origin>) -> PageAuth {
        PageAuth::Cognito { issuer, client_id: self.client_id, domain: self.domain }
    }
}

impl PageSettings {
    /// The list function's settings (`PAGE_ISSUER`, `PAGE_CLIENT_ID`, `PAGE_SIGN_IN_DOMAIN`,
    /// `PAGE_LIVE_URL`, `ADMIN_GROUP`): the page calls the API that serves it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, storage: Origin) -> anyhow::Result<Self> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let issuer = get("PAGE_ISSUER").map(|v| Origin::parse(&v)).transpose().context("PAGE_ISSUER")?;
        let auth = match (get("PAGE_CLIENT_ID"), get("PAGE_SIGN_IN_DOMAIN")) {
            (Some(client_id), Some(domain)) => {
                HostedUi::parse(&client_id, &domain).context("PAGE_CLIENT_ID, PAGE_SIGN_IN_DOMAIN")?.sign_in(issuer)
            }
            _ => PageAuth::Token { issuer },
        };
        Ok(Self {
            api: None,
            auth,
            admin_group: get("ADMIN_GROUP").unwrap_or_else(|| crate::config::DEFAULT_ADMIN_GROUP.into()),
            live: get("PAGE_LIVE_URL")
                .map(|v| WebSocketUrl::parse(&v))
                .transpose()
                .context("PAGE_LIVE_URL")?
                .map(Live::Websocket),
            storage,
        })
    }

    /// The Content-Security-Policy: the page's own script and style (by hash), and only the
    /// API, the issuer, the sign-in domain, the live channel and storage to talk to.
    pub fn policy(&self) -> String {
        let mut connect = vec!["'self'".to_string()];
        let mut add = |source: String| {
            if !connect.contains(&source) {
                connect.push(source);
            }
        };
        self.api.iter().for_each(|o| add(o.0.clone()));
        add(self.storage.0.clone());
        match &self.auth {
            PageAuth::Token { issuer } => issuer.iter().for_each(|o| add(o.0.clone())),
            PageAuth::Cognito { issuer, domain, .. } => {
                issuer.iter().for_each(|o| add(o.0.clone()));
                add(format!("https://{domain}"));
            }
            PageAuth::Dev | PageAuth::None => {}
        }
        if let Some(Live::Websocket(url)) = &self.live {
            add(url.origin.0.clone());
        }
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; img-src 'self' data: blob: {}; connect-src {}; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            HASHES.script,
            HASHES.style,
            self.storage.0,
            connect.join(" ")
        )
    }
}

/// Where the storage's presigned URLs point, read off one (path or virtual-host style, the
/// emulator or S3): the policy must let the page upload there and show thumbnails from there.
pub async fn storage_origin(presigner: &dyn Presigner) -> anyhow::Result<Origin> {
    let url = presigner.presign_get("uploads/origin-probe", Duration::from_secs(60), None).await?;
    Origin::parse(&url).context("the storage's presigned URLs")
}

struct Hashes {
    script: String,
    style: String,
}

/// The page's one inline script and one style block, by hash: what the policy allows to run.
static HASHES: LazyLock<Hashes> = LazyLock::new(|| Hashes {
    script: hash_of(inline(TEMPLATE, "<script>", "</script>")),
    style: hash_of(inline(TEMPLATE, "<style>", "</style>")),
});

fn inline<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
    let start = html.find(open).expect("the page has its inline block") + open.len();
    &html[start..start + html[start..].find(close).expect("the block is closed")]
}

fn hash_of(text: &str) -> String {
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The page rendered once with its settings, and its policy.
#[derive(Clone)]
pub struct Page {
    html: axum::body::Bytes,
    policy: HeaderValue,
}

impl Page {
    pub fn new(settings: &PageSettings) -> anyhow::Result<Self> {
        // `<` only occurs in JSON strings, where `\u003c` means the same: nothing closes the script.
        let json = serde_json::to_string(settings)?.replace('<', "\\u003c");
        let html = TEMPLATE.replacen(PLACEHOLDER, &json, 1);
        let policy = HeaderValue::from_str(&settings.policy()).context("the page's policy")?;
        Ok(Self { html: html.into(), policy })
    }

    fn respond(&self) -> Response {
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                (header::CONTENT_SECURITY_POLICY, self.policy.clone()),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
                (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            self.html.clone(),
        )
            .into_response()
    }
}

/// `GET /`: no token needed, the page holds no data.
pub fn router(page: Page) -> Router {
    Router::new().route("/", get(move || std::future::ready(page.respond())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PageSettings {
        PageSettings {
            api: None,
            auth: PageAuth::Dev,
            admin_group: "admins".into(),
            live: Some(Live::Sse("/events")),
            storage: Origin::parse("http://127.0.0.1:3001/bucket/key?X-Amz-Signature=1").unwrap(),
        }
    }

    #[test]
    fn one_script_one_style_one_placeholder() {
        assert_eq!(TEMPLATE.matches("<script>").count(), 1);
        assert_eq!(TEMPLATE.matches("<style>").count(), 1);
        assert_eq!(TEMPLATE.matches(PLACEHOLDER).count(), 1);
        assert!(!TEMPLATE.contains(" onclick=") && !TEMPLATE.contains(" onsubmit=") && !TEMPLATE.contains(" style="));
    }

    #[test]
    fn origins_parse_to_scheme_and_host_only() {
        assert_eq!(
            Origin::parse("HTTPS://Api.Example.com:8443/prod?x=1").unwrap().as_str(),
            "https://api.example.com:8443"
        );
        assert_eq!(Origin::parse("http://[::1]:3000/").unwrap().as_str(), "http://[::1]:3000");
        for bad in [
            "ftp://x",
            "example.com",
            "https://",
            "https://a b",
            "https://a;script-src *",
            "https://a\"b",
            "javascript://x",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
        let ws = WebSocketUrl::parse("wss://abc.execute-api.eu-west-1.amazonaws.com/live").unwrap();
        assert_eq!(ws.origin.as_str(), "wss://abc.execute-api.eu-west-1.amazonaws.com");
        assert!(WebSocketUrl::parse("https://x/live").is_err());
        assert!(WebSocketUrl::parse("wss://x/live;default-src *").is_err());
        let ui = HostedUi::parse(" abc123 ", "https://pics.auth.eu-west-1.amazoncognito.com/").unwrap();
        assert_eq!((ui.client_id.as_str(), ui.domain.as_str()), ("abc123", "pics.auth.eu-west-1.amazoncognito.com"));
        for (id, domain) in [("", "pics.example.com"), ("a&redirect_uri=x", "pics.example.com"), ("abc", "a;b c")] {
            assert!(HostedUi::parse(id, domain).is_err(), "{id} {domain}");
        }
    }

    #[test]
    fn settings_are_json_that_cannot_close_the_script() {
        let mut s = settings();
        s.admin_group = "</script><script>alert(1)</script>".into();
        let page = Page::new(&s).unwrap();
        let html = std::str::from_utf8(&page.html).unwrap();
        assert_eq!(html.matches("</script>").count(), 2, "the settings block's and the script's own");
        let json = inline(html, r#"<script type="application/json" id="picasso-settings">"#, "</script>");
        let back: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back["admin_group"], "</script><script>alert(1)</script>");
        assert_eq!(back["auth"]["mode"], "dev");
        assert_eq!(back["live"]["sse"], "/events");
        assert!(back.get("storage").is_none());
    }

    #[test]
    fn the_policy_names_only_the_settings_origins() {
        let lookup = |k: &str| {
            Some(
                match k {
                    "PAGE_ISSUER" => "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
                    "PAGE_CLIENT_ID" => "client123",
                    "PAGE_SIGN_IN_DOMAIN" => "pics.auth.eu-west-1.amazoncognito.com",
                    "PAGE_LIVE_URL" => "wss://ws1.execute-api.eu-west-1.amazonaws.com/live",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let storage = Origin::parse("https://b.s3.eu-west-1.amazonaws.com/k").unwrap();
        let s = PageSettings::from_lookup(lookup, storage).unwrap();
        let policy = s.policy();
        let connect = policy.split("; ").find(|d| d.starts_with("connect-src")).unwrap();
        assert_eq!(
            connect,
            "connect-src 'self' https://b.s3.eu-west-1.amazonaws.com https://cognito-idp.eu-west-1.amazonaws.com \
             https://pics.auth.eu-west-1.amazoncognito.com wss://ws1.execute-api.eu-west-1.amazonaws.com"
        );
        assert!(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains(&format!("script-src '{}'", HASHES.script)));
        assert!(!policy.contains("unsafe"));
        // Without a hosted UI the page asks for a token; a bad setting stops the function.
        let plain = PageSettings::from_lookup(|_| None, s.storage.clone()).unwrap();
        assert_eq!(plain.auth, PageAuth::Token { issuer: None });
        assert_eq!(plain.live, None);
        assert!(
            PageSettings::from_lookup(|k| (k == "PAGE_LIVE_URL").then(|| "http://x".into()), s.storage.clone())
                .is_err()
        );
        let odd_client = |k: &str| match k {
            "PAGE_CLIENT_ID" => Some("x&scope=admin".to_owned()),
            "PAGE_SIGN_IN_DOMAIN" => Some("pics.example.com".to_owned()),
            _ => None,
        };
        assert!(PageSettings::from_lookup(odd_client, s.storage).is_err(), "the client id is checked as the flag's is");
    }
}
