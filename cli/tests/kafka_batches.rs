//! Batches read from Kafka (the real broker): a consumer's batch holds what has arrived, never
//! more than asked for, in offset order per partition, and the records left over come in the
//! next batch, none lost and none twice.

mod common;

use std::time::{Duration, Instant};

use infra::log::{LogConfig, LogRecord, OutgoingMessage, StartAt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_hold_at_most_what_was_asked_and_the_rest_comes_next() {
    let topic = common::unique("batches");
    let log = LogConfig::Kafka(common::kafka(&topic, &common::brokers()));
    log.ensure_topic().await.expect("topic");
    // Two keys, so two partitions, each in its own order.
    let messages: Vec<OutgoingMessage> = (0..25u32)
        .map(|i| OutgoingMessage {
            key: format!("post-{}", i % 2).into_bytes(),
            payload: i.to_le_bytes().to_vec(),
            headers: Vec::new(),
        })
        .collect();
    let producer = log.producer().expect("producer");
    let (published, error) = producer.publish(&messages).await;
    assert_eq!((published, error.is_none()), (25, true), "{error:?}");

    let mut consumer = log.reader(&common::unique("batches")).expect("consumer");
    let mut read: Vec<LogRecord> = Vec::new();
    let mut sizes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.len() < messages.len() {
        assert!(
            Instant::now() < deadline,
            "only {} records read",
            read.len()
        );
        consumer
            .position_fresh(&log, StartAt::Beginning)
            .await
            .expect("position");
        let batch = consumer
            .next_batch(4, Duration::from_millis(200))
            .await
            .expect("read");
        assert!(
            batch.len() <= 4,
            "a batch of {} when 4 were asked",
            batch.len()
        );
        if !batch.is_empty() {
            sizes.push(batch.len());
        }
        read.extend(batch);
    }
    let extra = consumer
        .next_batch(4, Duration::from_millis(500))
        .await
        .expect("read");
    assert!(extra.is_empty(), "records read twice: {extra:?}");

    // Every message once, each partition in the order it was published.
    let mut by_key: std::collections::BTreeMap<Vec<u8>, Vec<u32>> = Default::default();
    for r in &read {
        let n = u32::from_le_bytes(r.payload.as_slice().try_into().expect("4 bytes"));
        by_key.entry(r.key.clone()).or_default().push(n);
    }
    for (key, numbers) in &by_key {
        let parity = u32::from(key.ends_with(b"1"));
        let expected: Vec<u32> = (0..25).filter(|i| i % 2 == parity).collect();
        assert_eq!(numbers, &expected, "{}", String::from_utf8_lossy(key));
    }
    // What had arrived was taken together, not one record per wait.
    assert!(sizes.iter().any(|n| *n > 1), "batch sizes {sizes:?}");
}

/// librdkafka's idempotent producer can hit a fatal error (a sequence or a producer id the
/// broker refuses), after which that client fails every message for good. The relay's producer
/// replaces the client, so the outbox drains again instead of failing, round after round, with
/// the relay's lease held and no other relay allowed to publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_hit_a_fatal_error_is_replaced_and_publishes_again() {
    use rdkafka::bindings::{rd_kafka_resp_err_t, rd_kafka_test_fatal_error};
    use rdkafka::producer::Producer as _;

    let topic = common::unique("fatal");
    let log = LogConfig::Kafka(common::kafka(&topic, &common::brokers()));
    log.ensure_topic().await.expect("topic");
    let message = |i: u32| common::numbered("post-0", i);
    let producer = log.producer().expect("producer");
    let (published, error) = producer.publish(&[message(0)]).await;
    assert_eq!((published, error.is_none()), (1, true), "{error:?}");

    // librdkafka's own hook raises the fatal error as a broker's answer would.
    let infra::log::Producer::Kafka(kafka) = &producer else {
        panic!("a Kafka producer")
    };
    let native = kafka.native();
    let reason = std::ffi::CString::new("raised by the test").expect("no NUL");
    // SAFETY: the client pointer is alive (`native` holds it) and the reason is a C string.
    let raised = unsafe {
        rd_kafka_test_fatal_error(
            native.client().native_ptr(),
            rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        )
    };
    assert_eq!(raised, rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
    drop(native);

    // The client that hit it refuses the next message, and the caller is told.
    let (published, error) = producer.publish(&[message(1)]).await;
    assert_eq!((published, error.is_some()), (0, true), "{error:?}");
    // Sent again, as the relay does, it goes through a new client.
    let (published, error) = producer.publish(&[message(1)]).await;
    assert_eq!((published, error.is_none()), (1, true), "{error:?}");

    // The log holds both, in order.
    let mut consumer = log.reader(&common::unique("fatal")).expect("consumer");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.len() < 2 {
        assert!(Instant::now() < deadline, "only {read:?} read");
        consumer
            .position_fresh(&log, StartAt::Beginning)
            .await
            .expect("position");
        for r in consumer
            .next_batch(10, Duration::from_millis(200))
            .await
            .expect("read")
        {
            read.push(u32::from_le_bytes(
                r.payload.as_slice().try_into().expect("4 bytes"),
            ));
        }
    }
    assert_eq!(read, vec![0, 1]);
}

/// A topic grown while a reader of every partition runs (`kafka-topics --alter --partitions`):
/// the reader (a gateway's log follower, `inkwire events tail`) finds the new partitions by
/// itself and reads them from their start, so the posts that land there still get live
/// comments; the partitions it started on are read from where it started, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_every_partition_reads_partitions_the_topic_gains() {
    let topic = common::unique("grow");
    let brokers = common::brokers();
    let mut settings = common::kafka(&topic, &brokers);
    settings.partitions = 2;
    let log = LogConfig::Kafka(settings);
    log.ensure_topic().await.expect("topic");
    let keyed = |n: u32| OutgoingMessage {
        key: format!("post-{n}").into_bytes(),
        payload: n.to_le_bytes().to_vec(),
        headers: Vec::new(),
    };
    // Before the reader starts: not for it.
    let before: Vec<OutgoingMessage> = (0..10).map(keyed).collect();
    let (published, error) = log.producer().expect("producer").publish(&before).await;
    assert_eq!((published, error.is_none()), (10, true), "{error:?}");

    let mut reader = log.reader(&common::unique("grow-reader")).expect("reader");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reader.positioned() < 2 {
        assert!(
            Instant::now() < deadline,
            "the reader never positioned its partitions"
        );
        let _ = reader.position_fresh(&log, StartAt::End).await;
        let _ = reader.next_batch(10, Duration::from_millis(50)).await;
    }

    grow_topic(&topic, &brokers, 4).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.high_watermarks().await.map_or(0, |w| w.len()) < 4 {
        assert!(
            Instant::now() < deadline,
            "the topic never showed 4 partitions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A producer made now spreads its keys over all four partitions.
    let after: Vec<OutgoingMessage> = (100..160).map(keyed).collect();
    let (published, error) = log.producer().expect("producer").publish(&after).await;
    assert_eq!((published, error.is_none()), (60, true), "{error:?}");
    let ends: std::collections::BTreeMap<i32, i64> = log
        .high_watermarks()
        .await
        .expect("watermarks")
        .into_iter()
        .collect();
    assert!(
        ends.get(&2).copied().unwrap_or(0) + ends.get(&3).copied().unwrap_or(0) > 0,
        "no message landed in a new partition: {ends:?}"
    );

    let mut read: Vec<u32> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < after.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} records read; partitions read: {}",
            read.len(),
            after.len(),
            reader.positioned()
        );
        let _ = reader.position_fresh(&log, StartAt::End).await;
        let batch = reader
            .next_batch(100, Duration::from_millis(200))
            .await
            .expect("read");
        read.extend(
            batch
                .iter()
                .map(|r| u32::from_le_bytes(r.payload.as_slice().try_into().expect("4 bytes"))),
        );
    }
    read.sort_unstable();
    assert_eq!(
        read,
        (100..160).collect::<Vec<u32>>(),
        "every record after the start, once"
    );
    reader.close();
}

