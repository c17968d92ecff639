//! Post routes: create, edit, publish, unpublish, delete, schedule.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post, put};
use axum::{Json, Router};
use command_api::{Accepted, CreatePost, EditPost, PostCommand, SchedulePost};
use events::PostId;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, AppState, Ctx};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/posts", post(create))
        .route("/v1/posts/{post_id}", patch(edit).delete(remove))
        .route("/v1/posts/{post_id}/publish", post(publish))
        .route("/v1/posts/{post_id}/unpublish", post(unpublish))
        .route(
            "/v1/posts/{post_id}/schedule",
            put(schedule).delete(unschedule),
        )
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<CreatePost>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let accepted = ctx.post(&state, PostCommand::Create(body)).await?;
    Ok((StatusCode::CREATED, accepted))
}

async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<EditPost>,
) -> Result<Json<Accepted>, ApiError> {
    ctx.post(&state, PostCommand::Edit(PostId(post_id), body))
        .await
}

async fn publish(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    ctx.post(&state, PostCommand::Publish(PostId(post_id)))
        .await
}

async fn unpublish(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    ctx.post(&state, PostCommand::Unpublish(PostId(post_id)))
        .await
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    ctx.post(&state, PostCommand::Delete(PostId(post_id))).await
}

async fn schedule(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SchedulePost>,
) -> Result<Json<Accepted>, ApiError> {
    ctx.post(&state, PostCommand::Schedule(PostId(post_id), body))
        .await
}

async fn unschedule(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<Accepted>, ApiError> {
    ctx.post(&state, PostCommand::Unschedule(PostId(post_id)))
        .await
}
