//! User commands: sign up, sign in, grant and revoke roles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, AppState, Ctx};
use crate::users::{Access, Registration, Session, UserView};

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
}

/// Longest a session may be refreshed, from the password sign-in.
const MAX_SESSION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    auth_time: i64,
}

async fn refresh(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<Session>, ApiError> {
    let caller = caller_access(&ctx);
    Ok(Json(
        state
            .users
            .refresh(
                caller.as_ref().map(|(id, a)| (*id, a)),
                body.auth_time,
                MAX_SESSION,
            )
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisplayNameBody {
    display_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

async fn display_name(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<DisplayNameBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = caller_access(&ctx);
    state
        .users
        .change_display_name(
            caller.as_ref().map(|(id, a)| (*id, a)),
            &body.display_name,
            &ctx.meta,
        )
        .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn password(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = caller_access(&ctx);
    state
        .users
        .change_password(
            caller.as_ref().map(|(id, a)| (*id, a)),
            &body.current_password,
            &body.new_password,
            &ctx.meta,
        )
        .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

async fn disable(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(user): ApiPath<Uuid>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = caller_access(&ctx);
    state
        .users
        .disable(caller.as_ref().map(|(id, a)| (*id, a)), user, &ctx.meta)
        .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

async fn register(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    // Self-service sign-up makes readers; roles come from an admin afterwards.
    let session = state
        .users
        .register(
            Registration {
                id: None,
                username: body.username,
                password: body.password,
                display_name: body.display_name,
                roles: Vec::new(),
            },
            &ctx.meta,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(
        state
            .users
            .login(&body.username, &body.password, &ctx.client)
            .await?,
    ))
}

fn caller_access(ctx: &Ctx) -> Option<(Uuid, Access)> {
    ctx.caller.user_id.map(|id| {
        (
            id.0,
            Access {
                roles: ctx.caller.roles.clone(),
                display_name: ctx.caller.name.clone().unwrap_or_default(),
                disabled: false,
            },
        )
    })
}

async fn grant(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(user): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<UserView>, ApiError> {
    let caller = caller_access(&ctx);
    Ok(Json(
        state
            .users
            .set_role(
                caller.as_ref().map(|(id, a)| (*id, a)),
                user,
                &body.role,
                true,
                &ctx.meta,
            )
            .await?,
    ))
}

async fn revoke(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((user, role)): ApiPath<(Uuid, String)>,
) -> Result<Json<UserView>, ApiError> {
    let caller = caller_access(&ctx);
    Ok(Json(
        state
            .users
            .set_role(
                caller.as_ref().map(|(id, a)| (*id, a)),
                user,
                &role,
                false,
                &ctx.meta,
            )
            .await?,
    ))
}
