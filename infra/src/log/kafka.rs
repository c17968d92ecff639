//! Kafka: an idempotent producer (`acks=all`) for the outbox relay, and readers that join no
//! consumer group: they assign themselves partitions, positioned from the caller's database (or
//! at the log's end) rather than from Kafka's committed offsets.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use rdkafka::Offset;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use super::{LogError, LogRecord, OutgoingMessage};

/// How to reach Kafka, and the topic layout.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic carrying post events.
    pub topic: String,
    /// Partitions when the topic is created.
    pub partitions: i32,
    /// Replication factor when the topic is created.
    pub replication_factor: i32,
    /// How long a projector's claims outlive its last renewal (`--kafka-session-timeout-ms`); no
    /// client here joins a consumer group, so librdkafka never sees it.
    pub session_timeout_ms: u32,
    /// Extra librdkafka properties (security.protocol, sasl.*, ssl.*), applied to every client.
    pub properties: Vec<(String, String)>,
}

impl KafkaSettings {
    /// Settings for `brokers` and `topic` with the defaults for everything else.
    #[must_use]
    pub fn new(brokers: &str, topic: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            partitions: 6,
            replication_factor: 1,
            session_timeout_ms: 10_000,
            properties: Vec::new(),
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        // Notice new partitions and a topic created a moment ago within seconds, not minutes.
        config.set("topic.metadata.refresh.interval.ms", "5000");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    pub(super) async fn ensure_topic(&self) -> Result<(), LogError> {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let topic = NewTopic::new(
            &self.topic,
            self.partitions,
            TopicReplication::Fixed(self.replication_factor),
        );
        let results = admin
            .create_topics(
                [&topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(KafkaError::AdminOp(code).into()),
            }
        }
        Ok(())
    }

    pub(super) async fn high_watermarks(&self) -> Result<Vec<(i32, i64)>, LogError> {
        let client: BaseConsumer = self.client_config().create()?;
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let metadata = client.fetch_metadata(Some(&topic), timeout)?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            partitions
                .into_iter()
                .map(|p| {
                    client
                        .fetch_watermarks(&topic, p, timeout)
                        .map(|(_, high)| (p, high))
                        .map_err(LogError::from)
                })
                .collect()
        })
        .await
        .unwrap_or(Err(LogError::Kafka(KafkaError::Canceled)))
    }

    pub(super) async fn timestamp_at(
        &self,
        partition: i32,
        offset: i64,
    ) -> Result<Option<DateTime<Utc>>, LogError> {
        // A throwaway, group-less reader of one record: never joins or disturbs a group.
        let client: BaseConsumer = self
            .client_config()
            .set("group.id", "inkwire-lag-probe")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()?;
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let mut assignment = rdkafka::TopicPartitionList::new();
            assignment.add_partition_offset(&topic, partition, Offset::Offset(offset))?;
            client.assign(&assignment)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                match client.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) if m.offset() >= offset => {
                        return Ok(m
                            .timestamp()
                            .to_millis()
                            .and_then(DateTime::<Utc>::from_timestamp_millis));
                    }
                    Some(Err(e)) => return Err(LogError::from(e)),
                    _ => {}
                }
            }
            Ok(None)
        })
        .await
        .unwrap_or(Err(LogError::Kafka(KafkaError::Canceled)))
    }

    /// Sets `key` to Inkwire's `value` unless the operator's properties set it.
    fn default_unless_given(&self, config: &mut ClientConfig, key: &str, value: &str) {
        if !self.properties.iter().any(|(k, _)| k == key) {
            config.set(key, value);
        }
    }

    pub(super) fn producer(&self) -> Result<KafkaProducer, LogError> {
        let mut config = self.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2");
        self.default_unless_given(&mut config, "message.timeout.ms", "30000");
        let producer: FutureProducer = config.create()?;
        Ok(KafkaProducer {
            current: std::sync::Mutex::new(producer),
            config,
            topic: self.topic.clone(),
        })
    }

    /// A reader of every partition that joins no group: the topic's partitions are listed (at
    /// the start, then every [`RELIST`] in the background, for partitions added later) and
    /// handed out unpositioned, and its seeks assign them. For a gateway's log follower,
    /// `inkwire events tail` and a rebuild, which keep no offsets in Kafka (or keep them in the
    /// database) and so have no use for a group, whose join costs a second or more before the
    /// first record and whose coordinator can strand partitions (ADR 007).
    pub(super) fn reader(&self, group: &str) -> Result<KafkaConsumer, LogError> {
        self.consumer_client(group, false)
    }

    /// A reader that joins no group and reads only the partitions its caller holds
    /// ([`KafkaConsumer::hold`]): for projectors, which share a group's partitions through
    /// claims in their database instead of the broker's group coordinator.
    pub(super) fn member(&self, group: &str) -> Result<KafkaConsumer, LogError> {
        self.consumer_client(group, true)
    }

    fn consumer_client(
        &self,
        group: &str,
        held_by_caller: bool,
    ) -> Result<KafkaConsumer, LogError> {
        let mut config = self.client_config();
        // Live comments ride on the consumers: a broker that holds an empty fetch for the whole
        // default 500 ms (tansu does) adds that to the latency of an event after a quiet spell.
        // Kafka answers a fetch as soon as data arrives, so there this only costs idle requests;
        // INKWIRE_KAFKA_PROPERTIES=fetch.wait.max.ms=500 restores the default.
        self.default_unless_given(&mut config, "fetch.wait.max.ms", "10");
        // `group.id` only names the client: it never subscribes, so it never joins the group,
        // and it commits nothing (positions live in the caller's database, or nowhere).
        // librdkafka still looks the group's coordinator up; leaving `group.id` out (tried in
        // session 21) made the gateway tests' readers miss records, so it stays.
        let consumer: StreamConsumer = config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            topic: self.topic.clone(),
            assigned: BTreeSet::new(),
            fresh: BTreeSet::new(),
            positioned: HashSet::new(),
            fetching: HashSet::new(),
            listing: (!held_by_caller).then(Listing::default),
            grown: BTreeSet::new(),
        })
    }
}

