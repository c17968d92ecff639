//! Inkwire's GraphQL gateway: the one API clients use. Queries read the read tables; mutations
//! go to the command service (and can wait until their effect is visible to queries); comment
//! subscriptions are fed by this instance's own reading of the log (see [`live`]).
//!
//! [`Gateway::new`] wires it into a router (so `inkwire dev` can mount it beside the other
//! services); [`serve`] runs it alone on a listener until cancelled.

pub mod cache;
pub mod commands;
pub mod cursor;
pub mod error;
pub mod fanout;
pub mod feed;
pub mod limits;
pub mod live;
pub mod metrics;
mod pages;
pub mod read;
pub mod schema;
mod sitemap;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::ErrorExtensions;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource, WebSocketProtocols};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use infra::auth::TokenKeys;
use infra::db::Db;
use infra::log::LogConfig;
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cache::PageCache;
use crate::commands::{Caller, CommandClient};
use crate::live::Hub;
use crate::metrics::Metrics;
use crate::read::ReadModel;
use crate::schema::{InkwireSchema, Mutation, Query, Shared, SubscriptionRoot};

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
    pub projection_bell: Option<infra::bell::CommitBell>,
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
    let mut builder = async_graphql::Schema::build(Query, Mutation, SubscriptionRoot)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(10)
        .extension(limits::Limits {
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
        builder = builder.disable_introspection();
    }
    if let Some(shared) = shared {
        builder = schema::with_shared_loaders(builder, &shared.read).data(shared);
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

struct HttpState {
    schema: InkwireSchema,
    read: ReadModel,
    keys: TokenKeys,
    cache: PageCache,
    live: fanout::LiveExecutor,
    feeds: feed::Feeds,
    /// The build's `index.html`, when the gateway serves post pages.
    page_template: Option<web::IndexTemplate>,
}

impl Gateway {
    /// Wires the gateway over the read tables in `db` and the command service behind
    /// `commands`, registering its metrics in `registry`.
    #[must_use]
    pub fn new(
        db: Db,
        commands: CommandClient,
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
            commands,
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
        let live = fanout::LiveExecutor::new(schema.clone(), metrics, config.subscriber_buffer);
        let page_template = config.web_ui.as_ref().map(web::WebUi::index_template);
        let mut router = Router::new()
            .route("/graphql", get(graphql_get).post(graphql_post))
            .merge(feed::routes());
        if page_template.is_some() {
            router = router.route("/posts/{slug}", get(pages::post_page));
        }
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
            }));
        let router = with_edge_protections(router, &config.cors_origins);
        Self {
            router,
            hub,
            cache,
            projection_group: config.projection_group.clone(),
        }
    }

    /// Starts the tasks that feed live subscriptions: a reader of `log` in a consumer group of
    /// this instance's own, and the broadcaster.
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
        let cancel = cancel.clone();
        tasks.spawn_on(
            async move {
                hub.broadcast(cancel).await;
                Ok(())
            },
            &pipeline,
        );
    }
}

/// Security headers on every answer, and CORS for the configured origins only.
fn with_edge_protections(router: Router, origins: &[String]) -> Router {
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

/// Why a request's credentials were refused.
struct BadToken;

/// The caller, from `authorization` (a header value, or the `connection_init` field): anonymous
/// without one, refused with a bad one. Identity headers a client sends are ignored: the ones
/// the command service gets are set here from the verified token.
fn authenticate(
    keys: &TokenKeys,
    authorization: Option<&str>,
    caller: &mut Caller,
) -> Result<(), BadToken> {
    let Some(value) = authorization else {
        return Ok(());
    };
    let token = TokenKeys::bearer(value).ok_or(BadToken)?;
    let claims = keys.verify(token).map_err(|_| BadToken)?;
    caller.user_id = Some(claims.sub.to_string());
    caller.name = Some(claims.name);
    caller.username = Some(claims.username);
    caller.roles = claims.roles;
    caller.auth_time = Some(claims.auth_time);
    Ok(())
}

/// The client's address: the peer, or, when the peer is a proxy on loopback (nginx), the last
/// address in its `X-Forwarded-For`.
fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    match peer {
        Some(peer) if !peer.ip().is_loopback() => Some(peer.ip().to_string()),
        Some(peer) => forwarded.or_else(|| Some(peer.ip().to_string())),
        None => forwarded,
    }
}

fn caller(headers: &HeaderMap, peer: Option<SocketAddr>) -> Caller {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Caller {
        request_id: get("x-request-id"),
        traceparent: get("traceparent"),
        client: client_address(headers, peer),
        ..Caller::default()
    }
}

/// The caller of an HTTP request (or WebSocket upgrade): its address, and its identity when it
/// sent a valid token; refused when it sent a bad one.
fn authenticated_caller(
    keys: &TokenKeys,
    parts: &axum::http::request::Parts,
) -> Result<Caller, BadToken> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let mut who = caller(&parts.headers, peer);
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    authenticate(keys, authorization, &mut who)?;
    Ok(who)
}

fn unauthenticated() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "invalid or expired access token; sign in again",
    )
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response()
}

