//! Two projectors in one group share the partitions, and when one stops (killed, or paused past
//! its session) the other takes its partitions over, so every post keeps updating; a restarted
//! member takes its share back. Real PostgreSQL and broker, projectors as processes.
//!
//! The regression test of the stall the fault campaign found (docs/reliability.md): under the
//! broker's group coordinator, a killed projector kept its partitions through later rebalances,
//! and the posts on them stopped updating for the rest of the run.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestStack;
use infra::db::Db;
use reqwest::StatusCode;
use sqlx::Row;

const POSTS: usize = 12;
const SESSION_MS: &str = "3000";

/// A projection-service process, killed (SIGKILL) and reaped when dropped.
struct Projector(Child);

impl Projector {
    fn start(db_url: &str, topic: &str, group: &str) -> Self {
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
                SESSION_MS,
                "--listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("projection-service starts");
        Self(child)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        // A paused process is killed as well; SIGCONT first so it is reaped at once.
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}

/// Who holds which partition of `group` (live claims only).
async fn claims(db: &Db, group: &str) -> BTreeMap<i64, String> {
    let Db::Postgres(pool) = db else {
        panic!("the test runs on PostgreSQL")
    };
    sqlx::query(
        "SELECT partition, member FROM projector_claims \
         WHERE consumer_group = $1 AND expires_at > now()",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .expect("claims")
    .into_iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect()
}

/// How many partitions each member holds, largest first.
fn shares(claims: &BTreeMap<i64, String>) -> Vec<usize> {
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for member in claims.values() {
        *per.entry(member).or_default() += 1;
    }
    let mut shares: Vec<usize> = per.into_values().collect();
    shares.sort_unstable_by(|a, b| b.cmp(a));
    shares
}

/// Comments once on every post, then waits until the read tables hold `expected` comments.
async fn comment_everywhere(
    writer: &TestStack,
    posts: &[String],
    round: &str,
    expected: i64,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    for post in posts {
        let (status, body) = writer.comment(post, &format!("{round} on {post}")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let deadline = started + within;
    loop {
        let projected = common::count(&writer.db, "rm_comments").await;
        if projected == expected {
            return started.elapsed();
        }
        assert!(
            projected < expected,
            "{projected} comments for {expected} written"
        );
        assert!(
            Instant::now() < deadline,
            "{round}: only {projected} of {expected} comments projected within {within:?}: \
             the posts of some partitions stopped updating"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_projectors_partitions_move_to_the_other_and_come_back() {
    let db_url = common::fresh_database().await;
    let topic = common::unique("group");
    let group = common::unique("projectors");
    let writer = TestStack::distributed_on(&db_url, &topic, &common::brokers(), false).await;
    let mut posts = Vec::new();
    for _ in 0..POSTS {
        posts.push(writer.published_post().await);
    }
    let mut first = Projector::start(&db_url, &topic, &group);
    let second = Projector::start(&db_url, &topic, &group);
    let n = POSTS as i64;

    // Both members hold an even share of the six partitions, each partition once.
    comment_everywhere(&writer, &posts, "before", n, Duration::from_secs(60)).await;
    common::eventually(Duration::from_secs(30), || async {
        shares(&claims(&writer.db, &group).await) == [3, 3]
    })
    .await;

    // The first is killed: within its session and a round, the second holds all six and every
    // post updates again.
    first.kill();
    let took = comment_everywhere(&writer, &posts, "killed", 2 * n, Duration::from_secs(30)).await;
    eprintln!("every post updated {took:?} after a member was killed (session {SESSION_MS} ms)");
    assert_eq!(shares(&claims(&writer.db, &group).await), [6]);

    // A new member takes its share back.
    let third = Projector::start(&db_url, &topic, &group);
    common::eventually(Duration::from_secs(30), || async {
        shares(&claims(&writer.db, &group).await) == [3, 3]
    })
    .await;
    comment_everywhere(&writer, &posts, "rejoined", 3 * n, Duration::from_secs(30)).await;

    // The second is paused past its session (a stop-the-world pause, a frozen VM): the third
    // takes everything; when the second wakes it finds its claims gone, and nothing it still
    // had in hand is written twice.
    second.signal("-STOP");
    let took = comment_everywhere(&writer, &posts, "paused", 4 * n, Duration::from_secs(30)).await;
    eprintln!("every post updated {took:?} after a member was paused");
    second.signal("-CONT");
    common::eventually(Duration::from_secs(30), || async {
        shares(&claims(&writer.db, &group).await) == [3, 3]
    })
    .await;
    comment_everywhere(&writer, &posts, "woken", 5 * n, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(common::count(&writer.db, "rm_comments").await, 5 * n);

    drop((second, third));
    writer.stop().await;
}

/// What made a paused projector harm everyone (CI, the pause step above beside other suites):
/// paused inside a transaction, it held it open, and at SERIALIZABLE one open transaction keeps
/// the predicate locks of every overlapping one alive across the whole server, until other
/// databases' projectors failed with 40001 and writes waited out `waitForProjection`. Inkwire's
/// sessions now end when idle in a transaction for 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_by_a_paused_process_is_ended_by_the_server() {
    let db = Db::connect(&common::fresh_database().await, 2)
        .await
        .expect("database");
    let Db::Postgres(pool) = &db else {
        panic!("the test runs on PostgreSQL")
    };
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("SELECT count(*) FROM pg_class")
        .execute(&mut *tx)
        .await
        .expect("first statement");
    // The process "pauses" with the transaction open.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let woke = sqlx::query("SELECT 1").execute(&mut *tx).await;
    assert!(
        woke.is_err(),
        "a transaction left idle for 12 s was still open"
    );
}
