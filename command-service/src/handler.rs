//! Command handling: load the post's state (cached per post), let the aggregate decide, append
//! the events with optimistic concurrency, and retry on a conflict with another instance.
//!
//! Commands for one post are serialised inside this process by a per-post async mutex, so they
//! never conflict with each other here; conflicts only come from other instances and are
//! resolved by reloading and deciding again (or refused, when the caller pinned a version).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use events::{Envelope, PostId, StoredMeta, StreamId};
use eventually_core::aggregate::{Aggregate, AggregateExt};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::post::{Authored, PostAggregate, PostError, PostState};
use crate::metrics::Metrics;
use crate::store::group_commit::GroupCommitter;
use crate::store::{Append, EventStore, SlugChange, StoreError, slug_change};

/// Why a command was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The rules refused it.
    #[error(transparent)]
    Rejected(#[from] PostError),
    /// The caller expected another version of the post.
    #[error("expected version {expected}, but the post is at version {actual}")]
    VersionMismatch {
        /// What the caller expected.
        expected: i64,
        /// What the post is at.
        actual: i64,
    },
    /// Someone else changed the post at the same moment (after retries).
    #[error("the post changed concurrently")]
    Conflict,
    /// The slug is taken by another post.
    #[error("slug {0:?} is taken")]
    SlugTaken(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Request metadata recorded in every event of a command.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// Correlation id (from `x-request-id`, or new).
    pub correlation_id: Option<Uuid>,
    /// W3C `traceparent` of the request.
    pub traceparent: Option<String>,
}

/// What an accepted command produced.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The post.
    pub post_id: PostId,
    /// The post's stream version after the command.
    pub version: i64,
    /// The events recorded.
    pub events: Vec<Envelope>,
}

struct Loaded {
    version: i64,
    state: PostState,
    last_event_id: Uuid,
}

type Slot = Arc<tokio::sync::Mutex<Option<Loaded>>>;

/// Above this many cached posts, idle entries are dropped.
const CACHE_LIMIT: usize = 20_000;
/// Conflicts with other instances are retried this many times.
const MAX_ATTEMPTS: usize = 20;

/// Executes commands against post streams.
pub struct CommandBus {
    store: EventStore,
    committer: GroupCommitter,
    slots: Mutex<HashMap<PostId, Slot>>,
    relay_wake: Arc<Notify>,
    metrics: Metrics,
}

impl CommandBus {
    /// A command bus over `store`, waking the relay through `relay_wake` after each append.
    /// Must be called inside a Tokio runtime (it starts the group committer).
    #[must_use]
    pub fn new(store: EventStore, relay_wake: Arc<Notify>, metrics: Metrics) -> Self {
        Self {
            committer: GroupCommitter::start(store.clone(), 2),
            store,
            slots: Mutex::new(HashMap::new()),
            relay_wake,
            metrics,
        }
    }

    /// The event store it appends to.
    #[must_use]
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Its metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn slot(&self, post: PostId) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slots.len() > CACHE_LIMIT {
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots.entry(post).or_default().clone()
    }