/// The relay's producer.
pub struct KafkaProducer {
    /// The client in use: replaced by a new one from `config` after timed-out messages, a fatal
    /// error, or when the caller asks ([`KafkaProducer::replace`]).
    current: std::sync::Mutex<FutureProducer>,
    config: ClientConfig,
    topic: String,
}

impl KafkaProducer {
    /// The slot of the client in use. A poisoned lock still holds a usable client: only a clone
    /// or a swap is done under it.
    fn slot(&self) -> std::sync::MutexGuard<'_, FutureProducer> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn client(&self) -> FutureProducer {
        self.slot().clone()
    }

    /// The client in use, for tests that make it fail.
    #[doc(hidden)]
    pub fn native(&self) -> FutureProducer {
        self.client()
    }

    pub(super) async fn publish(&self, messages: &[OutgoingMessage]) -> (usize, Option<LogError>) {
        let producer = self.client();
        let (acknowledged, error) = Self::send(&producer, &self.topic, messages).await;
        if let Some(e) = &error {
            let timed_out = matches!(
                e,
                LogError::Kafka(KafkaError::MessageProduction(
                    RDKafkaErrorCode::MessageTimedOut
                ))
            );
            if timed_out {
                // After a timeout librdkafka bumps the idempotent producer's epoch on its own,
                // and a broker that does not take such an epoch (tansu answers every produce
                // with an unknown error, for good) never hears from this client again: a new
                // client asks the broker for its producer id and epoch instead.
                self.replace("messages timed out");
            } else {
                self.replace_if_fatal(&producer);
            }
        }
        (acknowledged, error)
    }

    /// An idempotent producer that hit a fatal error (a sequence the broker refuses, a producer
    /// id it lost) fails every message from then on, for good: librdkafka's answer is a new
    /// client. The relay keeps its outbox rows and sends them again through the new one, with a
    /// new producer id, so the log may carry a duplicate, which the projectors ignore by version.
    fn replace_if_fatal(&self, failed: &FutureProducer) {
        if let Some((code, reason)) = failed.client().fatal_error() {
            self.replace(&format!("fatal error {code}: {reason}"));
        }
    }

    /// Replaces the client with a new one from the same configuration, which asks the broker for
    /// a new producer id. For a caller whose publishes keep failing without a fatal error: a
    /// broker can refuse one producer id for good without saying so (tansu, after librdkafka
    /// bumped the id's epoch on its own following a timeout, answers every produce with an
    /// unknown error), and a new id is the way out.
    pub(super) fn replace(&self, why: &str) {
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(why, "kafka producer replaced by a new client");
                let old = std::mem::replace(&mut *self.slot(), fresh);
                // Destroying a client waits for its broker threads: not on a runtime worker.
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => drop(runtime.spawn_blocking(move || drop(old))),
                    Err(_) => drop(old),
                }
            }
            Err(e) => tracing::error!(
                why,
                error = %e,
                "kafka producer could not be replaced; the old client stays"
            ),
        }
    }

    async fn send(
        producer: &FutureProducer,
        topic: &str,
        messages: &[OutgoingMessage],
    ) -> (usize, Option<LogError>) {
        // Enqueue in order first (so librdkafka pipelines them), then wait for the
        // acknowledgements in the same order.
        let mut pending = Vec::with_capacity(messages.len());
        let mut enqueue_error = None;
        for m in messages {
            let mut headers = OwnedHeaders::new_with_capacity(m.headers.len());
            for (k, v) in &m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let record = FutureRecord::to(topic)
                .key(&m.key)
                .payload(&m.payload)
                .headers(headers);
            match producer.send_result(record) {
                Ok(delivery) => pending.push(delivery),
                Err((e, _)) => {
                    enqueue_error = Some(e);
                    break;
                }
            }
        }
        let mut acknowledged = 0;
        let mut first_error = None;
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) if first_error.is_none() => acknowledged += 1,
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    first_error.get_or_insert(e);
                }
                Err(_canceled) => {
                    first_error.get_or_insert(KafkaError::Canceled);
                }
            }
        }
        let error = first_error.or(enqueue_error).map(LogError::from);
        (acknowledged, error)
    }
}

