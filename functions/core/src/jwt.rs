//! A JWT authorizer: what API Gateway's checks before a request reaches the Lambdas, done by
//! the local stack for every API request and by the WebSocket API's `$connect` authorizer. A bearer token is accepted only when its
//! `kid` names a key of the issuer's JWKS and its signature verifies with that key under the
//! key's own algorithm (RS256 or ES256: the token's `alg` must agree, so `alg: none` and an
//! HMAC keyed with the public key are refused), `iss` is the issuer, `aud` (or, without
//! `aud`, a Cognito access token's `client_id`) holds the audience, `exp` has not passed
//! and `nbf` has, give or take [`LEEWAY_SECS`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::error::ApiError;
use crate::identity::{Authenticator, Claims};
use anyhow::{Context, bail};
use async_trait::async_trait;
use axum::body::Bytes;
use http::request::Parts;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Clock skew forgiven on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// How long a request to an external issuer (discovery, JWKS) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// One verification key of the issuer, with the only algorithm it verifies.
struct VerifyingKey {
    key: DecodingKey,
    alg: Algorithm,
}

/// The usable keys of a JWKS by `kid`: signing keys of RS256 or of ES256 on P-256. Any
/// other key (encryption keys, HMAC secrets, other curves, no `kid`) is left out.
#[derive(Default)]
pub struct Keys(HashMap<String, Arc<VerifyingKey>>);

impl Keys {
    pub fn from_jwks(set: &JwkSet) -> Self {
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.as_ref(), key_algorithm(jwk)) else {
                tracing::debug!(kid = ?jwk.common.key_id, "JWKS key left out: not an RS256 or ES256 signing key with a kid");
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    keys.insert(kid.clone(), Arc::new(VerifyingKey { key, alg }));
                }
                Err(e) => tracing::warn!(kid, error = %e, "JWKS key left out: unreadable"),
            }
        }
        Self(keys)
    }

    fn get(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.0.get(kid).cloned()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The algorithm a JWK is for: its `alg` when it says, else what its type implies. Only
/// RS256 and ES256 (API Gateway's JWT authorizer takes these two).
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if jwk.common.public_key_use.as_ref().is_some_and(|u| !matches!(u, PublicKeyUse::Signature)) {
        return None;
    }
    match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Some(Algorithm::RS256),
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256)) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}

/// Where the keys come from.
enum KeySource {
    /// The stack's own dev issuer: its one key, known from the start.
    Fixed(Keys),
    Remote(Box<RemoteKeys>),
}

impl KeySource {
    async fn find(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        match self {
            KeySource::Fixed(keys) => keys.get(kid),
            KeySource::Remote(remote) => remote.find(kid).await,
        }
    }
}

/// An external issuer's JWKS, fetched again when a token names a key not seen yet, at most
/// once per `refetch_after`, and when the keys are older than `max_age`: a key the issuer has
/// removed (revoked, rotated out) stops verifying then, without a restart.
struct RemoteKeys {
    http: HttpClient,
    jwks_uri: String,
    refetch_after: Duration,
    max_age: Duration,
    /// The keys, and when they were fetched.
    current: RwLock<(Arc<Keys>, Instant)>,
    /// When a fetch was last tried: one at a time, at most one per `refetch_after`.
    last_try: tokio::sync::Mutex<Instant>,
}

impl RemoteKeys {
    /// The key `kid`, and whether the keys are still fresh.
    fn known(&self, kid: &str) -> (Option<Arc<VerifyingKey>>, bool) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0.get(kid), current.1.elapsed() < self.max_age)
    }

    async fn find(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        if let (Some(k), true) = self.known(kid) {
            return Some(k);
        }
        let mut last_try = self.last_try.lock().await;
        // A request that waited may find what another one fetched.
        let (key, fresh) = self.known(kid);
        if fresh && key.is_some() {
            return key;
        }
        if last_try.elapsed() < self.refetch_after {
            // Unknown and fetched too recently; or stale while the issuer does not answer,
            // when the keys it last published still serve.
            return key.filter(|_| !fresh);
        }
        *last_try = Instant::now();
        let jwks_uri = &self.jwks_uri;
        match fetch_keys(&self.http, jwks_uri).await {
            Ok(keys) => {
                tracing::info!(jwks_uri, keys = keys.len(), kid, "fetched the issuer's keys again");
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = (Arc::new(keys), Instant::now());
            }
            Err(e) => tracing::warn!(jwks_uri, error = format!("{e:#}"), "could not fetch the issuer's keys"),
        }
        self.known(kid).0
    }
}

