//! Atom feeds (RFC 4287) of the published posts, for feed readers: `/feed.xml` for the whole
//! blog and `/tags/{tag}/feed.xml` for one tag, newest first, the latest [`ENTRIES`] posts.
//!
//! Built from the read tables on each request (two statements: the posts, their authors), so a
//! post is in its feeds as soon as it is on the home page, and gone once unpublished. Each
//! answer carries an `ETag` of its bytes: a reader that polls with `If-None-Match` gets `304 Not
//! Modified` until something in the feed changed, an edit included.
//!
//! Links are absolute: from the configured public URL (`--public-url`) when there is one, or
//! else from the request's `Host` (and `X-Forwarded-Proto`, as nginx sets it).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Text};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;
use serde_json::json;

use crate::error::GatewayError;
use crate::http::HttpState;
use read_model::{PostRow, ReadModel};

/// Posts per feed.
pub const ENTRIES: i64 = 20;

/// What the feeds need beside the read tables.
#[derive(Clone)]
pub(crate) struct Feeds {
    /// `scheme://host[:port][/prefix]` without a trailing slash, when configured.
    pub public_url: Option<String>,
    /// `inkwire_gateway_feed_requests_total` by result.
    pub requests: IntCounterVec,
}

/// Why a feed could not be served, as a status and a JSON body with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The tag in the path cannot be a tag.
    #[error("a tag is 1 to {} letters, digits or hyphens", events::MAX_TAG_CHARS)]
    InvalidTag,
    /// No public URL is configured and the request has no usable `Host`.
    #[error("no usable Host header to build the feed's links from")]
    NoHost,
    /// The read tables cannot be reached.
    #[error("service unavailable, try again")]
    Unavailable,
    /// Anything else; logged, not shown.
    #[error("internal error")]
    Internal,
}

impl IntoResponse for FeedError {
    fn into_response(self) -> Response {
        let (status, code, reason) = match self {
            Self::InvalidTag => (StatusCode::BAD_REQUEST, "BAD_REQUEST", "INVALID_TAG"),
            Self::NoHost => (StatusCode::BAD_REQUEST, "BAD_REQUEST", "NO_HOST"),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "UNAVAILABLE",
            ),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "INTERNAL"),
        };
        let body =
            json!({ "error": { "code": code, "reason": reason, "message": self.to_string() } });
        (status, Json(body)).into_response()
    }
}

impl From<sqlx::Error> for FeedError {
    /// Classified (and logged) as the GraphQL API does.
    fn from(e: sqlx::Error) -> Self {
        match GatewayError::from(e) {
            GatewayError::Unavailable => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

/// The routes of feeds, the sitemap and robots.txt.
pub(crate) fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/feed.xml", axum::routing::get(blog_feed))
        .route("/tags/{tag}/feed.xml", axum::routing::get(tag_feed))
        .route(
            "/sitemap.xml",
            axum::routing::get(crate::site::sitemap::sitemap),
        )
        .route(
            "/robots.txt",
            axum::routing::get(crate::site::sitemap::robots),
        )
}

async fn blog_feed(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    answer(&state, &headers, None).await
}

async fn tag_feed(
    State(state): State<Arc<HttpState>>,
    Path(tag): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(&state, &headers, Some(tag)).await
}

async fn answer(state: &HttpState, headers: &HeaderMap, tag: Option<String>) -> Response {
    let (result, response) = match feed(state, headers, tag).await {
        Ok(xml) => conditional(headers, xml),
        Err(e) => ("error", e.into_response()),
    };
    state.feeds.requests.with_label_values(&[result]).inc();
    response
}

async fn feed(
    state: &HttpState,
    headers: &HeaderMap,
    tag: Option<String>,
) -> Result<Vec<u8>, FeedError> {
    let tag = tag
        .map(|t| events::normal_tag(&t).ok_or(FeedError::InvalidTag))
        .transpose()?;
    let base = base_url(state.feeds.public_url.as_deref(), headers)?;
    let posts = state
        .read
        .published_posts(ENTRIES, None, tag.as_deref(), &[])
        .await?;
    let authors = author_names(&state.read, &posts).await?;
    let xml = document(&base, tag.as_deref(), &posts, &authors)
        .write_to(Vec::new())
        .map_err(|e| {
            tracing::error!(error = %e, "feed not written");
            FeedError::Internal
        })?;
    Ok(xml)
}

/// The feed, or `304 Not Modified` when the client holds these very bytes.
fn conditional(headers: &HeaderMap, xml: Vec<u8>) -> (&'static str, Response) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    xml.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let held = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    let mut response = if held {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/atom+xml; charset=utf-8"),
            )],
            xml,
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Readers may keep it, but ask again each time (a 304 costs them nothing).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (if held { "not_modified" } else { "ok" }, response)
}

/// Where the site is, for absolute links: the configured public URL, or the request's own.
pub(crate) fn base_url(public_url: Option<&str>, headers: &HeaderMap) -> Result<String, FeedError> {
    if let Some(url) = public_url {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty() && !h.contains('@') && h.parse::<axum::http::uri::Authority>().is_ok()
        })
        .ok_or(FeedError::NoHost)?;
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|p| p.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    Ok(format!("{}://{host}", if https { "https" } else { "http" }))
}

