//! Sockets the services accept on, and how each service starts and serves on one.

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};

/// A listener whose connections send small writes at once.
///
/// A live comment is one small WebSocket frame per subscriber. With Nagle's algorithm on, a
/// frame sent while the previous one is still unacknowledged is held back until the client's
/// ACK comes, which a delayed ACK can postpone by up to 40 ms on Linux. axum's `serve` leaves
/// the algorithm on; every HTTP and WebSocket server of Inkwire turns it off.
pub fn no_delay(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(set_no_delay as fn(&mut TcpStream))
}

fn set_no_delay(stream: &mut TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY refused on an accepted connection");
    }
}

/// Serves `router` on `listener` (with `TCP_NODELAY`, and the client's address for handlers that
/// ask for it) until `cancel`, then cancels and waits for the service's `background` tasks: the
/// one way every Inkwire service runs, alone or several in one process.
///
/// # Errors
/// When the server stops abnormally or a background task fails.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: axum::Router,
    mut background: tokio::task::JoinSet<anyhow::Result<()>>,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(service = name, addr = %listener.local_addr()?, "listening");
    let shutdown = cancel.clone();
    let served = axum::serve(
        no_delay(listener),
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await;
    cancel.cancel();
    while let Some(done) = background.join_next().await {
        done??;
    }
    Ok(served?)
}

/// What every service does before it serves: the database migrated, the log's topic there, and
/// a fresh metrics registry for the service to register in.
///
/// # Errors
/// When the database or the log cannot be prepared.
pub async fn start(
    db: &crate::db::Db,
    log: &crate::log::LogConfig,
) -> anyhow::Result<prometheus::Registry> {
    db.migrate().await?;
    log.ensure_topic().await?;
    Ok(prometheus::Registry::new())
}