    /// Executes `command` on `post`. With `expected_version`, the command applies only if the
    /// post is at exactly that version (optimistic concurrency for the caller).
    ///
    /// # Errors
    /// [`CommandError`]; nothing is written then.
    pub async fn execute(
        &self,
        post: PostId,
        command: Authored,
        expected_version: Option<i64>,
        mut meta: RequestMeta,
    ) -> Result<Accepted, CommandError> {
        let started = std::time::Instant::now();
        // The command joins the caller's trace, and its events carry the command's context on.
        let span =
            tracing::info_span!("command", post_id = %post, command = command_name(&command));
        infra::telemetry::set_parent(&span, meta.traceparent.as_deref());
        if let Some(traceparent) = infra::telemetry::traceparent_of(&span) {
            meta.traceparent = Some(traceparent);
        }
        let result = self
            .execute_inner(post, command, expected_version, meta)
            .instrument(span)
            .await;
        let outcome = match &result {
            Ok(_) => "accepted",
            Err(CommandError::Rejected(_)) => "rejected",
            Err(
                CommandError::VersionMismatch { .. }
                | CommandError::Conflict
                | CommandError::SlugTaken(_),
            ) => "conflict",
            Err(CommandError::Store(_)) => "error",
        };
        self.metrics
            .commands
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn execute_inner(
        &self,
        post: PostId,
        command: Authored,
        expected_version: Option<i64>,
        meta: RequestMeta,
    ) -> Result<Accepted, CommandError> {
        let slot = self.slot(post);
        let mut cached = slot.lock().await;
        let correlation_id = meta.correlation_id.unwrap_or_else(Uuid::now_v7);
        for _ in 0..MAX_ATTEMPTS {
            // A cached state may be behind another instance's appends: a refusal decided on it
            // is checked against the store's state before it reaches the caller.
            let (loaded, fresh) = match cached.take() {
                Some(l) => (l, false),
                None => (self.load(post).await.map_err(CommandError::Store)?, true),
            };
            if let Some(expected) = expected_version
                && expected != loaded.version
            {
                if !fresh {
                    continue;
                }
                let actual = loaded.version;
                *cached = Some(loaded);
                return Err(CommandError::VersionMismatch { expected, actual });
            }
            let decided = PostAggregate
                .handle(&post, &loaded.state, command.clone())
                .await
                .map(Option::unwrap_or_default);
            let new_events = match decided {
                // Nothing to do, decided on a cached state: make sure against the store's.
                Ok(events) if events.is_empty() && !fresh => continue,
                Ok(events) if events.is_empty() => {
                    let version = loaded.version;
                    *cached = Some(loaded);
                    return Ok(Accepted {
                        post_id: post,
                        version,
                        events: Vec::new(),
                    });
                }
                Ok(events) => events,
                Err(_) if !fresh => continue,
                Err(e) => {
                    *cached = Some(loaded);
                    return Err(e.into());
                }
            };
            let now = Utc::now();
            let mut last_id = loaded.last_event_id;
            let mut slug = SlugChange::default();
            let envelopes: Vec<Envelope> = new_events
                .into_iter()
                .zip(1..)
                .map(|(event, n)| {
                    last_id = next_event_id(last_id);
                    let change = slug_change(&event);
                    slug.release |= change.release;
                    if change.claim.is_some() {
                        slug.claim = change.claim;
                    }
                    Envelope {
                        meta: StoredMeta {
                            event_id: last_id,
                            stream_id: StreamId::from(post),
                            stream_version: loaded.version + n,
                            occurred_at: now,
                            actor: command.caller.actor(),
                            correlation_id,
                            causation_id: None,
                            traceparent: meta.traceparent.clone(),
                        },
                        event: event.into(),
                    }
                })
                .collect();
            let append = Append {
                stream_id: post.into(),
                events: envelopes.clone(),
                slug,
                credentials: None,
            };
            let appending = tracing::info_span!("event_store.append", events = append.events.len());
            match self.committer.append(append).instrument(appending).await {
                Ok(()) => {
                    let version = loaded.version + i64::try_from(envelopes.len()).unwrap_or(0);
                    let state = PostAggregate::fold(
                        loaded.state,
                        envelopes.iter().filter_map(|e| e.event.as_post().cloned()),
                    )?;
                    *cached = Some(Loaded {
                        version,
                        state,
                        last_event_id: last_id,
                    });
                    self.relay_wake.notify_one();
                    return Ok(Accepted {
                        post_id: post,
                        version,
                        events: envelopes,
                    });
                }
                Err(StoreError::VersionConflict) => {
                    // Another instance appended first: reload and decide again, unless the
                    // caller pinned the version it decided on.
                    self.metrics.conflicts.inc();
                    if expected_version.is_some() {
                        return Err(CommandError::Conflict);
                    }
                }
                Err(StoreError::SlugTaken(slug)) => {
                    *cached = Some(loaded);
                    return Err(CommandError::SlugTaken(slug));
                }
                // Unknown outcome (the commit may or may not have happened): forget the cache.
                Err(e) => return Err(CommandError::Store(e)),
            }
        }
        Err(CommandError::Conflict)
    }

    async fn load(&self, post: PostId) -> Result<Loaded, StoreError> {
        let events = self.store.load(post).await?;
        let version = events.last().map_or(0, |e| e.meta.stream_version);
        let last_event_id = events.last().map_or(Uuid::nil(), |e| e.meta.event_id);
        let state = PostAggregate::fold(
            PostState::default(),
            // A post's stream holds post events only.
            events.iter().filter_map(|e| e.event.as_post().cloned()),
        )
        .map_err(|e| StoreError::Db(sqlx::Error::Protocol(format!("fold failed: {e}"))))?;
        Ok(Loaded {
            version,
            state,
            last_event_id,
        })
    }
}

/// A fresh UUIDv7, forced above `previous` so ids increase within a stream even when
/// instances' clocks disagree (the outbox relay relies on it for per-post order).
pub(crate) fn next_event_id(previous: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    if id > previous {
        id
    } else {
        Uuid::from_u128(previous.as_u128().wrapping_add(1))
    }
}

fn command_name(command: &Authored) -> &'static str {
    use crate::domain::post::commands::PostCommand as C;
    match command.command {
        C::DraftPost(_) => "DraftPost",
        C::EditPost(_) => "EditPost",
        C::PublishPost => "PublishPost",
        C::UnpublishPost => "UnpublishPost",
        C::DeletePost => "DeletePost",
        C::SchedulePost { .. } => "SchedulePost",
        C::UnschedulePost => "UnschedulePost",
        C::PublishScheduled { .. } => "PublishScheduled",
        C::AddComment(_) => "AddComment",
        C::EditComment { .. } => "EditComment",
        C::DeleteComment { .. } => "DeleteComment",
        C::HideComment { .. } => "HideComment",
        C::RestoreComment { .. } => "RestoreComment",
        C::React { .. } => "React",
    }
}

#[cfg(test)]
mod tests {
    use super::next_event_id;
    use uuid::Uuid;

    #[test]
    fn event_ids_increase_even_when_the_clock_is_behind() {
        let future = Uuid::from_u128(u128::MAX - 10);
        let next = next_event_id(future);
        assert!(next > future);
        let now = next_event_id(Uuid::nil());
        assert!(now > Uuid::nil());
    }
}
