//! The event store on sqlx, for PostgreSQL/CockroachDB and SQLite alike. All event-store SQL
//! lives here. An append writes the events, their outbox rows and any slug reservation in ONE
//! transaction; the primary key on `(stream_id, version)` makes concurrent appends to one stream
//! conflict instead of interleave. When the log is the embedded one in the same database
//! ([`EventStore::with_log`]), the events go straight into the log in that transaction instead
//! of through the outbox: there is nothing to relay between a database and itself.

pub mod group_commit;
pub mod outbox;

use chrono::{DateTime, Utc};
use events::{Actor, Envelope, Event, PostEvent, PostId, RawEvent, StoredMeta, StreamId};
use infra::db::{Db, TxError, retry_tx, unique_violation};
use infra::log::{EmbeddedLog, LogWriter, OutgoingMessage};
use infra::with_db;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

/// Why an append or a load failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream first.
    #[error("stream version conflict")]
    VersionConflict,
    /// The slug belongs to another post.
    #[error("slug {0:?} is taken")]
    SlugTaken(String),
    /// The username belongs to another user.
    #[error("username is taken")]
    UsernameTaken,
    /// A stored event could not be decoded.
    #[error("stored event undecodable: {0}")]
    Decode(#[from] events::DecodeError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl TxError for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Db(e) if e.is_retryable())
    }
}

/// The metadata kept in the `meta` column (the rest of [`StoredMeta`] has columns of its own).
#[derive(Serialize, Deserialize)]
struct MetaColumn {
    actor: Actor,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    traceparent: Option<String>,
}

/// A slug change that an append must reserve atomically with its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlugChange {
    /// The slug to reserve for the post, if any.
    pub claim: Option<String>,
    /// Whether the post's current reservation (if any) is released.
    pub release: bool,
}

/// Events to append to one stream.
#[derive(Clone, Debug)]
pub struct Append {
    /// The stream.
    pub stream_id: StreamId,
    /// The envelopes, with consecutive versions following the stream's current one.
    pub events: Vec<Envelope>,
    /// Slug reservation changes.
    pub slug: SlugChange,
    /// Credential changes of a user stream.
    pub credentials: Option<CredentialChange>,
}

/// A change to `user_credentials`, written with a user stream's events.
#[derive(Clone, Debug)]
pub enum CredentialChange {
    /// A new user.
    Register {
        /// Unique login name.
        username: String,
        /// Shown name.
        display_name: String,
        /// argon2id PHC string.
        password_hash: String,
        /// Initial roles.
        roles: Vec<String>,
    },
    /// The user's roles are now these.
    Roles(Vec<String>),
    /// The user's shown name is now this.
    DisplayName(String),
    /// The user's password hash is now this.
    Password(String),
    /// The user may no longer sign in or act.
    Disabled,
}

/// The event store.
#[derive(Clone, Debug)]
pub struct EventStore {
    db: Db,
    /// The embedded log in `db` itself, appended to in the events' own transaction.
    log: Option<EmbeddedLog>,
}

