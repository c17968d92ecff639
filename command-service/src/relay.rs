//! The outbox relay: publishes outbox rows to the log in order and removes them only once the
//! log acknowledged them. One relay publishes at a time across all instances (a lease row with
//! expiry), so a post's events reach the log in their stream order.

use std::sync::Arc;
use std::time::Duration;

use infra::log::Producer;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::outbox::{Outbox, traced_spans};

const LEASE: &str = "outbox-relay";
const LEASE_TTL_SECS: i64 = 10;
/// Most outbox rows read, published and removed in one round.
pub const BATCH: usize = infra::log::PUBLISH_BATCH;
/// Without a wake-up from this process, look for rows written by other instances this often.
const POLL: Duration = Duration::from_millis(100);
/// How often a relay on a SQLite file looks, with a `stat` of its files, for outbox rows another
/// process left (`inkwire user add`): appends in its own process wake it at once.
const FILE_POLL: Duration = Duration::from_millis(250);
/// How often the outbox depth gauges are refreshed (a COUNT over the outbox).
const DEPTH_EVERY: Duration = Duration::from_secs(1);
/// A lease holder that has failed to publish for this long gives the lease up: another instance
/// may be able to (one node's wrong credentials or client settings fail only that node).
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);
/// How long a relay that gave the lease up leaves it to the others (who look every [`POLL`]).
const STAND_ASIDE: Duration = Duration::from_secs(2);

/// The relay task.
pub struct Relay {
    outbox: Outbox,
    producer: Producer,
    wake: Arc<Notify>,
    holder: String,
    /// Until when this relay may publish without renewing its lease.
    lease_until: std::sync::Mutex<Option<std::time::Instant>>,
    /// Until when this relay leaves the lease to others, after giving it up.
    aside_until: std::sync::Mutex<Option<std::time::Instant>>,
    metrics: Metrics,
}

impl Relay {
    /// A relay draining `outbox` into `producer`; `wake` is notified after each append.
    #[must_use]
    pub fn new(outbox: Outbox, producer: Producer, wake: Arc<Notify>, metrics: Metrics) -> Self {
        Self {
            outbox,
            producer,
            wake,
            holder: format!("relay-{}", uuid::Uuid::now_v7()),
            lease_until: std::sync::Mutex::new(None),
            aside_until: std::sync::Mutex::new(None),
            metrics,
        }
    }

