//! Blue/green rebuilds (`inkwire replay`): a view's next generation is built from the start of
//! the log into `<table>__next` tables beside the live ones, with offsets of its own, while the
//! live projector keeps projecting and the gateway keeps reading the live tables. Once the next
//! generation has read the whole log and is at or past the live group in every partition, one
//! transaction renames live → `__old` and next → live, and the old tables are dropped.
//!
//! Why it is safe:
//! - The next generation's rows and its offsets commit together ([`apply_prepared`]), and every
//!   batch renews the rebuild's lease in the same transaction, so a rebuild that lost its lease
//!   (it was killed, or stalled past the expiry and someone took over) cannot write. A rebuild
//!   that was killed resumes from its own offsets.
//! - The switch happens only when the next generation holds at least everything the live tables
//!   hold, partition by partition. The live group's offsets are left as they are, so if the next
//!   generation is ahead the live projector re-reads those records and passes over them as
//!   duplicates by stream version; nothing it applies is lost or applied twice.
//! - The switch transaction shuts out the live projector first (PostgreSQL: `LOCK TABLE` before
//!   the snapshot is taken; SQLite: a write as the first statement takes the single writer lock;
//!   CockroachDB, where name resolution is part of the serializable order: a write to the live
//!   group's offsets that conflicts with the projector's), so no batch can commit into the old
//!   tables after the switch read the offsets.
//!
//! No advisory locks anywhere: CockroachDB has none.

mod tables;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use infra::db::Db;
use infra::log::{LogConfig, LogError};
use infra::with_db;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use self::tables::{create_next_indexes, create_next_tables, drop_tables, is_cockroach};
use crate::consumer::read_prepared;
use crate::projections::{
    BatchOutcome, Lease, NEXT_SUFFIX, PreparedBatch, ProjectionError, Target, View, apply_beside,
};

/// Suffix of the tables a switch retires, dropped right after it.
pub const OLD_SUFFIX: &str = "__old";

/// How a rebuild runs.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The view to rebuild.
    pub view: View,
    /// The live projectors' consumer group, whose progress the switch waits for.
    pub live_group: String,
    /// How long the lease holds without renewal; a killed rebuild's lease expires after it.
    pub lease_ttl: Duration,
    /// Most records per batch (one transaction).
    pub batch: usize,
    /// Discard a previous, unfinished rebuild's progress instead of resuming it.
    pub restart: bool,
    /// At most this many records per second, to spare a busy production database.
    pub max_rate: Option<u32>,
}

/// How far a rebuild is, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records of the log read into the next generation (applied or passed over).
    pub done: u64,
    /// Records in the log when the rebuild started (and as it grows).
    pub total: u64,
    /// Whether the next generation has caught up and waits to switch.
    pub switching: bool,
}

/// What a completed rebuild did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The view.
    pub view: &'static str,
    /// Records read by this run.
    pub events: u64,
    /// Of which applied to the view (the rest belong to other views, or were duplicates).
    pub applied: u64,
    /// Records already in the next generation from an earlier, interrupted run.
    pub resumed_from: u64,
    /// Wall time of this run.
    pub seconds: f64,
    /// Records per second of this run.
    pub events_per_second: f64,
    /// Seconds from the first record read to the switch (without start-up: creating the tables,
    /// taking the lease, joining the consumer group).
    pub reading_seconds: f64,
    /// Completed rebuilds of this view, this one included.
    pub generation: i64,
}

