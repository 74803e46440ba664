//! The built-in dev issuer (the default of `cargo run`): an ES256 key made once into the data
//! directory, its JWKS and discovery document, and `POST /auth/dev-token` to get a token for
//! any user name. It stands in for Cognito on one machine; the API verifies its tokens
//! exactly as it would a real issuer's.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use http::StatusCode;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use picasso::domain::Owner;
use picasso::error::ApiError;
use serde_json::{Value, json};

/// The `aud` of every dev token: what the stack (or a second one, `--jwt-audience`) expects.
pub const DEV_AUDIENCE: &str = "picasso-local";

/// The signing key's file in the data directory (PKCS#8 PEM, mode 0600).
pub const KEY_FILE: &str = "dev-issuer-key.pem";

/// How long a dev token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Groups a dev token may carry, at most.
const MAX_GROUPS: usize = 32;

pub struct DevIssuer {
    issuer: String,
    key: EncodingKey,
    jwk: Jwk,
    /// The claim its tokens carry their groups in: the one the API reads (`GROUPS_CLAIM`).
    groups_claim: String,
}

impl DevIssuer {
    /// The issuer `issuer` (the stack's base URL) with the key of `data_dir`, made there
    /// on first use and reused at every start after.
    pub fn open(data_dir: &Path, issuer: &str, groups_claim: &str) -> anyhow::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let der = load_or_create_key(&path)?;
        let key = EncodingKey::from_ec_der(&der);
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).context("deriving the dev issuer's public key")?;
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_id = Some(jwk.thumbprint(ThumbprintHash::SHA256).context("naming the dev issuer's key")?);
        Ok(Self { issuer: issuer.into(), key, jwk, groups_claim: groups_claim.into() })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public half, as `GET /.well-known/jwks.json` serves it.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: vec![self.jwk.clone()] }
    }

    /// A token for `sub`, in `groups`, valid for [`TOKEN_TTL`].
    pub fn mint(&self, sub: &Owner, groups: &[String]) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = picasso::domain::now();
        let expires = now + TOKEN_TTL;
        let mut claims = json!({
            "iss": self.issuer,
            "sub": sub.as_str(),
            "aud": DEV_AUDIENCE,
            "iat": now.timestamp(),
            "exp": expires.timestamp(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        claims[&self.groups_claim] = json!(groups);
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        let token = jsonwebtoken::encode(&header, &claims, &self.key).context("signing a dev token")?;
        Ok((token, expires))
    }

    /// `GET /.well-known/jwks.json`, `GET /.well-known/openid-configuration`,
    /// `POST /auth/dev-token`: no token needed, they are how one is got.
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jwks.json", get(|State(dev): State<Arc<Self>>| async move { Json(dev.jwks()) }))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/auth/dev-token", post(dev_token))
            .with_state(self)
    }
}

async fn discovery(State(dev): State<Arc<DevIssuer>>) -> Json<Value> {
    Json(json!({
        "issuer": dev.issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", dev.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": ["iss", "sub", "aud", "iat", "exp", dev.groups_claim],
    }))
}