async fn graphql_post(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT + 1).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "request body too large",
        );
    };
    if body.len() > BODY_LIMIT {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "request body too large",
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    // Anonymous reads of a post page are answered from the page cache when it has them: no
    // parsing, no execution, no database. A client that must not get a stored answer says so the
    // standard way (a browser's reload does); its fresh answer is stored for the others.
    let anonymous = !parts.headers.contains_key(header::AUTHORIZATION);
    let revalidate = parts
        .headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .chain(parts.headers.get_all(header::PRAGMA))
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-cache"));
    if anonymous
        && !revalidate
        && let Some(answer) = state.cache.get(&body)
    {
        return json_bytes(answer);
    }
    let Ok(mut who) = authenticated_caller(&state.keys, &parts) else {
        return unauthenticated();
    };
    // The request's span joins the client's trace (if it sent one) and is the parent of what the
    // command service does for it.
    let span = tracing::info_span!(
        "graphql.request",
        operation = request.operation_name.as_deref().unwrap_or("")
    );
    infra::telemetry::set_parent(&span, who.traceparent.as_deref());
    if let Some(traceparent) = infra::telemetry::traceparent_of(&span) {
        who.traceparent = Some(traceparent);
    }
    let mut request = schema::with_loaders(request.data(who), &state.read);
    let scope = if anonymous { state.cache.scope() } else { None };
    if let Some(scope) = &scope {
        request = request.data(scope.clone());
    }
    let response = state.schema.execute(request).instrument(span).await;
    match scope {
        Some(scope) if response.is_ok() => match serde_json::to_vec(&response) {
            Ok(answer) => {
                let answer = axum::body::Bytes::from(answer);
                state.cache.put(body, answer.clone(), scope);
                json_bytes(answer)
            }
            Err(_) => Json(response).into_response(),
        },
        _ => Json(response).into_response(),
    }
}

/// A JSON answer already serialised.
fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn graphql_get(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // The same choice GraphQLProtocol made (the first protocol offered that we speak), which it
    // does not expose.
    let transport_ws = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        })
        == Some(WebSocketProtocols::GraphQLWS);
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    // Browsers cannot set headers on a WebSocket: the token may come in the upgrade request
    // (other clients) or, as graphql-ws does, in `connection_init`.
    let Ok(who) = authenticated_caller(&state.keys, &parts) else {
        return unauthenticated();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Clients send little (pings, a subscribe); the buffer grows for a longer message.
        .read_buffer_size(256)
        // Room for a batch of frames, written when the connection has no more ready; every
        // batch is flushed, so nothing waits in it for more.
        .write_buffer_size(ws::MAX_UNFLUSHED * 1024)
        .max_message_size(WS_MESSAGE_LIMIT)
        .max_frame_size(WS_MESSAGE_LIMIT)
        // The connection's task lives as long as the connection, with this future in it: boxed
        // here, not in an `async` block, its size is a pointer's rather than the socket's and
        // every capture's again (an idle subscriber costs less; docs/benchmarks.md). It runs on
        // the subscribers' runtime, so the HTTP answers served here never queue behind the
        // connections a push wakes (`infra::rt`); the upgrade's own task ends at once.
        .on_upgrade(move |socket| {
            let live = state.live.clone();
            let init =
                move |payload: serde_json::Value| connection_data(&state.keys, who, &payload);
            let connection: BoxFuture<'static, ()> = if transport_ws {
                Box::pin(ws::serve(socket, live, KEEPALIVE, move |payload| {
                    init(payload).map_err(|e| e.message)
                }))
            } else {
                Box::pin(
                    GraphQLWebSocket::new(socket, live, protocol)
                        .on_connection_init(move |payload: serde_json::Value| async move {
                            init(payload)
                        })
                        .keepalive_timeout(KEEPALIVE)
                        .serve(),
                )
            };
            // Detached: the connection ends when either side closes it, as before.
            drop(infra::rt::subscribers().spawn(connection));
            std::future::ready(())
        })
}

/// A WebSocket client silent this long is disconnected (clients ping; the web UI every 15 s).
const KEEPALIVE: Duration = Duration::from_secs(30);

/// A WebSocket connection's data once `connection_init` arrived: the caller (a token may come in
/// the upgrade request or, as browsers must, in the init payload). Its loaders are the schema's.
fn connection_data(
    keys: &TokenKeys,
    mut who: Caller,
    payload: &serde_json::Value,
) -> async_graphql::Result<async_graphql::Data> {
    let authorization = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(serde_json::Value::as_str);
    if authenticate(keys, authorization, &mut who).is_err() {
        return Err(async_graphql::Error::new("invalid or expired access token")
            .extend_with(|_, e| e.set("code", "UNAUTHENTICATED")));
    }
    let mut data = async_graphql::Data::default();
    data.insert(who);
    Ok(data)
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
    db.migrate().await?;
    log.ensure_topic().await?;
    let registry = Registry::new();
    let gateway = Gateway::new(
        db.clone(),
        CommandClient::http(&commands_url)?,
        &registry,
        &config,
    );
    let mut tasks = JoinSet::new();
    gateway.spawn_live(log, &mut tasks, &cancel);
    let mut router = gateway
        .router
        .merge(infra::telemetry::ops_router(registry, db));
    if let Some(ui) = config.web_ui.clone() {
        router = ui.serve_beside(router);
    }
    tracing::info!(addr = %listener.local_addr()?, commands = %commands_url, "gateway listening");
    let shutdown = cancel.clone();
    axum::serve(
        infra::net::no_delay(listener),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    cancel.cancel();
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}
