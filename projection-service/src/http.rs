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

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "reason": code, "message": message } }))).into_response()
}

fn parse(id: &str) -> Result<Uuid, Response> {
    id.parse()
        .map_err(|_| error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "invalid id"))
}

fn internal(e: &sqlx::Error) -> Response {
    if infra::db::is_unavailable(e) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "database unavailable");
    }
    tracing::error!(error = ?e, "read failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
}

async fn post(State(db): State<Db>, Path(id): Path<String>) -> Response {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let row = with_db!(&db, |pool| {
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
    });
    match row {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such post"),
        Err(e) => internal(&e),
    }
}

async fn comments(State(db): State<Db>, Path(id): Path<String>) -> Response {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let rows = with_db!(&db, |pool| {
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
    });
    match rows {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => internal(&e),
    }
}
