//! Comment commands: add (or reply), edit, delete, hide, restore.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use events::CommentId;
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, AppState, CommandResponse, Ctx, execute};
use crate::domain::post::commands::{AddComment, PostCommand};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddCommentBody {
    #[serde(default)]
    parent_id: Option<Uuid>,
    body: String,
    /// The name shown for an anonymous comment.
    #[serde(default)]
    author_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditCommentBody {
    body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HideCommentBody {
    reason: String,
}

async fn add(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AddCommentBody>,
) -> Result<(StatusCode, Json<CommandResponse>), ApiError> {
    let comment_id = CommentId::new();
    let command = PostCommand::AddComment(AddComment {
        comment_id,
        parent_id: body.parent_id.map(CommentId),
        body: body.body,
        author_name: body.author_name,
    });
    let response = execute_on_comment(&state, ctx, post_id, command, Some(comment_id)).await?;
    Ok((StatusCode::CREATED, response))
}

async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<EditCommentBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    let comment_id = CommentId(comment_id);
    let command = PostCommand::EditComment {
        comment_id,
        body: body.body,
    };
    execute_on_comment(&state, ctx, post_id, command, Some(comment_id)).await
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<CommandResponse>, ApiError> {
    let comment_id = CommentId(comment_id);
    execute_on_comment(
        &state,
        ctx,
        post_id,
        PostCommand::DeleteComment { comment_id },
        Some(comment_id),
    )
    .await
}

async fn hide(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<HideCommentBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    let comment_id = CommentId(comment_id);
    let command = PostCommand::HideComment {
        comment_id,
        reason: body.reason,
    };
    execute_on_comment(&state, ctx, post_id, command, Some(comment_id)).await
}

async fn restore(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<CommandResponse>, ApiError> {
    let comment_id = CommentId(comment_id);
    execute_on_comment(
        &state,
        ctx,
        post_id,
        PostCommand::RestoreComment { comment_id },
        Some(comment_id),
    )
    .await
}

/// Comment commands are conditional only through `If-Match`.
async fn execute_on_comment(
    state: &AppState,
    ctx: Ctx,
    post_id: Uuid,
    command: PostCommand,
    comment_id: Option<CommentId>,
) -> Result<Json<CommandResponse>, ApiError> {
    let expected = ctx.if_match;
    execute(state, ctx, post_id, command, expected, comment_id).await
}