/// A reader of the topic that assigns itself partitions: every one ([`KafkaSettings::reader`]) or
/// those its caller holds ([`KafkaSettings::member`]).
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer>,
    topic: String,
    /// Partitions read now.
    assigned: BTreeSet<i32>,
    /// Assigned since the caller last asked, so not positioned yet.
    fresh: BTreeSet<i32>,
    pub(super) positioned: HashSet<i32>,
    /// Partitions assigned to the client, so fetching: a seek moves them.
    fetching: HashSet<i32>,
    /// How a reader of every partition learns them; `None` when the caller says which to read.
    listing: Option<Listing>,
    /// Partitions added to the topic after the first listing: everything in them is new.
    pub(super) grown: BTreeSet<i32>,
}

/// How often a reader of every partition lists the topic's partitions again: a topic can grow
/// (`kafka-topics --alter --partitions`), and the new partitions are read from their start.
const RELIST: Duration = Duration::from_secs(5);

/// A reader's listings of the topic's partitions.
#[derive(Default)]
struct Listing {
    /// When to list again; `None` before the first listing that found partitions.
    next: Option<Instant>,
    /// A listing running in the background.
    pending: Option<JoinHandle<Result<BTreeSet<i32>, KafkaError>>>,
}

/// The partitions of `topic`, from a metadata request.
async fn list_partitions(
    consumer: Arc<StreamConsumer>,
    topic: String,
) -> Result<BTreeSet<i32>, KafkaError> {
    tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .map(|m| {
                m.topics()
                    .iter()
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect::<BTreeSet<i32>>()
            })
    })
    .await
    .unwrap_or(Err(KafkaError::Canceled))
}

impl KafkaConsumer {
    pub(super) async fn take_unpositioned(&mut self) -> Result<BTreeSet<i32>, LogError> {
        if let Some(listing) = &mut self.listing {
            let listed = if listing.next.is_none() {
                // The first listing is waited for: nothing can be read before it.
                Some(list_partitions(self.consumer.clone(), self.topic.clone()).await)
            } else if listing
                .pending
                .as_ref()
                .is_some_and(JoinHandle::is_finished)
            {
                match listing.pending.take() {
                    Some(pending) => pending.await.ok(),
                    None => None,
                }
            } else {
                if listing.pending.is_none()
                    && listing.next.is_some_and(|next| Instant::now() >= next)
                {
                    // Later ones run beside the reads, which a slow answer must not hold up.
                    listing.pending = Some(tokio::spawn(list_partitions(
                        self.consumer.clone(),
                        self.topic.clone(),
                    )));
                }
                None
            };
            match listed {
                // None yet: the topic is being created; asked again next round.
                Some(Ok(partitions)) if !partitions.is_empty() => {
                    let first = listing.next.is_none();
                    listing.next = Some(Instant::now() + RELIST);
                    for p in partitions {
                        if self.assigned.insert(p) {
                            self.fresh.insert(p);
                            if !first {
                                tracing::info!(partition = p, topic = self.topic, "the topic grew");
                                self.grown.insert(p);
                            }
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) if listing.next.is_none() => return Err(e.into()),
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "listing the topic's partitions failed; retrying");
                    listing.next = Some(Instant::now() + RELIST);
                }
                None => {}
            }
        }
        Ok(std::mem::take(&mut self.fresh))
    }

