//! The `inkwire` command: `dev` runs everything in one process on the embedded backend; the
//! service subcommands run one service each against PostgreSQL/CockroachDB and Kafka; the
//! operator commands (`migrate`, `user`, `lag`, `replay`, `events tail`) work on a deployment;
//! `bench` and `stress` hand a running deployment to the load tools of [`loadgen`].

pub mod bench;
pub mod config;
pub mod demo;
pub mod dev;
pub mod disqus;
pub mod lag;
pub mod replay;
pub mod tail;
pub mod transfer;
pub mod users;
pub mod wxr;

use clap::{Parser, Subcommand};

pub use config::{LogArgs, LogFormat};

/// Inkwire: a blog with live comments, event-sourced over a message log.
#[derive(Debug, Parser)]
#[command(name = "inkwire", version, about)]
pub struct Cli {
    /// Log format: `text` for people, `json` for log shippers (production).
    #[arg(
        long,
        global = true,
        env = "INKWIRE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process: SQLite + the embedded log, HTTP on one port.
    Dev(dev::DevArgs),
    /// The command service (write side + outbox relay).
    CommandService(config::CommandArgs),
    /// The projection service (read tables) as one member of a consumer group.
    ProjectionService(config::ProjectionArgs),
    /// The GraphQL gateway (queries, mutations, live comment subscriptions).
    QueryGateway(config::GatewayArgs),
    /// Consumer lag per group and partition: events and seconds.
    Lag(lag::LagArgs),
    /// Rebuilds a read-model view from the log beside the live one, then switches it live.
    Replay(replay::ReplayArgs),
    /// Writes the whole event log as newline-delimited JSON to stdout (or, with `--markdown DIR`,
    /// one markdown file per post).
    Export(transfer::ExportArgs),
    /// Imports an `inkwire export` file into this Inkwire (resumable: events already there are
    /// skipped).
    Import(transfer::ImportArgs),
    /// Reads the event log (`events tail`).
    #[command(subcommand)]
    Events(tail::EventsCommand),
    /// Prints the GraphQL schema (SDL), as committed in `schema/schema.graphql`.
    PrintSchema,
    /// Applies the database migrations (`schema/`) and exits: the deployment's migration job.
    /// The services also apply them on start; they are idempotent and lock-free.
    Migrate {
        /// The database.
        #[arg(long, env = "INKWIRE_DATABASE_URL")]
        database_url: String,
    },
    /// Manages users (e.g. the first admin).
    #[command(subcommand)]
    User(users::UserCommand),
    /// Benchmark a running Inkwire and PostgreSQL (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Load a running Inkwire like users do and account for every delivery (non-zero exit when
    /// anything is lost, duplicated or reordered).
    Stress(loadgen::stress::StressArgs),
}

/// Installs logging as the arguments ask.
pub fn telemetry(cli: &Cli) {
    infra::telemetry::init_tracing(matches!(cli.log_format, LogFormat::Json));
}

/// Runs the parsed command until it ends or SIGTERM/Ctrl-C.
///
/// # Errors
/// What the command failed with.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let cancel = infra::shutdown::on_signal();
    match cli.command {
        Command::Dev(args) => dev::run(args, cancel).await,
        Command::CommandService(args) => {
            let keys = args.auth.keys()?;
            let listener = config::bind(args.service.listen).await?;
            let db = args.service.connect().await?;
            let log = args.service.log.config(&db);
            let mail = args.mail.config(None)?;
            command_service::serve(listener, db, log, keys, mail, cancel).await
        }
        Command::ProjectionService(args) => {
            let listener = config::bind(args.service.listen).await?;
            let db = args.service.connect().await?;
            let log = args.service.log.config(&db);
            projection_service::serve(listener, db, log, args.group, cancel).await
        }
        Command::QueryGateway(args) => {
            let listener = config::bind(args.service.listen).await?;
            let db = args.service.connect().await?;
            let log = args.service.log.config(&db);
            let config = args.gateway_config()?;
            query_gateway::serve(listener, db, log, args.command_url, config, cancel).await
        }
        Command::User(command) => users::run(command).await,
        Command::Lag(args) => lag::run(args, cancel).await,
        Command::Replay(args) => replay::run(args, cancel).await,
        Command::Events(command) => tail::run(command, cancel).await,
        Command::Export(args) => transfer::run_export(args).await,
        Command::Import(args) => transfer::run_import(args).await,
        Command::Migrate { database_url } => {
            let db = infra::db::Db::connect(&database_url, 1).await?;
            db.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::PrintSchema => {
            print!("{}", query_gateway::sdl());
            Ok(())
        }
        Command::Bench(args) => bench::run(args, cancel).await,
        Command::Stress(args) => {
            if loadgen::stress::run(args, cancel).await? {
                Ok(())
            } else {
                anyhow::bail!("deliveries were lost, duplicated or reordered (see the report)")
            }
        }
    }
}
