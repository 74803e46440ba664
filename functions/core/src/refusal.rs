//! Why the domain refuses a value or a request, in its own terms. `error.rs` gives each kind
//! its HTTP status; nothing here knows of HTTP.

/// What kind of refusal: the request's shape, its size, a type outside the allow-list, or a
/// state that does not permit it yet (or any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Invalid,
    TooLarge,
    Unsupported,
    Conflict,
}

/// A refused input: a stable code for programs, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    pub kind: Refusal,
    pub code: &'static str,
    pub message: String,
}

impl DomainError {
    pub fn new(kind: Refusal, code: &'static str, message: impl Into<String>) -> Self {
        Self { kind, code, message: message.into() }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Refusal::Invalid, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Refusal::Conflict, code, message)
    }

    /// `size` is whatever number the client sent (a float when it is beyond `u64`).
    pub fn too_large(size: impl std::fmt::Display, max: u64) -> Self {
        Self::new(Refusal::TooLarge, "too_large", format!("size {size} bytes is over the maximum of {max} bytes"))
    }

    /// `accepted` describes the configured allow-list.
    pub fn unsupported_type(essence: &str, accepted: &str) -> Self {
        Self::new(
            Refusal::Unsupported,
            "unsupported_content_type",
            format!("content type {essence} is not accepted; accepted types: {accepted}"),
        )
    }
}
