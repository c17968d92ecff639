//! The embedded log read back from a real SQLite file: what a consumer reads is what was
//! appended — every key and payload byte for byte (binary included), offsets dense from 0 per
//! partition in append order, an append time on each — across reads larger than one lock of
//! the reader connection, and from a position in the middle.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use infra::db::Db;
use infra::log::{EmbeddedLog, LogConfig, LogRecord, OutgoingMessage};

fn message(i: u32) -> OutgoingMessage {
    // Seven keys over two partitions; payloads of varying length, with NULs and bytes that are
    // not UTF-8.
    let mut payload = vec![0u8, 0xff, 0xfe];
    payload.extend(i.to_le_bytes());
    payload.extend(std::iter::repeat_n(b'x', (i % 97) as usize));
    OutgoingMessage {
        key: format!("post-{}", i % 7).into_bytes(),
        payload,
        headers: Vec::new(),
    }
}

async fn read(log: &LogConfig, from: Option<i64>, want: usize) -> Vec<LogRecord> {
    let mut consumer = log.reader("g").expect("consumer");
    for partition in consumer.take_unpositioned().await.expect("assignment") {
        consumer.seek(partition, from).await.expect("seek");
    }
    let mut out = Vec::new();
    while out.len() < want {
        let batch = consumer
            .next_batch(2_500, Duration::from_millis(50))
            .await
            .expect("read");
        assert!(
            !batch.is_empty(),
            "the log ended after {} records",
            out.len()
        );
        out.extend(batch);
    }
    assert!(
        consumer
            .next_batch(2_500, Duration::from_millis(50))
            .await
            .expect("read")
            .is_empty(),
        "more records than were appended"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_appended_is_read_back_byte_for_byte_in_offset_order() {
    let dir = std::env::temp_dir().join(format!("inkwire-log-{}", uuid::Uuid::now_v7()));
    let db = Db::open_data_dir(&dir).await.expect("sqlite");
    db.migrate().await.expect("migrations");
    let embedded = EmbeddedLog::new(db, "t", 2);
    let before = Utc::now();
    let messages: Vec<OutgoingMessage> = (0..4_321).map(message).collect();
    for chunk in messages.chunks(1_000) {
        embedded.append(chunk).await.expect("append");
    }
    let after = Utc::now();
    let log = LogConfig::Embedded(embedded);

    let records = read(&log, None, messages.len()).await;
    // A key always lands in the same partition; per partition, the messages of its keys in
    // append order at offsets 0, 1, 2, …
    let partition_of: HashMap<&[u8], i32> = records
        .iter()
        .map(|r| (r.key.as_slice(), r.partition))
        .collect();
    let mut expected: BTreeMap<i32, Vec<&OutgoingMessage>> = BTreeMap::new();
    for m in &messages {
        expected
            .entry(partition_of[m.key.as_slice()])
            .or_default()
            .push(m);
    }
    assert_eq!(expected.len(), 2, "both partitions are used");
    let mut read_back: BTreeMap<i32, Vec<&LogRecord>> = BTreeMap::new();
    for r in &records {
        read_back.entry(r.partition).or_default().push(r);
    }
    for (partition, ms) in &expected {
        let rs = &read_back[partition];
        assert_eq!(rs.len(), ms.len(), "partition {partition}");
        for (i, (r, m)) in rs.iter().zip(ms).enumerate() {
            assert_eq!(r.offset, i64::try_from(i).expect("offset"));
            assert_eq!(r.topic, "t");
            assert_eq!(r.key, m.key);
            assert_eq!(r.payload, m.payload);
            let at = r.timestamp.expect("append time");
            assert!(
                before <= at && at <= after,
                "{at} outside {before}..{after}"
            );
        }
    }

    // From the middle: the rest of each partition and nothing before it.
    let from = 1_000;
    let rest: usize = expected.values().map(|ms| ms.len() - 1_000).sum();
    let tail = read(&log, Some(from), rest).await;
    for r in &tail {
        assert!(r.offset >= from);
        let m = expected[&r.partition][usize::try_from(r.offset).expect("offset")];
        assert_eq!(r.payload, m.payload);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
