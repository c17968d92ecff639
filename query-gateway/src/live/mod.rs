//! Live comment events: one log consumer per gateway instance (a consumer group of its own),
//! one in-process broadcast channel per post that has subscribers.
//!
//! The log only says *which* post changed and up to which version. What is pushed comes from the
//! read tables, after the projector has committed it: the broadcaster reads the post's projected
//! version first, then the comments changed since the last push up to that version, pushes them
//! in change order and remembers the version. So a pushed comment is always visible to queries,
//! and the same query serves a subscriber resuming from a cursor: the catch-up and the live part
//! meet at one version, read under the channel's lock, with no gap and no duplicate.
//!
//! Fan-out uses `tokio::sync::broadcast`: a send never waits for a receiver, so a slow client
//! cannot slow the others; one that falls more than the channel's capacity behind is told
//! `SLOW_CONSUMER` with its last cursor and its subscription ends.

pub mod cache;
pub mod fanout;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{Stream, StreamExt};
use infra::log::{LogConfig, StartAt};
use prometheus::IntGauge;
use read_model::bell::{CommitBell, Ear};
use serde::Deserialize;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::live::cache::PageCache;
use crate::metrics::Metrics;
use read_model::{CommentRow, ReadModel};

/// What happened to a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(remote = "read_model::CommentChange")]
pub enum CommentEventKind {
    /// A new comment (or reply).
    Added,
    /// Its author changed the text.
    Edited,
    /// Its author deleted it (the row stays as a placeholder for the thread).
    Deleted,
    /// A moderator hid it.
    Hidden,
    /// A moderator restored it.
    Restored,
    /// A reader reacted to it or took a reaction back: its `reactions` changed.
    Reacted,
}

impl CommentEventKind {
    /// The kind for a subscriber that has seen everything up to stream version `seen`.
    #[must_use]
    pub fn of(row: &CommentRow, seen: i64) -> Self {
        if row.post_version > seen {
            return Self::Added;
        }
        row.last_change.into()
    }
}

/// One pushed change: the comment as queries show it, and the version it is at.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    /// What happened.
    pub kind: CommentEventKind,
    /// The comment now.
    pub comment: Arc<CommentRow>,
}

/// Why a subscription ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveError {
    /// The client fell too far behind; it may resume from `last_version`.
    SlowConsumer {
        /// The last version it received (its cursor).
        last_version: i64,
    },
}

struct Channel {
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// The version up to which changes have been pushed; `None` until the first subscriber
    /// initialises it from the read tables.
    pushed: tokio::sync::Mutex<Option<i64>>,
    /// The version of the last change to the post's own reactions that was announced: readers
    /// of the counts re-read them when it moves.
    reactions: watch::Sender<i64>,
}

struct Inner {
    read: ReadModel,
    metrics: Metrics,
    /// Told every version the log or the read tables show, so it never serves an older page.
    cache: PageCache,
    capacity: usize,
    channels: Mutex<HashMap<Uuid, Arc<Channel>>>,
    /// Posts the log says changed, with the highest version seen.
    dirty: Mutex<HashMap<Uuid, i64>>,
    /// W3C trace contexts of the latest traced events: a push, or a subscriber's catch-up,
    /// joins the trace of the request that caused the change.
    traces: Mutex<RecentTraces>,
    wake: Notify,
    /// The projector's commit bell, when it runs in this process.
    bell: Option<CommitBell>,
    /// Users with a live notification subscription here, each told (latest notification
    /// change, read marks) whenever that pair moves.
    inbox: Mutex<HashMap<Uuid, watch::Sender<(i64, i64)>>>,
    /// Rung when the log shows any change while someone follows notifications.
    inbox_wake: Notify,
}

/// The W3C trace contexts of the latest traced events, by post and version; the oldest are
/// forgotten first once [`RecentTraces::CAPACITY`] are kept.
#[derive(Default)]
struct RecentTraces {
    by_event: HashMap<(Uuid, i64), String>,
    order: VecDeque<(Uuid, i64)>,
}

