//! The consumer loop: position assigned partitions from the offsets stored in the database, read
//! batches in log order, apply each batch in one transaction, then let the log know. On
//! cancellation it stops fetching, finishes the batch in hand, and commits.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use infra::db::Db;
use infra::log::{Consumer, LogConfig, LogError};
use infra::with_db;
use read_model::bell::CommitBell;
use tokio_util::sync::CancellationToken;

use crate::claims::Claims;
use crate::metrics::Metrics;
use read_model::offsets::AgeProbe;

use crate::projections::{BatchOutcome, PreparedBatch, Target, View, apply_beside};

/// Most records applied in one transaction.
pub const BATCH_MAX: usize = 5000;
/// How long to wait for a first record before looking at assignments and cancellation again.
const POLL: Duration = Duration::from_millis(100);
/// The embedded log's rounds (it takes no claims, so this only paces them) are a fifth of this;
/// on Kafka, `--kafka-session-timeout-ms` (10 s by default) is how long a member that stops
/// (killed, paused, cut off from the database) keeps its partitions after its last round.
const CLAIM_TTL: Duration = Duration::from_secs(10);
/// Every how many rounds the topic's partitions are listed again (a topic can grow).
const LIST_EVERY: u32 = 15;
/// How often lag gauges are refreshed.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// Runs the projector for `group` until `cancel`, ringing `bell` (when given) after every
/// committed batch for readers in the same process.
///
/// # Errors
/// When the consumer cannot be created; failures after start are logged and retried.
pub async fn run(
    db: Db,
    log: LogConfig,
    group: String,
    metrics: Metrics,
    bell: Option<CommitBell>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let topic = log.topic().to_owned();
    let mut consumer = log.member(&group)?;
    let claim_ttl = match &log {
        LogConfig::Kafka(k) => Duration::from_millis(u64::from(k.session_timeout_ms)),
        LogConfig::Embedded(_) => CLAIM_TTL,
    };
    let mut membership = Membership {
        // The embedded log has one consumer, in the one process (`inkwire dev`): it holds every
        // partition, with no rounds to write to SQLite every few seconds.
        claims: matches!(log, LogConfig::Kafka(_))
            .then(|| Claims::new(db.clone(), &group, &topic, claim_ttl)),
        partitions: BTreeSet::new(),
        rounds: 0,
        held: BTreeSet::new(),
        // Five rounds per time to live: a slow round or two never costs a member its claims.
        every: (claim_ttl / 5).max(Duration::from_millis(200)),
        next: tokio::time::Instant::now(),
    };
    let lag = tokio::spawn(watch_lag(
        db.clone(),
        log.clone(),
        group.clone(),
        metrics.clone(),
        cancel.clone(),
    ));
    tracing::info!(group, topic, "projector started");
    let assigned = metrics.partitions_assigned.with_label_values(&[&group]);
    let target = Target::live(&group);
    // The next batch, read and rendered while the previous one was being written.
    let mut ahead: Option<PreparedBatch> = None;
    while !cancel.is_cancelled() {
        membership.round(&log, &mut consumer).await;
        assigned.set(i64::try_from(consumer.assigned()).unwrap_or(i64::MAX));
        if let Err(e) = position(&db, &group, &topic, &mut consumer).await {
            // Keep consuming the positioned partitions; the rest are retried next round.
            tracing::debug!(error = %e, "not every partition is positioned yet");
        }
        let batch = match ahead.take() {
            Some(batch) => batch,
            None => match read(&mut consumer, &target, &cancel).await {
                Some(batch) => batch,
                None => continue,
            },
        };
        // Write this batch while the next one is read and rendered: the database and the CPU
        // work side by side.
        let (written, next) = apply_beside(
            &db,
            &target,
            batch,
            read(&mut consumer, &target, &cancel),
            bell.as_ref(),
        )
        .await;
        let batch = written.batch;
        match written.outcome {
            Ok(outcome) => {
                metrics.batch_seconds.observe(written.took.as_secs_f64());
                record(&metrics, outcome);
                ahead = next;
            }
            Err(e) => {
                // Nothing was written: read these partitions again from the database's offsets
                // (the batch read ahead is dropped: it follows the failed one).
                tracing::error!(error = %e, records = batch.records().len(), "batch failed; re-reading");
                let partitions: Vec<i32> = batch
                    .records()
                    .iter()
                    .chain(next.as_ref().map_or(&[][..], PreparedBatch::records))
                    .map(|r| r.partition)
                    .collect();
                consumer.unposition(&partitions);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    consumer.close();
    if let Some(claims) = &membership.claims
        && let Err(e) = claims.leave().await
    {
        tracing::debug!(error = %e, "claims not given back; they expire by themselves");
    }
    assigned.set(0);
    lag.abort();
    tracing::info!(group, "projector stopped");
    Ok(())
}

/// A projector's share of its group's partitions ([`Claims`]), renewed every `every`.
struct Membership {
    /// `None`: the only member (the embedded log), holding every partition.
    claims: Option<Claims>,
    /// The topic's partitions, as last listed.
    partitions: BTreeSet<i32>,
    rounds: u32,
    /// What this member reads.
    held: BTreeSet<i32>,
    every: Duration,
    next: tokio::time::Instant,
}

impl Membership {
    /// A round of claims when one is due; the consumer then reads what the round left held.
    async fn round(&mut self, log: &LogConfig, consumer: &mut Consumer) {
        if tokio::time::Instant::now() < self.next {
            return;
        }
        self.next = tokio::time::Instant::now() + self.every;
        if self.partitions.is_empty() || self.rounds.is_multiple_of(LIST_EVERY) {
            match log.high_watermarks().await {
                // Empty while the topic is being created: listed again next round.
                Ok(ends) => self.partitions = ends.into_iter().map(|(p, _)| p).collect(),
                Err(e) => tracing::warn!(error = %e, "partitions not listed; retrying"),
            }
        }
        self.rounds = self.rounds.wrapping_add(1);
        if self.partitions.is_empty() {
            return;
        }
        let Some(claims) = &self.claims else {
            if self.held != self.partitions {
                match consumer.hold(&self.partitions) {
                    Ok(()) => self.held.clone_from(&self.partitions),
                    Err(e) => tracing::warn!(error = %e, "partitions not switched; retrying"),
                }
            }
            return;
        };
        let plan = match claims.refresh(&self.partitions).await {
            Ok(plan) => plan,
            Err(e) => {
                // Keep reading what is held: a batch commits only above the offsets stored in
                // its own transaction, so reading a partition another member took is harmless.
                tracing::warn!(error = %e, "claims not renewed; retrying");
                return;
            }
        };
        if plan.hold != self.held {
            tracing::info!(
                member = claims.member(),
                held = ?plan.hold,
                released = ?plan.release,
                "partitions claimed"
            );
        }
        match consumer.hold(&plan.hold) {
            Ok(()) => self.held = plan.hold,
            Err(e) => tracing::warn!(error = %e, "partitions not switched; retrying"),
        }
    }
}

/// Reads the next batch (up to `max` records, waiting up to `wait` for a first one) and prepares
/// it on a blocking thread; empty when nothing came or on cancellation. Shared with rebuilds.
pub(crate) async fn read_prepared(
    consumer: &mut Consumer,
    max: usize,
    wait: Duration,
    target: &Target,
    cancel: &CancellationToken,
) -> Result<PreparedBatch, LogError> {
    let records = tokio::select! {
        () = cancel.cancelled() => Vec::new(),
        batch = consumer.next_batch(max, wait) => batch?,
    };
    Ok(PreparedBatch::spawn(records, target).await)
}

/// The projector's next batch: `None` when nothing came, on cancellation, or when the read
/// failed (logged; the loop tries again after a pause).
async fn read(
    consumer: &mut Consumer,
    target: &Target,
    cancel: &CancellationToken,
) -> Option<PreparedBatch> {
    match read_prepared(consumer, BATCH_MAX, POLL, target, cancel).await {
        Ok(batch) if batch.is_empty() => None,
        Ok(batch) => Some(batch),
        Err(e) => {
            tracing::warn!(error = %e, "log read failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
            None
        }
    }
}

/// Positions every newly assigned partition at the database's offset + 1. A partition whose
/// seek fails (librdkafka refuses seeks until fetching has started: "Erroneous state") stays
/// unpositioned and is tried again on the next round; the others go ahead.
async fn position(
    db: &Db,
    group: &str,
    topic: &str,
    consumer: &mut Consumer,
) -> anyhow::Result<()> {
    let fresh = consumer.take_unpositioned().await?;
    if fresh.is_empty() {
        return Ok(());
    }
    let stored = match read_model::offsets::of_group(db, group, topic).await {
        Ok(stored) => stored,
        Err(e) => {
            consumer.unposition(&fresh.iter().copied().collect::<Vec<_>>());
            return Err(e.into());
        }
    };
    let mut failed = 0;
    for partition in fresh {
        let next = stored.get(&partition).map(|(offset, _)| offset + 1);
        match consumer.seek(partition, next).await {
            Ok(()) => tracing::info!(
                partition,
                ?next,
                "resuming partition from the database's offset"
            ),
            Err(e) => {
                failed += 1;
                tracing::debug!(error = %e, partition, "seek refused; retrying");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} partition(s) not positioned yet");
    }
    Ok(())
}

fn record(metrics: &Metrics, outcome: BatchOutcome) {
    for (label, n) in [
        ("applied", outcome.applied),
        ("redelivered", outcome.redelivered),
        ("duplicate", outcome.duplicates),
        ("gap", outcome.gaps),
        ("dead_letter", outcome.dead_letters),
    ] {
        if n > 0 {
            metrics.events.with_label_values(&[label]).inc_by(n);
        }
    }
}

/// Refreshes the lag gauges every [`LAG_EVERY`] until `cancel`, beside the consumer loop.
async fn watch_lag(
    db: Db,
    log: LogConfig,
    group: String,
    metrics: Metrics,
    cancel: CancellationToken,
) {
    let topic = log.topic().to_owned();
    // Lag changes only with a commit (an append, an applied batch) or, while there is lag, with
    // time: an idle embedded database is not asked again until its files change.
    let mut probe = infra::db::ChangeProbe::new(&db);
    let mut lagging = true;
    loop {
        if lagging || probe.maybe_changed() {
            match update_lag(&db, &group, &topic, &log, &metrics).await {
                Ok(any) => lagging = any,
                Err(e) => {
                    lagging = true;
                    tracing::debug!(error = %e, "lag not updated");
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(LAG_EVERY) => {}
        }
    }
}

async fn update_lag(
    db: &Db,
    group: &str,
    topic: &str,
    log: &LogConfig,
    metrics: &Metrics,
) -> anyhow::Result<bool> {
    update_rebuilds(db, metrics).await?;
    let lags = read_model::offsets::lag(db, log, &[group.to_owned()], AgeProbe::Bound).await?;
    let mut any = false;
    for lag in lags {
        any |= lag.lag_events > 0;
        let p = lag.partition.to_string();
        metrics
            .lag_events
            .with_label_values(&[group, topic, &p])
            .set(lag.lag_events);
        metrics
            .lag_seconds
            .with_label_values(&[group, topic, &p])
            .set(lag.lag_seconds);
    }
    Ok(any)
}

/// Rebuild gauges from `projection_rebuilds`, for every view (zeros when never rebuilt, so the
/// series exist before the first rebuild).
async fn update_rebuilds(db: &Db, metrics: &Metrics) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i64, i64, i64, DateTime<Utc>)> = with_db!(db, |pool| {
        sqlx::query_as(
            "SELECT view_name, state, events_applied, events_total, generation, lease_expires_at \
             FROM projection_rebuilds",
        )
        .fetch_all(pool)
        .await
    })?;
    let now = Utc::now();
    for view in View::ALL {
        let row = rows.iter().find(|r| r.0 == view.name());
        let (running, progress, generation) = match row {
            Some((_, state, applied, total, generation, until)) => {
                let running = state == "building" && *until > now;
                let progress = if running && *total > 0 {
                    (*applied as f64 / *total as f64).min(1.0)
                } else {
                    0.0
                };
                (running, progress, *generation)
            }
            None => (false, 0.0, 0),
        };
        let label = [view.name()];
        metrics
            .rebuild_running
            .with_label_values(&label)
            .set(i64::from(running));
        metrics
            .rebuild_progress
            .with_label_values(&label)
            .set(progress);
        metrics
            .rebuild_generation
            .with_label_values(&label)
            .set(generation);
    }
    Ok(())
}
