//! `inkwire lag` against PostgreSQL and the broker: a group that applied nothing lags by every
//! record, by their age in seconds; a projector that caught up lags by nothing.

mod common;

use std::time::Duration;

use common::TestStack;
use infra::log::LogConfig;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_counted_in_events_and_aged_in_seconds_per_group_and_partition() {
    infra::telemetry::init_tracing(false);
    let db_url = common::fresh_database().await;
    let topic = common::unique("lag");
    let brokers = common::brokers();
    // Commands only: nothing projects yet.
    let writer = TestStack::distributed_on(&db_url, &topic, &brokers, false).await;
    let post = writer.published_post().await;
    for i in 0..5 {
        writer.comment(&post, &format!("c{i}")).await;
    }
    common::eventually(Duration::from_secs(20), || async {
        writer.count("outbox").await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let log = LogConfig::Kafka(common::kafka(&topic, &brokers));
    let events = writer.count("events").await;
    let idle = inkwire::lag::measure(&writer.db, &log, &["nobody".to_owned()])
        .await
        .expect("lag");
    assert_eq!(idle.len(), 6, "one row per partition: {idle:?}");
    assert_eq!(idle.iter().map(|r| r.lag_events).sum::<i64>(), events);
    for row in idle.iter().filter(|r| r.lag_events > 0) {
        assert_eq!(row.committed_offset, -1);
        assert!(
            row.lag_seconds >= 1.0 && row.lag_seconds < 60.0,
            "age of the oldest record: {row:?}"
        );
    }

    // A projector catches up: its group lags by nothing, and the CLI says so in JSON.
    let projector = TestStack::distributed_on(&db_url, &topic, &brokers, true).await;
    projector.wait_comments(5, Duration::from_secs(30)).await;
    common::eventually(Duration::from_secs(30), || async {
        let rows = inkwire::lag::measure(&writer.db, &log, &[])
            .await
            .expect("lag");
        !rows.is_empty() && rows.iter().all(|r| r.lag_events == 0)
    })
    .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args([
            "lag",
            "--json",
            "--database-url",
            &db_url,
            "--kafka-brokers",
            &brokers,
            "--topic",
            &topic,
        ])
        .output()
        .expect("inkwire lag runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r["lag_events"] == 0 && r["lag_seconds"] == 0.0),
        "{rows:?}"
    );
    assert_eq!(
        rows.iter()
            .map(|r| r["high_watermark"].as_i64().unwrap_or(0))
            .sum::<i64>(),
        events
    );
    projector.stop().await;
    writer.stop().await;
}
