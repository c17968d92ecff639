//! The one error type of the HTTP API: every refusal becomes a status and a JSON body
//! `{"error": {"code", "reason", "message", "field"?}}` with stable, machine-readable `code`
//! (the class: VALIDATION, NOT_FOUND, CONFLICT, …) and `reason` (the precise cause).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use command_api::{CommandError as ApiCommandError, ErrorBody, ErrorCode, Refusal};

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
    /// Its class, precise reason and field to blame.
    fn parts(&self) -> (ErrorCode, &'static str, Option<&'static str>) {
        match self {
            Self::BadRequest { reason, .. } => (ErrorCode::BadRequest, reason, None),
            Self::PayloadTooLarge => (ErrorCode::PayloadTooLarge, "PAYLOAD_TOO_LARGE", None),
            Self::UnsupportedMediaType => (
                ErrorCode::UnsupportedMediaType,
                "UNSUPPORTED_MEDIA_TYPE",
                None,
            ),
            Self::Validation { reason, field, .. } => (ErrorCode::Validation, reason, *field),
            Self::NotFound { reason, .. } => (ErrorCode::NotFound, reason, None),
            Self::Conflict { reason, .. } => (ErrorCode::Conflict, reason, None),
            Self::Unauthenticated { reason, .. } => (ErrorCode::Unauthenticated, reason, None),
            Self::Forbidden(_) => (ErrorCode::Forbidden, "FORBIDDEN", None),
            Self::TooManyRequests(_) => (ErrorCode::RateLimited, "TOO_MANY_ATTEMPTS", None),
            Self::Unavailable => (ErrorCode::Unavailable, "DATABASE_UNAVAILABLE", None),
            Self::Internal => (ErrorCode::Internal, "INTERNAL", None),
        }
    }

    /// The refusal as it crosses the command boundary.
    #[must_use]
    pub fn refusal(&self) -> Refusal {
        let (code, reason, field) = self.parts();
        Refusal {
            code,
            reason: reason.to_owned(),
            message: self.to_string(),
            field: field.map(str::to_owned),
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
        let error = self.refusal();
        let status =
            StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error })).into_response()
    }
}

impl From<ApiError> for ApiCommandError {
    fn from(e: ApiError) -> Self {
        e.refusal().into()
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
            U::MailUnavailable => Self::Conflict {
                reason: "EMAIL_UNAVAILABLE",
                message,
            },
            U::BadLink => Self::Validation {
                reason: "INVALID_LINK",
                field: Some("token"),
                message,
            },
            U::LinkExpired => Self::Validation {
                reason: "LINK_EXPIRED",
                field: Some("token"),
                message,
            },
            U::LinkStale => Self::Conflict {
                reason: "LINK_STALE",
                message,
            },
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
            | PostError::NotScheduled
            | PostError::CommentAlreadyExists
            | PostError::CommentDeleted
            | PostError::CommentAlreadyHidden
            | PostError::CommentNotHidden
            | PostError::CommentHidden => Self::Conflict { reason, message },
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