    /// Runs until `cancel`, then gives the lease up.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut last_depth = std::time::Instant::now() - DEPTH_EVERY;
        // Rows from other processes (`inkwire user add`, other command services on the same
        // SQLite file) show in the database's files: an idle relay asks the database only when
        // they changed. On PostgreSQL it polls as before.
        let mut probe = self.outbox.change_probe();
        let mut changed = true;
        let mut failing_since: Option<std::time::Instant> = None;
        loop {
            if changed && last_depth.elapsed() >= DEPTH_EVERY {
                last_depth = std::time::Instant::now();
                self.update_depth().await;
            }
            let woken = tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => true,
                () = tokio::time::sleep(if probe.watches_files() { FILE_POLL } else { POLL }) => false,
            };
            changed = woken || probe.maybe_changed();
            if !changed {
                continue;
            }
            match self.drain(&cancel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(50);
                    failing_since = None;
                }
                Err(e) => {
                    self.metrics.relay_failures.inc();
                    tracing::warn!(error = %e, ?backoff, "outbox relay could not publish; retrying");
                    let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= GIVE_UP_AFTER {
                        // A new client first, when the log refused: the broker may refuse this
                        // one's producer id for good. Then the lease, in case the fault is this
                        // instance's own.
                        if e.downcast_ref::<infra::log::LogError>().is_some() {
                            self.producer.renew(&e.to_string());
                        }
                        self.give_lease_up().await;
                        failing_since = None;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        if let Err(e) = self.outbox.release_lease(LEASE, &self.holder).await {
            tracing::debug!(error = %e, "lease not released; it expires by itself");
        }
    }

    /// Gives the lease up, when held, after this relay failed to publish for [`GIVE_UP_AFTER`],
    /// and leaves it to the others for [`STAND_ASIDE`]; alone, it takes it back then.
    async fn give_lease_up(&self) {
        let held = self.lease_until.lock().is_ok_and(|until| until.is_some());
        if !held {
            return;
        }
        if let Err(e) = self.outbox.release_lease(LEASE, &self.holder).await {
            // It expires by itself: holding it no longer, this relay stops renewing it.
            tracing::debug!(error = %e, "lease not released; it expires by itself");
        }
        if let Ok(mut until) = self.lease_until.lock() {
            *until = None;
        }
        if let Ok(mut aside) = self.aside_until.lock() {
            *aside = Some(std::time::Instant::now() + STAND_ASIDE);
        }
        tracing::warn!(
            holder = %self.holder,
            failing_secs = GIVE_UP_AFTER.as_secs(),
            "relay gives the outbox lease up: it could not publish; another instance may"
        );
    }

    /// Holds the lease, renewing it only once half its time to live has passed: a renewal is a
    /// write, and under load the relay drains hundreds of times a second.
    async fn hold_lease(&self) -> anyhow::Result<bool> {
        let now = std::time::Instant::now();
        if self
            .aside_until
            .lock()
            .is_ok_and(|aside| aside.is_some_and(|a| a > now))
        {
            return Ok(false);
        }
        if let Ok(until) = self.lease_until.lock()
            && until.is_some_and(|u| u > now)
        {
            return Ok(true);
        }
        let held = self
            .outbox
            .acquire_lease(
                LEASE,
                &self.holder,
                chrono::Duration::seconds(LEASE_TTL_SECS),
            )
            .await?;
        let renew_after = Duration::from_secs(u64::try_from(LEASE_TTL_SECS / 2).unwrap_or(1));
        if let Ok(mut until) = self.lease_until.lock() {
            let had = until.is_some();
            *until = held.then(|| now + renew_after);
            // Who held the lease when: what the fault campaign's checker reads to prove that no
            // two relays ever published under it at once.
            if held && !had {
                tracing::info!(holder = %self.holder, ttl_secs = LEASE_TTL_SECS, "relay lease taken");
            } else if had && !held {
                tracing::warn!(holder = %self.holder, "relay lease lost to another relay");
            }
        }
        Ok(held)
    }

    async fn drain(&self, cancel: &CancellationToken) -> anyhow::Result<()> {
        loop {
            if !self.hold_lease().await? {
                return Ok(());
            }
            let rows = self.outbox.next(BATCH).await?;
            if rows.is_empty() || cancel.is_cancelled() {
                return Ok(());
            }
            let messages: Vec<_> = rows.iter().map(|r| r.message()).collect();
            // With the lease lines above, what the fault campaign's fencing check reads: no
            // relay starts a publish after another took the lease over.
            tracing::debug!(holder = %self.holder, events = messages.len(), "relay publishing");
            // One span per traced event, in its trace, for the time the log took to acknowledge.
            let spans = traced_spans(&messages, || tracing::info_span!("outbox.publish"));
            let (acknowledged, error) = self.producer.publish(&messages).await;
            drop(spans);
            let ids: Vec<_> = rows[..acknowledged].iter().map(|r| r.event_id).collect();
            self.outbox.remove(&ids).await?;
            self.metrics.relay_published.inc_by(ids.len() as u64);
            if let Some(e) = error {
                // Rows from the first unacknowledged one on stay and are sent again, in order.
                return Err(e.into());
            }
            // A short batch emptied the outbox as it was: rows appended since have woken the
            // relay again (or, from other instances, wait for the next poll), so reading once
            // more would only find nothing, once per comment at low rates.
            if rows.len() < BATCH {
                return Ok(());
            }
        }
    }

    async fn update_depth(&self) {
        if let Ok((depth, oldest)) = self.outbox.depth().await {
            self.metrics.outbox_depth.set(depth);
            let age = oldest.map_or(0.0, |t| (chrono::Utc::now() - t).as_seconds_f64().max(0.0));
            self.metrics.outbox_oldest_age.set(age);
        }
    }
}
