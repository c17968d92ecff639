//! Shared test support: real PostgreSQL databases and Kafka topics per test (from the servers
//! that `scripts/test.sh` starts), the service stacks booted on port 0, and small HTTP helpers.
//! A missing dependency is a failure, never a skip.
#![allow(dead_code, unused_macros)]

/// Runs each scenario (an `async fn(&TestStack)` in the calling file, which imports `TestStack`)
/// once on the embedded backend and once on PostgreSQL + Kafka.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let stack = super::TestStack::boot(super::common::Backend::Embedded).await;
                super::$scenario(&stack).await;
                stack.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_and_kafka() {
                let stack = super::TestStack::boot(super::common::Backend::Distributed).await;
                super::$scenario(&stack).await;
                stack.stop().await;
            }
        }
    )*};
}

pub mod cluster;
pub mod graphql;
pub mod smtp;

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use testkit::{
    TempDir, admin_url, brokers, count, database_url, envelope, eventually, fresh_database, kafka,
    log_record, read_model_dump, s3_endpoint, unique,
};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use infra::db::Db;
use infra::log::LogConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The author every test post is written by (roles author and moderator), created in every
/// test database by [`ensure_author`].
pub const AUTHOR: &str = "01890000-0000-7000-8000-00000000a0a0";
/// Its username and password.
pub const AUTHOR_LOGIN: (&str, &str) = ("author", "author-password");
/// The token secret every test stack shares.
pub const TEST_SECRET: &str = "inkwire-test-secret-that-is-long-enough";

/// A log message keyed `key` whose payload is `n`, little-endian: for tests that publish
/// straight to the log and read the numbers back.
pub fn numbered(key: &str, n: u32) -> infra::log::OutgoingMessage {
    infra::log::OutgoingMessage {
        key: key.as_bytes().to_vec(),
        payload: n.to_le_bytes().to_vec(),
        headers: Vec::new(),
    }
}

/// The token keys of the test stacks.
pub fn keys() -> command_api::auth::TokenKeys {
    command_api::auth::TokenKeys::new(TEST_SECRET.as_bytes(), Duration::from_secs(3600))
}

/// A valid access token for `user` (as the command service would issue at sign-in).
pub fn token_for(user: &str) -> String {
    let id: Uuid = user.parse().expect("a user id");
    keys().issue(id, "user", "Tester", &[]).expect("token")
}

/// A caller proof for `user` (anonymous when `None`), as a gateway of the test stacks signs it
/// for the command API.
pub fn caller_proof(user: Option<&str>) -> String {
    let user = user.map(|u| u.parse::<Uuid>().expect("a user id"));
    keys()
        .callers()
        .sign(user, Some("127.0.0.1"))
        .expect("proof")
}

/// The value of the Prometheus sample `name` (a metric without labels) at `base`'s `/metrics`,
/// or `None` when the service cannot be reached or does not export it.
pub async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// Creates [`AUTHOR`] in `db` unless it exists.
pub async fn ensure_author(db: &Db) {
    add_user(
        db,
        AUTHOR,
        AUTHOR_LOGIN.0,
        AUTHOR_LOGIN.1,
        &["author", "moderator"],
    )
    .await;
}

/// Creates a user with a fixed id in `db` unless it exists.
pub async fn add_user(db: &Db, id: &str, username: &str, password: &str, roles: &[&str]) {
    let args = inkwire::users::AddArgs {
        username: username.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        display_name: None,
        id: Some(id.parse().expect("uuid")),
        database_url: None,
        data_dir: None,
    };
    if let Err(e) = inkwire::users::add(db, &args, password.to_owned()).await {
        assert!(
            e.to_string().contains("taken"),
            "user {username} not created: {e}"
        );
    }
}

