//! What search engines read first: `/robots.txt` (the pages not worth crawling, and where the
//! sitemap is) and `/sitemap.xml` (the home page, every published post with its last change,
//! and every tag's page), from the read tables on each request.
//!
//! A post's `lastmod` is the last change to its row, comments included: they are on its page.
//! One sitemap holds at most [`MAX_URLS`] addresses (the protocol's limit); past that the
//! newest posts are kept.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::http::HttpState;
use crate::site::feed::{FeedError, base_url};

/// Addresses per sitemap (sitemaps.org).
pub const MAX_URLS: i64 = 50_000;

/// Tags are letters, digits and hyphens; all but ASCII letters, digits and `-` are escaped.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-');

/// `GET /robots.txt`.
pub(crate) async fn robots(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let sitemap = base_url(state.feeds.public_url.as_deref(), &headers)
        .map(|base| format!("Sitemap: {base}/sitemap.xml\n"))
        .unwrap_or_default();
    let body = format!(
        "User-agent: *\nDisallow: /write\nDisallow: /signin\nDisallow: /register\n{sitemap}"
    );
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /sitemap.xml`.
pub(crate) async fn sitemap(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    match build(&state, &headers).await {
        Ok(xml) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/xml; charset=utf-8"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                ),
            ],
            xml,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn build(state: &HttpState, headers: &HeaderMap) -> Result<Vec<u8>, FeedError> {
    let base = base_url(state.feeds.public_url.as_deref(), headers)?;
    let posts = state.read.published_pages(MAX_URLS - 1).await?;
    let room = MAX_URLS - 1 - i64::try_from(posts.len()).unwrap_or(MAX_URLS);
    let tags = if room > 0 {
        state.read.published_tags(room).await?
    } else {
        Vec::new()
    };
    document(&base, &posts, &tags).map_err(|e| {
        tracing::error!(error = %e, "sitemap not written");
        FeedError::Internal
    })
}

fn document(
    base: &str,
    posts: &[(String, DateTime<Utc>)],
    tags: &[String],
) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(128 + posts.len() * 120));
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("urlset")
        .with_attribute(("xmlns", "http://www.sitemaps.org/schemas/sitemap/0.9"))
        .write_inner_content(|w| {
            url(w, &format!("{base}/"), None)?;
            for (slug, changed) in posts {
                let at = changed.to_rfc3339_opts(SecondsFormat::Secs, true);
                url(w, &format!("{base}/posts/{slug}"), Some(&at))?;
            }
            for tag in tags {
                let tag = utf8_percent_encode(tag, PATH_SEGMENT);
                url(w, &format!("{base}/tags/{tag}"), None)?;
            }
            Ok(())
        })?;
    Ok(w.into_inner())
}

fn url(w: &mut Writer<Vec<u8>>, loc: &str, lastmod: Option<&str>) -> std::io::Result<()> {
    w.create_element("url").write_inner_content(|w| {
        w.create_element("loc")
            .write_text_content(BytesText::new(loc))?;
        if let Some(at) = lastmod {
            w.create_element("lastmod")
                .write_text_content(BytesText::new(at))?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sitemap_lists_home_posts_and_tags_escaped() {
        let at = DateTime::parse_from_rfc3339("2026-12-03T08:00:00.5Z")
            .expect("time")
            .with_timezone(&Utc);
        let xml = document(
            "https://b.example",
            &[("hello".to_owned(), at)],
            &["été".to_owned(), "a-b".to_owned()],
        )
        .expect("written");
        let xml = String::from_utf8(xml).expect("utf-8");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
             <url><loc>https://b.example/</loc></url>\
             <url><loc>https://b.example/posts/hello</loc><lastmod>2026-12-03T08:00:00Z</lastmod></url>\
             <url><loc>https://b.example/tags/%C3%A9t%C3%A9</loc></url>\
             <url><loc>https://b.example/tags/a-b</loc></url>\
             </urlset>"
        );
        let amp = document("https://b.example/?a=1&b=2", &[], &[]).expect("written");
        assert!(String::from_utf8_lossy(&amp).contains("?a=1&amp;b=2/"));
    }
}
