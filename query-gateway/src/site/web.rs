//! The web UI (`web/`, a SvelteKit build of static files) served beside `/graphql`.
//!
//! Every path that is not an API route gets a file of the build, or the build's `index.html`
//! (the single-page app then routes on the client). Content-hashed assets under `_app/immutable/`
//! are cached for a year; everything else is revalidated. `.gz`/`.br` twins written by the build
//! are served to clients that accept them. API-looking paths (`/v1/…`) that matched no route
//! answer 404 JSON, never the app.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Where a build lives and whether it is there.
#[derive(Clone, Debug)]
pub struct WebUi {
    dir: PathBuf,
}

impl WebUi {
    /// The build in `dir`, if it holds an `index.html`.
    #[must_use]
    pub fn at(dir: &Path) -> Option<Self> {
        dir.join("index.html").is_file().then(|| Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The build's `index.html`, the template of the pages the gateway builds.
    #[must_use]
    pub(crate) fn index_template(&self) -> IndexTemplate {
        IndexTemplate {
            path: self.dir.join("index.html"),
            cached: std::sync::Mutex::new(None),
        }
    }

    /// `router` with the UI as its fallback.
    pub fn serve_beside(self, router: Router) -> Router {
        let files = ServeDir::new(&self.dir)
            .precompressed_br()
            .precompressed_gzip()
            .fallback(ServeFile::new(self.dir.join("index.html")).precompressed_gzip());
        let template = std::sync::Arc::new(self.index_template());
        router.fallback(move |request: Request<Body>| {
            let files = files.clone();
            let template = template.clone();
            async move { Ok::<_, Infallible>(answer(files, &template, request).await) }
        })
    }
}

/// A build's `index.html`, read again whenever the file changes: a UI rebuilt while the server
/// runs names new asset files, and a page built from the old text would load none of them.
#[derive(Debug)]
pub(crate) struct IndexTemplate {
    path: PathBuf,
    cached: std::sync::Mutex<Option<(std::time::SystemTime, std::sync::Arc<str>)>>,
}

impl IndexTemplate {
    /// The current text, or `None` when the file cannot be read (logged).
    pub(crate) fn get(&self) -> Option<std::sync::Arc<str>> {
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .and_then(|at| match cached.as_ref() {
                Some((held_at, html)) if *held_at == at => Ok((at, html.clone())),
                _ => Ok((at, std::fs::read_to_string(&self.path)?.into())),
            });
        match fresh {
            Ok((at, html)) => {
                *cached = Some((at, html.clone()));
                Some(html)
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "no index.html to build pages from");
                None
            }
        }
    }
}

/// What `router` answers on paths it does not know when there is no build: a page saying how to
/// make one (so `inkwire dev` on a fresh clone explains itself instead of a bare 404).
pub fn explain_missing(router: Router, dir: &Path) -> Router {
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Inkwire</title>\
         <h1>Inkwire is running</h1><p>The web UI is not built: no <code>{}</code>. \
         Build it with <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code> \
         (or start with <code>scripts/dev.sh</code>, which does it), then reload. \
         The GraphQL API is at <a href=\"/graphql\">/graphql</a>.</p>",
        html_escape(&dir.join("index.html").display().to_string())
    );
    router.fallback(move |request: Request<Body>| {
        let page = page.clone();
        async move {
            if let Some(api) = api_not_found(request.uri().path()) {
                return api;
            }
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                page,
            )
                .into_response()
        }
    })
}

