//! Post commands: create, edit, publish, unpublish, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use events::PostId;
use serde::Deserialize;
use uuid::Uuid;

use super::{ApiError, ApiJson, ApiPath, AppState, CommandResponse, Ctx, execute};
use crate::domain::post::Authored;
use crate::domain::post::commands::{DraftPost, EditPost, PostCommand};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/posts", post(create))
        .route("/v1/posts/{post_id}", patch(edit).delete(remove))
        .route("/v1/posts/{post_id}/publish", post(publish))
        .route("/v1/posts/{post_id}/unpublish", post(unpublish))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePost {
    /// Optional client-chosen id (UUID), so a retried create is recognised.
    #[serde(default)]
    id: Option<Uuid>,
    title: String,
    slug: String,
    #[serde(default)]
    body_markdown: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    allow_anonymous_comments: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditPostBody {
    #[serde(default)]
    expected_version: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    body_markdown: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    allow_anonymous_comments: Option<bool>,
}

async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(body): ApiJson<CreatePost>,
) -> Result<(StatusCode, Json<CommandResponse>), ApiError> {
    let post_id = body.id.map_or_else(PostId::new, PostId);
    let command = PostCommand::DraftPost(DraftPost {
        title: body.title,
        slug: body.slug,
        body_markdown: body.body_markdown,
        tags: body.tags,
        allow_anonymous_comments: body.allow_anonymous_comments,
    });
    let accepted = state
        .bus
        .execute(
            post_id,
            Authored {
                caller: ctx.caller,
                command,
            },
            Some(0),
            ctx.meta,
        )
        .await
        .map_err(|e| match e {
            crate::handler::CommandError::VersionMismatch { .. } => {
                crate::domain::post::PostError::PostAlreadyExists.into()
            }
            other => ApiError::from(other),
        })?;
    Ok((
        StatusCode::CREATED,
        CommandResponse::from_accepted(&accepted, None),
    ))
}

async fn edit(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<EditPostBody>,
) -> Result<Json<CommandResponse>, ApiError> {
    let command = PostCommand::EditPost(EditPost {
        title: body.title,
        slug: body.slug,
        body_markdown: body.body_markdown,
        tags: body.tags,
        allow_anonymous_comments: body.allow_anonymous_comments,
    });
    let expected = body.expected_version.or(ctx.if_match);
    execute(&state, ctx, post_id, command, expected, None).await
}

async fn publish(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<CommandResponse>, ApiError> {
    let expected = ctx.if_match;
    execute(
        &state,
        ctx,
        post_id,
        PostCommand::PublishPost,
        expected,
        None,
    )
    .await
}

async fn unpublish(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<CommandResponse>, ApiError> {
    let expected = ctx.if_match;
    execute(
        &state,
        ctx,
        post_id,
        PostCommand::UnpublishPost,
        expected,
        None,
    )
    .await
}

async fn remove(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiPath(post_id): ApiPath<Uuid>,
) -> Result<Json<CommandResponse>, ApiError> {
    let expected = ctx.if_match;
    execute(
        &state,
        ctx,
        post_id,
        PostCommand::DeletePost,
        expected,
        None,
    )
    .await
}
