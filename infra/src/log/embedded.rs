//! The embedded log: a `log_messages` table in the service's own database, used by the
//! one-process default so that it needs no Kafka. Same contract as Kafka: partitions by key,
//! dense offsets per partition, consumers positioned by the caller.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::{QueryBuilder, Row};
use tokio::sync::Notify;

use super::{LogError, LogRecord, OutgoingMessage};
use crate::db::{Db, retry_tx};
use crate::with_db;

/// Handle to the embedded log; cheap to clone, and clones share the wake-up signal, so a
/// consumer in the same process sees an append at once rather than at its next poll.
#[derive(Clone, Debug)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    /// Consumers read on their own connection, beside the writer ([`Db::reader`]).
    reader: Db,
    topic: String,
    partitions: i32,
    appended: Notify,
    /// Whether something in this process appends (an event store writing the log in its
    /// transactions, a relay): then every append wakes the readers, and an idle reader need not
    /// look often for appends of other processes.
    local_writer: std::sync::atomic::AtomicBool,
}

/// How long an idle consumer waits for an append, when this process has a writer of the log,
/// before it looks for one another process made (a look is a `stat` of the database's files:
/// see `ChangeProbe`). Appends in this process wake it at once, so this bounds only other
/// processes' latency; callers' shorter waits are raised to it, so an idle `inkwire dev` wakes
/// about once a second per reader, not ten times. A reader in a process that does not write
/// (`inkwire replay`, `events tail`) keeps its caller's wait: it learns of appends only by
/// looking.
const POLL_INTERVAL: Duration = Duration::from_millis(1000);