impl RecentTraces {
    /// Enough for the push lag of a busy traced instance and a subscriber's reconnect; about
    /// a megabyte at most.
    const CAPACITY: usize = 8192;

    fn note(&mut self, post: Uuid, traced: Vec<(i64, String)>) {
        for (version, traceparent) in traced {
            if self.by_event.insert((post, version), traceparent).is_none() {
                self.order.push_back((post, version));
            }
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.by_event.remove(&oldest);
            }
        }
    }

    fn get(&self, post: Uuid, version: i64) -> Option<&str> {
        self.by_event.get(&(post, version)).map(String::as_str)
    }
}

/// The per-instance fan-out hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// Counts a client's subscription in the open-subscriptions gauge while it lives.
pub(crate) struct OpenGuard(IntGauge);

impl OpenGuard {
    /// Counts one more open subscription until the guard is dropped.
    pub(crate) fn open(metrics: &Metrics) -> Self {
        metrics.subscriptions_open.inc();
        Self(metrics.subscriptions_open.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// How long the broadcaster waits between sweeps of every subscribed post, so that a missed
/// log message can delay a push but never lose it.
const SWEEP_EVERY: Duration = Duration::from_millis(1000);
/// Most posts refreshed at once.
const CONCURRENT_REFRESHES: usize = 16;

impl Hub {
    /// A hub reading from `read`, with `capacity` events of slack per subscriber, keeping
    /// `cache` told of every version it learns; with `bell`, posts waiting for the projector are
    /// retried at its commits rather than only on a timer.
    #[must_use]
    pub fn new(
        read: ReadModel,
        metrics: Metrics,
        capacity: usize,
        cache: PageCache,
        bell: Option<CommitBell>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                read,
                metrics,
                cache,
                capacity,
                channels: Mutex::new(HashMap::new()),
                dirty: Mutex::new(HashMap::new()),
                traces: Mutex::new(RecentTraces::default()),
                wake: Notify::new(),
                bell,
                inbox: Mutex::new(HashMap::new()),
                inbox_wake: Notify::new(),
            }),
        }
    }

    /// The post's channel and a receiver on it, created under the map's lock so that
    /// [`Hub::prune`] never drops a channel someone is about to listen to.
    fn channel(&self, post: Uuid) -> (Arc<Channel>, broadcast::Receiver<Arc<LiveEvent>>) {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let channel = channels
            .entry(post)
            .or_insert_with(|| {
                Arc::new(Channel {
                    tx: broadcast::channel(self.inner.capacity).0,
                    pushed: tokio::sync::Mutex::new(None),
                    reactions: watch::Sender::new(0),
                })
            })
            .clone();
        let rx = channel.tx.subscribe();
        (channel, rx)
    }

    /// The version up to which `channel` has pushed, initialised from the read tables by its
    /// first user.
    async fn pushed(&self, channel: &Channel, post: Uuid) -> Result<i64, sqlx::Error> {
        let mut pushed = channel.pushed.lock().await;
        match *pushed {
            Some(v) => Ok(v),
            None => {
                let v = self
                    .inner
                    .read
                    .versions(&[post])
                    .await?
                    .get(&post)
                    .copied()
                    .unwrap_or(0);
                *pushed = Some(v);
                Ok(v)
            }
        }
    }

    /// What a subscriber resuming from `after` missed of `post`, and the version from which it
    /// continues live: everything pushed after that version reaches a receiver created before
    /// this call.
    ///
    /// # Errors
    /// The database error of the catch-up read.
    pub async fn catch_up(
        &self,
        post: Uuid,
        after: Option<i64>,
    ) -> Result<(Vec<Arc<LiveEvent>>, i64), sqlx::Error> {
        let (channel, _rx) = self.channel(post);
        self.catch_up_on(&channel, post, after).await
    }