/// An `inkwire dev --demo` process (the binary a newcomer runs), killed when dropped.
pub struct DevServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _data: TempDir,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevServer {
    /// Starts `inkwire dev --demo` with `extra` arguments on a free port and waits until the
    /// demo's first post has its comments in the read tables; a server that exits at start
    /// fails the test at once, rather than at the end of the wait.
    pub async fn demo(extra: &[&std::ffi::OsStr]) -> Self {
        let data = TempDir::new();
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_inkwire"))
            .args(["dev", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data.0)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("inkwire dev starts");
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let http = reqwest::Client::new();
        let url = format!("{}/graphql", server.base);
        let child = &mut server.child;
        let mut exited = None;
        eventually(Duration::from_secs(30), || {
            exited = child.try_wait().ok().flatten();
            let (http, url, gone) = (&http, &url, exited.is_some());
            async move { gone || demo_seeded(http, url).await }
        })
        .await;
        if let Some(status) = exited {
            panic!("inkwire dev --demo exited at start: {status}");
        }
        server
    }
}

/// Whether the demo's first post shows comments through the gateway at `url`.
async fn demo_seeded(http: &reqwest::Client, url: &str) -> bool {
    let Ok(r) = http
        .post(url)
        .json(&json!({"query": "{ post(slug: \"welcome-to-inkwire\") { commentCount } }"}))
        .send()
        .await
    else {
        return false;
    };
    r.json::<Value>().await.is_ok_and(|v| {
        v["data"]["post"]["commentCount"]
            .as_i64()
            .is_some_and(|n| n > 0)
    })
}

/// The stdout of a finished command; panics with its stdout and stderr unless it succeeded.
pub fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {}: {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A free loopback port for a process a test starts, picked below the kernel's ephemeral range.
///
/// A port the kernel picks for `:0` comes from the range it also gives outgoing connections
/// their local ports from: between this call and the server's bind, a connection of another
/// test running alongside can take it (`inkwire dev` exited with EADDRINUSE once in CI). Below
/// the range, a port is only ever taken on purpose, and it is checked free here.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, span) = (low.saturating_sub(12_000).max(1024), 11_000);
    for _ in 0..100 {
        // Random, so that tests in other processes rarely try the same one.
        let offset = (uuid::Uuid::new_v4().as_u128() % span) as u16;
        let port = from + offset;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {from}..{}", from + span as u16);
}

pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}

/// Which backend a stack runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + the embedded log, one process (what `inkwire dev` runs).
    Embedded,
    /// PostgreSQL + Kafka, command and projection services separately.
    Distributed,
}

