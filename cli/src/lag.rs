//! `inkwire lag`: where each projector group stands in each partition — the offset its database
//! says it applied (the truth, ADR 003), the log's high watermark, the lag in events, and the lag
//! in seconds as the age of the oldest record it has not applied (read from that record's
//! timestamp, not interpolated). `--json` for machines, `--watch SECS` to refresh.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use infra::db::Db;
use infra::with_db;
use serde::Serialize;
use sqlx::Row;
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

/// One group's position in one partition.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionLag {
    /// Consumer group.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Last applied offset per the database (-1: nothing yet); the next one to read is this + 1.
    pub committed_offset: i64,
    /// Offset the next record will get.
    pub high_watermark: i64,
    /// Records not applied.
    pub lag_events: i64,
    /// Age of the oldest record not applied (0 when caught up).
    pub lag_seconds: f64,
}

/// Measures every group's lag on the topic of `log`.
///
/// # Errors
/// When the database or the log cannot be read.
pub async fn measure(
    db: &Db,
    log: &infra::log::LogConfig,
    groups: &[String],
) -> anyhow::Result<Vec<PartitionLag>> {
    let topic = log.topic().to_owned();
    let rows: Vec<(String, i64, i64, DateTime<Utc>)> = with_db!(db, |pool| {
        sqlx::query(
            "SELECT consumer_group, partition, applied_offset, last_event_at FROM projection_offsets \
             WHERE topic = $1",
        )
        .bind(topic.as_str())
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|r| {
            Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))
        })
        .collect::<Result<Vec<_>, _>>()
    })?;
    // Per group and partition: the last applied offset and its event's time.
    let mut applied: BTreeMap<(String, i32), (i64, DateTime<Utc>)> = BTreeMap::new();
    for (group, partition, offset, at) in rows {
        applied.insert(
            (group, i32::try_from(partition).unwrap_or(i32::MAX)),
            (offset, at),
        );
    }
    let mut wanted: Vec<String> = if groups.is_empty() {
        applied.keys().map(|(g, _)| g.clone()).collect()
    } else {
        groups.to_vec()
    };
    wanted.dedup();
    let marks = log.high_watermarks().await?;
    let now = Utc::now();
    let mut out = Vec::new();
    for group in &wanted {
        for (partition, high) in &marks {
            let (committed, last_applied_at) = match applied.get(&(group.clone(), *partition)) {
                Some((offset, at)) => (*offset, Some(*at)),
                None => (-1, None),
            };
            let lag_events = (high - (committed + 1)).max(0);
            let lag_seconds = if lag_events > 0 {
                let oldest = match log.timestamp_at(*partition, committed + 1).await? {
                    Some(at) => Some(at),
                    // The probe read nothing in time (a busy broker): once more, then the time
                    // of the newest applied event, which bounds the oldest unapplied one from
                    // below, so the lag errs on the side of more, never reads 0.
                    None => log
                        .timestamp_at(*partition, committed + 1)
                        .await?
                        .or(last_applied_at),
                };
                oldest.map_or(0.0, |at: DateTime<Utc>| {
                    (now - at).num_milliseconds().max(0) as f64 / 1000.0
                })
            } else {
                0.0
            };
            out.push(PartitionLag {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
                committed_offset: committed,
                high_watermark: *high,
                lag_events,
                lag_seconds,
            });
        }
    }
    Ok(out)
}

/// The table, with Kafka's tools' columns: CURRENT-OFFSET is the next offset the group will
/// read (its last applied + 1), LOG-END-OFFSET the one the next record will get.
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
