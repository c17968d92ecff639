//! The broker stopped while comments are being written: the commands are still accepted (they
//! wait in the outbox), and once the broker is back every accepted comment reaches the read
//! tables. Uses a broker of its own (tansu on its own storage database) so stopping it does not
//! disturb the other tests.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestStack, count};
use infra::db::Db;
use reqwest::StatusCode;

struct Broker {
    port: u16,
    storage: String,
    child: Option<Child>,
}

impl Broker {
    async fn new() -> Self {
        let bin = std::env::var("TANSU_BIN")
            .expect("TANSU_BIN: scripts/test.sh provides the broker binary");
        assert!(
            std::path::Path::new(&bin).exists(),
            "TANSU_BIN {bin} does not exist"
        );
        let schema_path =
            std::env::var("TANSU_PG_SCHEMA").expect("TANSU_PG_SCHEMA: scripts/test.sh sets it");
        let schema = std::fs::read_to_string(&schema_path).expect("tansu schema readable");
        // tansu's storage runs at the server's default isolation, not Inkwire's SERIALIZABLE.
        let name = common::unique("tansu");
        let admin = Db::connect(&common::admin_url(), 2).await.expect("admin");
        let Db::Postgres(admin) = admin else {
            unreachable!()
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create storage db");
        let storage = common::database_url(&name);
        let Db::Postgres(pool) = Db::connect(&storage, 2).await.expect("storage db") else {
            unreachable!()
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(schema))
            .execute(&pool)
            .await
            .expect("tansu schema");
        let storage = storage.replacen("postgres://postgres@", "postgres://postgres:postgres@", 1);
        let mut broker = Self {
            port: common::free_port(),
            storage,
            child: None,
        };
        broker.start().await;
        broker
    }

    async fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(std::env::var("TANSU_BIN").expect("TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                &self.storage,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let port = self.port;
        common::eventually(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL broker");
            child.wait().expect("reaped");
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_accepted_while_the_broker_is_down_and_arrive_once_it_is_back() {
    let mut broker = Broker::new().await;
    let stack = TestStack::distributed(&broker.address()).await;
    let post = stack.published_post().await;
    let (status, _) = stack.comment(&post, "before the outage").await;
    assert_eq!(status, StatusCode::CREATED);
    stack.wait_comments(1, Duration::from_secs(30)).await;

    broker.kill();
    let mut accepted = 1;
    for i in 0..50 {
        let (status, body) = stack
            .comment(&post, &format!("during the outage {i}"))
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "command refused while the broker is down: {body}"
        );
        accepted += 1;
    }
    // Nothing can have reached the log: the events wait in the outbox.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        count(&stack.db, "outbox").await >= 50,
        "events left the outbox without a broker"
    );
    assert_eq!(count(&stack.db, "rm_comments").await, 1);

    broker.start().await;
    stack.wait_comments(accepted, Duration::from_secs(90)).await;
    common::eventually(Duration::from_secs(30), || async {
        count(&stack.db, "outbox").await == 0
    })
    .await;
    stack.stop().await;
}

/// Messages that time out while the broker is down make librdkafka bump the idempotent
/// producer's epoch on its own; tansu then answers every produce of that client with an unknown
/// error, for good (a fault campaign saw one relay fail for four minutes so). The producer
/// starts over with a new client after a timeout, so once the broker is back the next publish
/// goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_publishes_again_after_its_messages_timed_out_in_an_outage() {
    use infra::log::LogConfig;

    let mut broker = Broker::new().await;
    let topic = common::unique("timeout");
    let mut settings = common::kafka(&topic, &broker.address());
    settings
        .properties
        .push(("message.timeout.ms".into(), "2000".into()));
    let log = LogConfig::Kafka(settings);
    log.ensure_topic().await.expect("topic");
    let message = |i: u32| common::numbered("post-0", i);
    let producer = log.producer().expect("producer");
    let (published, error) = producer.publish(&[message(0)]).await;
    assert_eq!((published, error.is_none()), (1, true), "{error:?}");

    broker.kill();
    let (published, error) = producer.publish(&[message(1)]).await;
    assert_eq!((published, error.is_some()), (0, true), "{error:?}");
    broker.start().await;

    // Sent again as the relay does, after its backoff, until the broker answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut errors = Vec::new();
    loop {
        let (published, error) = producer.publish(&[message(1)]).await;
        if published == 1 {
            break;
        }
        errors.push(format!("{error:?}"));
        assert!(
            std::time::Instant::now() < deadline,
            "still refused 30 s after the broker came back: {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    broker.kill();
}
