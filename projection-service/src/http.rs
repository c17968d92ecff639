//! A small read API over the read tables (`/v1/read/...`), so the embedded default can be used
//! and checked without the GraphQL gateway. Reads only; never touches the write model.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use infra::db::Db;
use infra::with_db;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::types::Json as SqlJson;
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
    status: String,
    comment_count: i64,
    version: i64,
    published_at: Option<DateTime<Utc>>,
}

/// A comment as readers see it, in thread order.
#[derive(Debug, Serialize)]
pub struct CommentView {
    id: Uuid,
    parent_id: Option<Uuid>,
    depth: i64,
    author_name: String,
    body: String,
    status: String,
    reply_count: i64,
    post_version: i64,
    created_at: DateTime<Utc>,
}

/// `/v1/read/posts/{id}` and `/v1/read/posts/{id}/comments`.
pub fn router(db: Db) -> Router {
    Router::new()
        .route("/v1/read/posts/{id}", get(post))
        .route("/v1/read/posts/{id}/comments", get(comments))
        .with_state(db)
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

async fn post(State(db): State<Db>, Path(id): Path<String>) -> Result<Json<PostView>, ReadError> {
    let id: Uuid = id.parse().map_err(|_| ReadError::InvalidId)?;
    let row = infra::db::retry_read(|| async {
        with_db!(&db, |pool| {
            sqlx::query(
                "SELECT id, author_id, title, slug, body_markdown, tags, status, comment_count, version, published_at \
                 FROM rm_posts WHERE id = $1 AND status <> 'deleted'",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .and_then(|row| {
                row.map(|row| {
                    let SqlJson(tags): SqlJson<Vec<String>> = row.try_get("tags")?;
                    Ok(PostView {
                        id: row.try_get("id")?,
                        author_id: row.try_get("author_id")?,
                        title: row.try_get("title")?,
                        slug: row.try_get("slug")?,
                        body_markdown: row.try_get("body_markdown")?,
                        tags,
                        status: row.try_get("status")?,
                        comment_count: row.try_get("comment_count")?,
                        version: row.try_get("version")?,
                        published_at: row.try_get("published_at")?,
                    })
                })
                .transpose()
            })
        })
    })
    .await;
    row?.map(Json).ok_or(ReadError::NotFound)
}

async fn comments(
    State(db): State<Db>,
    Path(id): Path<String>,
) -> Result<Json<Vec<CommentView>>, ReadError> {
    let id: Uuid = id.parse().map_err(|_| ReadError::InvalidId)?;
    let rows = infra::db::retry_read(|| async {
        with_db!(&db, |pool| {
            sqlx::query(
                "SELECT id, parent_id, depth, author_name, body, status, reply_count, post_version, created_at \
                 FROM rm_comments WHERE post_id = $1 ORDER BY path",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .and_then(|rows| {
                rows.into_iter()
                    .map(|row| {
                        Ok(CommentView {
                            id: row.try_get("id")?,
                            parent_id: row.try_get("parent_id")?,
                            depth: row.try_get("depth")?,
                            author_name: row.try_get("author_name")?,
                            body: row.try_get("body")?,
                            status: row.try_get("status")?,
                            reply_count: row.try_get("reply_count")?,
                            post_version: row.try_get("post_version")?,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
        })
    })
    .await;
    Ok(Json(rows?))
}
