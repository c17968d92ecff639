//! Inkwire's GraphQL gateway: the one API clients use. Queries read the read tables; mutations
//! go to the command service (and can wait until their effect is visible to queries); comment
//! subscriptions are fed by this instance's own reading of the log (see [`live`]).
//!
//! [`Gateway::new`] wires it into a router (so `inkwire dev` can mount it beside the other
//! services); [`serve`] runs it alone on a listener until cancelled.

pub mod caller;
pub mod cursor;
pub mod error;
pub mod graphql;
pub mod http;
pub mod live;
pub mod metrics;
pub mod site;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use command_api::CommandApi;
use command_api::auth::TokenKeys;
use infra::db::Db;
use infra::log::LogConfig;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::graphql::limits;
use crate::graphql::{InkwireSchema, Mutation, Query, Shared, SubscriptionRoot};
use crate::http::HttpState;
use crate::live::cache::PageCache;
use crate::live::{Hub, fanout};
use crate::metrics::Metrics;
use crate::site::{feed, pages, web};
use read_model::ReadModel;

/// Largest GraphQL request body (a post may carry 200 kB of markdown).
pub const BODY_LIMIT: usize = 512 * 1024;
/// Largest WebSocket message a client may send.
pub const WS_MESSAGE_LIMIT: usize = 64 * 1024;

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Checks access tokens (the secret is shared with the command services).
    pub keys: TokenKeys,
    /// Longest `waitForProjection`.
    pub wait_timeout: Duration,
    /// Whether introspection (and so GraphiQL's docs) is on.
    pub introspection: bool,
    /// Events of slack per subscriber before it is disconnected as too slow.
    pub subscriber_buffer: usize,
    /// Most nested selection levels.
    pub max_depth: usize,
    /// Most fields per query (complexity).
    pub max_complexity: usize,
    /// Origins allowed to call the API from a browser on another origin (CORS); none by default
    /// (the web UI is served from the same origin).
    pub cors_origins: Vec<String>,
    /// Mutations per minute per signed-in user (burst: a fifth of it).
    pub mutations_per_minute: u32,
    /// Mutations per minute per client address without a token (burst: a third of it).
    pub anonymous_mutations_per_minute: u32,
    /// Bytes the page cache may hold (0: off).
    pub page_cache_bytes: usize,
    /// Longest a page-cache entry is served, even when no event made it stale.
    pub page_cache_max_age: Duration,
    /// The projector's commit bell when it runs in the same process (`inkwire dev`): live
    /// pushes and `waitForProjection` then go out at its commit instead of at their next poll.
    pub projection_bell: Option<read_model::bell::CommitBell>,
    /// The consumer group of the projector that writes the read tables this gateway serves:
    /// the page cache waits for it to reach the log's end before it stores anything.
    pub projection_group: String,
    /// Where readers reach the site (`https://blog.example`), for the absolute links of the
    /// Atom feeds, the sitemap and post pages; `None`: from each request's `Host` and
    /// `X-Forwarded-Proto`.
    pub public_url: Option<String>,
    /// The web UI's build. The gateway then answers `/posts/{slug}` with the app's page carrying
    /// the post's title, description and link-preview tags, and [`serve`] serves the rest of
    /// the UI beside the API.
    pub web_ui: Option<web::WebUi>,
    /// Where uploaded images are kept (`POST /media`, `GET /media/{id}`); without one, both
    /// answer 503 `MEDIA_STORE_NOT_CONFIGURED`.
    pub media: Option<media::MediaLibrary>,
}

impl GatewayConfig {
    /// Defaults, checking tokens with `keys`.
    #[must_use]
    pub fn new(keys: TokenKeys) -> Self {
        Self {
            keys,
            wait_timeout: Duration::from_secs(5),
            introspection: true,
            subscriber_buffer: 1024,
            max_depth: 12,
            max_complexity: 1000,
            cors_origins: Vec::new(),
            mutations_per_minute: 600,
            anonymous_mutations_per_minute: 30,
            page_cache_bytes: 64 << 20,
            page_cache_max_age: Duration::from_secs(5),
            projection_bell: None,
            // `projection_service::DEFAULT_GROUP`.
            projection_group: "inkwire-projection".to_owned(),
            public_url: None,
            web_ui: None,
            media: None,
        }
    }
}

/// Builds the schema (also used to print the SDL).
#[must_use]
pub fn build_schema(
    shared: Option<Arc<Shared>>,
    config: &GatewayConfig,
    metrics: Metrics,
) -> InkwireSchema {
    // Depth is limited by `limits::Limits`, which counts introspection apart.
    let mut builder =
        async_graphql::Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
            .limit_complexity(config.max_complexity)
            .limit_recursive_depth(32)
            .limit_directives(10)
            .extension(limits::Limits {
                max_depth: config.max_depth,
                introspection: config.introspection,
                metrics,
                mutations: Arc::new(limits::MutationLimits {
                    signed_in: limits::RateLimiter::new(
                        config.mutations_per_minute,
                        config.mutations_per_minute / 5,
                    ),
                    anonymous: limits::RateLimiter::new(
                        config.anonymous_mutations_per_minute,
                        config.anonymous_mutations_per_minute / 3,
                    ),
                }),
            });
    if !config.introspection {
        // One production switch: no schema from introspection, nor from "did you mean"s.
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(shared) = shared {
        builder = graphql::loaders::with_shared_loaders(builder, &shared.read).data(shared);
    }
    builder.finish()
}

/// The SDL of the public schema, as committed in `schema/schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    let registry = Registry::new();
    let keys = TokenKeys::new(b"only used to print the schema", Duration::from_secs(1));
    build_schema(None, &GatewayConfig::new(keys), Metrics::new(&registry)).sdl()
}