/// A `multipart/form-data` body with one part `field` holding `bytes`, and its content type.
pub fn multipart(
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = "inkwire-test-boundary-7d1c";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The media store of a test stack: a directory, with the default limits.
pub fn media_library(dir: &std::path::Path) -> media::MediaLibrary {
    media::MediaLibrary::open(dir.to_str().expect("utf-8 path"), media::Limits::default())
        .expect("media directory")
}

/// A running Inkwire, booted in this process on port 0.
pub struct TestStack {
    /// Base URL of the command API.
    pub command_url: String,
    /// Base URL of the read API.
    pub read_url: String,
    /// `http://…/graphql` of the gateway.
    pub graphql_url: String,
    /// The database (event store and read model).
    pub db: Db,
    /// The database URL.
    pub db_url: String,
    /// Kafka topic (distributed only).
    pub topic: String,
    /// Which backend.
    pub backend: Backend,
    /// The projectors' consumer group.
    pub group: String,
    /// The gateway's media store (a directory).
    pub media_dir: std::path::PathBuf,
    /// HTTP client.
    pub http: reqwest::Client,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    _dir: Option<TempDir>,
}

impl TestStack {
    /// Boots `backend`.
    pub async fn boot(backend: Backend) -> Self {
        infra::telemetry::init_tracing(false);
        match backend {
            Backend::Embedded => Self::embedded().await,
            Backend::Distributed => Self::distributed(&brokers()).await,
        }
    }

    /// The one-process stack on SQLite and the embedded log.
    pub async fn embedded() -> Self {
        Self::embedded_in(TempDir::new()).await
    }

    /// `backend` sending notification email as `mail` says.
    pub async fn boot_with_mail(backend: Backend, mail: command_service::mail::MailConfig) -> Self {
        infra::telemetry::init_tracing(false);
        match backend {
            Backend::Embedded => Self::embedded_with(TempDir::new(), Some(mail)).await,
            Backend::Distributed => {
                let db_url = fresh_database().await;
                let topic = unique("posts");
                Self::distributed_with(&db_url, &topic, &brokers(), true, Some(mail)).await
            }
        }
    }

    /// The one-process stack on the data directory `dir` (new, or one a stopped stack left).
    pub async fn embedded_in(dir: TempDir) -> Self {
        Self::embedded_with(dir, None).await
    }

    /// The one-process stack on `dir`, sending notification email when `mail` says so.
    pub async fn embedded_with(
        dir: TempDir,
        mail: Option<command_service::mail::MailConfig>,
    ) -> Self {
        let db = Db::open_data_dir(&dir.0).await.expect("sqlite");
        let log = infra::log::embedded(db.clone(), "inkwire.posts", 1);
        let cancel = CancellationToken::new();
        let stack = inkwire::dev::Stack::start(
            db.clone(),
            log,
            "inkwire-projection",
            &query_gateway::GatewayConfig {
                media: Some(media_library(&dir.0.join("media"))),
                ..query_gateway::GatewayConfig::new(keys())
            },
            mail,
            &cancel,
        )
        .await
        .expect("stack starts");
        ensure_author(&db).await;
        // The author goes in the way `inkwire user add` writes users, through the outbox; the
        // stack's own commands go straight into the log and no longer wake the relay, so wait
        // for its next look: tests start as if the user had existed before the stack.
        eventually(Duration::from_secs(10), || async {
            count(&db, "outbox").await == 0
        })
        .await;
        // The internal command and read APIs, which `inkwire dev` never serves, on a port of
        // their own as the distributed services serve them.
        let (il, iaddr) = listener().await;
        let internal = stack.internal.clone();
        let internal_cancel = cancel.clone();
        let internal_task = tokio::spawn(async move {
            axum::serve(il, internal)
                .with_graceful_shutdown(async move { internal_cancel.cancelled().await })
                .await?;
            Ok(())
        });
        let (l, addr) = listener().await;
        let task = tokio::spawn(stack.serve(l, cancel.clone()));
        let url = format!("http://{addr}");
        let internal_url = format!("http://{iaddr}");
        Self {
            command_url: internal_url.clone(),
            graphql_url: format!("{url}/graphql"),
            read_url: internal_url,
            db_url: format!("sqlite://{}", dir.0.join("inkwire.db").display()),
            db,
            topic: "inkwire.posts".into(),
            backend: Backend::Embedded,
            group: "inkwire-projection".into(),
            media_dir: dir.0.join("media"),
            http: reqwest::Client::new(),
            cancel,
            tasks: vec![task, internal_task],
            _dir: Some(dir),
        }
    }

    /// Command service and projection service on a fresh PostgreSQL database and Kafka topic.
    pub async fn distributed(brokers: &str) -> Self {
        let db_url = fresh_database().await;
        let topic = unique("posts");
        Self::distributed_on(&db_url, &topic, brokers, true).await
    }

    /// Command service (and the projector when `projector`) on `db_url` and `topic`.
    pub async fn distributed_on(db_url: &str, topic: &str, brokers: &str, projector: bool) -> Self {
        Self::distributed_with(db_url, topic, brokers, projector, None).await
    }

    /// [`TestStack::distributed_on`], sending notification email when `mail` says so.
    pub async fn distributed_with(
        db_url: &str,
        topic: &str,
        brokers: &str,
        projector: bool,
        mail: Option<command_service::mail::MailConfig>,
    ) -> Self {
        infra::telemetry::init_tracing(false);
        let db = Db::connect(db_url, 16).await.expect("test database");
        db.migrate().await.expect("migrations");
        ensure_author(&db).await;
        let media_dir = TempDir::new();
        let log = LogConfig::Kafka(kafka(topic, brokers));
        log.ensure_topic().await.expect("topic");
        let cancel = CancellationToken::new();
        let (cl, caddr) = listener().await;
        let mut tasks = vec![tokio::spawn(command_service::serve(
            cl,
            db.clone(),
            log.clone(),
            keys(),
            mail,
            cancel.clone(),
        ))];
        // A group of its own: tests sharing one group would share its partitions and offsets.
        let group = unique("projection");
        let (gl, gaddr) = listener().await;
        tasks.push(tokio::spawn(query_gateway::serve(
            gl,
            db.clone(),
            log.clone(),
            format!("http://{caddr}"),
            query_gateway::GatewayConfig {
                projection_group: group.clone(),
                media: Some(media_library(&media_dir.0)),
                ..query_gateway::GatewayConfig::new(keys())
            },
            cancel.clone(),
        )));
        let (pl, paddr) = listener().await;
        if projector {
            tasks.push(tokio::spawn(projection_service::serve(
                pl,
                db.clone(),
                log,
                group.clone(),
                cancel.clone(),
            )));
        }
        let stack = Self {
            command_url: format!("http://{caddr}"),
            read_url: format!("http://{paddr}"),
            graphql_url: format!("http://{gaddr}/graphql"),
            db,
            db_url: db_url.to_owned(),
            topic: topic.to_owned(),
            backend: Backend::Distributed,
            group,
            media_dir: media_dir.0.clone(),
            http: reqwest::Client::new(),
            cancel,
            tasks,
            _dir: Some(media_dir),
        };
        stack.wait_ready(&stack.command_url).await;
        stack.wait_ready(&format!("http://{gaddr}")).await;
        stack
    }

    async fn wait_ready(&self, base: &str) {
        eventually(Duration::from_secs(20), || async {
            self.http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops every task, waits for them, and hands back the data directory (embedded), so a
    /// new stack can start where this one stopped.
    pub async fn stop_keeping_data(mut self) -> Option<TempDir> {
        self.cancel.cancel();
        for t in std::mem::take(&mut self.tasks) {
            t.await.expect("task joins").expect("task ends cleanly");
        }
        self._dir.take()
    }

    /// POSTs `body` as JSON to `path` of the command API as `user` (if any).
    pub async fn post(&self, path: &str, user: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.command_url))
            .json(&body);
        req = req.header(command_api::auth::CALLER_PROOF_HEADER, caller_proof(user));
        let resp = req.send().await.expect("command API reachable");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates and publishes a post; returns its id.
    pub async fn published_post(&self) -> String {
        let slug = unique("post").replace('_', "-");
        let (status, body) = self
            .post("/v1/posts", Some(AUTHOR), json!({ "title": "A post", "slug": slug, "body_markdown": "Hello *world*", "tags": ["test"] }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["post_id"].as_str().expect("post id").to_owned();
        let (status, body) = self
            .post(&format!("/v1/posts/{id}/publish"), Some(AUTHOR), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    /// Adds a comment; returns (status, body).
    pub async fn comment(&self, post: &str, body: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/posts/{post}/comments"),
            Some(AUTHOR),
            json!({ "body": body }),
        )
        .await
    }

    /// GETs `path` of the read API as JSON.
    pub async fn read(&self, path: &str) -> Value {
        get_json(&self.http, &format!("{}{path}", self.read_url)).await
    }

    /// Number of rows in `table` (a fixed table name).
    pub async fn count(&self, table: &'static str) -> i64 {
        count(&self.db, table).await
    }

    /// Waits until the read model holds `n` comments.
    pub async fn wait_comments(&self, n: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let have = self.count("rm_comments").await;
            if have >= n {
                assert_eq!(have, n, "more comments projected than accepted");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {have} of {n} comments projected in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Comment ids acknowledged per post, by the stream version each acknowledgement carried (the
/// order in which they were accepted). Fails if a command was refused or a version was given twice.
pub fn acknowledged(
    results: &[(String, StatusCode, Value)],
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<i64, String>> {
    let mut accepted: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, String>> =
        std::collections::BTreeMap::new();
    for (post, status, body) in results {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        let version = body["version"].as_i64().expect("version");
        let comment = body["comment_id"].as_str().expect("comment id").to_owned();
        assert!(
            accepted
                .entry(post.clone())
                .or_default()
                .insert(version, comment)
                .is_none(),
            "two comments acknowledged with one version of post {post}"
        );
    }
    accepted
}

impl TestStack {
    /// Asserts that each post's comments in the read model are exactly the acknowledged ones, in
    /// acknowledgement (stream version) order.
    pub async fn assert_read_model_matches(
        &self,
        accepted: &std::collections::BTreeMap<String, std::collections::BTreeMap<i64, String>>,
    ) {
        for (post, comments) in accepted {
            let read = self.read(&format!("/v1/read/posts/{post}/comments")).await;
            let projected: Vec<(i64, String)> = read
                .as_array()
                .expect("array")
                .iter()
                .map(|c| {
                    (
                        c["post_version"].as_i64().expect("version"),
                        c["id"].as_str().expect("id").to_owned(),
                    )
                })
                .collect();
            let expected: Vec<(i64, String)> =
                comments.iter().map(|(v, c)| (*v, c.clone())).collect();
            assert_eq!(
                projected, expected,
                "post {post}: read model differs from what was acknowledged"
            );
        }
    }
}

/// GETs `url` and parses the answer as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .expect("reachable")
        .json()
        .await
        .expect("json")
}
