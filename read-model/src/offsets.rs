//! Where each projector group stands: `projection_offsets`, the offset of the last record a
//! group applied per partition, written in the same transaction as the rows (ADR 003: the
//! database is the truth; since ADR 007 nothing is committed to Kafka at all). The one reader of
//! that table, and the one measure of lag, for the projector's gauges, the gateway's follower and
//! `inkwire lag`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use infra::db::Db;
use infra::log::{LogConfig, LogError};
use infra::with_db;
use serde::Serialize;
use sqlx::Row;

/// Why offsets or lag could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The last applied offset of a partition, and the time of the event at it.
pub type Applied = (i64, DateTime<Utc>);

/// Where `group` stands in each partition of `topic`: the last applied offset and its event's
/// time. A partition it never applied is absent.
///
/// # Errors
/// The database error.
pub async fn of_group(
    db: &Db,
    group: &str,
    topic: &str,
) -> Result<HashMap<i32, Applied>, sqlx::Error> {
    Ok(all(db, topic, Some(group))
        .await?
        .into_iter()
        .map(|((_, partition), applied)| (partition, applied))
        .collect())
}

/// Where every group (or only `group`) stands in each partition of `topic`.
///
/// # Errors
/// The database error.
pub async fn all(
    db: &Db,
    topic: &str,
    group: Option<&str>,
) -> Result<BTreeMap<(String, i32), Applied>, sqlx::Error> {
    with_db!(db, |pool| {
        let mut q = sqlx::QueryBuilder::new(
            "SELECT consumer_group, partition, applied_offset, last_event_at \
             FROM projection_offsets WHERE topic = ",
        );
        q.push_bind(topic);
        if let Some(group) = group {
            q.push(" AND consumer_group = ").push_bind(group);
        }
        q.build()
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| {
                let partition: i64 = row.try_get(1)?;
                Ok((
                    (
                        row.try_get(0)?,
                        i32::try_from(partition).unwrap_or(i32::MAX),
                    ),
                    (row.try_get(2)?, row.try_get(3)?),
                ))
            })
            .collect()
    })
}

/// How the age of the oldest unapplied record is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeProbe {
    /// Read that record's own timestamp from the log (one fetch per lagging partition): what
    /// an operator asking `inkwire lag` wants.
    Exact,
    /// Bound it by the time of the newest applied event, which is never later than it: no log
    /// read, so a gauge refreshed every second costs nothing. Errs towards more lag, never less.
    Bound,
}

/// One group's lag in one partition.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PartitionLag {
    /// The consumer group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The last applied offset (-1: none yet).
    pub committed_offset: i64,
    /// The log's next offset in the partition.
    pub high_watermark: i64,
    /// Records not applied yet.
    pub lag_events: i64,
    /// Age of the oldest record not applied yet, in seconds (0 with no lag).
    pub lag_seconds: f64,
}

/// The lag of `groups` (every group with offsets, when empty) in every partition of the log.
///
/// # Errors
/// [`OffsetsError`] when the database or the log cannot be read.
pub async fn lag(
    db: &Db,
    log: &LogConfig,
    groups: &[String],
    probe: AgeProbe,
) -> Result<Vec<PartitionLag>, OffsetsError> {
    let topic = log.topic().to_owned();
    let only = match groups {
        [one] => Some(one.as_str()),
        _ => None,
    };
    let applied = all(db, &topic, only).await?;
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
            let oldest = match probe {
                _ if lag_events == 0 => None,
                AgeProbe::Bound => Some(last_applied_at.unwrap_or(now)),
                AgeProbe::Exact => match log.timestamp_at(*partition, committed + 1).await? {
                    Some(at) => Some(at),
                    // The probe read nothing in time (a busy broker): once more, then the bound.
                    None => log
                        .timestamp_at(*partition, committed + 1)
                        .await?
                        .or(last_applied_at),
                },
            };
            let lag_seconds = oldest.map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
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
