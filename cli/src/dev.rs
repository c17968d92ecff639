//! `inkwire dev`: the whole of Inkwire in one process on the embedded backend (SQLite and the
//! embedded log in one file), with the GraphQL gateway (`/graphql`), the command API, the read
//! API and the ops endpoints on one port. It survives restarts with its data and stops cleanly on Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use clap::Args;
use infra::db::Db;
use infra::log::LogConfig;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Topic name of the embedded log.
pub const EMBEDDED_TOPIC: &str = "inkwire.posts";

/// Arguments of `inkwire dev`.
#[derive(Clone, Debug, Args)]
pub struct DevArgs {
    /// HTTP listen address.
    #[arg(long, env = "INKWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the data lives (created when missing).
    #[arg(long, env = "INKWIRE_DATA_DIR", default_value = "./inkwire-data")]
    pub data_dir: PathBuf,
}

/// The one-process stack, wired but not yet serving.
pub struct Stack {
    /// Every route: commands, reads, ops.
    pub router: Router,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Stack {
    /// Wires command service, relay and projector over `db` (migrated here) and `log`.
    ///
    /// # Errors
    /// When migrations or the log fail.
    pub async fn start(
        db: Db,
        log: LogConfig,
        group: &str,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Self> {
        db.migrate().await?;
        log.ensure_topic().await?;
        let registry = Registry::new();
        let app = command_service::App::new(db.clone(), &log, &registry)?;
        let metrics = projection_service::metrics::Metrics::new(&registry);
        let mut tasks = JoinSet::new();
        let relay_cancel = cancel.clone();
        tasks.spawn(async move {
            app.relay.run(relay_cancel).await;
            Ok(())
        });
        tasks.spawn(projection_service::consumer::run(
            db.clone(),
            log.clone(),
            group.to_owned(),
            metrics,
            cancel.clone(),
        ));
        let gateway = query_gateway::Gateway::new(
            db.clone(),
            query_gateway::commands::CommandClient::InProcess(app.router.clone()),
            &registry,
            &query_gateway::GatewayConfig::default(),
        );
        gateway.spawn_live(log.clone(), &mut tasks, cancel);
        let router = app
            .router
            .merge(gateway.router)
            .merge(projection_service::http::router(db.clone()))
            .merge(infra::telemetry::ops_router(registry, db));
        Ok(Self { router, tasks })
    }

    /// Serves on `listener` until `cancel`, then waits for the background tasks.
    ///
    /// # Errors
    /// When the server or a task fails.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let shutdown = cancel.clone();
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        cancel.cancel();
        while let Some(done) = self.tasks.join_next().await {
            done??;
        }
        Ok(served?)
    }
}

/// Runs `inkwire dev`.
///
/// # Errors
/// When the data directory, the port or a task fails.
pub async fn run(args: DevArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let db = Db::open_data_dir(&args.data_dir).await?;
    let log = infra::log::embedded(db.clone(), EMBEDDED_TOPIC, 1);
    let stack = Stack::start(db, log, projection_service::DEFAULT_GROUP, &cancel).await?;
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        data_dir = %args.data_dir.display(),
        "inkwire dev is running (Ctrl-C stops it)"
    );
    stack.serve(listener, cancel).await
}