/// `POST /auth/dev-token {"sub": "alice", "groups": ["admins"]}` → `201 {"token", "expires_at"}`.
async fn dev_token(State(dev): State<Arc<DevIssuer>>, body: Bytes) -> Result<Response, ApiError> {
    let (sub, groups) = parse_request(&body)?;
    let (token, expires) = dev.mint(&sub, &groups)?;
    tracing::info!(sub = sub.as_str(), ?groups, "dev token issued");
    let body = json!({"token": token, "expires_at": picasso::domain::rfc3339(&expires)});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The body's `sub` (what `Owner` takes: 1–255 bytes, no control characters) and `groups`
/// (optional, a list of such names).
fn parse_request(body: &[u8]) -> Result<(Owner, Vec<String>), ApiError> {
    #[derive(serde::Deserialize)]
    struct DevTokenBody {
        #[serde(default)]
        sub: Value,
        #[serde(default)]
        groups: Value,
    }
    let shape = || ApiError::bad_request("invalid_json", "request body must be a JSON object");
    let DevTokenBody { sub, groups } = picasso::api::wire::read(body, shape)?;
    let invalid = |m: &str| ApiError::bad_request("invalid_field", m);
    let sub = match &sub {
        Value::Null => return Err(ApiError::bad_request("missing_field", "field \"sub\" is required")),
        Value::String(s) => s,
        _ => return Err(invalid("field \"sub\" must be a string")),
    };
    let name_rule = "1 to 255 bytes without control characters";
    let sub = Owner::parse(sub).ok_or_else(|| invalid(&format!("field \"sub\" must be {name_rule}")))?;
    let groups = match &groups {
        Value::Null => Vec::new(),
        Value::Array(items) if items.len() <= MAX_GROUPS => items
            .iter()
            .map(|g| g.as_str().and_then(Owner::parse).map(|g| g.as_str().to_owned()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(&format!("each of \"groups\" must be a string of {name_rule}")))?,
        _ => return Err(invalid(&format!("field \"groups\" must be a list of at most {MAX_GROUPS} names"))),
    };
    Ok((sub, groups))
}

/// The PKCS#8 DER of the P-256 key in `path`, made there first if there is none. A new key is
/// written aside and linked into place, so a reader never sees half a key and two stacks
/// starting at once agree on one.
fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(der) = read_key(path)? {
        return Ok(der);
    }
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| anyhow::anyhow!("generating the dev issuer's key failed"))?;
    let der = pair.to_pkcs8v1().map_err(|_| anyhow::anyhow!("encoding the dev issuer's key failed"))?;
    let tmp = path.with_extension(format!("pem.{}.tmp", uuid::Uuid::new_v4().simple()));
    crate::private_file::create(&tmp, pem(der.as_ref()).as_bytes())?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(der.as_ref().to_vec()),
        // Another start made one in the meantime: that one it is.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path)?.with_context(|| format!("{} vanished", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

fn read_key(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let der = STANDARD
        .decode(body)
        .ok()
        .filter(|der| EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).is_ok());
    let Some(der) = der else {
        bail!("{} is not a P-256 private key in PKCS#8 PEM; delete it and a new one is made", path.display());
    };
    Ok(Some(der))
}

fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_a_usable_subject_and_groups() {
        let code = |body: &str| parse_request(body.as_bytes()).unwrap_err().code;
        assert_eq!(code("{"), "invalid_json");
        assert_eq!(code("[]"), "invalid_json");
        assert_eq!(code("{}"), "missing_field");
        assert_eq!(code(r#"{"sub": 1}"#), "invalid_field");
        assert_eq!(code(r#"{"sub": ""}"#), "invalid_field");
        assert_eq!(code(r#"{"sub": "a\u0007"}"#), "invalid_field");
        assert_eq!(code(&format!(r#"{{"sub": "{}"}}"#, "a".repeat(256))), "invalid_field");
        assert_eq!(code(r#"{"sub": "alice", "groups": "admins"}"#), "invalid_field");
        assert_eq!(code(r#"{"sub": "alice", "groups": [1]}"#), "invalid_field");
        let (sub, groups) = parse_request(br#"{"sub": "alice", "groups": ["admins"]}"#).unwrap();
        assert_eq!((sub.as_str(), groups), ("alice", vec!["admins".to_owned()]));
        assert!(parse_request(br#"{"sub": "bob", "groups": null}"#).unwrap().1.is_empty());
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("picasso-dev-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DevIssuer::open(&dir, "http://127.0.0.1:1", "groups").unwrap();
        let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = DevIssuer::open(&dir, "http://127.0.0.1:1", "groups").unwrap();
        assert_eq!(first.jwks(), again.jwks());
        std::fs::write(dir.join(KEY_FILE), "not a key").unwrap();
        assert!(
            DevIssuer::open(&dir, "http://127.0.0.1:1", "groups").is_err(),
            "a damaged key is reported, not replaced"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
