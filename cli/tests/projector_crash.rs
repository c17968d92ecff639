//! The projector killed with SIGKILL in the middle of a 10,000-event backlog, then restarted,
//! leaves read tables identical to those of an uninterrupted run (real PostgreSQL + broker).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestStack, count, read_model_dump};
use futures::StreamExt;
use infra::db::Db;
use reqwest::StatusCode;

const POSTS: usize = 50;
const COMMENTS: usize = 9_900; // + 50 drafted + 50 published = 10,000 events

/// A projection-service process, killed (SIGKILL) and reaped when dropped.
struct Projector(Child);

impl Projector {
    fn kill(&mut self) {
        // SIGKILL: no chance to finish a batch or commit anything.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        self.kill();
    }
}

fn projector(db_url: &str, topic: &str, group: &str) -> Projector {
    let child = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args([
            "projection-service",
            "--database-url",
            db_url,
            "--kafka-brokers",
            &common::brokers(),
            "--topic",
            topic,
            "--group",
            group,
            "--kafka-session-timeout-ms",
            "6000",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("projection-service starts");
    Projector(child)
}

async fn wait_for(db: &Db, comments: i64, within: Duration) {
    let deadline = Instant::now() + within;
    while count(db, "rm_comments").await < comments {
        assert!(
            Instant::now() < deadline,
            "projection did not finish within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_backlog_then_restart_gives_the_same_read_tables() {
    // Write the backlog with no projector running: command service + relay only.
    let db_url = common::fresh_database().await;
    let topic = common::unique("crash");
    let writer = TestStack::distributed_on(&db_url, &topic, &common::brokers(), false).await;
    let mut posts = Vec::new();
    for _ in 0..POSTS {
        posts.push(writer.published_post().await);
    }
    let statuses: Vec<StatusCode> = futures::stream::iter(0..COMMENTS)
        .map(|i| {
            let post = posts[i % POSTS].clone();
            let writer = &writer;
            async move { writer.comment(&post, &format!("backlog {i}")).await.0 }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED));
    common::eventually(Duration::from_secs(120), || async {
        count(&writer.db, "outbox").await == 0
    })
    .await;

    // Projector A: killed with SIGKILL part-way, then restarted on the same database and group.
    let mut first = projector(&db_url, &topic, "crash-a");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = count(&writer.db, "rm_comments").await;
        if done >= 500 {
            first.kill();
            break;
        }
        assert!(Instant::now() < deadline, "projector made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at_kill = count(&writer.db, "rm_comments").await;
    assert!(
        at_kill < COMMENTS as i64,
        "the projector finished before it could be killed ({at_kill} comments); the test proves nothing"
    );
    let second = projector(&db_url, &topic, "crash-a");
    wait_for(&writer.db, COMMENTS as i64, Duration::from_secs(120)).await;

    // Projector B: an uninterrupted run of the same log into another database.
    let reference_url = common::fresh_database().await;
    let reference = Db::connect(&reference_url, 4).await.expect("reference db");
    reference.migrate().await.expect("migrations");
    let uninterrupted = projector(&reference_url, &topic, "crash-b");
    wait_for(&reference, COMMENTS as i64, Duration::from_secs(120)).await;

    // Let both settle (a duplicate arriving late would change counts), then compare.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = read_model_dump(&writer.db).await;
    let b = read_model_dump(&reference).await;
    // Each post, its first revision, and the comments.
    assert_eq!(a.len(), 2 * POSTS + COMMENTS);
    assert!(a == b, "read tables differ after a crash and restart");

    drop((second, uninterrupted));
    writer.stop().await;
}