    /// Follows changes to `post`'s own reactions: the receiver is marked changed whenever a
    /// change projected after this call is announced. Anything projected before it is in
    /// what the caller reads next, so reading the counts after this call and again at each
    /// change misses none.
    ///
    /// # Errors
    /// The database error of initialising the post's channel.
    pub async fn watch_reactions(&self, post: Uuid) -> Result<watch::Receiver<i64>, sqlx::Error> {
        let (channel, _rx) = self.channel(post);
        let rx = channel.reactions.subscribe();
        // From here on, `refresh` announces every change above the pushed version...
        self.pushed(&channel, post).await?;
        // ...that is newer than what the caller is about to read: learnt without announcing it,
        // so an older change is not pushed again as if it were news.
        let now = self
            .inner
            .read
            .post_reactions_version(post)
            .await?
            .unwrap_or(0);
        channel.reactions.send_if_modified(|seen| {
            *seen = (*seen).max(now);
            false
        });
        Ok(rx)
    }

    /// [`Hub::catch_up`] on `post`'s channel, already in hand.
    async fn catch_up_on(
        &self,
        channel: &Channel,
        post: Uuid,
        after: Option<i64>,
    ) -> Result<(Vec<Arc<LiveEvent>>, i64), sqlx::Error> {
        let pushed = self.pushed(channel, post).await?;
        let missed = match after {
            Some(after) if after < pushed => {
                self.inner
                    .read
                    .comments_changed(post, after, pushed, i64::MAX)
                    .await?
            }
            _ => Vec::new(),
        };
        let seen = after.unwrap_or(pushed);
        let missed = missed
            .into_iter()
            .map(|comment| {
                // The change reaches this subscriber now, from the tables: that step of its
                // journey joins the request's trace as the live push does.
                if let Some(tp) = self.traceparent(post, comment.changed_version) {
                    let span = tracing::info_span!(
                        "subscription.catch_up",
                        %post,
                        version = comment.changed_version
                    );
                    infra::telemetry::set_parent(&span, Some(&tp));
                }
                Arc::new(LiveEvent {
                    kind: CommentEventKind::of(&comment, seen),
                    comment: Arc::new(comment),
                })
            })
            .collect();
        // A cursor from another instance may be ahead of this one's pushes: never repeat what
        // the client already has.
        Ok((missed, pushed.max(after.unwrap_or(0))))
    }