/// Verifies bearer JWTs of one issuer for one audience.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    /// Where groups are read (`GROUPS_CLAIM`, `cognito:groups` by default), and nowhere else.
    groups_claim: String,
    keys: KeySource,
}

impl JwtVerifier {
    /// A verifier with keys known in advance (the built-in dev issuer's).
    pub fn fixed(issuer: &str, audience: &str, groups_claim: &str, keys: Keys) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            groups_claim: groups_claim.into(),
            keys: KeySource::Fixed(keys),
        }
    }

    /// A verifier of an external OIDC issuer: its discovery document names the JWKS, which is
    /// fetched now (the stack does not start without it) and again on an unknown `kid`, at
    /// most once per `refetch_after`.
    pub async fn discover(
        issuer: &str,
        audience: &str,
        groups_claim: &str,
        refetch_after: Duration,
        max_age: Duration,
    ) -> anyhow::Result<Self> {
        let http = http_client();
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let doc: Value = get_json(&http, &url).await.with_context(|| format!("discovering the issuer {issuer}"))?;
        // OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it was asked of.
        if doc["issuer"].as_str() != Some(issuer) {
            bail!("{url} names the issuer {} instead of {issuer:?}", doc["issuer"]);
        }
        let jwks_uri = doc["jwks_uri"].as_str().with_context(|| format!("{url} has no jwks_uri"))?.to_owned();
        let keys = fetch_keys(&http, &jwks_uri)
            .await
            .with_context(|| format!("fetching the issuer's keys from {jwks_uri}"))?;
        if keys.is_empty() {
            bail!("{jwks_uri} has no RS256 or ES256 signing key with a kid");
        }
        Ok(Self {
            issuer: issuer.into(),
            audience: audience.into(),
            groups_claim: groups_claim.into(),
            keys: KeySource::Remote(Box::new(RemoteKeys {
                http,
                jwks_uri,
                refetch_after,
                max_age,
                current: RwLock::new((Arc::new(keys), Instant::now())),
                last_try: tokio::sync::Mutex::new(Instant::now()),
            })),
        })
    }

    /// The claims of a bearer token, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let refuse = |m: &str| ApiError::unauthorized(m);
        // The header is read unverified only to choose the key; its `alg` must then be the key's.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| refuse("the bearer token is not a JWT signed with RS256 or ES256"))?;
        let kid = header.kid.as_deref().ok_or_else(|| refuse("the token names no signing key (kid)"))?;
        let key = self
            .keys
            .find(kid)
            .await
            .ok_or_else(|| refuse("the token is signed with a key the issuer does not publish"))?;
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // `aud`, or `client_id` without it, is checked below, as API Gateway does.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| ApiError::unauthorized(refusal(e.kind())))?;
        let claims = data.claims;
        if !has_audience(&claims, &self.audience) {
            return Err(refuse("the token is meant for another audience"));
        }
        let sub = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty());
        let sub = sub.ok_or_else(|| refuse("the token has no subject"))?;
        // Only the configured claim, as on AWS: a token cannot pick where its groups are read.
        let groups = claims.get(&self.groups_claim);
        Ok(Claims { sub: sub.to_owned(), groups: groups.map(string_list).unwrap_or_default(), scopes: scopes(&claims) })
    }
}

#[async_trait]
impl Authenticator for JwtVerifier {
    async fn authenticate(&self, parts: &Parts) -> Result<Claims, ApiError> {
        let token = bearer(parts)?;
        self.verify(token).await
    }
}

/// The token of `Authorization: Bearer <token>`; as with API Gateway's JWT authorizer, the
/// `Bearer ` prefix may be left out.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("sign in: this API needs an Authorization: Bearer token"))?;
    let value = value.to_str().unwrap_or_default().trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        Some(_) => "",
        None => value,
    };
    if token.is_empty() {
        return Err(ApiError::unauthorized("the Authorization header must be: Bearer <token>"));
    }
    Ok(token)
}

