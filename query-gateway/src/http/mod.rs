//! The gateway's HTTP face: `/graphql` over HTTP as the GraphQL-over-HTTP spec says
//! ([`graphql`]: content types, `Accept`, GET for queries, credentials, GraphiQL's page, the
//! WebSocket upgrade), graphql-transport-ws ([`ws`]), and the headers every answer carries.

pub mod graphql;
pub mod mail;
pub mod media;
pub mod ws;

use std::time::Duration;

use axum::Router;
use axum::http::header;
use command_api::auth::TokenKeys;
use read_model::ReadModel;

use crate::graphql::InkwireSchema;
use crate::live::cache::PageCache;
use crate::live::fanout;
use crate::site::{feed, web};

/// What the HTTP handlers share (behind one `Arc`: axum clones the state for every request).
pub(crate) struct HttpState {
    pub(crate) schema: InkwireSchema,
    pub(crate) read: ReadModel,
    pub(crate) keys: TokenKeys,
    pub(crate) cache: PageCache,
    pub(crate) live: fanout::LiveExecutor,
    pub(crate) feeds: feed::Feeds,
    /// The build's `index.html`, when the gateway serves post pages.
    pub(crate) page_template: Option<web::IndexTemplate>,
    /// Where uploaded images are kept, if this gateway serves them.
    pub(crate) media: Option<::media::MediaLibrary>,
    /// Where an upload is recorded.
    pub(crate) commands: std::sync::Arc<dyn command_api::CommandApi>,
    pub(crate) metrics: crate::metrics::Metrics,
}

/// Security headers on every answer, and CORS for the configured origins only.
pub(crate) fn with_edge_protections(router: Router, origins: &[String]) -> Router {
    use axum::http::{HeaderValue, Method};
    use tower_http::set_header::SetResponseHeaderLayer;
    let router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    if allowed.is_empty() {
        return router;
    }
    router.layer(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
            .max_age(Duration::from_secs(600)),
    )
}
