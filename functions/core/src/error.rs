//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::refusal::{DomainError, Refusal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For `quota_exceeded`: the limit and what the caller holds.
    pub quota: Option<QuotaDetail>,
    /// Seconds after which trying again may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

/// The limit a request would break and what the caller holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDetail {
    pub limit: u64,
    pub usage: UsageCount,
}

/// What one user holds: files not yet final, and bytes of all their files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UsageCount {
    pub pending: u64,
    pub bytes: u64,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), quota: None, retry_after: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// No usable bearer token: missing, expired, not ours. Answered with `WWW-Authenticate`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Logs the cause and tells the client nothing about the internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = format!("{cause:#}"), "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error, please retry")
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match e.kind {
            Refusal::Invalid => StatusCode::BAD_REQUEST,
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Conflict => StatusCode::CONFLICT,
        };
        Self::new(status, e.code, e.message)
    }
}

/// Any failure of an adapter: logged, answered `500 internal`; unless an adapter refused the
/// request itself (a search too broad to answer), which is the client's to change.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<DomainError>() {
            Ok(refused) => refused.into(),
            Err(e) => Self::internal(e),
        }
    }
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ApiError)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable, for programs: each operation's responses list the codes it can answer.
    pub code: &'a str,
    /// For people: what was wrong and what would be accepted.
    pub message: &'a str,
    /// With `quota_exceeded` only: the limit the request would break (files not yet final,
    /// or bytes, as the message says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// With `quota_exceeded` only: what the caller holds now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageCount>,
}

/// The refusals every route may answer, for the OpenAPI document: each operation lists
/// them by name instead of spelling them out again.
pub mod responses {
    use std::collections::BTreeMap;

    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

    fn error(status: &str, description: &str) -> BTreeMap<String, RefOr<Response>> {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ApiError"))).build();
        let response = ResponseBuilder::new().description(description).content("application/json", content).build();
        BTreeMap::from([(status.to_owned(), RefOr::T(response))])
    }

    /// `401 unauthorized`: every route needs a bearer token.
    pub struct Unauthorized;

    impl utoipa::IntoResponses for Unauthorized {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            error("401", "`unauthorized`: no valid bearer token")
        }
    }

    /// `404 not_found`: a file that does not exist, or is someone else's (the same answer).
    pub struct NotFound;

    impl utoipa::IntoResponses for NotFound {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            error("404", "`not_found`: no such file, or someone else's")
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (limit, usage) = self.quota.map(|q| (q.limit, q.usage)).unzip();
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: &self.message, limit, usage } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        for (kind, status) in
            [(Refusal::Invalid, 400), (Refusal::TooLarge, 413), (Refusal::Unsupported, 415), (Refusal::Conflict, 409)]
        {
            let e = ApiError::from(DomainError::new(kind, "code", "message"));
            assert_eq!((e.status.as_u16(), e.code, e.message.as_str()), (status, "code", "message"));
        }
    }
}