async fn answer(
    files: ServeDir<ServeFile>,
    template: &IndexTemplate,
    request: Request<Body>,
) -> Response {
    let path = request.uri().path().to_owned();
    if let Some(api) = api_not_found(&path) {
        return api;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = match files.oneshot(request).await {
        Ok(r) => r.into_response(),
        Err(never) => match never {},
    };
    let cache = if path.starts_with("/_app/immutable/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    page_headers(response.headers_mut(), cache);
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        // Every HTML file of the build is the app's page (the SPA fallback).
        let policy = content_security_policy(template.get().as_deref(), host.as_deref());
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// The Content-Security-Policy header of the UI's pages: the build's own policy (its
/// `<meta http-equiv>` tag, which carries the hashes of the app's inline bootstrap script) with
/// connections limited to this origin (`'self'`, and this host's `ws:`/`wss:` for browsers that
/// do not count a WebSocket to the same host as `'self'`), plus what only a header can say
/// (`frame-ancestors`).
pub(crate) fn content_security_policy(index_html: Option<&str>, host: Option<&str>) -> HeaderValue {
    const FALLBACK: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; object-src 'none'; base-uri 'self'; form-action 'self'";
    let built = index_html.and_then(meta_policy).unwrap_or(FALLBACK);
    // A host name as a browser sends it: letters, digits, dots, dashes, a port, IPv6 brackets.
    let host = host.filter(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    let connect = match host {
        Some(h) => format!("connect-src 'self' ws://{h} wss://{h}"),
        None => "connect-src 'self'".to_owned(),
    };
    let mut directives: Vec<String> = built
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| !d.starts_with("connect-src") && !d.starts_with("frame-ancestors"))
        .map(str::to_owned)
        .collect();
    directives.push(connect);
    directives.push("frame-ancestors 'none'".to_owned());
    HeaderValue::from_str(&directives.join("; "))
        .unwrap_or_else(|_| HeaderValue::from_static(FALLBACK))
}

/// The policy in a page's `<meta http-equiv="content-security-policy" content="...">`.
fn meta_policy(html: &str) -> Option<&str> {
    let lower = html.to_ascii_lowercase();
    let at = lower.find("http-equiv=\"content-security-policy\"")?;
    let tag_start = lower[..at].rfind('<')?;
    let tag_end = tag_start + lower[tag_start..].find('>')?;
    let content = lower[tag_start..tag_end].find("content=\"")? + tag_start + "content=\"".len();
    let end = content + html[content..].find('"')?;
    Some(&html[content..end])
}

/// The caching and security headers of a file of the UI (and of a page built from one).
pub(crate) fn page_headers(headers: &mut axum::http::HeaderMap, cache: &'static str) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

fn api_not_found(path: &str) -> Option<Response> {
    let api = ["/v1/", "/graphql/", "/metrics/"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    api.then(|| {
        (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "code": "NOT_FOUND",
                "message": format!("no route {path}"),
            })),
        )
            .into_response()
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// A directory removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("inkwire-web-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn build() -> Scratch {
        let dir = Scratch::new();
        std::fs::write(dir.path().join("index.html"), "<!doctype html><p>app").unwrap();
        std::fs::create_dir_all(dir.path().join("_app/immutable")).unwrap();
        std::fs::write(dir.path().join("_app/immutable/a.js"), "let a").unwrap();
        dir
    }

    async fn get_path(router: Router, path: &str) -> (StatusCode, String, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let cache = response
            .headers()
            .get(header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned(), cache)
    }

    #[tokio::test]
    async fn client_routes_get_the_app_and_assets_are_cached_for_good() {
        let dir = build();
        let router = WebUi::at(dir.path())
            .unwrap()
            .serve_beside(Router::new().route("/graphql", get(|| async { "api" })));
        let (status, body, cache) = get_path(router.clone(), "/posts/hello").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "<!doctype html><p>app")
        );
        assert_eq!(cache, "no-cache");
        let (status, body, cache) = get_path(router.clone(), "/_app/immutable/a.js").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "let a"));
        assert!(cache.contains("immutable"), "{cache}");
        let (_, body, _) = get_path(router.clone(), "/graphql").await;
        assert_eq!(body, "api");
        let (status, body, _) = get_path(router, "/v1/nothing").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("NOT_FOUND"), "{body}");
    }

    #[test]
    fn the_page_template_follows_a_rebuild() {
        let dir = build();
        let template = WebUi::at(dir.path()).unwrap().index_template();
        assert_eq!(template.get().as_deref(), Some("<!doctype html><p>app"));
        let index = dir.path().join("index.html");
        std::fs::write(&index, "<!doctype html><p>rebuilt").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&index)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(template.get().as_deref(), Some("<!doctype html><p>rebuilt"));
        std::fs::remove_file(&index).unwrap();
        assert_eq!(template.get(), None);
    }

    #[tokio::test]
    async fn pages_carry_the_builds_policy_as_a_header_with_connections_to_this_origin() {
        let dir = Scratch::new();
        std::fs::write(
            dir.path().join("index.html"),
            "<!doctype html><meta http-equiv=\"content-security-policy\" content=\"default-src 'self'; connect-src 'self' ws: wss:; script-src 'self' 'sha256-abc='\"><p>app",
        )
        .unwrap();
        let router = WebUi::at(dir.path()).unwrap().serve_beside(Router::new());
        let response = router
            .oneshot(
                Request::get("/posts/x")
                    .header("host", "blog.example:8080")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("'sha256-abc='"), "{policy}");
        assert!(
            policy.contains("connect-src 'self' ws://blog.example:8080 wss://blog.example:8080"),
            "{policy}"
        );
        assert!(!policy.contains("ws: "), "any host allowed: {policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        // A forged Host cannot add sources.
        let forged = content_security_policy(None, Some("evil.example wss://x"));
        assert!(!forged.to_str().unwrap().contains("evil"), "{forged:?}");
    }

    #[tokio::test]
    async fn without_a_build_the_root_says_how_to_make_one() {
        let dir = Scratch::new();
        assert!(WebUi::at(dir.path()).is_none());
        let (status, body, _) = get_path(explain_missing(Router::new(), dir.path()), "/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("npm --prefix web run build"), "{body}");
    }
}
