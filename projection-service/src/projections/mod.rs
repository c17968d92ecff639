//! Read models. Each projection turns events into rows; [`apply_batch`] writes a batch's rows
//! and the consumer group's offsets in ONE transaction, which is what makes a crash at any
//! instant harmless: either the rows and the offsets moved together, or neither did.

pub mod posts;

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use events::Envelope;
use infra::db::{Db, TxError, retry_tx};
use infra::log::LogRecord;
use infra::with_db;
use read_model::bell::CommitBell;
use read_model::fold::rendered_body;
use sqlx::Row;
use uuid::Uuid;

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events applied to the read model.
    pub applied: u64,
    /// Records at or below the stored offset (redelivered): skipped.
    pub redelivered: u64,
    /// Events at or below the post's projected version (published twice): skipped.
    pub duplicates: u64,
    /// Events ahead of the next expected version: skipped, the relay re-sends in order.
    pub gaps: u64,
    /// Records that could not be decoded: kept in `projection_dead_letters`.
    pub dead_letters: u64,
    /// Events of views this target does not write (a rebuild of another view): passed over.
    pub other_views: u64,
}

/// Why a batch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The embedded database failed on the fast insert path (see
    /// [`posts::InsertComments`]).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A rebuild's lease is held by someone else now; nothing of the batch was written.
    #[error("the rebuild lease of view {0} is no longer ours")]
    LeaseLost(&'static str),
}

impl TxError for ProjectionError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::LeaseLost(_) => false,
        }
    }
}

/// A view: a set of read tables that one rebuild replaces together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum View {
    /// Posts, their tags, their threaded comments, their saved revisions and the comment half
    /// of the moderation log (`rm_posts`, `rm_post_tags`, `rm_comments`, `rm_post_revisions`,
    /// `rm_comment_moderation`): the comment count lives on the post and a revision copies the
    /// post's row, so they are rebuilt together.
    Posts,
    /// Users and the account half of the moderation log (`rm_users`, `rm_account_moderation`).
    Users,
}

impl View {
    /// Every view, in the order `--all` rebuilds them.
    pub const ALL: [View; 2] = [View::Posts, View::Users];

    /// Its name on the command line and in `projection_rebuilds`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Posts => "posts",
            Self::Users => "users",
        }
    }

    /// The view called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Its tables, by their live names.
    #[must_use]
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Posts => &[
                "rm_posts",
                "rm_post_tags",
                "rm_comments",
                "rm_post_revisions",
                "rm_comment_moderation",
                "rm_reactions",
                "rm_notifications",
            ],
            Self::Users => &["rm_users", "rm_account_moderation", "rm_notification_reads"],
        }
    }

    /// The view an event belongs to.
    #[must_use]
    pub fn of(event: &events::Event) -> Self {
        if event.is_user_event() {
            Self::Users
        } else {
            Self::Posts
        }
    }
}

/// Posts per multi-row version update (4 parameters each).
const POST_UPDATE_CHUNK: usize = 500;

/// Suffix of the tables a rebuild fills beside the live ones.
pub const NEXT_SUFFIX: &str = "__next";

/// What a batch is applied to: the live tables for a consumer group, or the next generation of
/// one view during a rebuild (its own offsets, fenced by its lease).
#[derive(Debug, Clone)]
pub struct Target {
    /// The group whose offsets the batch moves.
    pub group: String,
    /// `None`: every view, live tables. `Some(lease)`: a rebuild of the lease's view, into its
    /// `__next` tables only (events of other views are passed over); the lease must still be
    /// ours when the batch commits.
    pub rebuild: Option<Lease>,
}

/// A rebuild's hold on its view: renewed by every batch it commits, and the batch fails when
/// someone else holds it (so a rebuild that lost its lease cannot write).
#[derive(Debug, Clone)]
pub struct Lease {
    /// The view.
    pub view: View,
    /// Who holds it (host, pid and a random part).
    pub holder: String,
    /// How long each renewal holds it.
    pub ttl: chrono::Duration,
}

impl Target {
    /// The live read model, for `group`.
    #[must_use]
    pub fn live(group: &str) -> Self {
        Self {
            group: group.to_owned(),
            rebuild: None,
        }
    }

    /// Whether events of `view` are applied.
    #[must_use]
    pub fn writes(&self, view: View) -> bool {
        self.rebuild.as_ref().is_none_or(|lease| lease.view == view)
    }

    /// `sql`, written against the live table names, for this target: a rebuild's statements
    /// name its `__next` tables. Borrowed (no allocation) for the live model.
    #[must_use]
    pub fn sql(&self, sql: &'static str) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        let Some(lease) = &self.rebuild else {
            return sqlx::AssertSqlSafe(Cow::Borrowed(sql));
        };
        let mut out = sql.to_owned();
        for table in lease.view.tables() {
            out = replace_table(&out, table, &format!("{table}{NEXT_SUFFIX}"));
        }
        sqlx::AssertSqlSafe(Cow::Owned(out))
    }
}

