//! Why a command was refused: a class ([`ErrorCode`], an enum with a fixed HTTP status), a
//! precise reason, words for people and, when one is to blame, the input field.

use serde::{Deserialize, Serialize};

/// The class of a refusal. Stable: clients and the gateway's GraphQL codes depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request could not be read (malformed JSON, bad id, bad header).
    BadRequest,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// A value is not acceptable.
    Validation,
    /// The post, comment or user does not exist.
    NotFound,
    /// The command conflicts with the current state.
    Conflict,
    /// The caller must sign in (or their credentials are no longer good).
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// Too many attempts.
    RateLimited,
    /// A dependency cannot be reached; try again.
    Unavailable,
    /// A bug; details are in the log.
    Internal,
}

impl ErrorCode {
    /// Its name on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::Validation => "VALIDATION",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// Its HTTP status.
    #[must_use]
    pub const fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Validation => 422,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }
}

/// A refusal, as the JSON body `{"error": {...}}` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The class.
    pub code: ErrorCode,
    /// The precise cause, e.g. `TITLE_TOO_LONG`.
    pub reason: String,
    /// Plain words.
    pub message: String,
    /// The request field to blame, as the request body names it (`body_markdown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The body of every refusal of the command service's HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The refusal.
    pub error: Refusal,
}

/// Why a command did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The command service refused it; nothing was written.
    #[error(transparent)]
    Refused(Refusal),
    /// The command service (or its database) could not be reached; the command may be retried.
    #[error("the command service is unavailable")]
    Unavailable,
    /// Something unexpected; logged where it happened.
    #[error("internal error")]
    Internal,
}

impl From<Refusal> for CommandError {
    fn from(refusal: Refusal) -> Self {
        match refusal.code {
            ErrorCode::Unavailable => Self::Unavailable,
            ErrorCode::Internal => Self::Internal,
            _ => Self::Refused(refusal),
        }
    }
}