    /// Subscribes to `post`'s comment events. With `after` (a version from a cursor), first
    /// yields what changed after it, from the read tables, then live events, with no gap and no
    /// duplicate. `counted`: whether this is a client's subscription (for the open-subscription
    /// and delivery metrics) rather than a shared execution that counts its own subscribers.
    ///
    /// # Errors
    /// The database error of the catch-up read.
    pub async fn subscribe(
        &self,
        post: Uuid,
        after: Option<i64>,
        counted: bool,
    ) -> Result<impl Stream<Item = Result<Arc<LiveEvent>, LiveError>> + use<>, sqlx::Error> {
        let (channel, rx) = self.channel(post);
        let (missed, start) = self.catch_up_on(&channel, post, after).await?;
        drop(channel);
        let metrics = self.inner.metrics.clone();
        let guard = counted.then(|| OpenGuard::open(&metrics));
        let live = futures::stream::unfold(
            (rx, Some(guard), start, metrics),
            |(mut rx, guard, mut last, metrics)| async move {
                let guard = guard?;
                loop {
                    match rx.recv().await {
                        // Pushed before the catch-up read `pushed`: the catch-up has it.
                        Ok(event) if event.comment.changed_version <= last => {}
                        Ok(event) => {
                            last = event.comment.changed_version;
                            if guard.is_some() {
                                metrics.deliveries.inc();
                            }
                            return Some((Ok(event), (rx, Some(guard), last, metrics)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            metrics.slow_disconnects.inc();
                            return Some((
                                Err(LiveError::SlowConsumer { last_version: last }),
                                (rx, None, last, metrics),
                            ));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        Ok(futures::stream::iter(missed.into_iter().map(Ok)).chain(live))
    }

    /// Follows `user`'s notifications: the receiver is marked changed whenever their latest
    /// notification change or read-mark count moves, so the caller reads what is new then.
    #[must_use]
    pub fn watch_inbox(&self, user: Uuid) -> watch::Receiver<(i64, i64)> {
        self.inner
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user)
            .or_insert_with(|| watch::Sender::new((0, 0)))
            .subscribe()
    }

    /// Reads where every followed user's notifications stand and tells those that moved.
    async fn inbox_round(&self) {
        let users: Vec<Uuid> = {
            let mut inbox = self
                .inner
                .inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            inbox.retain(|_, tx| tx.receiver_count() > 0);
            inbox.keys().copied().collect()
        };
        if users.is_empty() {
            return;
        }
        let heads = match self.inner.read.inbox_heads(&users).await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "notification refresh failed; retrying");
                return;
            }
        };
        let inbox = self
            .inner
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (user, head) in heads {
            if let Some(tx) = inbox.get(&user) {
                tx.send_if_modified(|seen| {
                    let moved = *seen != head;
                    *seen = head;
                    moved
                });
            }
        }
    }

    /// Tells notification subscribers of what the projector commits: a round at each log
    /// change (and again while the projector may still be applying it: the log is read before
    /// the tables have it), at each commit of an in-process projector, and every second.
    pub async fn follow_inboxes(self, cancel: CancellationToken) {
        /// After a log change, rounds at these delays (ms) cover the projector's usual lag.
        const AFTER_CHANGE: [u64; 6] = [0, 5, 20, 80, 250, 600];
        let mut commits = Ear::of(self.inner.bell.as_ref());
        loop {
            let from_log = tokio::select! {
                () = cancel.cancelled() => return,
                () = self.inner.inbox_wake.notified() => true,
                () = commits.rung() => false,
                () = tokio::time::sleep(SWEEP_EVERY) => false,
            };
            if !from_log {
                self.inbox_round().await;
                continue;
            }
            let started = tokio::time::Instant::now();
            for ms in AFTER_CHANGE {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep_until(started + Duration::from_millis(ms)) => {}
                }
                self.inbox_round().await;
            }
        }
    }

    /// Notes that the log has `post` at `version`, and the trace contexts of its traced events.
    pub fn changed(&self, post: Uuid, version: i64, traced: Vec<(i64, String)>) {
        self.inner.cache.saw(post, version);
        let following = !self
            .inner
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if following {
            self.inner.inbox_wake.notify_one();
        }
        // Kept whether or not anyone listens yet: a subscriber arriving after the change gets
        // it in its catch-up, which joins the trace too.
        if !traced.is_empty() {
            self.inner
                .traces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .note(post, traced);
        }
        let subscribed = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&post);
        if !subscribed {
            return;
        }
        let mut dirty = self
            .inner
            .dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = dirty.entry(post).or_insert(version);
        *entry = (*entry).max(version);
        drop(dirty);
        self.inner.wake.notify_one();
    }

    /// Pushes `post`'s changes up to its projected version. Returns the version to try again
    /// for while there is more to do: the read tables are still behind `target`, a round was cut
    /// short, or the database failed.
    async fn refresh(&self, post: Uuid, target: Option<i64>) -> Option<i64> {
        let channel = {
            let channels = self
                .inner
                .channels
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            channels.get(&post)?.clone()
        };
        let mut pushed = channel.pushed.lock().await;
        let last = (*pushed)?;
        if target.is_some_and(|t| last >= t) {
            return None;
        }
        // The version first, then the rows up to it: rows committed after the version was read
        // are left for the next round instead of being pushed ahead of their version.
        let projected = match self.inner.read.versions(&[post]).await {
            Ok(v) => v.get(&post).copied().unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, %post, "live refresh failed; retrying");
                return Some(target.unwrap_or(last + 1));
            }
        };
        // What is about to be pushed must not be missing from a page served afterwards, even
        // when the log message announcing it was missed and a sweep found it.
        self.inner.cache.saw(post, projected);
        if projected > last && channel.reactions.receiver_count() > 0 {
            match self.inner.read.post_reactions_version(post).await {
                Ok(Some(v)) => {
                    channel.reactions.send_if_modified(|seen| {
                        let moved = v > *seen;
                        *seen = (*seen).max(v);
                        moved
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, %post, "live refresh failed; retrying");
                    return Some(target.unwrap_or(last + 1));
                }
            }
        }
        if projected > last {
            // At most half the channel per round, so a burst never makes every subscriber lag.
            let limit = i64::try_from(self.inner.capacity / 2)
                .unwrap_or(i64::MAX)
                .max(1);
            match self
                .inner
                .read
                .comments_changed(post, last, projected, limit)
                .await
            {
                Ok(rows) => {
                    let receivers = channel.tx.receiver_count() as u64;
                    let truncated = rows.len() as i64 == limit;
                    let reached = if truncated {
                        rows.last().map_or(projected, |r| r.changed_version)
                    } else {
                        projected
                    };
                    for comment in rows {
                        let span = self.traceparent(post, comment.changed_version).map(|tp| {
                            let span = tracing::info_span!(
                                "subscription.push",
                                %post,
                                version = comment.changed_version,
                                receivers
                            );
                            infra::telemetry::set_parent(&span, Some(&tp));
                            span
                        });
                        let _entered = span.as_ref().map(tracing::Span::enter);
                        let event = Arc::new(LiveEvent {
                            kind: CommentEventKind::of(&comment, last),
                            comment: Arc::new(comment),
                        });
                        // No receivers is not an error: the next subscriber starts from `pushed`.
                        let _ = channel.tx.send(event);
                    }
                    *pushed = Some(reached);
                    if truncated {
                        return Some(projected);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, %post, "live refresh failed; retrying");
                    return Some(target.unwrap_or(projected));
                }
            }
        }
        target.filter(|t| projected < *t)
    }