/// What `--dry-run` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Estimate {
    /// The view.
    pub view: &'static str,
    /// Records a rebuild would read (the log's size now).
    pub events: u64,
    /// Records an interrupted rebuild already holds (it would resume after them).
    pub resumable: u64,
    /// The rate used for the estimate (events/s), and where it comes from.
    pub events_per_second: f64,
    /// `last-rebuild` (the last completed rebuild of this view) or `log-read` (the log's bare
    /// read rate, measured now: a lower bound on the time).
    pub rate_source: &'static str,
    /// Estimated duration in seconds.
    pub estimated_seconds: f64,
}

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Another rebuild of the view holds the lease.
    #[error("a rebuild of view {view} is already running ({holder}, lease valid until {until})")]
    Busy {
        /// The view.
        view: &'static str,
        /// Who holds it.
        holder: String,
        /// Until when.
        until: chrono::DateTime<Utc>,
    },
    /// The lease was lost (expired and taken over) while running.
    #[error("the rebuild lost its lease of view {0}; the other holder continues")]
    LeaseLost(&'static str),
    /// Stopped by the caller before the switch; the next run resumes.
    #[error("rebuild stopped before the switch; run it again to resume")]
    Cancelled,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The embedded database failed on the fast insert path.
    #[error(transparent)]
    Sqlite(rusqlite::Error),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl From<ProjectionError> for RebuildError {
    fn from(e: ProjectionError) -> Self {
        match e {
            ProjectionError::Db(e) => Self::Db(e),
            ProjectionError::Sqlite(e) => Self::Sqlite(e),
            ProjectionError::LeaseLost(view) => Self::LeaseLost(view),
        }
    }
}

/// The consumer group holding a rebuild's offsets.
#[must_use]
pub fn rebuild_group(live_group: &str, view: View) -> String {
    format!("{live_group}.rebuild.{}", view.name())
}

/// How long a batch waits for its first record.
const POLL: Duration = Duration::from_millis(100);

/// Rebuilds `options.view` from the start of `log` and switches it live; `progress` is called
/// after every batch.
///
/// # Errors
/// [`RebuildError`]; the live view is untouched in every case, and the next run resumes.
pub async fn rebuild(
    db: &Db,
    log: &LogConfig,
    options: &RebuildOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
    cancel: &CancellationToken,
) -> Result<Summary, RebuildError> {
    let started = Instant::now();
    let view = options.view;
    let group = rebuild_group(&options.live_group, view);
    let topic = log.topic().to_owned();
    let ttl = chrono::Duration::from_std(options.lease_ttl).unwrap_or(chrono::Duration::MAX);
    let lease = Lease {
        view,
        holder: format!("replay-{}-{}", std::process::id(), uuid::Uuid::now_v7()),
        ttl,
    };
    // A run killed between its switch and the drop leaves retired tables behind.
    drop_tables(db, view, OLD_SUFFIX).await?;
    let resumed = acquire(db, &lease, options.restart).await?;
    if !resumed {
        drop_tables(db, view, NEXT_SUFFIX).await?;
        with_db!(db, |pool| {
            sqlx::query("DELETE FROM projection_offsets WHERE consumer_group = $1")
                .bind(group.as_str())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    // Asked once: CockroachDB takes other DDL and no `LOCK TABLE`.
    let cockroach = is_cockroach(db).await?;
    create_next_tables(db, view, cockroach).await?;
    let mut positions: HashMap<i32, i64> = read_model::offsets::of_group(db, &group, &topic)
        .await?
        .into_iter()
        .map(|(p, (offset, _))| (p, offset + 1))
        .collect();
    let resumed_from: u64 = positions.values().map(|n| n.unsigned_abs()).sum();
    if resumed {
        tracing::info!(
            view = view.name(),
            resumed_from,
            "resuming an interrupted rebuild"
        );
    }
    let mut ends: HashMap<i32, i64> = log.high_watermarks().await?.into_iter().collect();
    let total = |ends: &HashMap<i32, i64>| ends.values().map(|n| n.unsigned_abs()).sum::<u64>();
    set_total(db, &lease, total(&ends)).await?;
    let target = Target {
        group: group.clone(),
        rebuild: Some(lease.clone()),
    };
    // A reader in no Kafka group: the rebuild is the only reader of its offsets, which are the
    // database's; it starts reading without a group join, and a killed run leaves no member
    // behind to hold the partitions until the broker gives up on it.
    let mut consumer = log.reader(&format!("{group}.{}", uuid::Uuid::now_v7()))?;
    let mut outcome = BatchOutcome::default();
    let mut events: u64 = 0;
    let mut last_renewal = Instant::now();
    let mut indexed = false;
    let mut first_record: Option<Instant> = None;
    // The next batch, read and rendered while the previous one was being written.
    let mut ahead: Option<PreparedBatch> = None;
    let generation = loop {
        if cancel.is_cancelled() {
            consumer.close();
            return Err(RebuildError::Cancelled);
        }
        // Newly assigned partitions resume from this generation's own offsets.
        for partition in consumer.take_unpositioned().await? {
            let next = positions.get(&partition).copied();
            if let Err(e) = consumer.seek(partition, next).await {
                tracing::debug!(error = %e, partition, "seek refused; retrying");
            }
        }
        let batch = match ahead.take() {
            Some(batch) => batch,
            None => read_prepared(&mut consumer, options.batch, POLL, &target, cancel).await?,
        };
        let wrote = !batch.is_empty();
        if wrote {
            first_record.get_or_insert_with(Instant::now);
            // Write this batch while the next one is read and rendered.
            let (written, next) = apply_beside(
                db,
                &target,
                batch,
                read_prepared(&mut consumer, options.batch, POLL, &target, cancel),
                // The next generation is read by nobody until the switch.
                None,
            )
            .await;
            let batch = written.batch;
            let done = written.outcome?;
            ahead = Some(next?).filter(|b| !b.is_empty());
            last_renewal = Instant::now();
            for (field, n) in [
                (&mut outcome.applied, done.applied),
                (&mut outcome.duplicates, done.duplicates),
                (&mut outcome.other_views, done.other_views),
            ] {
                *field += n;
            }
            let batch = batch.records();
            // Records at or below the stored offsets (a partition the log served from before its
            // seek took effect) were read again, not new: the summary counts each event once.
            events += (batch.len() as u64).saturating_sub(done.redelivered);
            for record in batch {
                let next = positions.entry(record.partition).or_insert(0);
                *next = (*next).max(record.offset + 1);
            }
            if let Some(rate) = options.max_rate.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(events as f64 / f64::from(rate));
                if let Some(ahead) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(ahead).await;
                }
            }
        }
        if !wrote && last_renewal.elapsed() > options.lease_ttl / 3 {
            renew(db, &lease).await?;
            last_renewal = Instant::now();
        }
        let read_all = ends
            .iter()
            .all(|(p, end)| positions.get(p).copied().unwrap_or(0) >= *end);
        progress(Progress {
            done: positions.values().map(|n| n.unsigned_abs()).sum(),
            total: total(&ends),
            switching: read_all,
        });
        if !read_all {
            continue;
        }
        if !indexed {
            // Caught up with the log as it was: index now, then read what came meanwhile.
            let indexing = Instant::now();
            create_next_indexes(db, view, cockroach).await?;
            tracing::info!(
                view = view.name(),
                events,
                seconds = indexing.elapsed().as_secs_f64(),
                "next generation caught up and indexed"
            );
            renew(db, &lease).await?;
            last_renewal = Instant::now();
            indexed = true;
            ends = log.high_watermarks().await?.into_iter().collect();
            continue;
        }
        if let Some(generation) =
            try_switch(db, &options.live_group, &group, &lease, &topic, cockroach).await?
        {
            break generation;
        }
        // Not ready: the live group is ahead somewhere (read more) or the log grew.
        ends = log.high_watermarks().await?.into_iter().collect();
    };
    consumer.close();
    let dropping = Instant::now();
    drop_tables(db, view, OLD_SUFFIX).await?;
    tracing::info!(
        view = view.name(),
        seconds = dropping.elapsed().as_secs_f64(),
        "retired generation dropped"
    );
    let seconds = started.elapsed().as_secs_f64();
    record_completion(db, view, events + resumed_from, seconds).await?;
    Ok(Summary {
        view: view.name(),
        events,
        applied: outcome.applied,
        resumed_from,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
        reading_seconds: first_record.map_or(0.0, |t| t.elapsed().as_secs_f64()),
        generation,
    })
}

/// Takes the view's lease: free, expired, or already ours. Returns whether an interrupted
/// rebuild's progress is kept (resumed) rather than discarded.
async fn acquire(db: &Db, lease: &Lease, restart: bool) -> Result<bool, RebuildError> {
    let now = Utc::now();
    let view = lease.view.name();
    let current = with_db!(db, |pool| {
        sqlx::query(
            "SELECT state, holder, lease_expires_at FROM projection_rebuilds WHERE view_name = $1",
        )
        .bind(view)
        .fetch_optional(pool)
        .await?
        .map(|row| {
            Ok::<_, sqlx::Error>((
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
                row.try_get::<chrono::DateTime<Utc>, _>(2)?,
            ))
        })
        .transpose()
    })?;
    let resume = match &current {
        Some((state, holder, until)) if state == "building" && *until > now => {
            return Err(RebuildError::Busy {
                view,
                holder: holder.clone(),
                until: *until,
            });
        }
        Some((state, _, _)) => state == "building" && !restart,
        None => false,
    };
    // Compare-and-set on what was read, so two rebuilds starting at once cannot both win.
    let won = with_db!(db, |pool| {
        match &current {
            None => sqlx::query(
                "INSERT INTO projection_rebuilds (view_name, state, holder, lease_expires_at, started_at, updated_at) \
                 VALUES ($1, 'building', $2, $3, $4, $4) ON CONFLICT (view_name) DO NOTHING",
            )
            .bind(view)
            .bind(lease.holder.as_str())
            .bind(now + lease.ttl)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
            Some((_, holder, _)) => sqlx::query(
                "UPDATE projection_rebuilds SET state = 'building', holder = $1, lease_expires_at = $2, \
                 updated_at = $3, started_at = CASE WHEN $6 THEN started_at ELSE $3 END, \
                 events_applied = CASE WHEN $6 THEN events_applied ELSE 0 END \
                 WHERE view_name = $4 AND holder = $5",
            )
            .bind(lease.holder.as_str())
            .bind(now + lease.ttl)
            .bind(now)
            .bind(view)
            .bind(holder.as_str())
            .bind(resume)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        }
    })? == 1;
    if !won {
        return Err(RebuildError::Busy {
            view,
            holder: "another rebuild that started at the same time".to_owned(),
            until: now + lease.ttl,
        });
    }
    Ok(resume)
}

async fn renew(db: &Db, lease: &Lease) -> Result<(), RebuildError> {
    let now = Utc::now();
    let renewed = with_db!(db, |pool| {
        sqlx::query(
            "UPDATE projection_rebuilds SET lease_expires_at = $1, updated_at = $2 \
             WHERE view_name = $3 AND holder = $4 AND state = 'building'",
        )
        .bind(now + lease.ttl)
        .bind(now)
        .bind(lease.view.name())
        .bind(lease.holder.as_str())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    if renewed == 0 {
        return Err(RebuildError::LeaseLost(lease.view.name()));
    }
    Ok(())
}

async fn set_total(db: &Db, lease: &Lease, total: u64) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "UPDATE projection_rebuilds SET events_total = $1 WHERE view_name = $2 AND holder = $3",
        )
        .bind(i64::try_from(total).unwrap_or(i64::MAX))
        .bind(lease.view.name())
        .bind(lease.holder.as_str())
        .execute(pool)
        .await
        .map(|_| ())
    })
}