impl EventStore {
    /// An event store in `db`, publishing through the outbox.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db, log: None }
    }

    /// An event store in `db` that appends its events to `log` in the same transaction when
    /// `log` is the embedded log in the same SQLite file, and through the outbox otherwise.
    /// SQLite runs one writer at a time anyway; on PostgreSQL every concurrent command would
    /// contend for the log's next offset, which the relay's single writer avoids.
    #[must_use]
    pub fn with_log(db: Db, log: Option<&EmbeddedLog>) -> Self {
        let log = log.filter(|l| l.shares_sqlite_file_with(&db)).cloned();
        if let Some(log) = &log {
            log.mark_local_writer();
        }
        Self { db, log }
    }

    /// Whether appends go straight into the log (else through the outbox and its relay).
    #[must_use]
    pub fn writes_log(&self) -> bool {
        self.log.is_some()
    }

    /// The database.
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Every event of `post`'s stream, in order.
    ///
    /// # Errors
    /// [`StoreError`] when the database fails or a stored event cannot be decoded.
    pub async fn load(&self, post: PostId) -> Result<Vec<Envelope>, StoreError> {
        let stream = post.0;
        let rows = with_db!(&self.db, |pool| {
            sqlx::query(
                "SELECT version, event_id, event_type, event_version, data, meta, occurred_at \
                 FROM events WHERE stream_id = $1 ORDER BY version",
            )
            .bind(stream)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| {
                let Json(meta): Json<MetaColumn> = row.try_get("meta")?;
                let Json(data): Json<serde_json::Value> = row.try_get("data")?;
                Ok::<_, sqlx::Error>(RawEvent {
                    meta: StoredMeta {
                        event_id: row.try_get("event_id")?,
                        stream_id: StreamId(stream),
                        stream_version: row.try_get("version")?,
                        occurred_at: row.try_get::<DateTime<Utc>, _>("occurred_at")?,
                        actor: meta.actor,
                        correlation_id: meta.correlation_id,
                        causation_id: meta.causation_id,
                        traceparent: meta.traceparent,
                    },
                    event_type: row.try_get("event_type")?,
                    event_version: u16::try_from(row.try_get::<i64, _>("event_version")?)
                        .unwrap_or(u16::MAX),
                    data,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter()
            .map(|raw| raw.decode().map_err(StoreError::from))
            .collect()
    }

    /// The version and last event id of `stream` (0 and nil when it is empty).
    ///
    /// # Errors
    /// The database error.
    pub async fn stream_head(&self, stream: StreamId) -> Result<(i64, Uuid), StoreError> {
        let row = with_db!(&self.db, |pool| {
            sqlx::query("SELECT version, event_id FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1")
                .bind(stream.0)
                .fetch_optional(pool)
                .await?
                .map(|row| Ok::<_, sqlx::Error>((row.try_get::<i64, _>(0)?, row.try_get::<Uuid, _>(1)?)))
                .transpose()
        })?;
        Ok(row.unwrap_or((0, Uuid::nil())))
    }

    /// Up to `limit` schedules due at `now`, earliest first: (post, when).
    ///
    /// # Errors
    /// The database error.
    pub async fn due_schedules(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(PostId, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(Uuid, DateTime<Utc>)> = with_db!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT post_id, publish_at FROM post_schedules WHERE publish_at <= $1 \
                 ORDER BY publish_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(p, at)| (PostId(p), at)).collect())
    }

    /// Removes `post`'s schedule if it is still for `publish_at` (one its stream no longer has).
    ///
    /// # Errors
    /// The database error.
    pub async fn drop_schedule(
        &self,
        post: PostId,
        publish_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM post_schedules WHERE post_id = $1 AND publish_at = $2")
                .bind(post.0)
                .bind(publish_at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Appends each batch's events with their outbox rows and slug changes, all in one
    /// transaction (retried on serialization conflicts).
    ///
    /// # Errors
    /// [`StoreError::VersionConflict`] when a stream moved on; [`StoreError::SlugTaken`] when a
    /// slug is reserved by another post; nothing is written then.
    pub async fn append(&self, batches: &[Append]) -> Result<(), StoreError> {
        let now = Utc::now();
        let rows: Vec<EventRow> = batches
            .iter()
            .flat_map(|b| &b.events)
            .map(|envelope| {
                let raw = envelope.to_raw();
                let meta = MetaColumn {
                    actor: raw.meta.actor.clone(),
                    correlation_id: raw.meta.correlation_id,
                    causation_id: raw.meta.causation_id,
                    traceparent: raw.meta.traceparent.clone(),
                };
                let payload = raw.encode();
                EventRow { raw, meta, payload }
            })
            .collect();
        // What the log gets, when it is written here: the messages the relay would publish.
        let messages: Vec<OutgoingMessage> = match self.log {
            Some(_) => rows
                .iter()
                .map(|row| {
                    outbox::OutboxRow {
                        event_id: row.raw.meta.event_id,
                        stream_id: row.raw.meta.stream_id.0,
                        version: row.raw.meta.stream_version,
                        payload: row.payload.clone(),
                    }
                    .message()
                })
                .collect(),
            None => Vec::new(),
        };
        retry_tx(|| async {
            let result: Result<(), StoreError> = with_db!(&self.db, |pool| {
                let mut tx = pool.begin().await?;
                for batch in batches {
                    let stream = batch.stream_id.0;
                    if batch.slug.release {
                        sqlx::query("DELETE FROM post_slugs WHERE post_id = $1")
                            .bind(stream)
                            .execute(&mut *tx)
                            .await?;
                    }
                    match &batch.credentials {
                        Some(CredentialChange::Register { username, display_name, password_hash, roles }) => {
                            sqlx::query(
                                "INSERT INTO user_credentials (user_id, username, display_name, password_hash, roles, disabled, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, false, $6)",
                            )
                            .bind(stream)
                            .bind(username.as_str())
                            .bind(display_name.as_str())
                            .bind(password_hash.as_str())
                            .bind(Json(roles))
                            .bind(now)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| classify(e, ""))?;
                        }
                        Some(CredentialChange::Roles(roles)) => {
                            sqlx::query("UPDATE user_credentials SET roles = $1, updated_at = $2 WHERE user_id = $3")
                                .bind(Json(roles))
                                .bind(now)
                                .bind(stream)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Some(CredentialChange::DisplayName(name)) => {
                            sqlx::query("UPDATE user_credentials SET display_name = $1, updated_at = $2 WHERE user_id = $3")
                                .bind(name.as_str())
                                .bind(now)
                                .bind(stream)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Some(CredentialChange::Password(hash)) => {
                            sqlx::query("UPDATE user_credentials SET password_hash = $1, updated_at = $2 WHERE user_id = $3")
                                .bind(hash.as_str())
                                .bind(now)
                                .bind(stream)
                                .execute(&mut *tx)
                                .await?;
                        }
                        Some(CredentialChange::Disabled) => {
                            sqlx::query("UPDATE user_credentials SET disabled = true, updated_at = $1 WHERE user_id = $2")
                                .bind(now)
                                .bind(stream)
                                .execute(&mut *tx)
                                .await?;
                        }
                        None => {}
                    }
                    match batch.events.iter().rev().find_map(|e| schedule_change(&e.event)) {
                        Some(Some(publish_at)) => {
                            sqlx::query(
                                "INSERT INTO post_schedules (post_id, publish_at) VALUES ($1, $2) \
                                 ON CONFLICT (post_id) DO UPDATE SET publish_at = excluded.publish_at",
                            )
                            .bind(stream)
                            .bind(publish_at)
                            .execute(&mut *tx)
                            .await?;
                        }
                        Some(None) => {
                            sqlx::query("DELETE FROM post_schedules WHERE post_id = $1")
                                .bind(stream)
                                .execute(&mut *tx)
                                .await?;
                        }
                        None => {}
                    }
                    if let Some(slug) = &batch.slug.claim {
                        sqlx::query("INSERT INTO post_slugs (slug, post_id) VALUES ($1, $2)")
                            .bind(slug.as_str())
                            .bind(stream)
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| classify(e, slug))?;
                    }
                }
                // All batches' events, then their outbox rows, in multi-row statements: one
                // round trip per chunk instead of two per event.
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO events (stream_id, version, event_id, event_type, event_version, data, meta, occurred_at) ",
                    );
                    q.push_values(chunk, |mut b, row| {
                        b.push_bind(row.raw.meta.stream_id.0)
                            .push_bind(row.raw.meta.stream_version)
                            .push_bind(row.raw.meta.event_id)
                            .push_bind(row.raw.event_type.as_str())
                            .push_bind(i64::from(row.raw.event_version))
                            .push_bind(Json(&row.raw.data))
                            .push_bind(Json(&row.meta))
                            .push_bind(row.raw.meta.occurred_at);
                    });
                    q.build()
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| classify(e, ""))?;
                    if self.log.is_none() {
                        let mut q = QueryBuilder::new(
                            "INSERT INTO outbox (event_id, stream_id, version, payload, created_at) ",
                        );
                        q.push_values(chunk, |mut b, row| {
                            b.push_bind(row.raw.meta.event_id)
                                .push_bind(row.raw.meta.stream_id.0)
                                .push_bind(row.raw.meta.stream_version)
                                .push_bind(row.payload.as_slice())
                                .push_bind(now);
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                }
                // Or the log itself, in the same transaction (it writes in chunks of its own).
                if let Some(log) = &self.log {
                    let spans =
                        outbox::traced_spans(&messages, || tracing::info_span!("log.append"));
                    LogWriter::append_log(&mut *tx, log, &messages, now).await?;
                    drop(spans);
                }
                tx.commit().await?;
                Ok(())
            });
            result
        })
        .await?;
        if let Some(log) = &self.log {
            log.appended();
        }
        Ok(())
    }
}

/// Rows per multi-row INSERT (8 parameters each, well under both drivers' limits).
const ROWS_PER_STATEMENT: usize = 500;

/// One event, ready to insert: its stored form, its `meta` column and its log payload.
struct EventRow {
    raw: RawEvent,
    meta: MetaColumn,
    payload: Vec<u8>,
}

fn classify(err: sqlx::Error, slug: &str) -> StoreError {
    match unique_violation(&err) {
        Some(what) if what.contains("post_slugs") => StoreError::SlugTaken(slug.to_owned()),
        Some(what) if what.contains("username") => StoreError::UsernameTaken,
        Some(_) => StoreError::VersionConflict,
        None => StoreError::Db(err),
    }
}

/// How `event` changes the post's row in `post_schedules`: `Some(Some(at))` sets it,
/// `Some(None)` removes it (published, deleted or cancelled), `None` leaves it.
#[must_use]
pub fn schedule_change(event: &Event) -> Option<Option<DateTime<Utc>>> {
    match event.as_post()? {
        PostEvent::PostScheduled(e) => Some(Some(e.publish_at)),
        PostEvent::PostUnscheduled(_) | PostEvent::PostPublished(_) | PostEvent::PostDeleted(_) => {
            Some(None)
        }
        _ => None,
    }
}

/// Whether `event` changes the post's slug reservation, and how.
#[must_use]
pub fn slug_change(event: &PostEvent) -> SlugChange {
    match event {
        PostEvent::PostDrafted(e) => SlugChange {
            claim: Some(e.slug.clone()),
            release: false,
        },
        PostEvent::PostEdited(e) => SlugChange {
            release: e.slug.is_some(),
            claim: e.slug.clone(),
        },
        // A deleted post frees its slug for a new post.
        PostEvent::PostDeleted(_) => SlugChange {
            claim: None,
            release: true,
        },
        _ => SlugChange::default(),
    }
}
