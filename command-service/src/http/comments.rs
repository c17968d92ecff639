//! Comment routes: add (or reply), edit, delete, hide, restore.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use command_api::{Accepted, AddComment, EditComment, HideComment, PostCommand};
use events::{CommentId, PostId};
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, AppState, Ctx};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/posts/{post_id}/comments", post(add))
        .route(
            "/v1/posts/{post_id}/comments/{comment_id}",
            patch(edit).delete(remove),
        )
        .route("/v1/posts/{post_id}/comments/{comment_id}/hide", post(hide))
        .route(
            "/v1/posts/{post_id}/comments/{comment_id}/restore",
            post(restore),
        )
}

async fn add(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AddComment>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let command = PostCommand::AddComment(PostId(post_id), body);
    Ok((StatusCode::CREATED, ctx.post(&state, command).await?))
}

async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<EditComment>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::EditComment(PostId(post_id), CommentId(comment_id), body);
    ctx.post(&state, command).await
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::DeleteComment(PostId(post_id), CommentId(comment_id));
    ctx.post(&state, command).await
}

async fn hide(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<HideComment>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::HideComment(PostId(post_id), CommentId(comment_id), body);
    ctx.post(&state, command).await
}

async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::RestoreComment(PostId(post_id), CommentId(comment_id));
    ctx.post(&state, command).await
}
