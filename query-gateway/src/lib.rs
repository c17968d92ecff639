//! Inkwire's GraphQL gateway: the one API clients use. Queries read the read tables; mutations
//! go to the command service (and can wait until their effect is visible to queries); comment
//! subscriptions are fed by this instance's own reading of the log (see [`live`]).
//!
//! [`Gateway::new`] wires it into a router (so `inkwire dev` can mount it beside the other
//! services); [`serve`] runs it alone on a listener until cancelled.

pub mod commands;
pub mod cursor;
pub mod error;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod read;
pub mod schema;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use infra::db::Db;
use infra::log::LogConfig;
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            wait_timeout: Duration::from_secs(5),
            introspection: true,
            subscriber_buffer: 1024,
            max_depth: 12,
            max_complexity: 1000,
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
        .extension(limits::Limits { metrics });
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    if let Some(shared) = shared {
        builder = builder.data(shared);
    }
    builder.finish()
}

/// The SDL of the public schema, as committed in `schema/schema.graphql`.
#[must_use]
pub fn sdl() -> String {
    let registry = Registry::new();
    build_schema(None, &GatewayConfig::default(), Metrics::new(&registry)).sdl()
}

/// The wired gateway.
pub struct Gateway {
    /// `/graphql` (POST queries and mutations; GET GraphiQL or WebSocket subscriptions).
    pub router: Router,
    /// The live fan-out hub (run [`Gateway::spawn_live`] to feed it).
    pub hub: Hub,
}

#[derive(Clone)]
struct HttpState {
    schema: InkwireSchema,
    read: ReadModel,
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
        let hub = Hub::new(read.clone(), metrics.clone(), config.subscriber_buffer);
        let shared = Arc::new(Shared {
            read: read.clone(),
            commands,
            hub: hub.clone(),
            metrics: metrics.clone(),
            wait_timeout: config.wait_timeout,
        });
        let schema = build_schema(Some(shared), config, metrics);
        let router = Router::new()
            .route("/graphql", get(graphql_get).post(graphql_post))
            .with_state(HttpState { schema, read });
        Self { router, hub }
    }

    /// Starts the tasks that feed live subscriptions: a reader of `log` in a consumer group of
    /// this instance's own, and the broadcaster.
    pub fn spawn_live(
        &self,
        log: LogConfig,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        cancel: &CancellationToken,
    ) {
        let group = format!("inkwire-gateway-{}", uuid::Uuid::now_v7());
        tasks.spawn(live::follow_log(
            log,
            group,
            self.hub.clone(),
            cancel.clone(),
        ));
        let hub = self.hub.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            hub.broadcast(cancel).await;
            Ok(())
        });
    }
}

/// The caller, from the request headers. Until authentication lands, the identity travels in
/// `x-inkwire-user-id` / `x-inkwire-user-name` (trusted: put the gateway behind a proxy that
/// strips them from outside requests).
fn caller(headers: &HeaderMap) -> Caller {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Caller {
        user_id: get("x-inkwire-user-id"),
        name: get("x-inkwire-user-name"),
        request_id: get("x-request-id"),
        traceparent: get("traceparent"),
    }
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response()
}

async fn graphql_post(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
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
    let (by_id, first) = schema::loaders(&state.read);
    let request = request.data(caller(&headers)).data(by_id).data(first);
    let response = state.schema.execute(request).await;
    Json(response).into_response()
}

async fn graphql_get(State(state): State<HttpState>, request: Request) -> Response {
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
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let caller = caller(&parts.headers);
    let schema = state.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(WS_MESSAGE_LIMIT)
        .max_frame_size(WS_MESSAGE_LIMIT)
        .on_upgrade(move |socket| async move {
            let mut data = async_graphql::Data::default();
            data.insert(caller);
            GraphQLWebSocket::new(socket, schema, protocol)
                .with_data(data)
                .keepalive_timeout(Duration::from_secs(30))
                .serve()
                .await;
        })
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
    let router = gateway
        .router
        .merge(infra::telemetry::ops_router(registry, db));
    tracing::info!(addr = %listener.local_addr()?, commands = %commands_url, "gateway listening");
    let shutdown = cancel.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    cancel.cancel();
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}
