//! The event log: Kafka in the distributed deployment, or the embedded log (a table in the same
//! database) in the one-process default. Both offer the same operations: publish a batch and learn
//! how many of its messages were durably acknowledged, in order; consume a partitioned stream
//! from positions that the caller (the projector) keeps in its own database.

mod embedded;
mod kafka;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use embedded::{EmbeddedLog, LogWriter};
pub use kafka::KafkaSettings;

use crate::db::Db;

/// A message to publish.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// Partitioning key: the post id, so a post's events share one partition and one order.
    pub key: Vec<u8>,
    /// The encoded envelope.
    pub payload: Vec<u8>,
    /// Headers (`event_type`, `event_version`, `traceparent`).
    pub headers: Vec<(&'static str, String)>,
}

/// Messages a publisher hands the log at once: the outbox relay's batch.
pub const PUBLISH_BATCH: usize = 1000;

impl OutgoingMessage {
    /// The log message of an encoded event of `stream`: keyed by the stream (so its events
    /// share a partition and an order), with the routing headers.
    #[must_use]
    pub fn event(stream: uuid::Uuid, payload: Vec<u8>) -> Self {
        use events::headers;
        let mut headers = Vec::with_capacity(3);
        // The headers repeat what the payload says, so tools can filter without decoding; a
        // payload that does not parse simply goes without them.
        if let Ok(routing) = events::Routing::peek(&payload) {
            headers.push((headers::EVENT_TYPE, routing.event_type));
            headers.push((headers::EVENT_VERSION, routing.event_version.to_string()));
            if let Some(tp) = routing.traceparent {
                headers.push((headers::TRACEPARENT, tp));
            }
        }
        Self {
            key: stream.to_string().into_bytes(),
            payload,
            headers,
        }
    }
}

/// A message read from the log.
#[derive(Clone, Debug)]
pub struct LogRecord {
    /// Topic it came from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Key.
    pub key: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
    /// When the log appended it.
    pub timestamp: Option<DateTime<Utc>>,
}

