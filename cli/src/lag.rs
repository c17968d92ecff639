//! `inkwire lag`: where each projector group stands in each partition — the offset its database
//! says it applied (the truth, ADR 003), the log's high watermark, the lag in events, and the lag
//! in seconds as the age of the oldest record it has not applied (read from that record's
//! timestamp, not interpolated). `--json` for machines, `--watch SECS` to refresh.

use std::time::Duration;

use clap::Args;
use infra::db::Db;
use read_model::offsets::{AgeProbe, PartitionLag};
use tokio_util::sync::CancellationToken;

use crate::config::LogArgs;

/// Arguments of `inkwire lag`.
#[derive(Debug, Args)]
pub struct LagArgs {
    /// The read-model database holding `projection_offsets`.
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    /// The log.
    #[command(flatten)]
    pub log: LogArgs,
    /// Only this consumer group (repeatable); default: every group with stored offsets.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Refresh every SECS seconds until Ctrl-C.
    #[arg(long, value_name = "SECS")]
    pub watch: Option<u64>,
}

/// Every group's lag (or `groups`'), with each lagging partition's oldest record read from the
/// log for its age.
///
/// # Errors
/// When the database or the log cannot be read.
pub async fn measure(
    db: &Db,
    log: &infra::log::LogConfig,
    groups: &[String],
) -> anyhow::Result<Vec<PartitionLag>> {
    Ok(read_model::offsets::lag(db, log, groups, AgeProbe::Exact).await?)
}

fn print_table(rows: &[PartitionLag]) {
    println!(
        "{:<32} {:<20} {:>9} {:>14} {:>14} {:>10} {:>10}",
        "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "LAG-SECS"
    );
    for r in rows {
        println!(
            "{:<32} {:<20} {:>9} {:>14} {:>14} {:>10} {:>10.1}",
            r.group,
            r.topic,
            r.partition,
            r.committed_offset + 1,
            r.high_watermark,
            r.lag_events,
            r.lag_seconds
        );
    }
}

/// Runs `inkwire lag`.
///
/// # Errors
/// When the database or the log cannot be read.
pub async fn run(args: LagArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let db = args.database.open_existing(2).await?;
    let log = args.database.log(&args.log, &db);
    loop {
        let rows = measure(&db, &log, &args.groups).await?;
        if args.json {
            println!("{}", serde_json::to_string(&rows)?);
        } else {
            print_table(&rows);
        }
        let Some(secs) = args.watch else {
            return Ok(());
        };
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(secs.max(1))) => {}
        }
    }
}