/// Why a token was refused, in words a client can act on (never the key or the claims).
fn refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired: sign in again".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "the token is from another issuer".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "the token's algorithm is not its key's".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("the token's {c} claim is malformed"),
        _ => "the bearer token is malformed".into(),
    }
}

/// `aud` (a string or a list) holds the audience; a token without `aud` may carry it as
/// `client_id` (Cognito access tokens).
fn has_audience(claims: &Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        Some(_) => false,
        None => claims.get("client_id").and_then(Value::as_str) == Some(audience),
    }
}

/// A claim holding names: a JSON array of strings, or one string, read as the Lambda side
/// reads what API Gateway passes (`groups_in`: a string is one name).
fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Value::String(s) => crate::identity::groups_in(s, false),
        _ => Vec::new(),
    }
}

/// OAuth scopes: `scope` (space-separated) or `scp` (a list, as Entra ID and Okta send it).
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(v) => string_list(v),
        None => Vec::new(),
    }
}

/// A client of the issuer: HTTPS with the system's roots on aws-lc-rs (HTTP too, for an
/// issuer on this machine).
type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

fn http_client() -> HttpClient {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no root certificates: an https issuer cannot be reached");
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        HttpsConnectorBuilder::new().with_tls_config(config)
    });
    Client::builder(TokioExecutor::new()).build(builder.https_or_http().enable_http1().build())
}

/// `GET url` as JSON, within [`FETCH_TIMEOUT`] and [`MAX_DOCUMENT_BYTES`].
async fn get_json(http: &HttpClient, url: &str) -> anyhow::Result<Value> {
    let req = http::Request::get(url).header(http::header::ACCEPT, "application/json").body(Empty::new())?;
    let fetch = async {
        let resp = http.request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_DOCUMENT_BYTES).collect().await;
        let body = body.map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?.to_bytes();
        if !status.is_success() {
            bail!("answered {status}");
        }
        serde_json::from_slice(&body).context("not JSON")
    };
    let answer = tokio::time::timeout(FETCH_TIMEOUT, fetch).await;
    answer
        .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {FETCH_TIMEOUT:?}")))
        .with_context(|| format!("GET {url}"))
}

async fn fetch_keys(http: &HttpClient, jwks_uri: &str) -> anyhow::Result<Keys> {
    let set: JwkSet = serde_json::from_value(get_json(http, jwks_uri).await?).context("not a JWK set")?;
    Ok(Keys::from_jwks(&set))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn audience_from_aud_or_else_client_id() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert!(has_audience(&claims(json!({"aud": "app"})), "app"));
        assert!(has_audience(&claims(json!({"aud": ["other", "app"]})), "app"));
        assert!(has_audience(&claims(json!({"client_id": "app"})), "app"));
        assert!(!has_audience(&claims(json!({"aud": "other", "client_id": "app"})), "app"));
        assert!(!has_audience(&claims(json!({"aud": 7})), "app"));
        assert!(!has_audience(&claims(json!({})), "app"));
    }

    #[test]
    fn only_rs256_and_p256_signing_keys_are_kept() {
        let set: JwkSet = serde_json::from_value(json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
        ]}))
        .unwrap();
        let keys = Keys::from_jwks(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get("ec").map(|k| k.alg), Some(Algorithm::ES256));
    }

    #[test]
    fn groups_and_scopes_in_the_shapes_issuers_send() {
        assert_eq!(string_list(&serde_json::json!(["admins", "users"])), ["admins", "users"]);
        assert_eq!(string_list(&serde_json::json!("Former admins")), ["Former admins"], "a string is one group");
        assert_eq!(string_list(&serde_json::json!("[Former admins]")), Vec::<String>::new());
        let claims = serde_json::json!({"scope": "openid files.read"});
        assert_eq!(scopes(claims.as_object().unwrap()), ["openid", "files.read"]);
        let claims = serde_json::json!({"scp": ["files.read"]});
        assert_eq!(scopes(claims.as_object().unwrap()), ["files.read"]);
    }
}