/// Replaces the whole-word occurrences of the table name `from` in `sql` with `to`
/// (`rm_posts` does not match inside `rm_posts_slug` or `rm_post_tags`).
#[must_use]
pub fn replace_table(sql: &str, from: &str, to: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find(from) {
        let before = if at == 0 {
            out.chars().last()
        } else {
            rest[..at].chars().last()
        };
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(word) || after.is_some_and(word) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// Applies `records` (in log order) for `group`: every record above the stored offset of its
/// partition is decoded and projected, and the offsets move to the batch's last records, all
/// in one transaction (retried on serialization conflicts).
///
/// # Errors
/// [`ProjectionError`] when the database fails; nothing is written then.
pub async fn apply_batch(
    db: &Db,
    group: &str,
    records: &[LogRecord],
) -> Result<BatchOutcome, ProjectionError> {
    apply_batch_to(db, &Target::live(group), records).await
}

/// [`apply_batch`] for any [`Target`]: the live model, or a rebuild's next generation.
///
/// # Errors
/// [`ProjectionError`] when the database fails or a rebuild's lease was lost; nothing is
/// written then.
pub async fn apply_batch_to(
    db: &Db,
    target: &Target,
    records: &[LogRecord],
) -> Result<BatchOutcome, ProjectionError> {
    apply_prepared(db, target, &PreparedBatch::new(records.to_vec(), target)).await
}

/// One decoded event with the HTML of the body it carries, rendered ahead of the transaction.
#[derive(Debug)]
pub struct Prepared {
    /// The event.
    pub envelope: Envelope,
    /// The rendered body of a post or comment event that carries one.
    html: Option<String>,
}

impl Prepared {
    fn new(envelope: Envelope, target: &Target) -> Self {
        let html = if target.writes(View::of(&envelope.event)) {
            rendered_body(&envelope.event)
        } else {
            None
        };
        Self { envelope, html }
    }

    /// The HTML of the body the event carries, rendered ahead (or now, for an event of a view
    /// the batch was not prepared for); `None` when it carries none.
    #[must_use]
    pub fn html(&self) -> Option<Cow<'_, str>> {
        match &self.html {
            Some(html) => Some(Cow::Borrowed(html.as_str())),
            None => rendered_body(&self.envelope.event).map(Cow::Owned),
        }
    }
}

/// A batch of records decoded and rendered: the CPU-bound half of applying it, done before its
/// transaction opens (and, in the consumer loops, while the previous batch is being written).
#[derive(Debug)]
pub struct PreparedBatch {
    records: Vec<LogRecord>,
    events: Vec<Result<Prepared, String>>,
    /// Each traced event's span in its request's trace, lasting until the batch commits.
    _spans: Vec<tracing::Span>,
}

impl PreparedBatch {
    /// Decodes and renders `records` for `target`. Pure CPU: no I/O, so it may run on a blocking
    /// thread beside a write.
    #[must_use]
    pub fn new(records: Vec<LogRecord>, target: &Target) -> Self {
        let events: Vec<Result<Prepared, String>> = records
            .iter()
            .map(|r| {
                Envelope::decode(&r.payload)
                    .map(|e| Prepared::new(e, target))
                    .map_err(|e| e.to_string())
            })
            .collect();
        // Rebuilds replay history: they are not part of any request's journey.
        let spans = events
            .iter()
            .filter(|_| target.rebuild.is_none())
            .filter_map(|e| {
                let envelope = &e.as_ref().ok()?.envelope;
                let traceparent = envelope.meta.traceparent.as_deref()?;
                let span = tracing::info_span!(
                    "projection.apply",
                    stream_id = %envelope.meta.stream_id.0,
                    version = envelope.meta.stream_version,
                    event_type = envelope.event.event_type()
                );
                infra::telemetry::set_parent(&span, Some(traceparent));
                Some(span)
            })
            .collect();
        Self {
            records,
            events,
            _spans: spans,
        }
    }

    /// [`PreparedBatch::new`] on a blocking thread, so that rendering does not hold up the
    /// runtime (and runs on the other core while this one writes the previous batch).
    pub async fn spawn(records: Vec<LogRecord>, target: &Target) -> Self {
        if records.is_empty() {
            return Self::new(records, target);
        }
        let target = target.clone();
        tokio::task::spawn_blocking(move || Self::new(records, &target))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// The records, in log order.
    #[must_use]
    pub fn records(&self) -> &[LogRecord] {
        &self.records
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A batch written by [`apply_beside`], handed back with what the write did.
pub struct Written {
    /// The batch.
    pub batch: PreparedBatch,
    /// What [`apply_prepared`] returned.
    pub outcome: Result<BatchOutcome, ProjectionError>,
    /// How long the write took.
    pub took: std::time::Duration,
}

/// Writes `batch` on a task of its own while `read` (the reading and preparing of the next
/// batch) runs here. On a multi-threaded runtime the two then run on two threads; interleaved
/// on one, the read's row handling waited between the write's statements, and the projector
/// ran at the pace of that one thread. `bell` is rung as soon as the batch is committed, not
/// once the read is done too.
pub async fn apply_beside<R: Future>(
    db: &Db,
    target: &Target,
    batch: PreparedBatch,
    read: R,
    bell: Option<&CommitBell>,
) -> (Written, R::Output) {
    let write = tokio::spawn({
        let (db, target, bell) = (db.clone(), target.clone(), bell.cloned());
        async move {
            let started = std::time::Instant::now();
            let outcome = apply_prepared(&db, &target, &batch).await;
            if let (Ok(_), Some(bell)) = (&outcome, bell) {
                bell.ring();
            }
            Written {
                batch,
                outcome,
                took: started.elapsed(),
            }
        }
    });
    let next = read.await;
    let written = match write.await {
        Ok(written) => written,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels the task, and it drops this future too.
        Err(_) => std::future::pending().await,
    };
    (written, next)
}

/// Writes a [`PreparedBatch`] for `target`: every record above the stored offset of its
/// partition is projected, and the offsets move to the batch's last records, all in one
/// transaction (retried on serialization conflicts).
///
/// # Errors
/// [`ProjectionError`] when the database fails or a rebuild's lease was lost; nothing is
/// written then.
pub async fn apply_prepared(
    db: &Db,
    target: &Target,
    batch: &PreparedBatch,
) -> Result<BatchOutcome, ProjectionError> {
    let group = target.group.as_str();
    let records = batch.records.as_slice();
    let decoded = batch.events.as_slice();
    retry_tx(|| async {
        let mut outcome = BatchOutcome::default();
        with_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let mut applied: HashMap<(String, i32), (i64, DateTime<Utc>)> = HashMap::new();
            // The projected version of every post in the batch, in one query.
            let streams: BTreeSet<Uuid> = decoded
                .iter()
                .filter_map(|e| e.as_ref().ok().map(|e| e.envelope.meta.stream_id.0))
                .collect();
            let mut versions: HashMap<Uuid, i64> = HashMap::new();
            for chunk in streams.iter().copied().collect::<Vec<_>>().chunks(500) {
                // Posts and users share the log; a stream is one or the other.
                let mut q = sqlx::QueryBuilder::new("");
                for (i, table) in [(View::Posts, "rm_posts"), (View::Users, "rm_users")]
                    .into_iter()
                    .filter(|(view, _)| target.writes(*view))
                    .map(|(_, table)| table)
                    .enumerate()
                {
                    if i > 0 {
                        q.push(" UNION ALL ");
                    }
                    q.push("SELECT id, version FROM ");
                    q.push(target.sql(table).0);
                    q.push(" WHERE id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    list.push_unseparated(")");
                }
                for row in q.build().fetch_all(&mut *tx).await? {
                    versions.insert(row.try_get(0)?, row.try_get(1)?);
                }
            }
            // Per post: (new version, last change, visible-comment delta), written once at the end.
            let mut touched: HashMap<Uuid, (i64, DateTime<Utc>, i64)> = HashMap::new();
            // Per user stream: (new version, last change).
            let mut users: HashMap<Uuid, (i64, DateTime<Utc>)> = HashMap::new();
            let mut pending: Vec<posts::PendingComment> = Vec::new();
            for (record, event) in records.iter().zip(decoded) {
                let key = (record.topic.clone(), record.partition);
                if !applied.contains_key(&key) {
                    let row = sqlx::query(
                        "SELECT applied_offset, last_event_at FROM projection_offsets \
                         WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
                    )
                    .bind(group)
                    .bind(record.topic.as_str())
                    .bind(i64::from(record.partition))
                    .fetch_optional(&mut *tx)
                    .await?;
                    let stored = match row {
                        Some(row) => (row.try_get(0)?, row.try_get(1)?),
                        None => (-1, DateTime::<Utc>::UNIX_EPOCH),
                    };
                    applied.insert(key.clone(), stored);
                }
                let (last_offset, _) = applied[&key];
                if record.offset <= last_offset {
                    outcome.redelivered += 1;
                    continue;
                }
                let event_at = match event {
                    Err(error) => {
                        tracing::error!(
                            error = %error, partition = record.partition, offset = record.offset,
                            "undecodable event kept as a dead letter"
                        );
                        sqlx::query(
                            "INSERT INTO projection_dead_letters \
                             (consumer_group, topic, partition, log_offset, payload, error, recorded_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                        )
                        .bind(group)
                        .bind(record.topic.as_str())
                        .bind(i64::from(record.partition))
                        .bind(record.offset)
                        .bind(&record.payload)
                        .bind(error.as_str())
                        .bind(Utc::now())
                        .execute(&mut *tx)
                        .await?;
                        outcome.dead_letters += 1;
                        record.timestamp.unwrap_or_else(Utc::now)
                    }
                    Ok(prepared) if !target.writes(View::of(&prepared.envelope.event)) => {
                        outcome.other_views += 1;
                        record.timestamp.unwrap_or(prepared.envelope.meta.occurred_at)
                    }
                    Ok(prepared) => {
                        let envelope = &prepared.envelope;
                        let stream = envelope.meta.stream_id.0;
                        let current = versions.get(&stream).copied().unwrap_or(0);
                        let version = envelope.meta.stream_version;
                        if version <= current {
                            outcome.duplicates += 1;
                        } else if version > current + 1 {
                            tracing::warn!(
                                post_id = %stream, version, current,
                                "event ahead of the projected version; waiting for the relay's re-send"
                            );
                            outcome.gaps += 1;
                        } else {
                            let delta = match posts::PendingComment::from_prepared(prepared) {
                                Some(comment) => {
                                    pending.push(comment);
                                    1
                                }
                                None => {
                                    // Anything else may read rows the pending inserts create.
                                    posts::flush_comments!(&mut *tx, target, &mut pending);
                                    posts::project!(&mut *tx, target, prepared)
                                }
                            };
                            versions.insert(stream, version);
                            if envelope.event.is_user_event() {
                                users.insert(stream, (version, envelope.meta.occurred_at));
                                outcome.applied += 1;
                                applied.insert(key, (record.offset, record.timestamp.unwrap_or(envelope.meta.occurred_at)));
                                continue;
                            }
                            let entry = touched.entry(stream).or_insert((version, envelope.meta.occurred_at, 0));
                            entry.0 = version;
                            entry.1 = envelope.meta.occurred_at;
                            entry.2 += delta;
                            outcome.applied += 1;
                        }
                        record.timestamp.unwrap_or(envelope.meta.occurred_at)
                    }
                };
                applied.insert(key, (record.offset, event_at));
            }
            posts::flush_comments!(&mut *tx, target, &mut pending);
            // Every touched post's version, last change and count, in multi-row statements.
            let touched: Vec<_> = touched.into_iter().collect();
            for chunk in touched.chunks(POST_UPDATE_CHUNK) {
                let mut q = sqlx::QueryBuilder::new(target.sql(
                    "UPDATE rm_posts SET version = v.column2, updated_at = v.column3, \
                     comment_count = comment_count + v.column4 FROM (",
                ).0);
                q.push_values(chunk, |mut row, (post, (version, at, delta))| {
                    row.push_bind(*post)
                        .push_bind(*version)
                        .push_bind(*at)
                        .push_bind(*delta);
                });
                q.push(target.sql(") AS v WHERE rm_posts.id = v.column1").0);
                q.build().execute(&mut *tx).await?;
            }
            for (user, (version, at)) in &users {
                sqlx::query(target.sql("UPDATE rm_users SET version = $1, updated_at = $2 WHERE id = $3"))
                    .bind(*version)
                    .bind(*at)
                    .bind(*user)
                    .execute(&mut *tx)
                    .await?;
            }
            let now = Utc::now();
            for ((topic, partition), (offset, event_at)) in &applied {
                sqlx::query(
                    "INSERT INTO projection_offsets (consumer_group, topic, partition, applied_offset, last_event_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (consumer_group, topic, partition) DO UPDATE \
                     SET applied_offset = excluded.applied_offset, last_event_at = excluded.last_event_at, updated_at = excluded.updated_at",
                )
                .bind(group)
                .bind(topic.as_str())
                .bind(i64::from(*partition))
                .bind(*offset)
                .bind(*event_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(lease) = &target.rebuild {
                // Renewing the lease in the batch's own transaction fences a rebuild that lost
                // it: its rows and offsets never commit.
                let renewed = sqlx::query(
                    "UPDATE projection_rebuilds SET lease_expires_at = $1, events_applied = events_applied + $2, \
                     updated_at = $3 WHERE view_name = $4 AND holder = $5 AND state = 'building'",
                )
                .bind(now + lease.ttl)
                .bind(i64::try_from(records.len()).unwrap_or(i64::MAX))
                .bind(now)
                .bind(lease.view.name())
                .bind(lease.holder.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if renewed == 0 {
                    return Err(ProjectionError::LeaseLost(lease.view.name()));
                }
            }
            tx.commit().await?;
            Ok::<_, ProjectionError>(())
        })?;
        Ok(outcome)
    })
    .await
}