/// Grows `topic` to `partitions` as `kafka-topics --alter --partitions` does. tansu 0.6 answers
/// that request with UnsupportedFeature, so on tansu the topic is grown in its storage (this
/// test server's `tansu` database) the way the request would: the count, and each new
/// partition with its empty watermark.
async fn grow_topic(topic: &str, brokers: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let count = usize::try_from(partitions).expect("partitions");
    match admin
        .create_partitions(
            &[NewPartitions::new(topic, count)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
    {
        Ok(results) => {
            assert!(
                results.iter().all(Result::is_ok),
                "the broker refused to add partitions: {results:?}"
            );
            return;
        }
        Err(KafkaError::AdminOp(RDKafkaErrorCode::UnsupportedFeature)) => {}
        Err(e) => panic!("create partitions: {e}"),
    }
    let storage = sqlx::PgPool::connect(&common::database_url("tansu"))
        .await
        .expect("tansu's storage");
    let mut tx = storage.begin().await.expect("begin");
    let (id, had): (i32, i32) = sqlx::query_as(
        "UPDATE topic SET partitions = $2, last_updated = now() \
         WHERE name = $1 RETURNING id, (SELECT partitions FROM topic WHERE name = $1)",
    )
    .bind(topic)
    .bind(partitions)
    .fetch_one(&mut *tx)
    .await
    .expect("topic in tansu's storage");
    for partition in had..partitions {
        sqlx::query(
            "WITH tp AS (INSERT INTO topition (topic, partition) VALUES ($1, $2) RETURNING id) \
             INSERT INTO watermark (topition) SELECT id FROM tp",
        )
        .bind(id)
        .bind(partition)
        .execute(&mut *tx)
        .await
        .expect("new partition");
    }
    tx.commit().await.expect("commit");
}
