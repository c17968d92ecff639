//! Inkwire's command service: the write side. It validates commands against the post
//! aggregate, appends the resulting events with their outbox rows in one transaction, and
//! relays the outbox to the log (Kafka, or the embedded log); its scheduler publishes scheduled
//! posts when their time comes.
//!
//! [`App::new`] wires it; [`serve`] runs it on a listener until cancelled, so tests boot the real
//! service on port 0.

pub mod api;
pub mod domain;
pub mod handler;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod relay;
pub mod scheduler;
pub mod store;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use command_api::auth::TokenKeys;
use infra::db::Db;
use infra::log::LogConfig;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::handler::CommandBus;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::store::EventStore;
use crate::store::outbox::Outbox;

/// How often each instance looks for scheduled posts that are due.
pub const SCHEDULER_EVERY: Duration = Duration::from_secs(1);

/// The wired command service: its HTTP routes and its outbox relay.
pub struct App {
    /// `/v1/...` command routes.
    pub router: Router,
    /// The relay task, to be run beside the server.
    pub relay: Relay,
    /// The scheduled-publishing task, to be run beside the server.
    pub scheduler: scheduler::Scheduler,
    /// The notification mailer, when email is configured, to be run beside the server.
    pub mailer: Option<mail::Mailer>,
    /// The command bus (for in-process callers such as `inkwire dev --demo`).
    pub bus: Arc<CommandBus>,
    /// Users (for in-process callers such as `inkwire user add`).
    pub users: users::UserService,
    /// Every command, for a gateway in this process (`inkwire dev`).
    pub service: api::CommandService,
}

impl App {
    /// Wires the service over `db` (already migrated) and `log`, registering its metrics in
    /// `registry`; notification email goes out through `mail` when given.
    ///
    /// # Errors
    /// When the log's producer cannot be created, or the mail settings are unusable.
    pub fn new(
        db: Db,
        log: &LogConfig,
        registry: &Registry,
        keys: TokenKeys,
        mail: Option<mail::MailConfig>,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(registry);
        let wake = Arc::new(Notify::new());
        // An embedded log in this very database is written in the events' own transaction; the
        // relay then only drains what other processes left in the outbox.
        let embedded = match log {
            LogConfig::Embedded(embedded) => Some(embedded),
            LogConfig::Kafka(_) => None,
        };
        let store = EventStore::with_log(db.clone(), embedded);
        // Appends that went straight into the log leave the relay nothing to wake for.
        let appended = if store.writes_log() {
            Arc::new(Notify::new())
        } else {
            wake.clone()
        };
        let bus = Arc::new(CommandBus::new(
            store.clone(),
            appended.clone(),
            metrics.clone(),
        ));
        let callers = keys.callers().clone();
        let mail_wake = Arc::new(Notify::new());
        let mailer = match mail {
            Some(config) => Some(
                mail::Mailer::new(
                    db.clone(),
                    keys.clone(),
                    config,
                    mail_wake.clone(),
                    metrics.clone(),
                )
                .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let mail = mail::MailSettings::new(db.clone(), keys.clone(), mailer.is_some(), mail_wake);
        let users = users::UserService::new(store, keys, appended);
        let relay = Relay::new(Outbox::new(db), log.producer()?, wake, metrics);
        let service = api::CommandService {
            bus: bus.clone(),
            users: users.clone(),
            mail,
        };
        let router = http::router(http::AppState {
            service: service.clone(),
            callers,
        })
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ));
        let scheduler = scheduler::Scheduler::new(bus.clone(), SCHEDULER_EVERY);
        Ok(Self {
            router,
            relay,
            scheduler,
            mailer,
            bus,
            users,
            service,
        })
    }
}

/// Runs the command service on `listener` until `cancel`: migrations, topic, HTTP API with
/// `/metrics`, `/healthz`, `/readyz`, the outbox relay, the scheduler and, with `mail`, the
/// notification mailer.
///
/// # Errors
/// When start-up fails (database, log) or the server stops abnormally.
pub async fn serve(
    listener: TcpListener,
    db: Db,
    log: LogConfig,
    keys: TokenKeys,
    mail: Option<mail::MailConfig>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let registry = infra::net::start(&db, &log).await?;
    let app = App::new(db.clone(), &log, &registry, keys, mail)?;
    let router = app.router.merge(infra::telemetry::ops_router(registry, db));
    let mut background = tokio::task::JoinSet::new();
    let relay_cancel = cancel.clone();
    background.spawn(async move {
        app.relay.run(relay_cancel).await;
        Ok(())
    });
    let scheduler_cancel = cancel.clone();
    background.spawn(async move {
        app.scheduler.run(scheduler_cancel).await;
        Ok(())
    });
    if let Some(mailer) = app.mailer {
        let mailer_cancel = cancel.clone();
        background.spawn(async move {
            mailer.run(mailer_cancel).await;
            Ok(())
        });
    }
    infra::net::serve("command service", listener, router, background, cancel).await
}
