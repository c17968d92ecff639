//! The command HTTP API: [`command_api`]'s commands as JSON in, its answers out, each route a
//! thin adapter onto [`crate::api::CommandService`]. It is internal: only gateways call it. Every request carries a caller proof
//! (`x-inkwire-caller`, [`command_api::auth::CallerKeys`]): a short-lived token the gateway signed
//! after checking the user's access token, naming the user and the client's address. A request
//! without a valid proof is refused with 401 before any handler runs (docs/security.md).

mod comments;
pub mod error;
mod posts;
mod reactions;
mod users;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::{Json, Router};
use command_api::auth::{CALLER_PROOF_HEADER, CallerClaims, CallerKeys};
use command_api::{Accepted, AccountCommand, Caller, Done, PostCommand, Session, SessionCommand};
use events::UserId;
use serde::de::DeserializeOwned;

pub use error::ApiError;

use crate::api::CommandService;

/// Largest accepted request body. A post body may be up to 200 kB of markdown.
pub const BODY_LIMIT: usize = 512 * 1024;

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// Executes commands.
    pub service: CommandService,
    /// Checks the gateways' caller proofs.
    pub callers: CallerKeys,
}

/// The command routes, under `/v1`, each behind the caller-proof check.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(posts::router())
        .merge(comments::router())
        .merge(reactions::router())
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

/// Who calls (from the caller proof) and the request's metadata (from the headers).
pub struct Ctx {
    /// The caller, as the gateway's proof names them.
    pub caller: Caller,
    /// `If-Match: "<version>"`, when present.
    pub if_match: Option<i64>,
}

impl Ctx {
    async fn post(
        self,
        state: &AppState,
        command: PostCommand,
    ) -> Result<Json<Accepted>, ApiError> {
        let accepted = state
            .service
            .execute_post(&self.caller, command, self.if_match)
            .await?;
        Ok(Json(accepted))
    }

    async fn session(
        self,
        state: &AppState,
        command: SessionCommand,
    ) -> Result<Json<Session>, ApiError> {
        Ok(Json(
            state.service.execute_session(&self.caller, command).await?,
        ))
    }

    async fn account(
        self,
        state: &AppState,
        command: AccountCommand,
    ) -> Result<Json<Done>, ApiError> {
        Ok(Json(
            state.service.execute_account(&self.caller, command).await?,
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        // Set by `require_caller_proof`, which every route sits behind.
        let Some(proof) = parts.extensions.get::<CallerClaims>() else {
            return Err(no_caller_proof());
        };
        let if_match = header_str(headers, "if-match")?
            .map(|v| {
                v.trim_matches('"').parse::<i64>().map_err(|_| {
                    ApiError::bad_request("INVALID_HEADER", "If-Match must be a stream version")
                })
            })
            .transpose()?;
        Ok(Self {
            caller: Caller {
                user_id: proof.sub.map(UserId),
                client: proof.client.clone(),
                request_id: header_str(headers, "x-request-id")?.map(str::to_owned),
                traceparent: header_str(headers, "traceparent")?.map(str::to_owned),
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