    /// The W3C trace context of the request that caused `post`'s change at `version`, when
    /// that was traced and is recent enough to be remembered here.
    fn traceparent(&self, post: Uuid, version: i64) -> Option<String> {
        self.inner
            .traces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(post, version)
            .map(str::to_owned)
    }

    /// Forgets channels nobody listens to any more.
    fn prune(&self) -> Vec<Uuid> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, c| c.tx.receiver_count() > 0 || c.reactions.receiver_count() > 0);
        channels.keys().copied().collect()
    }

    /// The broadcaster: refreshes posts the log marked, retrying while the projector has not
    /// caught up (at its next commit when it runs in this process, with a 32 ms timer behind
    /// that; else after 1 ms, doubling to 32 ms), and sweeps every subscribed post each second.
    pub async fn broadcast(self, cancel: CancellationToken) {
        let mut backoff = Duration::ZERO;
        let mut last_sweep = tokio::time::Instant::now();
        let mut commits = Ear::of(self.inner.bell.as_ref());
        loop {
            let wait = if backoff.is_zero() {
                SWEEP_EVERY
            } else {
                backoff
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = commits.rung() => {}
                () = tokio::time::sleep(wait) => {}
            }
            let mut work: HashMap<Uuid, Option<i64>> = std::mem::take(
                &mut *self
                    .inner
                    .dirty
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            )
            .into_iter()
            .map(|(post, version)| (post, Some(version)))
            .collect();
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = tokio::time::Instant::now();
                for post in self.prune() {
                    work.entry(post).or_insert(None);
                }
            }
            let behind: Vec<(Uuid, i64)> = futures::stream::iter(work)
                .map(|(post, target)| {
                    let hub = self.clone();
                    async move { (post, target, hub.refresh(post, target).await) }
                })
                .buffer_unordered(CONCURRENT_REFRESHES)
                .filter_map(|(post, _, again)| async move { again.map(|v| (post, v)) })
                .collect()
                .await;
            if behind.is_empty() {
                backoff = Duration::ZERO;
            } else {
                let mut dirty = self
                    .inner
                    .dirty
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for (post, version) in behind {
                    let entry = dirty.entry(post).or_insert(version);
                    *entry = (*entry).max(version);
                }
                // With the projector's bell, its next commit retries at once: the timer is only
                // a safety net, so it starts at its longest instead of querying every few ms.
                let floor = if self.inner.bell.is_some() {
                    read_model::bell::SAFETY_NET
                } else {
                    Duration::from_millis(1)
                };
                backoff = (backoff * 2).clamp(floor, Duration::from_millis(32));
            }
        }
    }
}

