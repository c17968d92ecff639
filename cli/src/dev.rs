//! `inkwire dev`: the whole of Inkwire in one process on the embedded backend (SQLite and the
//! embedded log in one file), with the GraphQL gateway (`/graphql`), the web UI and the ops
//! endpoints on one port. The command API is reached in-process only: nothing on the listener
//! trusts a caller it did not authenticate itself. It survives restarts with its data and stops cleanly on Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use clap::Args;
use command_api::auth::TokenKeys;
use infra::db::Db;
use infra::log::LogConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Topic name of the embedded log.
pub const EMBEDDED_TOPIC: &str = "inkwire.posts";

/// Arguments of `inkwire dev`.
#[derive(Clone, Debug, Args)]
pub struct DevArgs {
    /// HTTP listen address: `ADDR:PORT`, `localhost:PORT` or just `PORT` (on 127.0.0.1).
    #[arg(long, env = "INKWIRE_LISTEN", default_value = "127.0.0.1:8080", value_parser = crate::config::listen_addr)]
    pub listen: SocketAddr,
    /// Not an option: here to point to `--listen`.
    #[arg(long, hide = true)]
    pub port: Option<String>,
    /// Where the data lives (created when missing).
    #[arg(long, env = "INKWIRE_DATA_DIR", default_value = "./inkwire-data")]
    pub data_dir: PathBuf,
    /// Seed demo accounts, posts and comments on first start (see `inkwire::demo`).
    #[arg(long)]
    pub demo: bool,
    /// The built web UI (`npm --prefix web run build` writes it), served at `/`.
    #[arg(long, env = "INKWIRE_WEB_DIR", default_value = "web/build")]
    pub web_dir: PathBuf,
    /// Mutations per minute per signed-in user (comments, posts); raise it for load tests.
    #[arg(long, env = "INKWIRE_MUTATIONS_PER_MINUTE", default_value_t = 600)]
    pub mutations_per_minute: u32,
    /// Uploaded images (in the data directory's `media/` unless `--media-store` says otherwise).
    #[command(flatten)]
    pub media: crate::config::MediaArgs,
    /// Notification email (off unless `--smtp-url` is given).
    #[command(flatten)]
    pub mail: crate::config::MailArgs,
}

/// SQLite connections for the gateway's reads in one process.
const GATEWAY_READERS: u32 = 4;

/// The one-process stack, wired but not yet serving.
pub struct Stack {
    /// What the listener serves: the gateway (GraphQL, feeds, pages) and the ops endpoints.
    /// Never the command API: the gateway reaches it in-process.
    pub router: Router,
    /// The internal APIs the distributed services serve to each other: the command API
    /// (`/v1/...`, behind caller proofs) and the projector's read API (`/v1/read/...`, drafts
    /// included). `inkwire dev` serves neither; tests may, on a port of their own.
    pub internal: Router,
    /// The command bus, for in-process callers (the demo seed).
    pub bus: std::sync::Arc<command_service::handler::CommandBus>,
    /// Users, for in-process callers.
    pub users: command_service::users::UserService,
    /// Every command, in-process: what the gateway calls through `command_api::CommandApi`.
    pub commands: command_service::api::CommandService,
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
        gateway: &query_gateway::GatewayConfig,
        mail: Option<command_service::mail::MailConfig>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let keys = gateway.keys.clone();
        let registry = infra::net::start(&db, &log).await?;
        // Everything between a command's commit and the push to subscribers runs on the
        // pipeline runtime, so that a fan-out's thousands of connection tasks on the main one
        // never hold the next comment back (`infra::rt`). The group committer starts here.
        let pipeline = infra::rt::pipeline();
        let app = {
            let _on_pipeline = pipeline.enter();
            command_service::App::new(db.clone(), &log, &registry, keys.clone(), mail)?
        };
        let (bus, users, commands) = (app.bus.clone(), app.users.clone(), app.service.clone());
        let metrics = projection_service::metrics::Metrics::new(&registry);
        let mut tasks = JoinSet::new();
        // The gateway hears the projector's commits directly, instead of polling for them.
        let bell = read_model::bell::CommitBell::new();
        let relay_cancel = cancel.clone();
        tasks.spawn_on(
            async move {
                app.relay.run(relay_cancel).await;
                Ok(())
            },
            &pipeline,
        );
        let scheduler_cancel = cancel.clone();
        tasks.spawn_on(
            async move {
                app.scheduler.run(scheduler_cancel).await;
                Ok(())
            },
            &pipeline,
        );
        if let Some(mailer) = app.mailer {
            let mailer_cancel = cancel.clone();
            tasks.spawn(async move {
                mailer.run(mailer_cancel).await;
                Ok(())
            });
        }
        tasks.spawn_on(
            projection_service::consumer::run(
                db.clone(),
                log.clone(),
                group.to_owned(),
                metrics,
                Some(bell.clone()),
                cancel.clone(),
            ),
            &pipeline,
        );
        // The gateway only reads: on connections of its own, so its queries run side by side
        // and never queue behind the command service's and the projector's writes.
        let gateway = query_gateway::Gateway::new(
            db.readers(GATEWAY_READERS),
            std::sync::Arc::new(commands.clone()),
            &registry,
            &query_gateway::GatewayConfig {
                projection_bell: Some(bell),
                projection_group: group.to_owned(),
                ..gateway.clone()
            },
        );
        gateway.spawn_live(log.clone(), &mut tasks, cancel);
        let internal = app.router.merge(projection_service::http::router(
            read_model::ReadModel::uncounted(db.clone()),
        ));
        let router = gateway
            .router
            .merge(infra::telemetry::ops_router(registry, db));
        Ok(Self {
            router,
            internal,
            bus,
            users,
            commands,
            tasks,
        })
    }

    /// Serves on `listener` until `cancel`, then waits for the background tasks.
    ///
    /// # Errors
    /// When the server or a task fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        infra::net::serve("inkwire dev", listener, self.router, self.tasks, cancel).await
    }
}

