//! Who may call the local stack's API. As on AWS, where API Gateway's JWT authorizer stands
//! in front of the Lambdas, every API route needs a bearer JWT, verified here by
//! [`picasso::jwt::JwtVerifier`] and handed to the handlers as the same `Caller`. The tokens come from
//! the built-in [`dev::DevIssuer`] by default, from a real OIDC issuer with `--jwt-issuer`,
//! or are not needed at all with `--no-auth`.

pub mod dev;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use picasso::config::Config;
use picasso::identity::{Anonymous, Authenticator};
use serde_json::json;

use crate::auth::dev::{DEV_AUDIENCE, DevIssuer};
use picasso::jwt::{JwtVerifier, Keys};

/// How the stack authenticates its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// The built-in dev issuer (the default): tokens from `POST /auth/dev-token`.
    DevIssuer,
    /// Tokens of a real OIDC issuer (Cognito, Auth0, Keycloak…); the dev issuer is off.
    Issuer(ExternalIssuer),
    /// `--no-auth`: no token needed, every caller is `anonymous`.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIssuer {
    /// Its exact `iss`; its discovery document is under it.
    pub issuer: String,
    /// What `aud` (or `client_id`) must hold: the API's audience, or Cognito's app client id.
    pub audience: String,
    /// At most one new fetch of its JWKS per this long, when a token names an unknown key.
    pub refetch_after: Duration,
    /// How long its keys are used before they are fetched again (a removed key stops then).
    pub max_age: Duration,
}

/// What start-up made of the mode: the API's authenticator, the routes that go with it (the
/// dev issuer's, and `GET /auth/config` for the page), and the dev issuer when it runs.
pub struct Auth {
    pub authenticator: Arc<dyn Authenticator>,
    pub routes: Router,
    pub dev: Option<Arc<DevIssuer>>,
}

impl Auth {
    /// `base_url` is the stack's own (`http://127.0.0.1:PORT`): the dev issuer's `iss`.
    pub async fn start(mode: &AuthMode, data_dir: &Path, base_url: &str, config: &Config) -> anyhow::Result<Self> {
        let groups_claim = &config.groups_claim;
        let (authenticator, dev, mut page): (Arc<dyn Authenticator>, _, _) = match mode {
            AuthMode::DevIssuer => {
                let dev = Arc::new(DevIssuer::open(data_dir, base_url, groups_claim)?);
                let keys = Keys::from_jwks(&dev.jwks());
                let verifier = JwtVerifier::fixed(base_url, DEV_AUDIENCE, groups_claim, keys);
                let config = json!({"mode": "dev", "issuer": base_url, "audience": DEV_AUDIENCE});
                (Arc::new(verifier), Some(dev), config)
            }
            AuthMode::Issuer(ext) => {
                let verifier =
                    JwtVerifier::discover(&ext.issuer, &ext.audience, groups_claim, ext.refetch_after, ext.max_age)
                        .await?;
                let config = json!({"mode": "issuer", "issuer": ext.issuer, "audience": ext.audience});
                (Arc::new(verifier), None, config)
            }
            AuthMode::Off => (Arc::new(Anonymous), None, json!({"mode": "none"})),
        };
        // The page asks which sign-in to offer, and which group makes an admin.
        page["admin_group"] = json!(config.admin_group);
        let mut routes = Router::new().route("/auth/config", get(move || std::future::ready(Json(page.clone()))));
        if let Some(dev) = &dev {
            routes = routes.merge(dev.clone().routes());
        }
        Ok(Self { authenticator, routes, dev })
    }
}
