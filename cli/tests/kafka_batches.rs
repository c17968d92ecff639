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