/// The token secret of a data directory: made on first start, kept in `jwt-secret` (mode 0600)
/// so sign-ins survive restarts.
///
/// # Errors
/// When the file cannot be read or written.
pub fn secret(data_dir: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("jwt-secret");
    if let Ok(secret) = std::fs::read(&path) {
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&path, &secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret.into_bytes())
}

/// Runs `inkwire dev`.
///
/// # Errors
/// When the data directory, the port or a task fails.
pub async fn run(args: DevArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    if let Some(port) = &args.port {
        anyhow::bail!(
            "inkwire dev has no --port: did you mean --listen {port} (or --listen 127.0.0.1:{port})?"
        );
    }
    // The port first: a second `inkwire dev` on a busy port stops here, before it opens, seeds or
    // migrates anything.
    let listener = crate::config::bind(args.listen).await?;
    let db = Db::open_data_dir(&args.data_dir).await?;
    let log = infra::log::embedded(db.clone(), EMBEDDED_TOPIC, 1);
    let keys = TokenKeys::new(
        &secret(&args.data_dir)?,
        std::time::Duration::from_secs(24 * 3600),
    );
    let web_ui = query_gateway::site::web::WebUi::at(&args.web_dir);
    let gateway = query_gateway::GatewayConfig {
        mutations_per_minute: args.mutations_per_minute,
        web_ui: web_ui.clone(),
        media: args.media.library(Some(&args.data_dir.join("media")))?,
        ..query_gateway::GatewayConfig::new(keys)
    };
    let mail = args
        .mail
        .config(Some(format!("http://{}", listener.local_addr()?)))?;
    let mut stack = Stack::start(
        db,
        log,
        projection_service::DEFAULT_GROUP,
        &gateway,
        mail,
        &cancel,
    )
    .await?;
    stack.router = match web_ui {
        Some(ui) => ui.serve_beside(stack.router),
        None => {
            tracing::warn!(web_dir = %args.web_dir.display(), "no web UI build: serving the API only");
            query_gateway::site::web::explain_missing(stack.router, &args.web_dir)
        }
    };
    if args.demo {
        crate::demo::seed(&stack.bus, &stack.users).await?;
    }
    tracing::info!(
        url = %format!("http://{}", listener.local_addr()?),
        data_dir = %args.data_dir.display(),
        "inkwire dev is running (Ctrl-C stops it)"
    );
    stack.serve(listener, cancel).await
}