async fn record_completion(
    db: &Db,
    view: View,
    events: u64,
    seconds: f64,
) -> Result<(), sqlx::Error> {
    with_db!(db, |pool| {
        sqlx::query(
            "UPDATE projection_rebuilds SET last_events = $1, last_seconds = $2 WHERE view_name = $3",
        )
        .bind(i64::try_from(events).unwrap_or(i64::MAX))
        .bind(seconds)
        .bind(view.name())
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// The switch: when the next generation holds at least what the live tables hold in every
/// partition, renames it live in one transaction and returns the view's new generation number;
/// `None` when it is not ready yet (nothing changed then).
async fn try_switch(
    db: &Db,
    live_group: &str,
    group: &str,
    lease: &Lease,
    topic: &str,
    cockroach: bool,
) -> Result<Option<i64>, RebuildError> {
    let view = lease.view;
    let switched = infra::db::retry_tx(|| async {
        with_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let now = Utc::now();
            // First, before any read: shut the live projector out (see the module docs).
            if matches!(db, Db::Postgres(_)) && !cockroach {
                let mut tables: Vec<String> = Vec::new();
                for table in view.tables() {
                    tables.push((*table).to_owned());
                    tables.push(format!("{table}{NEXT_SUFFIX}"));
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                    tables.join(", ")
                )))
                .execute(&mut *tx)
                .await?;
            }
            let ours = sqlx::query(
                "UPDATE projection_rebuilds SET updated_at = $1 \
                 WHERE view_name = $2 AND holder = $3 AND state = 'building'",
            )
            .bind(now)
            .bind(view.name())
            .bind(lease.holder.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if ours == 0 {
                return Err(ProjectionError::LeaseLost(view.name()));
            }
            sqlx::query(
                "UPDATE projection_offsets SET updated_at = updated_at WHERE consumer_group = $1 AND topic = $2",
            )
            .bind(live_group)
            .bind(topic)
            .execute(&mut *tx)
            .await?;
            let mut offsets: HashMap<(String, i64), i64> = HashMap::new();
            for row in sqlx::query(
                "SELECT consumer_group, partition, applied_offset FROM projection_offsets \
                 WHERE topic = $1 AND consumer_group IN ($2, $3)",
            )
            .bind(topic)
            .bind(live_group)
            .bind(group)
            .fetch_all(&mut *tx)
            .await?
            {
                offsets.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
            }
            let behind = offsets.iter().any(|((g, partition), live)| {
                g == live_group
                    && offsets
                        .get(&(group.to_owned(), *partition))
                        .is_none_or(|next| next < live)
            });
            if behind {
                return Ok::<_, ProjectionError>(None);
            }
            for table in view.tables() {
                for (from, to) in [
                    ((*table).to_owned(), format!("{table}{OLD_SUFFIX}")),
                    (format!("{table}{NEXT_SUFFIX}"), (*table).to_owned()),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "ALTER TABLE {from} RENAME TO {to}"
                    )))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query("DELETE FROM projection_offsets WHERE consumer_group = $1")
                .bind(group)
                .execute(&mut *tx)
                .await?;
            let generation: i64 = sqlx::query_scalar(
                "UPDATE projection_rebuilds SET state = 'switched', generation = generation + 1, \
                 lease_expires_at = $1, updated_at = $1 WHERE view_name = $2 RETURNING generation",
            )
            .bind(now)
            .bind(view.name())
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(generation))
        })
    })
    .await?;
    if let Some(generation) = switched {
        tracing::info!(view = view.name(), generation, "rebuilt view is live");
    }
    Ok(switched)
}

