//! A small read API over the read tables (`/v1/read/...`), so the embedded default can be used
//! and checked without the GraphQL gateway. Internal: it shows drafts. Reads through
//! [`read_model::ReadModel`] only; never touches the write model.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use read_model::{CommentRow, CommentStatus, PostRow, PostStatus, ReadModel};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// A post as readers see it.
#[derive(Debug, Serialize)]
pub struct PostView {
    id: Uuid,
    author_id: Uuid,
    title: String,
    slug: String,
    body_markdown: String,
    tags: Vec<String>,
    status: PostStatus,
    comment_count: i64,
    version: i64,
    published_at: Option<DateTime<Utc>>,
}

impl From<PostRow> for PostView {
    fn from(row: PostRow) -> Self {
        Self {
            id: row.id,
            author_id: row.author_id,
            title: row.title,
            slug: row.slug,
            body_markdown: row.body_markdown,
            tags: row.tags.0,
            status: row.status,
            comment_count: row.comment_count,
            version: row.version,
            published_at: row.published_at,
        }
    }
}

/// A comment as readers see it, in thread order.
#[derive(Debug, Serialize)]
pub struct CommentView {
    id: Uuid,
    parent_id: Option<Uuid>,
    depth: i64,
    author_name: String,
    body: String,
    status: CommentStatus,
    reply_count: i64,
    post_version: i64,
    created_at: DateTime<Utc>,
}

impl From<CommentRow> for CommentView {
    fn from(row: CommentRow) -> Self {
        Self {
            id: row.id,
            parent_id: row.parent_id,
            depth: row.depth,
            author_name: row.author_name,
            body: row.body,
            status: row.status,
            reply_count: row.reply_count,
            post_version: row.post_version,
            created_at: row.created_at,
        }
    }
}

/// `/v1/read/posts/{id}` and `/v1/read/posts/{id}/comments`.
pub fn router(read: ReadModel) -> Router {
    Router::new()
        .route("/v1/read/posts/{id}", get(post))
        .route("/v1/read/posts/{id}/comments", get(comments))
        .with_state(read)
}

/// Errors of the read API, as a status and a JSON body with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The id is not a UUID.
    #[error("invalid id")]
    InvalidId,
    /// No such post.
    #[error("no such post")]
    NotFound,
    /// The database cannot be reached.
    #[error("database unavailable")]
    Unavailable,
    /// Anything else; logged, not shown.
    #[error("internal error")]
    Internal,
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            Self::InvalidId => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        let body =
            json!({ "error": { "code": code, "reason": code, "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for ReadError {
    fn from(e: sqlx::Error) -> Self {
        if infra::db::is_unavailable(&e) {
            return Self::Unavailable;
        }
        tracing::error!(error = ?e, "read failed");
        Self::Internal
    }
}

async fn post(
    State(read): State<ReadModel>,
    Path(id): Path<String>,
) -> Result<Json<PostView>, ReadError> {
    let id: Uuid = id.parse().map_err(|_| ReadError::InvalidId)?;
    let row = read.post_by_id(id, false).await?;
    row.map(|row| Json(row.into())).ok_or(ReadError::NotFound)
}

async fn comments(
    State(read): State<ReadModel>,
    Path(id): Path<String>,
) -> Result<Json<Vec<CommentView>>, ReadError> {
    let id: Uuid = id.parse().map_err(|_| ReadError::InvalidId)?;
    let rows = read.thread(id).await?;
    Ok(Json(rows.into_iter().map(CommentView::from).collect()))
}