async fn author_names(
    read: &ReadModel,
    posts: &[PostRow],
) -> Result<HashMap<uuid::Uuid, String>, sqlx::Error> {
    let mut ids: Vec<uuid::Uuid> = posts.iter().map(|p| p.author_id).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(read
        .users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect())
}

/// The Atom document. An entry's `updated` is its first publication or a later edit of its
/// title or text: comments, tags and re-publications do not make a reader show a post as
/// changed (they still change the feed's bytes, and so its `ETag`).
fn document(
    base: &str,
    tag: Option<&str>,
    posts: &[PostRow],
    authors: &HashMap<uuid::Uuid, String>,
) -> Feed {
    let (title, page, own) = match tag {
        Some(tag) => (
            format!("Inkwire: posts tagged {tag}"),
            format!("{base}/tags/{tag}"),
            format!("{base}/tags/{tag}/feed.xml"),
        ),
        None => (
            "Inkwire".to_owned(),
            format!("{base}/"),
            format!("{base}/feed.xml"),
        ),
    };
    let entries: Vec<Entry> = posts
        .iter()
        .map(|post| entry(base, post, authors.get(&post.author_id)))
        .collect();
    let updated = posts
        .iter()
        .filter_map(PostRow::revised_at)
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    Feed {
        title: Text::plain(title),
        id: own.clone(),
        updated: updated.fixed_offset(),
        links: vec![
            link(&own, "self", "application/atom+xml"),
            link(&page, "alternate", "text/html"),
        ],
        generator: Some(Generator {
            value: "Inkwire".to_owned(),
            ..Generator::default()
        }),
        entries,
        ..Feed::default()
    }
}

fn entry(base: &str, post: &PostRow, author: Option<&String>) -> Entry {
    let url = format!("{base}/posts/{}", post.slug);
    let published = post.published_at.unwrap_or(post.created_at).fixed_offset();
    let updated = post.revised_at().map_or(published, |t| t.fixed_offset());
    let html = post
        .body_html
        .clone()
        .unwrap_or_else(|| render::post_html(&post.body_markdown));
    Entry {
        id: format!("urn:uuid:{}", post.id),
        title: Text::plain(post.title.clone()),
        updated,
        published: Some(published),
        authors: vec![Person {
            name: author.cloned().unwrap_or_else(|| "unknown".to_owned()),
            ..Person::default()
        }],
        categories: post
            .tags
            .0
            .iter()
            .map(|t| Category {
                term: t.clone(),
                ..Category::default()
            })
            .collect(),
        links: vec![link(&url, "alternate", "text/html")],
        content: Some(Content {
            // Relative links and images in the body resolve against the post's page.
            base: Some(url),
            value: Some(html),
            content_type: Some("html".to_owned()),
            ..Content::default()
        }),
        ..Entry::default()
    }
}

fn link(href: &str, rel: &str, mime: &str) -> Link {
    Link {
        href: href.to_owned(),
        rel: rel.to_owned(),
        mime_type: Some(mime.to_owned()),
        ..Link::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    #[test]
    fn links_come_from_the_public_url_then_the_request() {
        let h = headers(&[
            ("host", "blog.example:8443"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            base_url(Some("https://ink.example/blog/"), &h).expect("configured"),
            "https://ink.example/blog"
        );
        assert_eq!(
            base_url(None, &h).expect("host"),
            "https://blog.example:8443"
        );
        let plain = headers(&[("host", "127.0.0.1:8080")]);
        assert_eq!(
            base_url(None, &plain).expect("host"),
            "http://127.0.0.1:8080"
        );
        for bad in ["evil.example@x", "a b", ""] {
            let h = headers(&[("host", bad)]);
            assert!(
                matches!(base_url(None, &h), Err(FeedError::NoHost)),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            base_url(None, &HeaderMap::new()),
            Err(FeedError::NoHost)
        ));
    }

    #[test]
    fn a_client_holding_the_same_bytes_gets_not_modified() {
        let (result, first) = conditional(&HeaderMap::new(), b"<feed/>".to_vec());
        assert_eq!((result, first.status()), ("ok", StatusCode::OK));
        let etag = first.headers()[header::ETAG]
            .to_str()
            .expect("etag")
            .to_owned();
        let (result, again) = conditional(
            &headers(&[("if-none-match", &format!("\"other\", W/{etag}"))]),
            b"<feed/>".to_vec(),
        );
        assert_eq!(
            (result, again.status()),
            ("not_modified", StatusCode::NOT_MODIFIED)
        );
        let (result, changed) = conditional(
            &headers(&[("if-none-match", &etag)]),
            b"<feed></feed>".to_vec(),
        );
        assert_eq!((result, changed.status()), ("ok", StatusCode::OK));
        assert_ne!(changed.headers()[header::ETAG], etag.as_str());
    }
}
