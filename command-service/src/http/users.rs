//! User routes: sign up, sign in, refresh, account changes, roles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use command_api::{
    AccountCommand, ChangeDisplayName, ChangePassword, Done, GrantRole, Login, MailLink,
    MarkNotificationsRead, RecordMedia, Refresh, Register, Session, SessionCommand, SetEmail,
};
use events::UserId;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, AppState, Ctx};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users", post(register))
        .route("/v1/sessions", post(login))
        .route("/v1/users/{user_id}/roles", post(grant))
        .route("/v1/users/{user_id}/roles/{role}", delete(revoke))
        .route("/v1/sessions/refresh", post(refresh))
        .route("/v1/users/me/display-name", post(display_name))
        .route("/v1/users/me/password", post(password))
        .route("/v1/users/{user_id}/disable", post(disable))
        .route("/v1/users/me/media", post(media))
        .route("/v1/users/me/notifications/read", post(notifications_read))
        .route("/v1/users/me/email", get(show_email).put(set_email))
        .route("/v1/mail/confirm", post(confirm_email))
        .route("/v1/mail/unsubscribe", post(unsubscribe))
}

async fn show_email(State(state): State<AppState>, ctx: Ctx) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::ShowEmail).await
}

async fn set_email(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<SetEmail>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::SetEmail(body)).await
}

async fn confirm_email(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<MailLink>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::ConfirmEmail(body))
        .await
}

async fn unsubscribe(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<MailLink>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::Unsubscribe(body)).await
}

async fn register(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<Register>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    let session = ctx.session(&state, SessionCommand::Register(body)).await?;
    Ok((StatusCode::CREATED, session))
}

async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<Session>, ApiError> {
    ctx.session(&state, SessionCommand::Login(body)).await
}

async fn refresh(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<Refresh>,
) -> Result<Json<Session>, ApiError> {
    ctx.session(&state, SessionCommand::Refresh(body)).await
}

async fn display_name(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<ChangeDisplayName>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::ChangeDisplayName(body))
        .await
}

async fn password(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::ChangePassword(body))
        .await
}

async fn media(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RecordMedia>,
) -> Result<(StatusCode, Json<Done>), ApiError> {
    let done = ctx
        .account(&state, AccountCommand::RecordMedia(body))
        .await?;
    Ok((StatusCode::CREATED, done))
}

async fn notifications_read(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<MarkNotificationsRead>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::MarkNotificationsRead(body))
        .await
}

async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(user): ApiPath<Uuid>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::Disable(UserId(user)))
        .await
}

async fn grant(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(user): ApiPath<Uuid>,
    ApiJson(body): ApiJson<GrantRole>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::GrantRole(UserId(user), body))
        .await
}

async fn revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((user, role)): ApiPath<(Uuid, String)>,
) -> Result<Json<Done>, ApiError> {
    ctx.account(&state, AccountCommand::RevokeRole(UserId(user), role))
        .await
}
