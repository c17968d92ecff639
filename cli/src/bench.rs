//! `inkwire bench`: the benchmarks of [`loadgen`], each given what it measures already opened
//! (numbers go to `docs/benchmarks.md`; `scripts/bench.sh` runs the whole set against
//! PostgreSQL + the broker).

use clap::{Args, Subcommand};
use infra::db::Db;
use infra::log::LogConfig;
use loadgen::bench::{CatchupArgs, CommentsArgs, ConsumeArgs, ProduceArgs};
use loadgen::gateway::{FanoutArgs, PageArgs};
use tokio_util::sync::CancellationToken;

use crate::config::LogArgs;

/// Arguments of `inkwire bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub what: BenchKind,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Comment commands over HTTP, end to end.
    Comments(CommentsArgs),
    /// Projection catch-up on a backlog.
    Catchup {
        /// The backlog and the projector.
        #[command(flatten)]
        args: CatchupArgs,
        /// The log to fill and read.
        #[command(flatten)]
        log: LogArgs,
    },
    /// A bare consumer reading the topic from the start.
    Consume(ConsumeArgs),
    /// A bare producer publishing comment events as the outbox relay does.
    Produce {
        /// The backlog.
        #[command(flatten)]
        args: ProduceArgs,
        /// The log to write (the embedded one needs `--database-url`).
        #[command(flatten)]
        log: LogArgs,
    },
    /// Live fan-out: many subscribers on one post, comments at a steady rate.
    Fanout(FanoutArgs),
    /// The post page query from many concurrent clients.
    Page(PageArgs),
    /// A rebuild of the posts view from a backlog, beside the log's bare read rate.
    Replay {
        /// The backlog and the rebuild.
        #[command(flatten)]
        args: CatchupArgs,
        /// The log to fill and read.
        #[command(flatten)]
        log: LogArgs,
    },
}

/// Opens `database_url` (migrated) and the log `log` describes, its topic created.
async fn open_log(database_url: &str, log: &LogArgs) -> anyhow::Result<(Db, LogConfig)> {
    let db = Db::connect(database_url, 8).await?;
    db.migrate().await?;
    let log: LogConfig = log.config(&db);
    log.ensure_topic().await?;
    Ok((db, log))
}

/// Runs the chosen benchmark and prints a JSON summary line.
///
/// # Errors
/// When the target cannot be reached or the run does not complete.
pub async fn run(args: BenchArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    use loadgen::{bench, gateway};
    let summary = match args.what {
        BenchKind::Comments(a) => bench::comments(a, cancel).await?,
        BenchKind::Catchup { args, log } => {
            let (db, log) = open_log(&args.database_url, &log).await?;
            bench::catchup(args, db, log, cancel).await?
        }
        BenchKind::Consume(a) => bench::consume(a).await?,
        BenchKind::Produce { args, log } => {
            let (_db, log) = open_log(&args.database_url, &log).await?;
            bench::produce(args, log).await?
        }
        BenchKind::Fanout(a) => gateway::fanout(a, cancel).await?,
        BenchKind::Page(a) => gateway::page(a, cancel).await?,
        BenchKind::Replay { args, log } => {
            let (db, log) = open_log(&args.database_url, &log).await?;
            bench::replay(args, db, log, cancel).await?
        }
    };
    println!("{summary}");
    Ok(())
}