/// The wired gateway.
pub struct Gateway {
    /// `/graphql` (POST queries and mutations; GET GraphiQL or WebSocket subscriptions).
    pub router: Router,
    /// The live fan-out hub (run [`Gateway::spawn_live`] to feed it).
    pub hub: Hub,
    /// Answers to anonymous post reads; on once the gateway follows the log and the projector
    /// has caught up with where it started.
    pub cache: PageCache,
    projection_group: String,
}

impl Gateway {
    /// Wires the gateway over the read tables in `db` and the command service behind
    /// `commands`, registering its metrics in `registry`.
    #[must_use]
    pub fn new(
        db: Db,
        commands: Arc<dyn CommandApi>,
        registry: &Registry,
        config: &GatewayConfig,
    ) -> Self {
        let metrics = Metrics::new(registry);
        let read = ReadModel::new(db, metrics.sql_statements.clone());
        let cache = PageCache::new(
            config.page_cache_bytes,
            config.page_cache_max_age,
            metrics.clone(),
        );
        let hub = Hub::new(
            read.clone(),
            metrics.clone(),
            config.subscriber_buffer,
            cache.clone(),
            config.projection_bell.clone(),
        );
        let shared = Arc::new(Shared {
            read: read.clone(),
            commands: commands.clone(),
            hub: hub.clone(),
            metrics: metrics.clone(),
            wait_timeout: config.wait_timeout,
            cache: cache.clone(),
            bell: config.projection_bell.clone(),
        });
        let schema = build_schema(Some(shared), config, metrics.clone());
        let feeds = feed::Feeds {
            public_url: config.public_url.clone(),
            requests: metrics.feed_requests.clone(),
        };
        let metrics_for_http = metrics.clone();
        let live = fanout::LiveExecutor::new(schema.clone(), metrics, config.subscriber_buffer);
        let page_template = config.web_ui.as_ref().map(web::WebUi::index_template);
        let mut router = Router::new().route(
            "/graphql",
            get(http::graphql::graphql_get).post(http::graphql::graphql_post),
        );
        // Feeds, the sitemap and post pages are documents a reader's browser, a feed reader or
        // a crawler fetches whole: compressed when the client accepts it. (GraphQL answers are
        // small and served from the page cache at tens of thousands a second: left as they are.)
        let mut documents = feed::routes();
        if page_template.is_some() {
            documents = documents.route("/posts/{slug}", get(pages::post_page));
        }
        router = router.merge(documents.layer(tower_http::compression::CompressionLayer::new()));
        let upload_limit = config.media.as_ref().map_or(0, |m| m.limits().max_bytes)
            + http::media::MULTIPART_OVERHEAD;
        router = router
            .route(
                "/media",
                axum::routing::post(http::media::upload)
                    .layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
            )
            .route("/media/{id}", get(http::media::serve))
            .route(
                "/unsubscribe/one-click",
                axum::routing::post(http::mail::one_click),
            );
        let router = router
            // Behind one `Arc`: axum clones the state for every request.
            .with_state(Arc::new(HttpState {
                schema,
                read,
                keys: config.keys.clone(),
                cache: cache.clone(),
                live,
                feeds,
                page_template,
                media: config.media.clone(),
                commands,
                metrics: metrics_for_http,
            }));
        let router = http::with_edge_protections(router, &config.cors_origins);
        Self {
            router,
            hub,
            cache,
            projection_group: config.projection_group.clone(),
        }
    }

    /// Starts the tasks that feed live subscriptions: a reader of every partition of `log`
    /// (`live::follow_log`), and the broadcaster.
    pub fn spawn_live(
        &self,
        log: LogConfig,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        cancel: &CancellationToken,
    ) {
        // The follower turns the page cache on once the log can tell it when a stored answer is
        // stale (`live::follow_log`).
        // On the pipeline runtime: the connection tasks a fan-out wakes must not delay the
        // next event on its way in (`infra::rt`).
        let pipeline = infra::rt::pipeline();
        let group = format!("inkwire-gateway-{}", uuid::Uuid::now_v7());
        tasks.spawn_on(
            live::follow_log(
                log,
                group,
                self.hub.clone(),
                self.projection_group.clone(),
                cancel.clone(),
            ),
            &pipeline,
        );
        let hub = self.hub.clone();
        let broadcast_cancel = cancel.clone();
        tasks.spawn_on(
            async move {
                hub.broadcast(broadcast_cancel).await;
                Ok(())
            },
            &pipeline,
        );
        let hub = self.hub.clone();
        let cancel = cancel.clone();
        tasks.spawn_on(
            async move {
                hub.follow_inboxes(cancel).await;
                Ok(())
            },
            &pipeline,
        );
    }
}

/// Runs a gateway on `listener` until `cancel`: `/graphql`, `/metrics`, `/healthz`, `/readyz`,
/// forwarding commands to `commands_url` and following `log` for live comments.
///
/// # Errors
/// When start-up fails or the server stops abnormally.
pub async fn serve(
    listener: TcpListener,
    db: Db,
    log: LogConfig,
    commands_url: String,
    config: GatewayConfig,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let registry = infra::net::start(&db, &log).await?;
    let gateway = Gateway::new(
        db.clone(),
        Arc::new(command_api::HttpCommands::new(
            &commands_url,
            config.keys.callers().clone(),
        )?),
        &registry,
        &config,
    );
    let mut background = JoinSet::new();
    gateway.spawn_live(log, &mut background, &cancel);
    let mut router = gateway
        .router
        .merge(infra::telemetry::ops_router(registry, db));
    if let Some(ui) = config.web_ui.clone() {
        router = ui.serve_beside(router);
    }
    tracing::info!(commands = %commands_url, "gateway forwards commands");
    infra::net::serve("gateway", listener, router, background, cancel).await
}
