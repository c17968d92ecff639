//! Reaction routes: `PUT` gives a reaction to a post or a comment, `DELETE` takes it back. Both
//! answer 200 whether or not anything changed (`events` is empty when the caller already had,
//! or had not, that reaction): a client may repeat them freely.

use axum::extract::State;
use axum::routing::put;
use axum::{Json, Router};
use command_api::{Accepted, PostCommand};
use events::{CommentId, PostId};
use uuid::Uuid;

use super::{ApiError, ApiPath, AppState, Ctx};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/posts/{post_id}/reactions/{kind}",
            put(react_to_post).delete(unreact_to_post),
        )
        .route(
            "/v1/posts/{post_id}/comments/{comment_id}/reactions/{kind}",
            put(react_to_comment).delete(unreact_to_comment),
        )
}

async fn react_to_post(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, kind)): ApiPath<(Uuid, String)>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::React(PostId(post_id), None, kind);
    ctx.post(&state, command).await
}

async fn unreact_to_post(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, kind)): ApiPath<(Uuid, String)>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::Unreact(PostId(post_id), None, kind);
    ctx.post(&state, command).await
}

async fn react_to_comment(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id, kind)): ApiPath<(Uuid, Uuid, String)>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::React(PostId(post_id), Some(CommentId(comment_id)), kind);
    ctx.post(&state, command).await
}

async fn unreact_to_comment(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath((post_id, comment_id, kind)): ApiPath<(Uuid, Uuid, String)>,
) -> Result<Json<Accepted>, ApiError> {
    let command = PostCommand::Unreact(PostId(post_id), Some(CommentId(comment_id)), kind);
    ctx.post(&state, command).await
}
