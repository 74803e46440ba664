//! Who is calling, on Lambda: API Gateway's authorizer has verified the token, and its claims
//! arrive in the request context.

use async_trait::async_trait;
use http::request::Parts;

use crate::config::COGNITO_GROUPS;
use crate::error::ApiError;
use crate::identity::{Authenticator, Claims, groups_in};

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
                groups: jwt
                    .claims
                    .get(&self.groups_claim)
                    .map(|g| groups_in(g, self.groups_claim == COGNITO_GROUPS))
                    .unwrap_or_default(),
                scopes: jwt.scopes.clone().unwrap_or_default(),
            });
        }
        let context = &authorizer.fields;
        let sub = context.get("sub").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).ok_or_else(none)?;
        let groups = match context.get("groups") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|g| g.as_str().map(Into::into)).collect(),
            Some(serde_json::Value::String(g)) => groups_in(g, false),
            _ => Vec::new(),
        };
        Ok(Claims { sub: sub.to_owned(), groups, scopes: Vec::new() })
    }
}
