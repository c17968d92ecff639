//! What the integration tests of every crate share, apart from the product: the test
//! PostgreSQL (a fresh database per test, at SERIALIZABLE like CockroachDB) and broker named by
//! `DATABASE_URL` and `KAFKA_BROKERS` (started by `scripts/test-deps.sh`), temporary
//! directories, events and log records made by hand, and the read tables as comparable text.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use infra::db::Db;
use infra::log::KafkaSettings;
use infra::with_db;
use sqlx::Row;
use uuid::Uuid;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests through scripts/test.sh, which starts PostgreSQL and the broker")
    })
}

/// `postgres://…/postgres` of the test server.
pub fn admin_url() -> String {
    env("DATABASE_URL")
}

/// The S3-compatible API of the test run (moto's server), `http://127.0.0.1:PORT`.
pub fn s3_endpoint() -> String {
    env("S3_ENDPOINT")
}

/// Kafka bootstrap servers of the test broker.
pub fn brokers() -> String {
    env("KAFKA_BROKERS")
}

/// A unique name with `prefix`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// The URL of a database on the test server with `name`.
pub fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Creates an empty database running at SERIALIZABLE (like CockroachDB), and returns its URL.
pub async fn fresh_database() -> String {
    let name = unique("t");
    let admin = Db::connect(&admin_url(), 2)
        .await
        .expect("test PostgreSQL reachable");
    let Db::Postgres(pool) = &admin else {
        unreachable!("admin URL is PostgreSQL")
    };
    for sql in [
        format!("CREATE DATABASE {name}"),
        format!("ALTER DATABASE {name} SET default_transaction_isolation TO 'serializable'"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("create test database");
    }
    database_url(&name)
}

/// Kafka settings for a fresh topic on the test broker.
pub fn kafka(topic: &str, brokers: &str) -> KafkaSettings {
    let mut settings = KafkaSettings::new(brokers, topic);
    settings.partitions = 6;
    settings.session_timeout_ms = 6000;
    settings
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("inkwire-test"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Rows in `table`.
pub async fn count(db: &Db, table: &'static str) -> i64 {
    let sql: &'static str = match table {
        "events" => "SELECT COUNT(*) FROM events",
        // The events of user streams (the test users), to tell them from posts' events.
        "user_events" => "SELECT COUNT(*) FROM events WHERE event_type LIKE 'user.%'",
        "outbox" => "SELECT COUNT(*) FROM outbox",
        "rm_posts" => "SELECT COUNT(*) FROM rm_posts",
        "rm_users" => "SELECT COUNT(*) FROM rm_users",
        // The users that have events.
        "user_streams" => {
            "SELECT COUNT(DISTINCT stream_id) FROM events WHERE event_type LIKE 'user.%'"
        }
        "rm_comments" => "SELECT COUNT(*) FROM rm_comments",
        "post_slugs" => "SELECT COUNT(*) FROM post_slugs",
        other => panic!("no count query for {other}"),
    };
    with_db!(db, |pool| sqlx::query(sql)
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get::<i64, _>(0)))
    .expect("count")
}

/// The read tables as comparable text rows, sorted.
pub async fn read_model_dump(db: &Db) -> Vec<String> {
    let posts = with_db!(db, |pool| {
        sqlx::query(
            "SELECT id, author_id, title, slug, body_markdown, tags, status, allow_anonymous_comments, \
             comment_count, version, created_at, updated_at, published_at, edited_at, scheduled_at, \
             reactions_version FROM rm_posts ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .expect("posts")
        .into_iter()
        .map(|r| {
            format!(
                "post {} {} {:?} {} {:?} {:?} {} {} {} {} {:?} {:?} {:?} {:?} {:?} {}",
                r.get::<Uuid, _>(0), r.get::<Uuid, _>(1), r.get::<String, _>(2), r.get::<String, _>(3),
                r.get::<String, _>(4), r.get::<sqlx::types::Json<Vec<String>>, _>(5).0, r.get::<String, _>(6),
                r.get::<bool, _>(7), r.get::<i64, _>(8), r.get::<i64, _>(9),
                r.get::<chrono::DateTime<chrono::Utc>, _>(10), r.get::<chrono::DateTime<chrono::Utc>, _>(11),
                r.get::<Option<chrono::DateTime<chrono::Utc>>, _>(12),
                r.get::<Option<chrono::DateTime<chrono::Utc>>, _>(13),
                r.get::<Option<chrono::DateTime<chrono::Utc>>, _>(14),
                r.get::<i64, _>(15)
            )
        })
        .collect::<Vec<_>>()
    });
    let comments = with_db!(db, |pool| {
        sqlx::query(
            "SELECT id, post_id, parent_id, depth, path, author_id, author_name, body, status, hidden_reason, \
             reply_count, post_version, created_at, updated_at, body_html FROM rm_comments ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .expect("comments")
        .into_iter()
        .map(|r| {
            format!(
                "comment {} {} {:?} {} {} {:?} {:?} {:?} {} {:?} {} {} {:?} {:?} {:?}",
                r.get::<Uuid, _>(0), r.get::<Uuid, _>(1), r.get::<Option<Uuid>, _>(2), r.get::<i64, _>(3),
                r.get::<String, _>(4), r.get::<Option<Uuid>, _>(5), r.get::<String, _>(6), r.get::<String, _>(7),
                r.get::<String, _>(8), r.get::<Option<String>, _>(9), r.get::<i64, _>(10), r.get::<i64, _>(11),
                r.get::<chrono::DateTime<chrono::Utc>, _>(12), r.get::<chrono::DateTime<chrono::Utc>, _>(13),
                r.get::<Option<String>, _>(14)
            )
        })
        .collect::<Vec<_>>()
    });
    let revisions = with_db!(db, |pool| {
        sqlx::query(
            "SELECT post_id, revision, stream_version, title, slug, body_markdown, tags, editor_id, \
             edited_at FROM rm_post_revisions ORDER BY post_id, revision",
        )
        .fetch_all(pool)
        .await
        .expect("revisions")
        .into_iter()
        .map(|r| {
            format!(
                "revision {} {} {} {:?} {} {:?} {:?} {:?} {:?}",
                r.get::<Uuid, _>(0), r.get::<i64, _>(1), r.get::<i64, _>(2), r.get::<String, _>(3),
                r.get::<String, _>(4), r.get::<String, _>(5),
                r.get::<sqlx::types::Json<Vec<String>>, _>(6).0, r.get::<Option<Uuid>, _>(7),
                r.get::<chrono::DateTime<chrono::Utc>, _>(8)
            )
        })
        .collect::<Vec<_>>()
    });
    let reactions = with_db!(db, |pool| {
        sqlx::query(
            "SELECT target_id, user_id, kind, post_id, at FROM rm_reactions \
             ORDER BY target_id, user_id, kind",
        )
        .fetch_all(pool)
        .await
        .expect("reactions")
        .into_iter()
        .map(|r| {
            format!(
                "reaction {} {} {} {} {:?}",
                r.get::<Uuid, _>(0),
                r.get::<Uuid, _>(1),
                r.get::<String, _>(2),
                r.get::<Uuid, _>(3),
                r.get::<chrono::DateTime<chrono::Utc>, _>(4)
            )
        })
        .collect::<Vec<_>>()
    });
    // Numbers of changes (`changed_seq`) follow the order batches commit in, which a replay
    // over several partitions need not repeat: what each row says is compared, not its number.
    let notifications = with_db!(db, |pool| {
        sqlx::query(
            "SELECT user_id, comment_id, post_id, kind, created_at, status, last_change \
             FROM rm_notifications ORDER BY user_id, comment_id",
        )
        .fetch_all(pool)
        .await
        .expect("notifications")
        .into_iter()
        .map(|r| {
            format!(
                "notification {} {} {} {} {:?} {} {}",
                r.get::<Uuid, _>(0),
                r.get::<Uuid, _>(1),
                r.get::<Uuid, _>(2),
                r.get::<String, _>(3),
                r.get::<chrono::DateTime<chrono::Utc>, _>(4),
                r.get::<String, _>(5),
                r.get::<String, _>(6)
            )
        })
        .collect::<Vec<_>>()
    });
    let marks = with_db!(db, |pool| {
        sqlx::query(
            "SELECT user_id, up_to_at, up_to_comment, seq FROM rm_notification_reads ORDER BY user_id",
        )
        .fetch_all(pool)
        .await
        .expect("read marks")
        .into_iter()
        .map(|r| {
            format!(
                "read {} {:?} {} {}",
                r.get::<Uuid, _>(0),
                r.get::<chrono::DateTime<chrono::Utc>, _>(1),
                r.get::<Uuid, _>(2),
                r.get::<i64, _>(3)
            )
        })
        .collect::<Vec<_>>()
    });
    posts
        .into_iter()
        .chain(comments)
        .chain(revisions)
        .chain(reactions)
        .chain(notifications)
        .chain(marks)
        .collect()
}

/// Polls `check` until it holds, failing the test after `within`.
pub async fn eventually<F, Fut>(within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An event of `post` at `version`, stamped now (to the microsecond, as PostgreSQL keeps it and
/// as the services' events are).
pub fn envelope(post: events::PostId, version: i64, event: events::PostEvent) -> events::Envelope {
    use chrono::{DurationRound, TimeDelta};
    events::Envelope {
        meta: events::StoredMeta {
            event_id: Uuid::now_v7(),
            stream_id: post.into(),
            stream_version: version,
            occurred_at: chrono::Utc::now()
                .duration_trunc(TimeDelta::microseconds(1))
                .expect("time"),
            actor: events::Actor::default(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            traceparent: None,
        },
        event: event.into(),
    }
}

/// `envelope` as the log hands it over at `offset` of partition 0 of `posts`.
pub fn log_record(offset: i64, envelope: &events::Envelope) -> infra::log::LogRecord {
    infra::log::LogRecord {
        topic: "posts".into(),
        partition: 0,
        offset,
        key: envelope.meta.stream_id.to_string().into_bytes(),
        payload: envelope.encode(),
        timestamp: Some(envelope.meta.occurred_at),
    }
}
