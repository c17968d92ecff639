//! Inkwire's projection service: the read side. A consumer-group member reads the event log and
//! materialises the read tables, writing each batch's rows and its offsets in one transaction
//! so that the effect is exactly once whatever crashes when.

pub mod claims;
pub mod consumer;
pub mod http;
pub mod metrics;
pub mod projections;
pub mod rebuild;

use infra::db::Db;
use infra::log::LogConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Default consumer group of the projectors.
pub const DEFAULT_GROUP: &str = "inkwire-projection";

/// Runs a projector for `group` and an HTTP server on `listener` (`/metrics`, `/healthz`,
/// `/readyz` and the read API) until `cancel`.
///
/// # Errors
/// When start-up fails (database, log) or the server stops abnormally.
pub async fn serve(
    listener: TcpListener,
    db: Db,
    log: LogConfig,
    group: String,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let registry = infra::net::start(&db, &log).await?;
    let metrics = metrics::Metrics::new(&registry);
    let mut background = tokio::task::JoinSet::new();
    background.spawn(consumer::run(
        db.clone(),
        log,
        group,
        metrics,
        None,
        cancel.clone(),
    ));
    let router = http::router(read_model::ReadModel::uncounted(db.clone()))
        .merge(infra::telemetry::ops_router(registry, db));
    infra::net::serve("projection service", listener, router, background, cancel).await
}