impl EmbeddedLog {
    /// The log `topic`, with `partitions` partitions, in `db`.
    #[must_use]
    pub fn new(db: Db, topic: &str, partitions: i32) -> Self {
        Self {
            inner: Arc::new(Inner {
                reader: db.reader(),
                db,
                topic: topic.to_owned(),
                partitions: partitions.max(1),
                appended: Notify::new(),
                local_writer: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The topic name.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    fn partition_for(&self, key: &[u8]) -> i32 {
        // FNV-1a: stable across processes and versions, unlike std's RandomState.
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        i32::try_from(hash % u64::try_from(self.inner.partitions).unwrap_or(1)).unwrap_or(0)
    }

    /// Appends `messages` in one transaction, in order.
    ///
    /// # Errors
    /// The database error; nothing is appended then.
    pub async fn append(&self, messages: &[OutgoingMessage]) -> Result<(), sqlx::Error> {
        if messages.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        retry_tx(|| async {
            with_db!(&self.inner.db, |pool| {
                let mut tx = pool.begin().await?;
                LogWriter::append_log(&mut *tx, self, messages, now).await?;
                tx.commit().await
            })
        })
        .await?;
        self.appended();
        Ok(())
    }

    /// Whether this log lives in the same SQLite file as `db`, so that a writer of `db` can
    /// append to it in its own transactions.
    #[must_use]
    pub fn shares_sqlite_file_with(&self, db: &Db) -> bool {
        match (&self.inner.db, db) {
            (Db::Sqlite(a), Db::Sqlite(b)) => {
                a.connect_options().get_filename() == b.connect_options().get_filename()
            }
            _ => false,
        }
    }

    /// Tells this process's consumers that messages were appended (by [`EmbeddedLog::append`]
    /// or in a transaction of the caller's through [`LogWriter`], once it committed).
    pub fn appended(&self) {
        self.inner.appended.notify_waiters();
    }

    /// Says that this process appends to this log and calls [`EmbeddedLog::appended`] after
    /// each append: its readers then wait for that instead of looking ten times a second.
    pub fn mark_local_writer(&self) {
        self.inner
            .local_writer
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn consumer(&self) -> EmbeddedConsumer {
        EmbeddedConsumer {
            log: self.clone(),
            positions: HashMap::new(),
            pending: (0..self.inner.partitions).collect(),
            probe: crate::db::ChangeProbe::new(&self.inner.db),
            drained: false,
            held: None,
        }
    }

    pub(crate) async fn timestamp_at(
        &self,
        partition: i32,
        offset: i64,
    ) -> Result<Option<DateTime<Utc>>, LogError> {
        let topic = self.inner.topic.as_str();
        let at: Option<Option<DateTime<Utc>>> = with_db!(&self.inner.reader, |pool| {
            sqlx::query_scalar(
                "SELECT appended_at FROM log_messages WHERE topic = $1 AND partition = $2 AND log_offset = $3",
            )
            .bind(topic)
            .bind(i64::from(partition))
            .bind(offset)
            .fetch_optional(pool)
            .await
        })?;
        Ok(at.flatten())
    }

    pub(crate) async fn high_watermarks(&self) -> Result<Vec<(i32, i64)>, LogError> {
        let topic = self.inner.topic.as_str();
        let rows: Vec<(i64, i64)> = with_db!(&self.inner.reader, |pool| {
            sqlx::query_as(
                "SELECT partition, MAX(log_offset) + 1 FROM log_messages WHERE topic = $1 GROUP BY partition",
            )
            .bind(topic)
            .fetch_all(pool)
            .await
        })?;
        let mut marks: HashMap<i32, i64> = (0..self.inner.partitions).map(|p| (p, 0)).collect();
        for (p, hw) in rows {
            marks.insert(i32::try_from(p).unwrap_or(0), hw);
        }
        let mut out: Vec<_> = marks.into_iter().collect();
        out.sort_unstable();
        Ok(out)
    }
}

/// Rows per multi-row INSERT into the log (6 parameters each, well under both drivers' limits).
const ROWS_PER_STATEMENT: usize = 500;

/// Appends to an embedded log inside a transaction that the caller holds open on the log's own
/// database: what it appends commits, or rolls back, with whatever else that transaction wrote.
pub trait LogWriter {
    /// Appends `messages` to `log`, in order, in this connection's open transaction. The
    /// caller calls [`EmbeddedLog::appended`] once the transaction has committed.
    fn append_log<'a>(
        &'a mut self,
        log: &'a EmbeddedLog,
        messages: &'a [OutgoingMessage],
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

/// [`LogWriter`] for both drivers' connections, written once: the next offset of each
/// partition appended to (a transaction's writes are serialised with every other writer's, so
/// offsets stay dense and in commit order), then the rows in multi-row statements.
macro_rules! log_writer {
    ($($conn:ty),+) => {$(
        impl LogWriter for $conn {
            fn append_log<'a>(
                &'a mut self,
                log: &'a EmbeddedLog,
                messages: &'a [OutgoingMessage],
                now: DateTime<Utc>,
            ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    let topic = log.inner.topic.as_str();
                    let mut next: HashMap<i32, i64> = HashMap::new();
                    let mut placed = Vec::with_capacity(messages.len());
                    for m in messages {
                        let partition = log.partition_for(&m.key);
                        let offset = match next.get(&partition) {
                            Some(o) => *o,
                            None => sqlx::query(
                                "SELECT COALESCE(MAX(log_offset) + 1, 0) FROM log_messages \
                                 WHERE topic = $1 AND partition = $2",
                            )
                            .bind(topic)
                            .bind(i64::from(partition))
                            .fetch_one(&mut *self)
                            .await?
                            .try_get::<i64, _>(0)?,
                        };
                        next.insert(partition, offset + 1);
                        placed.push((i64::from(partition), offset, m));
                    }
                    for chunk in placed.chunks(ROWS_PER_STATEMENT) {
                        let mut q = QueryBuilder::new(
                            "INSERT INTO log_messages (topic, partition, log_offset, msg_key, payload, appended_at) ",
                        );
                        q.push_values(chunk, |mut b, (partition, offset, m)| {
                            b.push_bind(topic)
                                .push_bind(*partition)
                                .push_bind(*offset)
                                .push_bind(m.key.as_slice())
                                .push_bind(m.payload.as_slice())
                                .push_bind(now);
                        });
                        q.build().execute(&mut *self).await?;
                    }
                    Ok(())
                })
            }
        }
    )+};
}

log_writer!(sqlx::SqliteConnection, sqlx::PgConnection);

/// The single consumer of an embedded log.
pub struct EmbeddedConsumer {
    log: EmbeddedLog,
    /// Next offset to read, per positioned partition.
    pub(super) positions: HashMap<i32, i64>,
    /// Partitions waiting to be positioned by the caller.
    pending: BTreeSet<i32>,
    /// Whether another process may have appended: an idle consumer reads only then (or when
    /// this process appended, which wakes it), so it costs nothing between commits.
    probe: crate::db::ChangeProbe,
    /// Whether the last read found nothing: only then can the files tell that nothing is left.
    drained: bool,
    /// The partitions the caller holds ([`EmbeddedConsumer::hold`]); `None`: all of them.
    held: Option<BTreeSet<i32>>,
}

impl EmbeddedConsumer {
    pub(super) fn assigned(&self) -> usize {
        self.held.as_ref().map_or_else(
            || usize::try_from(self.log.inner.partitions).unwrap_or(0),
            BTreeSet::len,
        )
    }

    pub(super) fn hold(&mut self, partitions: &BTreeSet<i32>) {
        self.positions.retain(|p, _| partitions.contains(p));
        self.pending.retain(|p| partitions.contains(p));
        for p in partitions {
            if !self.positions.contains_key(p) && !self.held.as_ref().is_some_and(|h| h.contains(p))
            {
                self.pending.insert(*p);
            }
        }
        self.held = Some(partitions.clone());
    }

    pub(super) async fn take_unpositioned(&mut self) -> Result<BTreeSet<i32>, LogError> {
        Ok(std::mem::take(&mut self.pending))
    }

    pub(super) fn unposition(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.positions.remove(p);
            self.pending.insert(*p);
        }
    }

    pub(super) fn seek(&mut self, partition: i32, next_offset: Option<i64>) {
        self.positions.insert(partition, next_offset.unwrap_or(0));
        // A new position has records to read whatever the files say.
        self.drained = false;
    }

    pub(super) async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        let log = self.log.inner.clone();
        let notified = log.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Once a read found nothing, read again only when something may have been committed
        // since: an append in this process wakes `notified`; one in another shows in the
        // database's files. Until then (a read that filled its batch) there may be more.
        if !self.drained || self.probe.maybe_changed() {
            let out = self.read(max).await?;
            if !out.is_empty() {
                return Ok(out);
            }
        }
        let idle_wait = if log.local_writer.load(std::sync::atomic::Ordering::Relaxed) {
            wait.max(POLL_INTERVAL)
        } else {
            wait
        };
        let woken = tokio::time::timeout(idle_wait, notified).await.is_ok();
        if woken || self.probe.maybe_changed() {
            self.read(max).await
        } else {
            Ok(Vec::new())
        }
    }

    /// The next records from the current positions; remembers whether there were none.
    async fn read(&mut self, max: usize) -> Result<Vec<LogRecord>, LogError> {
        let topic = self.log.inner.topic.clone();
        let mut out = Vec::new();
        let mut partitions: Vec<(i32, i64)> =
            self.positions.iter().map(|(p, o)| (*p, *o)).collect();
        partitions.sort_unstable();
        for (partition, from) in partitions {
            let remaining = max.saturating_sub(out.len());
            if remaining == 0 {
                break;
            }
            let rows = match &self.log.inner.reader {
                Db::Sqlite(pool) => read_sqlite(pool, &topic, partition, from, remaining).await?,
                Db::Postgres(pool) => sqlx::query(
                    "SELECT log_offset, msg_key, payload, appended_at FROM log_messages \
                     WHERE topic = $1 AND partition = $2 AND log_offset >= $3 \
                     ORDER BY log_offset LIMIT $4",
                )
                .bind(topic.as_str())
                .bind(i64::from(partition))
                .bind(from)
                .bind(i64::try_from(remaining).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>(LogRecord {
                        topic: topic.clone(),
                        partition,
                        offset: row.try_get(0)?,
                        key: row.try_get(1)?,
                        payload: row.try_get(2)?,
                        timestamp: row.try_get::<Option<DateTime<Utc>>, _>(3)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            };
            if let Some(last) = rows.last() {
                self.positions.insert(partition, last.offset + 1);
            }
            out.extend(rows);
        }
        self.drained = out.is_empty();
        Ok(out)
    }
}

/// Rows read per lock of the reader connection; the task yields between them.
const SQLITE_READ_CHUNK: usize = 1000;

/// Up to `max` records of `partition` from offset `from`, stepped in place on the reader
/// connection ([`crate::db::sqlite_in_place`]): through sqlx's driver, reading cost a rebuild
/// more than SQLite's own work did.
async fn read_sqlite(
    pool: &sqlx::SqlitePool,
    topic: &str,
    partition: i32,
    from: i64,
    max: usize,
) -> Result<Vec<LogRecord>, LogError> {
    let mut conn = pool.acquire().await?;
    let mut out: Vec<LogRecord> = Vec::with_capacity(max.min(SQLITE_READ_CHUNK * 5));
    let mut next = from;
    while out.len() < max {
        if !out.is_empty() {
            tokio::task::yield_now().await;
        }
        let want = (max - out.len()).min(SQLITE_READ_CHUNK);
        let before = out.len();
        crate::db::sqlite_in_place(&mut conn, |db| {
            let mut select = db.prepare(
                "SELECT log_offset, msg_key, payload, appended_at FROM log_messages \
                 WHERE topic = ?1 AND partition = ?2 AND log_offset >= ?3 \
                 ORDER BY log_offset LIMIT ?4",
            )?;
            let mut rows = select.query(rusqlite::params![
                topic,
                partition,
                next,
                i64::try_from(want).unwrap_or(i64::MAX)
            ])?;
            while let Some(row) = rows.next()? {
                out.push(LogRecord {
                    topic: topic.to_owned(),
                    partition,
                    offset: row.get(0)?,
                    key: row.get(1)?,
                    payload: row.get(2)?,
                    timestamp: row.get_ref(3)?.as_str().ok().and_then(appended_at),
                });
            }
            Ok(())
        })
        .await??;
        let got = out.len() - before;
        if got < want {
            break;
        }
        next = out.last().map_or(next, |r| r.offset + 1);
    }
    Ok(out)
}

/// An `appended_at` as sqlx's encoding of a `DateTime<Utc>` stores it (RFC 3339), or as
/// SQLite's own `datetime()` does.
fn appended_at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
        })
        .ok()
}
