//! The gateway's errors, as GraphQL errors with a stable `extensions.code` (and, where the
//! command service gave one, the precise `extensions.reason` and `extensions.field`).

use async_graphql::ErrorExtensions;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request itself is wrong (bad id, bad cursor, out-of-range page size).
    #[error("{message}")]
    BadInput {
        /// Precise cause.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// The command service refused the command, or a read found nothing.
    #[error("{message}")]
    Domain {
        /// Class: NOT_FOUND, CONFLICT, VALIDATION, UNAUTHENTICATED, FORBIDDEN, ...
        code: String,
        /// Precise cause.
        reason: String,
        /// For people.
        message: String,
        /// The input field concerned.
        field: Option<String>,
    },
    /// The command was accepted but its effect was not visible in time.
    #[error("the change was accepted but is not visible to queries yet")]
    ProjectionTimeout {
        /// The command's position, to wait on or retry the read with.
        position: String,
    },
    /// A dependency (database, command service) cannot be reached.
    #[error("service unavailable, try again")]
    Unavailable,
    /// A bug or unexpected failure; logged, not shown.
    #[error("internal error")]
    Internal,
}

impl GatewayError {
    /// A bad-input error.
    pub fn bad_input(reason: &'static str, message: impl Into<String>) -> Self {
        Self::BadInput {
            reason,
            message: message.into(),
        }
    }

    /// Nothing found.
    pub fn not_found(reason: &str, message: impl Into<String>) -> Self {
        Self::Domain {
            code: "NOT_FOUND".into(),
            reason: reason.into(),
            message: message.into(),
            field: None,
        }
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Domain { code, .. } => code,
            Self::ProjectionTimeout { .. } => "PROJECTION_TIMEOUT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

impl From<sqlx::Error> for GatewayError {
    fn from(e: sqlx::Error) -> Self {
        if infra::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "read model unavailable");
            return Self::Unavailable;
        }
        tracing::error!(error = ?e, "read failed");
        Self::Internal
    }
}

impl ErrorExtensions for GatewayError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
            e.set("code", self.code());
            match self {
                Self::BadInput { reason, .. } => e.set("reason", *reason),
                Self::Domain { reason, field, .. } => {
                    e.set("reason", reason.as_str());
                    if let Some(field) = field {
                        e.set("field", field.as_str());
                    }
                }
                Self::ProjectionTimeout { position } => e.set("position", position.as_str()),
                Self::Unavailable | Self::Internal => {}
            }
        })
    }
}
