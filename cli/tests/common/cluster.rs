//! Inkwire as separate processes on loopback, the way it is deployed: the `inkwire` binary's
//! command service, projection service and several query gateways on a fresh PostgreSQL database
//! and Kafka topic, behind a real nginx rendered from `nginx/inkwire.conf.template`. Processes
//! can be SIGKILLed and restarted on the same port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{TempDir, brokers, eventually, free_port, fresh_database, unique};

/// Where a cluster's gateways keep images.
pub enum MediaStore {
    /// One directory all gateways share.
    SharedDirectory,
    /// A fresh bucket on the test run's S3-compatible API, reached with the `AWS_*` settings
    /// compose.yml gives the gateways for MinIO.
    S3Bucket,
}

/// A child process, SIGKILLed when dropped.
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx's master process, stopped with SIGTERM when dropped: SIGKILL would leave its workers
/// running, orphaned, still listening on the test's port.
pub struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The running cluster.
pub struct Cluster {
    /// PostgreSQL URL of its database.
    pub db_url: String,
    /// Its Kafka topic.
    pub topic: String,
    /// The projector's consumer group, which the gateways' page caches wait for.
    pub group: String,
    /// Command service port.
    pub command_port: u16,
    /// Projection service port.
    pub projector_port: u16,
    /// Gateway ports, and their processes while running.
    pub gateways: Vec<(u16, Option<Proc>)>,
    /// nginx's port.
    pub nginx_port: u16,
    /// HTTP client.
    pub http: reqwest::Client,
    procs: Vec<Proc>,
    nginx: Option<Nginx>,
    media: Vec<(String, String)>,
    dir: TempDir,
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_inkwire"))
}

/// Copies the directory tree `from` to `to` (a missing `from` copies nothing: only the web UI
/// test needs the build, and it says so).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(from) else {
        return;
    };
    std::fs::create_dir_all(to).expect("web root");
    for entry in entries {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")
}

fn nginx_bin() -> String {
    std::env::var("NGINX_BIN").unwrap_or_else(|_| "nginx".to_owned())
}

impl Cluster {
    /// Starts a command service, a projector, `gateways` gateways and nginx; waits until all are
    /// ready.
    pub async fn start(gateways: usize) -> Self {
        Self::start_with(gateways, MediaStore::SharedDirectory).await
    }

