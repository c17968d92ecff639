//! `inkwire lag` against PostgreSQL and the broker: a group that applied nothing lags by every
//! record, by their age in seconds; a projector that caught up lags by nothing; a projector
//! stopped while 5,000 events arrive lags by exactly those, for longer and longer, and drains them
//! after its restart — while Debian's Prometheus scrapes its lag gauges for every partition.

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;

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

/// `inkwire lag --json --group GROUP` for `stack`'s database and topic.
fn lag_json(stack: &TestStack, group: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args([
            "lag",
            "--json",
            "--group",
            group,
            "--database-url",
            &stack.db_url,
        ])
        .args([
            "--kafka-brokers",
            &common::brokers(),
            "--topic",
            &stack.topic,
        ])
        .output()
        .expect("inkwire lag runs");
    serde_json::from_str(common::succeeded(&out).trim()).expect("JSON")
}

fn totals(rows: &[Value]) -> (i64, f64) {
    (
        rows.iter()
            .map(|r| r["lag_events"].as_i64().expect("events"))
            .sum(),
        rows.iter()
            .map(|r| r["lag_seconds"].as_f64().expect("seconds"))
            .fold(0.0, f64::max),
    )
}

/// A projection service of `group` on `stack`'s database and topic, until `cancel`.
async fn projector(
    stack: &TestStack,
    group: &str,
) -> (
    u16,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let cancel = tokio_util::sync::CancellationToken::new();
    let log = LogConfig::Kafka(common::kafka(&stack.topic, &common::brokers()));
    let task = tokio::spawn(projection_service::serve(
        listener,
        stack.db.clone(),
        log,
        group.to_owned(),
        cancel.clone(),
    ));
    (port, cancel, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_projector_lags_by_what_arrived_for_longer_and_longer_then_drains() {
    infra::telemetry::init_tracing(false);
    let db_url = common::fresh_database().await;
    let topic = common::unique("lag5k");
    let stack = TestStack::distributed_on(&db_url, &topic, &common::brokers(), false).await;
    let group = common::unique("projector");
    let (_, stop, task) = projector(&stack, &group).await;
    let post = stack.published_post().await;
    // Everything written so far is in the log, and applied.
    common::eventually(Duration::from_secs(30), || async {
        stack.count("outbox").await == 0
    })
    .await;
    common::eventually(Duration::from_secs(30), || async {
        let rows = lag_json(&stack, &group);
        let in_log: i64 = rows
            .iter()
            .map(|r| r["high_watermark"].as_i64().unwrap_or(0))
            .sum();
        in_log == stack.count("events").await && totals(&rows).0 == 0
    })
    .await;
    stop.cancel();
    task.await.expect("joins").expect("stops cleanly");

    // 5,000 comments arrive while nobody projects.
    let results: Vec<_> = futures::stream::iter(0..5000)
        .map(|i| {
            let (stack, post) = (&stack, &post);
            async move { stack.comment(post, &format!("while stopped {i}")).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        results.iter().all(|(status, _)| status.is_success()),
        "every comment accepted"
    );
    common::eventually(Duration::from_secs(60), || async {
        stack.count("outbox").await == 0
    })
    .await;

    let (events, first) = totals(&lag_json(&stack, &group));
    assert_eq!(events, 5000, "lag in events is what arrived");
    assert!(
        first > 0.0,
        "the oldest unapplied event has an age: {first}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (events, later) = totals(&lag_json(&stack, &group));
    assert_eq!(events, 5000);
    assert!(
        later >= first + 1.0,
        "lag in seconds grows while stopped: {first} then {later}"
    );

    // Restarted, it drains to 0 — and Prometheus scrapes its lag for every partition.
    let (port, stop, task) = projector(&stack, &group).await;
    let prometheus = Prometheus::start(port);
    common::eventually(Duration::from_secs(60), || async {
        totals(&lag_json(&stack, &group)) == (0, 0.0)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let partitions = prometheus.lag_series(&group).await;
        if partitions == (0..6).collect::<Vec<i64>>() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has lag series for partitions {partitions:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.cancel();
    task.await.expect("joins").expect("stops cleanly");
    stack.stop().await;
}

/// Debian's Prometheus server scraping one target every second, in a directory of its own.
struct Prometheus {
    child: std::process::Child,
    port: u16,
    _dir: common::TempDir,
}

impl Prometheus {
    fn start(target: u16) -> Self {
        let dir = common::TempDir::new();
        let config = dir.0.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: projection\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
            ),
        )
        .expect("config");
        let port = common::free_port();
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_owned());
        let child = std::process::Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{bin} (Debian's prometheus package, installed by scripts/test-deps.sh): {e}"
                )
            });
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// The partitions for which Prometheus's HTTP API has `inkwire_projection_lag_seconds` of
    /// `group`, sorted.
    async fn lag_series(&self, group: &str) -> Vec<i64> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query=inkwire_projection_lag_seconds{{group=\"{group}\"}}",
            self.port
        );
        let Ok(resp) = reqwest::get(&url).await else {
            return Vec::new();
        };
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let mut partitions: Vec<i64> = body["data"]["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .filter_map(|s| s["metric"]["partition"].as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        partitions.sort_unstable();
        partitions
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
