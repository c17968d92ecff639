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

    /// The caller may not do or see this.
    pub fn forbidden(reason: &str, message: impl Into<String>) -> Self {
        Self::Domain {
            code: "FORBIDDEN".into(),
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

impl From<command_api::CommandError> for GatewayError {
    fn from(e: command_api::CommandError) -> Self {
        use command_api::{CommandError, ErrorCode};
        match e {
            CommandError::Refused(r) => Self::Domain {
                code: match r.code {
                    // Malformed requests are the gateway's fault or the client's input.
                    ErrorCode::BadRequest
                    | ErrorCode::PayloadTooLarge
                    | ErrorCode::UnsupportedMediaType => "BAD_USER_INPUT".into(),
                    code => code.as_str().into(),
                },
                reason: r.reason,
                message: r.message,
                field: r.field.as_deref().map(to_camel),
            },
            CommandError::Unavailable => Self::Unavailable,
            CommandError::Internal => Self::Internal,
        }
    }
}

/// `body_markdown` → `bodyMarkdown`: the command API names fields as its JSON does, the
/// GraphQL inputs in camel case (and a post's `body_markdown` is the input's `body`).
fn to_camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "bodyMarkdown" => "body".to_owned(),
        "publishAt" => "at".to_owned(),
        _ => out,
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

#[cfg(test)]
mod tests {
    use super::*;
    use command_api::{CommandError, ErrorCode, Refusal};

    #[test]
    fn refusals_keep_their_code_reason_and_field_in_graphql_names() {
        let refused = CommandError::Refused(Refusal {
            code: ErrorCode::Validation,
            reason: "TITLE_TOO_LONG".into(),
            message: "too long".into(),
            field: Some("body_markdown".into()),
        });
        match GatewayError::from(refused) {
            GatewayError::Domain {
                code,
                reason,
                field,
                ..
            } => assert_eq!(
                (code.as_str(), reason.as_str(), field.as_deref()),
                ("VALIDATION", "TITLE_TOO_LONG", Some("body"))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_malformed_request_is_bad_user_input() {
        let refused = CommandError::Refused(Refusal {
            code: ErrorCode::BadRequest,
            reason: "INVALID_ID".into(),
            message: "bad id".into(),
            field: None,
        });
        assert_eq!(GatewayError::from(refused).code(), "BAD_USER_INPUT");
    }
}