    /// [`Cluster::start`] with the gateways' images kept in `media`.
    pub async fn start_with(gateways: usize, media: MediaStore) -> Self {
        let dir = TempDir::new();
        let media = match media {
            MediaStore::SharedDirectory => vec![(
                "INKWIRE_MEDIA_STORE".to_owned(),
                dir.0.join("media").display().to_string(),
            )],
            MediaStore::S3Bucket => {
                let endpoint = super::s3_endpoint();
                let bucket = unique("media").replace('_', "-");
                let created = reqwest::Client::new()
                    .put(format!("{endpoint}/{bucket}"))
                    .send()
                    .await
                    .expect("the S3 API answers");
                assert!(
                    created.status().is_success(),
                    "bucket {bucket}: {created:?}"
                );
                [
                    ("INKWIRE_MEDIA_STORE", format!("s3://{bucket}/images")),
                    ("AWS_ENDPOINT", endpoint),
                    ("AWS_ALLOW_HTTP", "true".to_owned()),
                    ("AWS_REGION", "us-east-1".to_owned()),
                    ("AWS_ACCESS_KEY_ID", "inkwire-test".to_owned()),
                    ("AWS_SECRET_ACCESS_KEY", "inkwire-test-secret".to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
            }
        };
        let mut cluster = Self {
            db_url: fresh_database().await,
            topic: unique("posts"),
            group: unique("projection"),
            command_port: free_port(),
            projector_port: free_port(),
            gateways: (0..gateways).map(|_| (free_port(), None)).collect(),
            nginx_port: free_port(),
            http: reqwest::Client::new(),
            procs: Vec::new(),
            nginx: None,
            media,
            dir,
        };
        {
            let db = infra::db::Db::connect(&cluster.db_url, 2)
                .await
                .expect("cluster database");
            db.migrate().await.expect("migrations");
            super::ensure_author(&db).await;
        }
        let command = cluster.spawn("command", &["command-service"], cluster.command_port, &[]);
        cluster.procs.push(command);
        cluster.wait_ready(cluster.command_port).await;
        let projector = cluster.spawn(
            "projector",
            &["projection-service"],
            cluster.projector_port,
            &[],
        );
        cluster.procs.push(projector);
        for i in 0..gateways {
            cluster.start_gateway(i).await;
        }
        cluster.start_nginx().await;
        cluster
    }

    fn spawn(&self, name: &str, args: &[&str], port: u16, extra: &[(&str, &str)]) -> Proc {
        let log = |suffix: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.0.join(format!("{name}.{suffix}")))
                .expect("log file")
        };
        let mut cmd = Command::new(binary());
        cmd.args(args)
            .env("INKWIRE_DATABASE_URL", &self.db_url)
            .env("INKWIRE_DATABASE_POOL", "8")
            .env("INKWIRE_KAFKA_BROKERS", brokers())
            .env("INKWIRE_TOPIC", &self.topic)
            // The projector's group, and the one the gateways' page caches wait for.
            .env("INKWIRE_GROUP", &self.group)
            .env("INKWIRE_TOPIC_PARTITIONS", "6")
            .env("INKWIRE_KAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("INKWIRE_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "INKWIRE_COMMAND_URL",
                format!("http://127.0.0.1:{}", self.command_port),
            )
            .env("INKWIRE_JWT_SECRET", super::TEST_SECRET)
            // The tests write hundreds of comments a second from one address.
            .env("INKWIRE_MUTATIONS_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log("out"))
            .stderr(log("err"));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Proc(cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}")))
    }

    async fn wait_ready(&self, port: u16) {
        let url = format!("http://127.0.0.1:{port}/readyz");
        let http = self.http.clone();
        eventually(Duration::from_secs(30), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                http.get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
    }

    /// Starts gateway `i` (again) on its port and waits until it is ready.
    pub async fn start_gateway(&mut self, i: usize) {
        let port = self.gateways[i].0;
        // The UI's build, as the release image has it: gateways answer post pages from it.
        let web = PathBuf::from(manifest_dir()).join("../web/build");
        let web = web.display().to_string();
        // One image store shared by every gateway.
        let mut settings = vec![("INKWIRE_WEB_DIR", web.as_str())];
        settings.extend(self.media.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let proc = self.spawn(&format!("gateway{i}"), &["query-gateway"], port, &settings);
        self.gateways[i].1 = Some(proc);
        self.wait_ready(port).await;
    }

    /// The gateways' media setting `key` (`INKWIRE_MEDIA_STORE`, `AWS_ENDPOINT`, …).
    pub fn media_setting(&self, key: &str) -> Option<String> {
        self.media
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// SIGKILLs gateway `i`.
    pub fn kill_gateway(&mut self, i: usize) {
        self.gateways[i].1 = None;
    }

    async fn start_nginx(&mut self) {
        let template = std::fs::read_to_string(
            PathBuf::from(manifest_dir()).join("../nginx/inkwire.conf.template"),
        )
        .expect("nginx/inkwire.conf.template");
        let prefix = self.dir.0.join("nginx");
        std::fs::create_dir_all(&prefix).expect("nginx dir");
        // Deployed like a release: a copy nginx's workers (`nobody` under root) can read, which
        // the checkout may not be (a private temporary directory in CI).
        let web_root = prefix.join("web");
        copy_dir(
            &PathBuf::from(manifest_dir()).join("../web/build"),
            &web_root,
        );
        let upstreams: String = self
            .gateways
            .iter()
            .map(|(port, _)| {
                format!("server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n        ")
            })
            .collect();
        let conf = template
            .replace("__LISTEN__", &format!("127.0.0.1:{}", self.nginx_port))
            .replace("__UPSTREAMS__", upstreams.trim_end())
            .replace("__PREFIX__", &prefix.display().to_string())
            .replace("__WEB_ROOT__", &web_root.display().to_string());
        let path = prefix.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let err = std::fs::File::create(self.dir.0.join("nginx.err")).expect("log");
        let child = Command::new(nginx_bin())
            .args([
                "-p",
                &prefix.display().to_string(),
                "-c",
                &path.display().to_string(),
                "-g",
                "daemon off;",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("nginx runs (scripts/test-deps.sh installs it)");
        self.nginx = Some(Nginx(child));
        let url = format!("http://127.0.0.1:{}/healthz", self.nginx_port);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !self
            .http
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not start:\n{}",
                self.log_tail("nginx")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://…/graphql` through nginx.
    pub fn nginx_url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql", self.nginx_port)
    }

    /// `ws://…/graphql` through nginx.
    pub fn nginx_ws(&self) -> String {
        format!("ws://127.0.0.1:{}/graphql", self.nginx_port)
    }

    /// `http://…/graphql` of gateway `i` directly.
    pub fn gateway_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}/graphql", self.gateways[i].0)
    }

    /// Open subscriptions on all running gateways, from their `/metrics`.
    pub async fn open_subscriptions(&self) -> i64 {
        let mut total = 0;
        for i in 0..self.gateways.len() {
            total += self.open_subscriptions_on(i).await;
        }
        total
    }

    /// Open subscriptions on gateway `i` (0 while it is down).
    pub async fn open_subscriptions_on(&self, i: usize) -> i64 {
        let (port, proc) = &self.gateways[i];
        if proc.is_none() {
            return 0;
        }
        let base = format!("http://127.0.0.1:{port}");
        super::metric(&self.http, &base, "inkwire_gateway_subscriptions_open")
            .await
            .map_or(0, |v| v as i64)
    }

    /// The tail of a process's stderr, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.0.join(format!("{name}.err"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}
