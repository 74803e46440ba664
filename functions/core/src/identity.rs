//! Who is calling. Handlers take a [`Caller`] and never look at tokens or events: on Lambda
//! API Gateway's JWT authorizer has verified the token and its claims arrive in the request
//! context; in the local stack a verifier checks the bearer token itself. Both are an
//! [`Authenticator`]; a request none accepts is `401 unauthorized`, before any handler runs.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use crate::domain::Owner;
use crate::error::ApiError;

/// What a verified token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    pub sub: String,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
}

/// Turns a request into verified claims, or refuses it.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, parts: &Parts) -> Result<Claims, ApiError>;
}

/// The caller of a handler: whose files it may see, and whether it may see everyone's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub owner: Owner,
    pub admin: bool,
}

/// How callers are recognised: who verifies their tokens, and which group makes an admin.
/// Any router state that provides it (`FromRef`) gets the [`Caller`] extractor.
#[derive(Clone)]
pub struct Identity {
    pub auth: Arc<dyn Authenticator>,
    pub admin_group: Arc<str>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    Identity: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, ApiError> {
        let identity = Identity::from_ref(st);
        let claims = identity.auth.authenticate(parts).await?;
        let owner =
            Owner::parse(&claims.sub).ok_or_else(|| ApiError::unauthorized("the token's subject is not usable"))?;
        let admin = claims.groups.iter().any(|g| **g == *identity.admin_group);
        Ok(Caller { owner, admin })
    }
}

/// API Gateway flattens array claims into one string: `[admins users]`, or JSON when the
/// issuer sent it so, or a plain comma list.
pub fn list_claim(value: &str) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(value) {
        return v;
    }
    let inner = value.trim().trim_start_matches('[').trim_end_matches(']');
    inner.split([' ', ',']).map(str::trim).filter(|s| !s.is_empty()).map(Into::into).collect()
}

/// `--no-auth`: every request is the same anonymous owner, as the old service had it.
pub struct Anonymous;

pub const ANONYMOUS: &str = "anonymous";

#[async_trait]
impl Authenticator for Anonymous {
    async fn authenticate(&self, _: &Parts) -> Result<Claims, ApiError> {
        Ok(Claims { sub: ANONYMOUS.into(), ..Claims::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_claims_in_every_shape_api_gateway_passes_them() {
        assert_eq!(list_claim("[admins users]"), ["admins", "users"]);
        assert_eq!(list_claim(r#"["admins","users"]"#), ["admins", "users"]);
        assert_eq!(list_claim("admins, users"), ["admins", "users"]);
        assert_eq!(list_claim("[]"), Vec::<String>::new());
        assert_eq!(list_claim("admins"), ["admins"]);
    }
}
