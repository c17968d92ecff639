//! The command HTTP API: JSON commands in, the new stream version and a position token out.
//! It is internal: only gateways call it. Every request carries a caller proof
//! (`x-inkwire-caller`, [`infra::auth::CallerKeys`]): a short-lived token the gateway signed
//! after checking the user's access token, naming the user and the client's address. A request
//! without a valid proof is refused with 401 before any handler runs (docs/security.md).

mod comments;
pub mod error;
mod posts;
mod users;

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::{Json, Router};
use events::{PostId, UserId};
use infra::auth::{CALLER_PROOF_HEADER, CallerClaims, CallerKeys};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use error::ApiError;

use crate::domain::post::commands::Caller;
use crate::handler::{Accepted, CommandBus, RequestMeta};

/// Largest accepted request body. A post body may be up to 200 kB of markdown.
pub const BODY_LIMIT: usize = 512 * 1024;

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Executes commands.
    pub bus: Arc<CommandBus>,
    /// Sign-up, sign-in, roles.
    pub users: crate::users::UserService,
    /// Checks the gateways' caller proofs.
    pub callers: CallerKeys,
}

/// The command routes, under `/v1`, each behind the caller-proof check.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(posts::router())
        .merge(comments::router())
        .merge(users::router())
        .fallback(|| async {
            ApiError::NotFound {
                reason: "NO_SUCH_ROUTE",
                message: "no such route".into(),
            }
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.callers.clone(),
            require_caller_proof,
        ))
        .with_state(state)
}

/// The refusal of a request that brings no caller proof.
fn no_caller_proof() -> ApiError {
    ApiError::Unauthenticated {
        reason: "NO_CALLER_PROOF",
        message: "this internal API takes commands only from a gateway (no caller proof)".into(),
    }
}

/// Refuses a request without a valid caller proof; hands the proof's claims to [`Ctx`].
async fn require_caller_proof(
    axum::extract::State(keys): axum::extract::State<CallerKeys>,
    mut request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let proof = request
        .headers()
        .get(CALLER_PROOF_HEADER)
        .and_then(|v| v.to_str().ok());
    let Some(proof) = proof else {
        return no_caller_proof().into_response();
    };
    match keys.verify(proof) {
        Ok(claims) => {
            request.extensions_mut().insert(claims);
            next.run(request).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "caller proof refused");
            ApiError::Unauthenticated {
                reason: "BAD_CALLER_PROOF",
                message: "the caller proof is invalid or expired".into(),
            }
            .into_response()
        }
    }
}

/// JSON body extractor whose rejections are [`ApiError`]s with stable codes.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Path extractor whose rejections are [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Who calls, and the request metadata, from the headers.
pub struct Ctx {
    /// The authenticated caller.
    pub caller: Caller,
    /// Correlation and trace context.
    pub meta: RequestMeta,
    /// `If-Match: "<version>"`, when present.
    pub if_match: Option<i64>,
    /// The client's address as the gateway saw it (`x-inkwire-client`), for throttling.
    pub client: String,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        // Set by `require_caller_proof`, which every route sits behind.
        let Some(proof) = parts.extensions.get::<CallerClaims>() else {
            return Err(no_caller_proof());
        };
        let user_id = proof.sub.map(UserId);
        // The identity comes from the gateway's proof; the name and roles from our own
        // credentials table.
        let (name, roles) = match user_id {
            None => (None, Vec::new()),
            Some(id) => match state.users.access(id.0).await {
                Ok(Some(access)) if !access.disabled => (Some(access.display_name), access.roles),
                Ok(Some(_)) => {
                    return Err(ApiError::Unauthenticated {
                        reason: "USER_DISABLED",
                        message: "this account is disabled".into(),
                    });
                }
                Ok(None) => {
                    return Err(ApiError::Unauthenticated {
                        reason: "UNKNOWN_USER",
                        message: "no such user".into(),
                    });
                }
                Err(e) if infra::db::is_unavailable(&e) => return Err(ApiError::Unavailable),
                Err(e) => {
                    tracing::error!(error = ?e, "caller lookup failed");
                    return Err(ApiError::Internal);
                }
            },
        };
        let client = proof.client.clone().unwrap_or_else(|| "unknown".to_owned());
        let correlation_id = header_str(headers, "x-request-id")?.and_then(|v| v.parse().ok());
        let traceparent = header_str(headers, "traceparent")?.map(str::to_owned);
        let if_match = header_str(headers, "if-match")?
            .map(|v| {
                v.trim_matches('"').parse::<i64>().map_err(|_| {
                    ApiError::bad_request("INVALID_HEADER", "If-Match must be a stream version")
                })
            })
            .transpose()?;
        Ok(Self {
            client,
            caller: Caller {
                user_id,
                name,
                roles,
            },
            meta: RequestMeta {
                correlation_id,
                traceparent,
            },
            if_match,
        })
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::bad_request("INVALID_HEADER", format!("{name} is not valid text"))
            })
        })
        .transpose()
}

/// The answer to an accepted command.
#[derive(Debug, Serialize)]
pub struct CommandResponse {
    /// The post.
    pub post_id: PostId,
    /// The comment, for comment commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<events::CommentId>,
    /// The post's stream version after the command.
    pub version: i64,
    /// Opaque token naming the event's place in the log (`<post>@<version>`): a reader that has
    /// seen this position has seen the command's effect.
    pub position: String,
}

impl CommandResponse {
    fn from_accepted(accepted: &Accepted, comment_id: Option<events::CommentId>) -> Json<Self> {
        Json(Self {
            post_id: accepted.post_id,
            comment_id,
            version: accepted.version,
            position: format!("{}@{}", accepted.post_id, accepted.version),
        })
    }
}

/// Executes `command` on the post for the caller in `ctx`, and answers with the new version.
async fn execute(
    state: &AppState,
    ctx: Ctx,
    post_id: Uuid,
    command: crate::domain::post::commands::PostCommand,
    expected: Option<i64>,
    comment_id: Option<events::CommentId>,
) -> Result<Json<CommandResponse>, ApiError> {
    let command = crate::domain::post::Authored {
        caller: ctx.caller,
        command,
    };
    let accepted = state
        .bus
        .execute(PostId(post_id), command, expected, ctx.meta)
        .await?;
    Ok(CommandResponse::from_accepted(&accepted, comment_id))
}
