//! Post pages as link previews and search engines see them: `GET /posts/{slug}` answers the web
//! UI's `index.html` with the post's title, a plain-text description, its canonical address and
//! Open Graph tags in the `<head>`. Chat apps and social sites that unfurl a shared link do not
//! run the app's JavaScript; without these a shared post showed only "Inkwire".
//!
//! The app itself is unchanged and routes on the client as before. A slug that names no
//! published post answers `404` with the same app (it shows "not found", or an author's draft
//! to its author) and `noindex`. When the read tables cannot be reached the plain app goes out,
//! so a page never fails for want of its preview.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::HttpState;
use read_model::PostRow;

/// Longest description, in characters (what previews show).
const DESCRIPTION_CHARS: usize = 200;

/// What the build's `index.html` carries where the page's own `<head>` goes.
const TITLE: &str = "<title>Inkwire</title>";

/// `GET /posts/{slug}`.
pub(crate) async fn post_page(
    State(state): State<Arc<HttpState>>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(template) = state.page_template.as_ref().and_then(|t| t.get()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let template = &*template;
    let post = if events::is_slug(&slug) {
        state.read.post_by_slug(&slug).await
    } else {
        Ok(None)
    };
    let (status, html) = match post {
        Ok(Some(post)) if post.status == read_model::PostStatus::Published => {
            let base =
                crate::site::feed::base_url(state.feeds.public_url.as_deref(), &headers).ok();
            (
                StatusCode::OK,
                page(template, &head(&post, base.as_deref())),
            )
        }
        Ok(_) => (
            StatusCode::NOT_FOUND,
            page(
                template,
                "<title>Not found · Inkwire</title>\n<meta name=\"robots\" content=\"noindex\">",
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, slug, "post page served without its preview");
            (StatusCode::OK, template.to_owned())
        }
    };
    let mut response = (status, html).into_response();
    crate::site::web::page_headers(response.headers_mut(), "no-cache");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        crate::site::web::content_security_policy(Some(template), host),
    );
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// `template` with its title replaced by `head` (or `head` added before `</head>`).
fn page(template: &str, head: &str) -> String {
    if template.contains(TITLE) {
        template.replacen(TITLE, head, 1)
    } else {
        template.replacen("</head>", &format!("{head}\n</head>"), 1)
    }
}

/// The `<head>` elements of a published post's page.
fn head(post: &PostRow, base: Option<&str>) -> String {
    let title = attr(&post.title);
    let description = attr(&render::summary(&post.body_markdown, DESCRIPTION_CHARS));
    let mut out = format!(
        "<title>{title} · Inkwire</title>\n\
         <meta name=\"description\" content=\"{description}\">\n\
         <meta property=\"og:type\" content=\"article\">\n\
         <meta property=\"og:site_name\" content=\"Inkwire\">\n\
         <meta property=\"og:title\" content=\"{title}\">\n\
         <meta property=\"og:description\" content=\"{description}\">\n\
         <meta name=\"twitter:card\" content=\"summary\">\n"
    );
    if let Some(base) = base {
        let url = attr(&format!("{base}/posts/{}", post.slug));
        out.push_str(&format!(
            "<link rel=\"canonical\" href=\"{url}\">\n<meta property=\"og:url\" content=\"{url}\">\n"
        ));
    }
    if let Some(at) = post.published_at {
        out.push_str(&format!(
            "<meta property=\"article:published_time\" content=\"{}\">\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    if let Some(at) = post
        .revised_at()
        .filter(|at| Some(*at) != post.published_at)
    {
        out.push_str(&format!(
            "<meta property=\"article:modified_time\" content=\"{}\">\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    for tag in &post.tags.0 {
        out.push_str(&format!(
            "<meta property=\"article:tag\" content=\"{}\">\n",
            attr(tag)
        ));
    }
    out
}

/// `s` escaped for a double-quoted attribute (and so for text too).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(published: Option<&str>, edited: Option<&str>) -> PostRow {
        let at = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("time")
                .with_timezone(&chrono::Utc)
        };
        PostRow {
            id: uuid::Uuid::nil(),
            author_id: uuid::Uuid::nil(),
            title: "T".into(),
            slug: "t".into(),
            body_markdown: "Body".into(),
            body_html: None,
            tags: sqlx::types::Json(vec!["x".into()]),
            status: read_model::PostStatus::Published,
            allow_anonymous_comments: false,
            comment_count: 0,
            version: 1,
            created_at: at("2026-12-01T00:00:00Z"),
            updated_at: at("2026-12-03T00:00:00Z"),
            published_at: published.map(at),
            edited_at: edited.map(at),
            scheduled_at: None,
        }
    }

    #[test]
    fn an_edit_after_publication_is_the_pages_modified_time() {
        let modified = "article:modified_time";
        let edited_later = head(
            &post(Some("2026-12-02T10:00:00Z"), Some("2026-12-02T12:30:00Z")),
            None,
        );
        assert!(
            edited_later.contains(&format!(
                "<meta property=\"{modified}\" content=\"2026-12-02T12:30:00Z\">"
            )),
            "{edited_later}"
        );
        let edited_as_draft = head(
            &post(Some("2026-12-02T10:00:00Z"), Some("2026-12-01T12:00:00Z")),
            None,
        );
        assert!(!edited_as_draft.contains(modified), "{edited_as_draft}");
        assert!(!head(&post(Some("2026-12-02T10:00:00Z"), None), None).contains(modified));
    }

    #[test]
    fn the_head_replaces_the_apps_title_and_escapes_what_authors_wrote() {
        let template = "<html><head><meta charset=utf-8><title>Inkwire</title></head><body>app";
        let head = "<title>\"x\" &lt;</title>";
        assert_eq!(
            page(template, head),
            "<html><head><meta charset=utf-8><title>\"x\" &lt;</title></head><body>app"
        );
        assert_eq!(page("<head></head>", "<meta a>"), "<head><meta a>\n</head>");
        assert_eq!(
            attr(r#"Tom & "Jerry" <script>'"#),
            "Tom &amp; &quot;Jerry&quot; &lt;script&gt;&#39;"
        );
    }
}
