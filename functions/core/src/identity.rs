//! Who is calling. Handlers take a [`Caller`] and never look at tokens or events: on Lambda
//! API Gateway's JWT authorizer has verified the token and its claims arrive in the request
//! context; in the local stack a verifier checks the bearer token itself. Both are an
//! [`Authenticator`]; a request none accepts is `401 unauthorized`, before any handler runs.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::api::AppState;
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let claims = st.auth.authenticate(parts).await?;
        let owner =
            Owner::parse(&claims.sub).ok_or_else(|| ApiError::unauthorized("the token's subject is not usable"))?;
        let admin = claims.groups.iter().any(|g| *g == st.config.admin_group);
        Ok(Caller { owner, admin })
    }
}

/// Claims put in the request context by API Gateway's authorizer (HTTP API, payload 2.0): the
/// JWT authorizer's `jwt.claims`, or a Lambda authorizer's context (`lambda`: `sub` and
/// optionally `groups`) for deployers who authorize with a function of their own (and for SAM's
/// local API, which runs Lambda authorizers but not JWT ones). A request with neither never
/// passed an authorizer: refused here too.
pub struct ApiGatewayJwt {
    /// The claim holding groups (`cognito:groups` for Cognito, `groups` elsewhere).
    pub groups_claim: String,
}

#[async_trait]
impl Authenticator for ApiGatewayJwt {
    async fn authenticate(&self, parts: &Parts) -> Result<Claims, ApiError> {
        use lambda_http::request::RequestContext;
        let authorizer = match parts.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref(),
            _ => None,
        };
        let none = || ApiError::unauthorized("no verified token: the API's JWT authorizer did not run");
        let authorizer = authorizer.ok_or_else(none)?;
        if let Some(jwt) = &authorizer.jwt {
            let sub = jwt.claims.get("sub").filter(|s| !s.is_empty());
            let sub = sub.ok_or_else(|| ApiError::unauthorized("the token has no subject"))?;
            return Ok(Claims {
                sub: sub.clone(),
                groups: jwt.claims.get(&self.groups_claim).map(|g| list_claim(g)).unwrap_or_default(),
                scopes: jwt.scopes.clone().unwrap_or_default(),
            });
        }
        let context = &authorizer.fields;
        let sub = context.get("sub").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).ok_or_else(none)?;
        let groups = match context.get("groups") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|g| g.as_str().map(Into::into)).collect(),
            Some(serde_json::Value::String(g)) => list_claim(g),
            _ => Vec::new(),
        };
        Ok(Claims { sub: sub.to_owned(), groups, scopes: Vec::new() })
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

/// The authenticator of the Lambda functions.
pub fn api_gateway(config: &crate::config::Config) -> Arc<dyn Authenticator> {
    Arc::new(ApiGatewayJwt { groups_claim: config.groups_claim.clone() })
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
