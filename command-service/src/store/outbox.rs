//! Outbox SQL: reading unsent rows in order, removing the ones the log acknowledged, the relay's
//! lease, and the figures operators watch (depth, age of the oldest row).

use chrono::{DateTime, Utc};
use events::headers;
use infra::db::{Db, retry_tx};
use infra::log::OutgoingMessage;
use infra::with_db;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

/// An outbox row, ready to publish.
#[derive(Clone, Debug)]
pub struct OutboxRow {
    /// The event id (UUIDv7, increasing within a stream).
    pub event_id: Uuid,
    /// The stream (post).
    pub stream_id: Uuid,
    /// The stream version.
    pub version: i64,
    /// The encoded envelope.
    pub payload: Vec<u8>,
}

impl OutboxRow {
    /// The log message for this row: keyed by post, with the routing headers.
    #[must_use]
    pub fn message(&self) -> OutgoingMessage {
        OutgoingMessage::event(self.stream_id, self.payload.clone())
    }
}

/// One span per traced message, made by `span` and put in the message's trace, lasting until
/// the caller drops it: how long the log took to take each event.
pub fn traced_spans(
    messages: &[OutgoingMessage],
    span: impl Fn() -> tracing::Span,
) -> Vec<tracing::Span> {
    messages
        .iter()
        .filter_map(|m| {
            let (_, traceparent) = m.headers.iter().find(|(k, _)| *k == headers::TRACEPARENT)?;
            let span = span();
            infra::telemetry::set_parent(&span, Some(traceparent));
            Some(span)
        })
        .collect()
}

/// Outbox access.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    /// A probe that tells when another process may have added rows (`infra::db::ChangeProbe`).
    #[must_use]
    pub fn change_probe(&self) -> infra::db::ChangeProbe {
        infra::db::ChangeProbe::new(&self.db)
    }

    /// The outbox in `db`.
    #[must_use]
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Up to `limit` unsent rows, oldest first. Within a stream event ids increase with the
    /// version, so this order is each post's order.
    ///
    /// # Errors
    /// The database error.
    pub async fn next(&self, limit: usize) -> Result<Vec<OutboxRow>, sqlx::Error> {
        with_db!(&self.db, |pool| {
            sqlx::query(
                "SELECT event_id, stream_id, version, payload FROM outbox ORDER BY event_id LIMIT $1",
            )
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| {
                Ok(OutboxRow {
                    event_id: row.try_get(0)?,
                    stream_id: row.try_get(1)?,
                    version: row.try_get(2)?,
                    payload: row.try_get(3)?,
                })
            })
            .collect()
        })
    }

    /// Removes rows the log has acknowledged.
    ///
    /// # Errors
    /// The database error; the rows stay and are sent again (consumers ignore the duplicates).
    pub async fn remove(&self, ids: &[Uuid]) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(500) {
            retry_tx(|| async {
                with_db!(&self.db, |pool| {
                    let mut q = QueryBuilder::new("DELETE FROM outbox WHERE event_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    list.push_unseparated(")");
                    q.build().execute(pool).await.map(|_| ())
                })
            })
            .await?;
        }
        Ok(())
    }

    /// Takes or renews the lease `name` for `holder` until `ttl` from now. Returns whether
    /// `holder` holds it. The lease is a row, not an advisory lock (CockroachDB has none).
    ///
    /// # Errors
    /// The database error.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: chrono::Duration,
    ) -> Result<bool, sqlx::Error> {
        let now = Utc::now();
        let until = now + ttl;
        retry_tx(|| async {
            with_db!(&self.db, |pool| {
                sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at < $4 \
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .fetch_optional(pool)
                .await
                .map(|row| row.is_some())
            })
        })
        .await
    }

    /// Gives the lease up (on shutdown), so another relay takes over at once.
    ///
    /// # Errors
    /// The database error.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), sqlx::Error> {
        with_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// How many rows wait, and when the oldest was written.
    ///
    /// # Errors
    /// The database error.
    pub async fn depth(&self) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
        with_db!(&self.db, |pool| {
            let row = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox")
                .fetch_one(pool)
                .await?;
            Ok((row.try_get(0)?, row.try_get::<Option<DateTime<Utc>>, _>(1)?))
        })
    }
}