/// Why the log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Kafka (librdkafka) reported an error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The embedded log's database failed.
    #[error("embedded log: {0}")]
    Db(#[from] sqlx::Error),
    /// The embedded log's SQLite database failed on the in-place read path.
    #[error("embedded log: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Which log to use, and how to reach it.
#[derive(Clone, Debug)]
pub enum LogConfig {
    /// Apache Kafka (or any Kafka-protocol broker).
    Kafka(KafkaSettings),
    /// The embedded log in the given database.
    Embedded(EmbeddedLog),
}

impl LogConfig {
    /// The topic that carries post events.
    #[must_use]
    pub fn topic(&self) -> &str {
        match self {
            Self::Kafka(k) => &k.topic,
            Self::Embedded(e) => e.topic(),
        }
    }

    /// Creates the topic when it does not exist yet.
    ///
    /// # Errors
    /// [`LogError`] when the broker refuses.
    pub async fn ensure_topic(&self) -> Result<(), LogError> {
        match self {
            Self::Kafka(k) => k.ensure_topic().await,
            Self::Embedded(_) => Ok(()),
        }
    }

    /// A producer for this log.
    ///
    /// # Errors
    /// [`LogError`] when the Kafka client cannot be created.
    pub fn producer(&self) -> Result<Producer, LogError> {
        Ok(match self {
            Self::Kafka(k) => Producer::Kafka(k.producer()?),
            Self::Embedded(e) => Producer::Embedded(e.clone()),
        })
    }

    /// The high watermark (the offset the next message will get) of every partition of the
    /// topic, for lag figures. Opens a short-lived client of its own, so the caller's consumer
    /// loop is never blocked by it.
    ///
    /// # Errors
    /// [`LogError`] when the log cannot say.
    pub async fn high_watermarks(&self) -> Result<Vec<(i32, i64)>, LogError> {
        match self {
            Self::Kafka(k) => k.high_watermarks().await,
            Self::Embedded(e) => e.high_watermarks().await,
        }
    }

    /// When the record at `offset` of `partition` was appended (its timestamp), or `None` when
    /// there is no such record (yet). Used for lag in seconds: the age of the oldest record a
    /// group has not applied.
    ///
    /// # Errors
    /// [`LogError`] when the log cannot say.
    pub async fn timestamp_at(
        &self,
        partition: i32,
        offset: i64,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, LogError> {
        match self {
            Self::Kafka(k) => k.timestamp_at(partition, offset).await,
            Self::Embedded(e) => e.timestamp_at(partition, offset).await,
        }
    }

    /// A reader of every partition, for a caller that keeps no positions in the log (a
    /// gateway's follower, `inkwire events tail`, a rebuild): it joins no group, and every
    /// partition is handed out unpositioned at once, to be positioned with [`Consumer::seek`] or
    /// [`Consumer::position_fresh`]. `group` names the client only.
    ///
    /// # Errors
    /// [`LogError`] when the Kafka client cannot be created.
    pub fn reader(&self, group: &str) -> Result<Consumer, LogError> {
        Ok(match self {
            Self::Kafka(k) => Consumer::Kafka(k.reader(group)?),
            Self::Embedded(e) => Consumer::Embedded(e.consumer()),
        })
    }

    /// A member of `group` that reads only the partitions its caller holds
    /// ([`Consumer::hold`]), none until then. On Kafka it joins no group: projectors share a
    /// group's partitions through claims in their own database, which a broker's group
    /// coordinator cannot strand (ADR 007).
    ///
    /// # Errors
    /// [`LogError`] when the Kafka client cannot be created.
    pub fn member(&self, group: &str) -> Result<Consumer, LogError> {
        Ok(match self {
            Self::Kafka(k) => Consumer::Kafka(k.member(group)?),
            Self::Embedded(e) => {
                let mut consumer = e.consumer();
                consumer.hold(&BTreeSet::new());
                Consumer::Embedded(consumer)
            }
        })
    }
}

/// Publishes batches to the log.
pub enum Producer {
    /// Kafka, idempotent, `acks=all`.
    Kafka(kafka::KafkaProducer),
    /// The embedded log.
    Embedded(EmbeddedLog),
}

impl Producer {
    /// Publishes `messages` in order and returns how many of them, from the start, the log has
    /// durably acknowledged. Messages after the first failure may also have been written; the
    /// caller re-sends from the first unacknowledged one, so consumers see duplicates (which
    /// they ignore by stream version) but never a reordering that is not followed by a re-send.
    pub async fn publish(&self, messages: &[OutgoingMessage]) -> (usize, Option<LogError>) {
        match self {
            Self::Kafka(k) => k.publish(messages).await,
            Self::Embedded(e) => match e.append(messages).await {
                Ok(()) => (messages.len(), None),
                Err(err) => (0, Some(err.into())),
            },
        }
    }

    /// Starts over with a new client (for Kafka, a new producer id) after publishes kept failing
    /// for `why`; the embedded log has nothing to renew.
    pub fn renew(&self, why: &str) {
        if let Self::Kafka(k) = self {
            k.replace(why);
        }
    }
}

/// Where a reader that keeps no offsets of its own starts in a newly assigned partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The first record still in the log.
    Beginning,
    /// The next record appended (the high watermark).
    End,
    /// This many records before the end of each partition (all of a shorter one).
    Last(i64),
}

/// Reads partitions of the log from positions its caller gives ([`LogConfig::reader`],
/// [`LogConfig::member`]).
pub enum Consumer {
    /// A Kafka client that joins no consumer group.
    Kafka(kafka::KafkaConsumer),
    /// The embedded log (the only member: the embedded default is one process).
    Embedded(embedded::EmbeddedConsumer),
}

impl Consumer {
    /// Partitions assigned since the last call and not yet positioned; the caller looks up where
    /// its database says to resume and calls [`Consumer::seek`] for each.
    pub async fn take_unpositioned(&mut self) -> Result<BTreeSet<i32>, LogError> {
        match self {
            Self::Kafka(k) => k.take_unpositioned().await,
            Self::Embedded(e) => e.take_unpositioned().await,
        }
    }

    /// Positions every newly assigned partition at `start` of `log`, for readers that keep no
    /// offsets (a gateway's log follower, `inkwire events tail`). A partition that cannot be
    /// positioned yet (high watermarks unknown, seek refused) is offered again on the next call.
    ///
    /// Returns how many partitions it positioned.
    ///
    /// # Errors
    /// [`LogError`] when the assignment or the high watermarks cannot be read; nothing is lost,
    /// the caller just calls again.
    pub async fn position_fresh(
        &mut self,
        log: &LogConfig,
        start: StartAt,
    ) -> Result<usize, LogError> {
        let fresh = self.take_unpositioned().await?;
        if fresh.is_empty() {
            return Ok(0);
        }
        let back = match start {
            StartAt::Beginning => None,
            StartAt::End => Some(0),
            StartAt::Last(n) => Some(n.max(0)),
        };
        let ends: HashMap<i32, i64> = match back {
            None => HashMap::new(),
            Some(back) => match log.high_watermarks().await {
                Ok(ends) => ends
                    .into_iter()
                    .map(|(p, end)| (p, (end - back).max(0)))
                    .collect(),
                Err(e) => {
                    self.unposition(&fresh.into_iter().collect::<Vec<_>>());
                    return Err(e);
                }
            },
        };
        let mut positioned = 0;
        for partition in fresh {
            // `None` (the beginning) also for a partition whose end is not known yet, and for one
            // the topic gained while this reader ran: all of it came after the reader's start.
            let grown = matches!(self, Self::Kafka(k) if k.grown.contains(&partition));
            let next = if grown {
                None
            } else {
                ends.get(&partition).copied()
            };
            match self.seek(partition, next).await {
                Ok(()) => {
                    if let Self::Kafka(k) = self {
                        k.grown.remove(&partition);
                    }
                    positioned += 1;
                }
                // librdkafka refuses seeks until fetching has started; `seek` puts it back.
                Err(e) => tracing::debug!(error = %e, partition, "seek refused; retrying"),
            }
        }
        Ok(positioned)
    }

    /// How many partitions this member has positioned and reads.
    #[must_use]
    pub fn positioned(&self) -> usize {
        match self {
            Self::Kafka(k) => k.positioned.len(),
            Self::Embedded(e) => e.positions.len(),
        }
    }

    /// Reads exactly `partitions` from now on: the ones new to it are handed out by
    /// [`Consumer::take_unpositioned`], the others stop being read.
    ///
    /// # Errors
    /// [`LogError`] when Kafka refuses to stop fetching a partition.
    pub fn hold(&mut self, partitions: &BTreeSet<i32>) -> Result<(), LogError> {
        match self {
            Self::Kafka(k) => k.hold(partitions),
            Self::Embedded(e) => {
                e.hold(partitions);
                Ok(())
            }
        }
    }

    /// How many partitions this member holds now (the embedded log's member holds them all).
    #[must_use]
    pub fn assigned(&self) -> usize {
        match self {
            Self::Kafka(k) => k.assigned(),
            Self::Embedded(e) => e.assigned(),
        }
    }

    /// Forgets the position of `partitions` (after a failed batch), so they are positioned
    /// from the database again before more of their records are handed out.
    pub fn unposition(&mut self, partitions: &[i32]) {
        match self {
            Self::Kafka(k) => k.unposition(partitions),
            Self::Embedded(e) => e.unposition(partitions),
        }
    }

    /// Positions `partition` so that the next record read from it is `next_offset` (or the
    /// start of the partition when `None`).
    ///
    /// # Errors
    /// [`LogError`] when Kafka refuses the seek; the partition stays unpositioned.
    pub async fn seek(&mut self, partition: i32, next_offset: Option<i64>) -> Result<(), LogError> {
        match self {
            Self::Kafka(k) => k.seek(partition, next_offset).await,
            Self::Embedded(e) => {
                e.seek(partition, next_offset);
                Ok(())
            }
        }
    }

    /// Up to `max` records, waiting at most `wait` for the first one. Records of partitions that
    /// are not positioned yet are dropped (they are read again after the seek).
    ///
    /// # Errors
    /// [`LogError`] when the log fails.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        match self {
            Self::Kafka(k) => k.next_batch(max, wait).await,
            Self::Embedded(e) => e.next_batch(max, wait).await,
        }
    }

    /// Stops fetching.
    pub fn close(&mut self) {
        if let Self::Kafka(k) = self {
            k.close();
        }
    }
}

/// Opens the embedded log stored in `db`.
#[must_use]
pub fn embedded(db: Db, topic: &str, partitions: i32) -> LogConfig {
    LogConfig::Embedded(EmbeddedLog::new(db, topic, partitions))
}
