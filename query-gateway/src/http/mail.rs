//! `POST /unsubscribe/one-click?token=…`: the one-click unsubscribe of RFC 8058. A mail client
//! that shows "unsubscribe" for a notification email (its `List-Unsubscribe` and
//! `List-Unsubscribe-Post` headers) posts here itself, with no page and no session; the signed
//! token is the proof. The link in the email's text is the web UI's page `/unsubscribe`, which
//! asks before it unsubscribes.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use command_api::{AccountCommand, CommandError, ErrorCode, MailLink};

use super::HttpState;
use super::media::refusal;

/// The link's query.
#[derive(serde::Deserialize)]
pub(crate) struct Link {
    token: Option<String>,
}

/// `POST /unsubscribe/one-click`.
pub(crate) async fn one_click(
    State(state): State<Arc<HttpState>>,
    Query(link): Query<Link>,
) -> Response {
    let Some(token) = link.token.filter(|t| !t.is_empty()) else {
        return refusal(
            ErrorCode::BadRequest,
            "MISSING_TOKEN",
            "the unsubscribe link's token is missing",
        );
    };
    match state
        .commands
        .account(
            &command_api::Caller::default(),
            AccountCommand::Unsubscribe(MailLink { token }),
        )
        .await
    {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "unsubscribed": true })),
        )
            .into_response(),
        Err(CommandError::Refused(r)) => refusal(r.code, &r.reason, r.message),
        Err(CommandError::Unavailable) => refusal(
            ErrorCode::Unavailable,
            "UNAVAILABLE",
            "the command service is unavailable; try again",
        ),
        Err(CommandError::Internal) => refusal(ErrorCode::Internal, "INTERNAL", "internal error"),
    }
}