/// The stream id and version of an encoded envelope, skipping the rest.
#[derive(Deserialize)]
struct Head {
    stream_id: Uuid,
    stream_version: i64,
    #[serde(default)]
    traceparent: Option<String>,
}

/// Reads every partition of the log from its end, as a reader that joins no consumer group (so no
/// group coordinator can delay or strand it, ADR 007), and marks the streams it sees as changed in `hub` (posts for live comments; posts and users for the page cache).
///
/// The page cache is turned on only once `projection_group` (the projector of the read tables)
/// has applied every record before the follower's start, and off again whenever the follower is
/// positioned anew: a change appended before that start is never seen by the follower, so a page
/// read from tables that had not applied it yet would be served as fresh until its maximum age
/// (after a gateway restart, a refetch showed fewer comments than its subscription had pushed).
///
/// # Errors
/// When the consumer cannot be created.
pub async fn follow_log(
    log: LogConfig,
    group: String,
    hub: Hub,
    projection_group: String,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut consumer = log.reader(&group)?;
    tracing::info!(group, topic = log.topic(), "gateway following the log");
    let mut gate = CacheGate::new(projection_group);
    while !cancel.is_cancelled() {
        match consumer.position_fresh(&log, StartAt::End).await {
            Ok(0) => {}
            Ok(_) => gate.restart(&hub),
            Err(e) => tracing::debug!(error = %e, "partitions not positioned yet; retrying"),
        }
        gate.check(&log, &consumer, &hub).await;
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = consumer.next_batch(10_000, Duration::from_millis(100)) => batch,
        };
        match batch {
            Ok(records) => {
                let mut latest: HashMap<Uuid, (i64, Vec<(i64, String)>)> = HashMap::new();
                for record in &records {
                    if let Ok(head) = serde_json::from_slice::<Head>(&record.payload) {
                        let (v, traced) = latest
                            .entry(head.stream_id)
                            .or_insert((head.stream_version, Vec::new()));
                        *v = (*v).max(head.stream_version);
                        if let Some(traceparent) = head.traceparent {
                            traced.push((head.stream_version, traceparent));
                        }
                    }
                }
                for (post, (version, traced)) in latest {
                    hub.changed(post, version, traced);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "log read failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    consumer.close();
    Ok(())
}

/// When the page cache may be on: the follower reads every partition from where it was
/// positioned, and the projector has applied everything appended before that.
struct CacheGate {
    group: String,
    /// The log's ends read once every partition was positioned (at or past the follower's start).
    ends: Option<HashMap<i32, i64>>,
    open: bool,
    since: std::time::Instant,
    next_look: std::time::Instant,
    warned: bool,
}

impl CacheGate {
    fn new(group: String) -> Self {
        let now = std::time::Instant::now();
        Self {
            group,
            ends: None,
            open: false,
            since: now,
            next_look: now,
            warned: false,
        }
    }

    /// The follower was positioned anew (at the log's end): what it skipped is not known to
    /// be projected, so the cache is emptied and stays off until the projector gets there.
    fn restart(&mut self, hub: &Hub) {
        hub.inner.cache.disable();
        *self = Self::new(std::mem::take(&mut self.group));
    }

    async fn check(&mut self, log: &LogConfig, consumer: &infra::log::Consumer, hub: &Hub) {
        let now = std::time::Instant::now();
        if self.open || now < self.next_look {
            return;
        }
        self.next_look = now + Duration::from_millis(200);
        if consumer.assigned() == 0 || consumer.positioned() < consumer.assigned() {
            return;
        }
        if self.ends.is_none() {
            match log.high_watermarks().await {
                Ok(ends) => self.ends = Some(ends.into_iter().collect()),
                Err(e) => {
                    tracing::debug!(error = %e, "log ends unknown; page cache stays off");
                    return;
                }
            }
        }
        let Some(ends) = &self.ends else { return };
        let applied = match hub
            .inner
            .read
            .applied_offsets(&self.group, log.topic())
            .await
        {
            Ok(applied) => applied,
            Err(e) => {
                tracing::debug!(error = %e, "projection offsets unreadable; page cache stays off");
                return;
            }
        };
        if caught_up(ends, &applied) {
            self.open = true;
            hub.inner.cache.enable();
            tracing::info!(
                projection_group = self.group,
                waited_ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX),
                "page cache on: the projector has applied the log up to the follower's start"
            );
        } else if !self.warned && self.since.elapsed() > Duration::from_secs(30) {
            self.warned = true;
            tracing::warn!(
                projection_group = self.group,
                "page cache still off: the projector has not reached where the log follower \
                 started (is the projection service running with this group?)"
            );
        }
    }
}

/// Whether `applied` (last applied offset per partition) covers every record before `ends`
/// (the next offset per partition).
fn caught_up(ends: &HashMap<i32, i64>, applied: &HashMap<i32, i64>) -> bool {
    ends.iter()
        .all(|(partition, end)| *end <= 0 || applied.get(partition).is_some_and(|a| *a >= end - 1))
}

#[cfg(test)]
mod gate_tests {
    use std::collections::HashMap;

    use super::caught_up;

    #[test]
    fn the_cache_waits_for_every_record_before_the_follower_start() {
        let ends = HashMap::from([(0, 10), (1, 0), (2, 5)]);
        // Partition 1 is empty: nothing to wait for there.
        assert!(caught_up(&ends, &HashMap::from([(0, 9), (2, 4)])));
        assert!(caught_up(&ends, &HashMap::from([(0, 12), (1, 3), (2, 4)])));
        assert!(
            !caught_up(&ends, &HashMap::from([(0, 8), (2, 4)])),
            "one record behind"
        );
        assert!(
            !caught_up(&ends, &HashMap::from([(0, 9)])),
            "partition 2 never applied"
        );
        assert!(caught_up(&HashMap::new(), &HashMap::new()), "an empty log");
    }
}

#[cfg(test)]
mod trace_tests {
    use uuid::Uuid;

    use super::RecentTraces;

    #[test]
    fn the_latest_trace_contexts_are_kept_and_the_oldest_forgotten() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut traces = RecentTraces::default();
        traces.note(a, vec![(1, "a1".into()), (2, "a2".into())]);
        traces.note(b, vec![(1, "b1".into())]);
        assert_eq!(traces.get(a, 2), Some("a2"));
        assert_eq!(traces.get(b, 1), Some("b1"));
        assert_eq!(traces.get(b, 2), None);

        let more = (10..).take(RecentTraces::CAPACITY - 2);
        traces.note(b, more.map(|v| (v, format!("b{v}"))).collect());
        assert_eq!(traces.get(a, 1), None, "the oldest went first");
        assert_eq!(traces.get(a, 2), Some("a2"));
        assert_eq!(traces.by_event.len(), RecentTraces::CAPACITY);
        assert_eq!(traces.order.len(), RecentTraces::CAPACITY);
    }
}