    /// Reads exactly `partitions` from now on: the new ones are handed out unpositioned (to be
    /// positioned with [`KafkaConsumer::seek`]), the others stop being fetched and their
    /// records already received are dropped.
    pub(super) fn hold(&mut self, partitions: &BTreeSet<i32>) -> Result<(), LogError> {
        let dropped: Vec<i32> = self.assigned.difference(partitions).copied().collect();
        for p in partitions {
            if self.assigned.insert(*p) {
                self.fresh.insert(*p);
            }
        }
        let mut unassign = rdkafka::TopicPartitionList::new();
        for p in dropped {
            self.assigned.remove(&p);
            self.fresh.remove(&p);
            self.positioned.remove(&p);
            if self.fetching.remove(&p) {
                unassign.add_partition(&self.topic, p);
            }
        }
        if unassign.count() > 0 {
            self.consumer.incremental_unassign(&unassign)?;
        }
        Ok(())
    }

    pub(super) fn assigned(&self) -> usize {
        self.assigned.len()
    }

    pub(super) fn unposition(&mut self, partitions: &[i32]) {
        for p in partitions {
            self.positioned.remove(p);
            if self.assigned.contains(p) {
                self.fresh.insert(*p);
            }
        }
    }

    pub(super) async fn seek(&mut self, partition: i32, next: Option<i64>) -> Result<(), LogError> {
        let offset = next.map_or(Offset::Beginning, Offset::Offset);
        if !self.fetching.contains(&partition) {
            // The first position of a partition is its assignment.
            let mut assignment = rdkafka::TopicPartitionList::new();
            assignment.add_partition_offset(&self.topic, partition, offset)?;
            self.consumer.incremental_assign(&assignment)?;
            self.fetching.insert(partition);
            self.positioned.insert(partition);
            return Ok(());
        }
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        let result = tokio::task::spawn_blocking(move || {
            consumer.seek(&topic, partition, offset, Duration::from_secs(10))
        })
        .await
        .unwrap_or(Err(KafkaError::Canceled));
        match result {
            Ok(()) => {
                self.positioned.insert(partition);
                Ok(())
            }
            Err(e) => {
                // Put it back so the caller tries again.
                if self.assigned.contains(&partition) {
                    self.fresh.insert(partition);
                }
                Err(e.into())
            }
        }
    }

    pub(super) async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<LogRecord>, LogError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        // The first record may be waited for; after it, only what the client already holds is
        // taken. Waiting a few milliseconds more for company (as this once did, 5 ms after
        // every record) put that wait on every live comment, once in the projector and once
        // in each gateway; under load a fetch brings many records at once anyway.
        let mut next = tokio::time::timeout(wait, self.consumer.recv()).await.ok();
        while let Some(received) = next {
            match received {
                Err(e) => {
                    if out.is_empty() {
                        return Err(e.into());
                    }
                    break;
                }
                Ok(m) => {
                    if self.positioned.contains(&m.partition()) {
                        out.push(LogRecord {
                            topic: m.topic().to_owned(),
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                            timestamp: m
                                .timestamp()
                                .to_millis()
                                .and_then(DateTime::<Utc>::from_timestamp_millis),
                        });
                    }
                }
            }
            if out.len() >= max {
                break;
            }
            next = self.consumer.recv().now_or_never();
        }
        Ok(out)
    }

    pub(super) fn close(&mut self) {
        // No group: nothing to commit or leave.
        let _ = self.consumer.unassign();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Production brokers want TLS and SASL (SCRAM): librdkafka refuses these settings when it
    /// was built without OpenSSL, so creating the clients (which connects to nothing yet) proves
    /// the build can speak them.
    #[tokio::test]
    async fn clients_accept_sasl_over_tls_settings() {
        let mut settings = KafkaSettings::new("127.0.0.1:1", "inkwire.posts");
        settings.properties = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "inkwire"),
            ("sasl.password", "secret"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        settings
            .producer()
            .unwrap_or_else(|e| panic!("producer: {e}"));
        settings
            .reader("inkwire-test")
            .unwrap_or_else(|e| panic!("reader: {e}"));
    }
}
