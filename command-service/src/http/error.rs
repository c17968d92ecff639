//! The one error type of the HTTP API: every refusal becomes a status and a JSON body
//! `{"error": {"code", "reason", "message", "field"?}}` with stable, machine-readable `code`
//! (the class: VALIDATION, NOT_FOUND, CONFLICT, …) and `reason` (the precise cause).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::post::PostError;
use crate::handler::CommandError;
use crate::store::StoreError;

/// An HTTP API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read (malformed JSON, bad id, bad header).
    #[error("{message}")]
    BadRequest {
        /// Precise cause.
        reason: &'static str,
        /// Plain words.
        message: String,
    },
    /// The body is larger than the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not `application/json`.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// The request is well-formed but a value is not acceptable.
    #[error("{message}")]
    Validation {
        /// Precise cause.
        reason: &'static str,
        /// The offending field, when one is to blame.
        field: Option<&'static str>,
        /// Plain words.
        message: String,
    },
    /// The post or comment does not exist.
    #[error("{message}")]
    NotFound {
        /// Precise cause.
        reason: &'static str,
        /// Plain words.
        message: String,
    },
    /// The request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Precise cause.
        reason: &'static str,
        /// Plain words.
        message: String,
    },
    /// The caller must sign in.
    #[error("{message}")]
    Unauthenticated {
        /// Precise cause.
        reason: &'static str,
        /// Plain words.
        message: String,
    },
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts (sign-in throttling).
    #[error("{0}")]
    TooManyRequests(String),
    /// The database cannot be reached; try again later.
    #[error("service unavailable")]
    Unavailable,
    /// A bug or an unexpected failure; details are in the log, not in the response.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<&'static str>) {
        match self {
            Self::BadRequest { reason, .. } => {
                (StatusCode::BAD_REQUEST, "BAD_REQUEST", reason, None)
            }
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "PAYLOAD_TOO_LARGE",
                None,
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "UNSUPPORTED_MEDIA_TYPE",
                None,
            ),
            Self::Validation { reason, field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION",
                reason,
                *field,
            ),
            Self::NotFound { reason, .. } => (StatusCode::NOT_FOUND, "NOT_FOUND", reason, None),
            Self::Conflict { reason, .. } => (StatusCode::CONFLICT, "CONFLICT", reason, None),
            Self::Unauthenticated { reason, .. } => {
                (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason, None)
            }
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN", "FORBIDDEN", None),
            Self::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "TOO_MANY_ATTEMPTS",
                None,
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "DATABASE_UNAVAILABLE",
                None,
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "INTERNAL",
                None,
            ),
        }
    }

    pub(crate) fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            reason,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, reason, field) = self.parts();
        let mut error = json!({ "code": code, "reason": reason, "message": self.to_string() });
        if let Some(field) = field {
            error["field"] = field.into();
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::Validation {
                reason: "INVALID_BODY",
                field: None,
                message: e.body_text(),
            },
            JsonRejection::JsonSyntaxError(e) => Self::bad_request("MALFORMED_JSON", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            other => Self::bad_request("UNREADABLE_BODY", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(
            "INVALID_ID",
            format!("invalid id in path: {}", rejection.body_text()),
        )
    }
}

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        match err {
            CommandError::Rejected(e) => e.into(),
            CommandError::VersionMismatch { .. } | CommandError::Conflict => Self::Conflict {
                reason: "VERSION_CONFLICT",
                message: err.to_string(),
            },
            CommandError::SlugTaken(_) => Self::Conflict {
                reason: "SLUG_TAKEN",
                message: err.to_string(),
            },
            CommandError::Store(StoreError::Db(e)) if infra::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable
            }
            CommandError::Store(e) => {
                tracing::error!(error = ?e, "command failed");
                Self::Internal
            }
        }
    }
}

impl From<crate::users::UserError> for ApiError {
    fn from(err: crate::users::UserError) -> Self {
        use crate::users::UserError as U;
        let message = err.to_string();
        match err {
            U::Invalid { field, .. } => Self::Validation {
                reason: "INVALID_FIELD",
                field: Some(field),
                message,
            },
            U::UsernameTaken => Self::Conflict {
                reason: "USERNAME_TAKEN",
                message,
            },
            U::InvalidCredentials => Self::Unauthenticated {
                reason: "INVALID_CREDENTIALS",
                message,
            },
            U::Unauthenticated => Self::Unauthenticated {
                reason: "SIGN_IN_REQUIRED",
                message,
            },
            U::Throttled => Self::TooManyRequests(message),
            U::NotFound => Self::NotFound {
                reason: "USER_NOT_FOUND",
                message,
            },
            U::Forbidden(_) => Self::Forbidden(message),
            U::Store(StoreError::Db(e)) if infra::db::is_unavailable(&e) => Self::Unavailable,
            U::Store(e) => {
                tracing::error!(error = ?e, "user command failed");
                Self::Internal
            }
            U::Hash => Self::Internal,
        }
    }
}

impl From<PostError> for ApiError {
    fn from(err: PostError) -> Self {
        let reason = err.reason();
        let message = err.to_string();
        match err {
            PostError::PostNotFound | PostError::PostDeleted | PostError::CommentNotFound => {
                Self::NotFound { reason, message }
            }
            PostError::PostAlreadyExists
            | PostError::PostNotPublished
            | PostError::AlreadyPublished
            | PostError::CommentAlreadyExists
            | PostError::CommentDeleted
            | PostError::CommentAlreadyHidden
            | PostError::CommentNotHidden => Self::Conflict { reason, message },
            PostError::ParentNotInPost => Self::Validation {
                reason,
                field: Some("parent_id"),
                message,
            },
            PostError::Invalid { field, .. } => Self::Validation {
                reason,
                field: Some(field),
                message,
            },
            PostError::Unauthenticated | PostError::AnonymousNotAllowed => {
                Self::Unauthenticated { reason, message }
            }
            PostError::Forbidden(_) => Self::Forbidden(message),
        }
    }
}
