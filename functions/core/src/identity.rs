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

/// The groups a claim names, read so that no group can pass for another. A JSON array is its
/// elements; any other string is one group, whole. API Gateway's JWT authorizer flattens an
/// array claim into `[a b]`: that is split on spaces only when `names_have_no_spaces` (Cognito
/// group names cannot hold a space); from another issuer `[Former admins]` could be one group
/// or two, so such a list names a group only when it holds a single word.
pub fn groups_in(value: &str, names_have_no_spaces: bool) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Vec<String>>(value) {
        return v;
    }
    let value = value.trim();
    let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) else {
        return if value.is_empty() { Vec::new() } else { vec![value.to_owned()] };
    };
    let words: Vec<String> = inner.split(' ').filter(|s| !s.is_empty()).map(Into::into).collect();
    if names_have_no_spaces || words.len() <= 1 { words } else { Vec::new() }
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
        let cognito = |v| groups_in(v, true);
        assert_eq!(cognito("[admins users]"), ["admins", "users"]);
        assert_eq!(cognito(r#"["admins","users"]"#), ["admins", "users"]);
        assert_eq!(cognito("[]"), Vec::<String>::new());
        assert_eq!(cognito("admins"), ["admins"]);
        // Another issuer's names may hold spaces: a flattened list of several is no group.
        let other = |v| groups_in(v, false);
        assert_eq!(other("[Former admins]"), Vec::<String>::new());
        assert_eq!(other("[admins]"), ["admins"]);
        assert_eq!(other(r#"["Former admins","users"]"#), ["Former admins", "users"]);
        assert_eq!(other("Former admins"), ["Former admins"]);
        assert_eq!(other("admins, users"), ["admins, users"], "a string is one group, commas and all");
    }
}