/// What a rebuild of `view` would read, and an estimate of how long it would take.
///
/// # Errors
/// When the database or the log cannot be read.
pub async fn estimate(
    db: &Db,
    log: &LogConfig,
    view: View,
    live_group: &str,
) -> Result<Estimate, RebuildError> {
    let events: u64 = log
        .high_watermarks()
        .await?
        .iter()
        .map(|(_, n)| n.unsigned_abs())
        .sum();
    let group = rebuild_group(live_group, view);
    let resumable: u64 = read_model::offsets::of_group(db, &group, log.topic())
        .await?
        .values()
        .map(|(offset, _)| (offset + 1).unsigned_abs())
        .sum();
    let last = with_db!(db, |pool| {
        sqlx::query(
            "SELECT last_events, last_seconds FROM projection_rebuilds WHERE view_name = $1",
        )
        .bind(view.name())
        .fetch_optional(pool)
        .await?
        .map(|row| Ok::<_, sqlx::Error>((row.try_get::<i64, _>(0)?, row.try_get::<f64, _>(1)?)))
        .transpose()
    })?;
    let (rate, source) = match last {
        Some((n, secs)) if n > 0 && secs > 0.0 => (n as f64 / secs, "last-rebuild"),
        _ => (
            // A sample: two seconds at most.
            read_rate(
                log,
                &format!("{group}.dry-run.{}", uuid::Uuid::now_v7()),
                200_000,
                Duration::from_secs(2),
            )
            .await?,
            "log-read",
        ),
    };
    let remaining = events.saturating_sub(resumable);
    Ok(Estimate {
        view: view.name(),
        events,
        resumable,
        events_per_second: rate,
        rate_source: source,
        estimated_seconds: if rate > 0.0 {
            remaining as f64 / rate
        } else {
            0.0
        },
    })
}

/// The log's bare read rate (records per second from the first record on), reading from its
/// beginning as `group` until its end, `limit` records or `within`, whichever comes first.
///
/// # Errors
/// When the log cannot be read.
pub async fn read_rate(
    log: &LogConfig,
    group: &str,
    limit: u64,
    within: Duration,
) -> Result<f64, RebuildError> {
    let mut consumer = log.reader(group)?;
    let start = Instant::now();
    let mut read = 0_u64;
    let mut first: Option<Instant> = None;
    while start.elapsed() < within && read < limit {
        consumer
            .position_fresh(log, infra::log::StartAt::Beginning)
            .await?;
        let batch = consumer.next_batch(5000, POLL).await?;
        if batch.is_empty() {
            if first.is_some() {
                break;
            }
            continue;
        }
        first.get_or_insert_with(Instant::now);
        read += batch.len() as u64;
    }
    consumer.close();
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    Ok(if secs > 0.0 { read as f64 / secs } else { 0.0 })
}
