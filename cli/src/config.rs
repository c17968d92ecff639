//! Settings shared by the service subcommands: every one is a flag with an environment
//! variable (12-factor). `docs/configuration.md` lists them with their defaults.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use infra::db::Db;
use infra::log::{KafkaSettings, LogConfig};

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the event log is.
#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Kafka bootstrap servers (`host:port,...`). Unset: the embedded log in the database.
    #[arg(long, env = "INKWIRE_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topic carrying post events.
    #[arg(long, env = "INKWIRE_TOPIC", default_value = "inkwire.posts")]
    pub topic: String,
    /// Partitions when the topic is created (Kafka) or used (embedded log).
    #[arg(long, env = "INKWIRE_TOPIC_PARTITIONS", default_value_t = 6)]
    pub partitions: i32,
    /// Replication factor when the topic is created (3 in production).
    #[arg(long, env = "INKWIRE_TOPIC_REPLICATION", default_value_t = 1)]
    pub replication_factor: i32,
    /// How long a projector's claims on its partitions outlive its last renewal (a stopped
    /// projector's partitions move this long after). No Inkwire client joins a Kafka consumer
    /// group, so this is not librdkafka's `session.timeout.ms`; the name is kept for deployments.
    #[arg(
        long,
        env = "INKWIRE_KAFKA_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub kafka_session_timeout_ms: u32,
    /// Extra librdkafka properties, `key=value`, repeatable or comma-separated
    /// (e.g. `security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512`).
    #[arg(
        long = "kafka-property",
        env = "INKWIRE_KAFKA_PROPERTIES",
        value_delimiter = ','
    )]
    pub kafka_properties: Vec<String>,
}

impl LogArgs {
    /// The log these arguments name; the embedded log lives in `db`.
    #[must_use]
    pub fn config(&self, db: &Db) -> LogConfig {
        match &self.kafka_brokers {
            Some(brokers) => {
                let mut settings = KafkaSettings::new(brokers, &self.topic);
                settings.partitions = self.partitions;
                settings.replication_factor = self.replication_factor;
                settings.session_timeout_ms = self.kafka_session_timeout_ms;
                settings.properties = self
                    .kafka_properties
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                LogConfig::Kafka(settings)
            }
            None => infra::log::embedded(db.clone(), &self.topic, self.partitions),
        }
    }
}

/// A listen address as people write it: `ADDR:PORT`, `HOST:PORT` (`localhost:8090`), `:PORT` or
/// just `PORT` (both on 127.0.0.1).
///
/// # Errors
/// A message with examples when it names no address.
pub fn listen_addr(raw: &str) -> Result<SocketAddr, String> {
    let raw = raw.trim();
    let port_only = raw.strip_prefix(':').unwrap_or(raw);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let examples =
        "write it as ADDR:PORT or PORT, e.g. 127.0.0.1:8090, localhost:8090, 0.0.0.0:8080 or 8090";
    if let Some((host, port)) = raw.rsplit_once(':')
        && port.parse::<u16>().is_ok()
    {
        return std::net::ToSocketAddrs::to_socket_addrs(&(host, port.parse::<u16>().unwrap_or(0)))
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| format!("cannot resolve `{host}`; {examples}"));
    }
    Err(format!("`{raw}` is no listen address; {examples}"))
}

/// Binds `addr`, saying what to do when it is taken.
///
/// # Errors
/// When the address cannot be listened on, with the address and the flag that changes it.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another inkwire, or another program, is using it)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "cannot listen on {addr}: {e}{hint}; choose another address with --listen ADDR:PORT or INKWIRE_LISTEN (e.g. --listen 127.0.0.1:8090)"
        )
    })
}

/// Where an operator command finds the data: a database URL, or the data directory of
/// `inkwire dev`.
#[derive(Clone, Debug, Args)]
pub struct DatabaseArgs {
    /// The database: `postgresql://…` (PostgreSQL/CockroachDB) or `sqlite://FILE`. Unset: the
    /// data directory's.
    #[arg(long, env = "INKWIRE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The data directory of `inkwire dev` (its `inkwire.db`), when no database URL is given.
    #[arg(long, env = "INKWIRE_DATA_DIR", default_value = "./inkwire-data")]
    pub data_dir: std::path::PathBuf,
}

impl DatabaseArgs {
    /// The SQLite file these arguments name, if any.
    fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match &self.database_url {
            None => Some(self.data_dir.join("inkwire.db")),
            Some(url) => url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .map(|path| std::path::PathBuf::from(path.split('?').next().unwrap_or(path))),
        }
    }

    /// Where the data is, in words (a file, or a URL without its password).
    #[must_use]
    pub fn describe(&self) -> String {
        if let Some(file) = self.sqlite_file() {
            return file.display().to_string();
        }
        let url = self.database_url.as_deref().unwrap_or_default();
        match reqwest::Url::parse(url) {
            Ok(mut parsed) => {
                let _ = parsed.set_password(None);
                parsed.to_string()
            }
            Err(_) => "the database URL given".to_owned(),
        }
    }

    /// Whether these arguments name a SQLite file that is not there (opening it would make a
    /// new, empty one).
    #[must_use]
    pub fn is_missing(&self) -> bool {
        self.sqlite_file().is_some_and(|file| !file.is_file())
    }

    /// Opens a database that must already exist: read-only and operator commands never make
    /// one (a wrong path would otherwise show an empty blog, not an error).
    ///
    /// # Errors
    /// When a SQLite file is missing (named, with the flag that picks another), or the database
    /// cannot be reached.
    pub async fn open_existing(&self, pool: u32) -> anyhow::Result<Db> {
        if self.is_missing() {
            anyhow::bail!(
                "no Inkwire database at {}: point --data-dir (INKWIRE_DATA_DIR) at the directory `inkwire dev` uses (default ./inkwire-data), or give --database-url",
                self.describe()
            );
        }
        self.open(pool).await
    }

    /// Opens the database, making a SQLite one when missing.
    ///
    /// # Errors
    /// When the database cannot be reached or made.
    pub async fn open(&self, pool: u32) -> anyhow::Result<Db> {
        Ok(match &self.database_url {
            Some(url) => Db::connect(url, pool).await?,
            None => Db::open_data_dir(&self.data_dir).await?,
        })
    }

    /// The log these arguments and `log` name: Kafka when brokers are given; else the embedded
    /// log in the database, with the one partition of `inkwire dev` when it is a data directory.
    #[must_use]
    pub fn log(&self, log: &LogArgs, db: &Db) -> LogConfig {
        if log.kafka_brokers.is_none() && self.database_url.is_none() {
            return infra::log::embedded(db.clone(), crate::dev::EMBEDDED_TOPIC, 1);
        }
        log.config(db)
    }
}

/// Settings of a service process.
#[derive(Clone, Debug, Args)]
pub struct ServiceArgs {
    /// Database URL: `postgresql://…` for PostgreSQL/CockroachDB (CockroachDB wants
    /// `?sslmode=verify-full&sslrootcert=…`), or `sqlite://FILE`.
    #[arg(long, env = "INKWIRE_DATABASE_URL")]
    pub database_url: String,
    /// Largest database pool.
    #[arg(long, env = "INKWIRE_DATABASE_POOL", default_value_t = 16)]
    pub database_pool: u32,
    /// HTTP listen address: `ADDR:PORT`, `HOST:PORT` or just `PORT` (on 127.0.0.1).
    #[arg(long, env = "INKWIRE_LISTEN", default_value = "127.0.0.1:8081", value_parser = listen_addr)]
    pub listen: SocketAddr,
    /// The event log.
    #[command(flatten)]
    pub log: LogArgs,
}

impl ServiceArgs {
    /// Connects to the database.
    ///
    /// # Errors
    /// When it cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<Db> {
        Ok(Db::connect(&self.database_url, self.database_pool).await?)
    }
}

/// How access tokens are signed and checked.
#[derive(Clone, Debug, Args)]
pub struct AuthArgs {
    /// Secret that signs access tokens (HS256), shared by every command service and gateway;
    /// at least 32 random bytes in production.
    #[arg(long, env = "INKWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// How long an access token is valid, in seconds.
    #[arg(long, env = "INKWIRE_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub token_ttl_secs: u64,
    /// Secrets of the caller proofs a gateway sends the command service with each command,
    /// comma-separated: the first signs (gateways), every one is accepted (command services),
    /// so a secret is rotated without downtime (docs/security.md). Unset: the JWT secret.
    #[arg(
        long = "caller-secret",
        env = "INKWIRE_CALLER_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub caller_secrets: Vec<String>,
}

impl AuthArgs {
    /// The token keys.
    ///
    /// # Errors
    /// When the secret is too short to be safe.
    pub fn keys(&self) -> anyhow::Result<command_api::auth::TokenKeys> {
        anyhow::ensure!(
            self.jwt_secret.len() >= 32,
            "INKWIRE_JWT_SECRET must be at least 32 characters"
        );
        for secret in &self.caller_secrets {
            anyhow::ensure!(
                secret.len() >= 32,
                "each of INKWIRE_CALLER_SECRETS must be at least 32 characters"
            );
        }
        let callers: Vec<&[u8]> = self.caller_secrets.iter().map(|s| s.as_bytes()).collect();
        Ok(command_api::auth::TokenKeys::new(
            self.jwt_secret.as_bytes(),
            std::time::Duration::from_secs(self.token_ttl_secs),
        )
        .with_caller_secrets(&callers))
    }
}

/// Settings of a command-service process.
#[derive(Clone, Debug, Args)]
pub struct CommandArgs {
    /// Database, listener and log.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Tokens.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Notification email.
    #[command(flatten)]
    pub mail: MailArgs,
}

/// Notification email: off unless an SMTP server is given.
#[derive(Clone, Debug, Args)]
pub struct MailArgs {
    /// The SMTP server that notification email goes through: `smtp://host:port` (plain, a
    /// local relay), `smtp://host:587?tls=required` (STARTTLS), `smtps://user:password@host:465`.
    /// Unset: no email is sent and readers cannot give an address.
    #[arg(long, env = "INKWIRE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of notification email.
    #[arg(
        long,
        env = "INKWIRE_MAIL_FROM",
        default_value = "Inkwire <inkwire@localhost>"
    )]
    pub mail_from: String,
    /// At most one email per reader in this many seconds; what comes in between waits for the
    /// next one.
    #[arg(long, env = "INKWIRE_MAIL_WINDOW_SECS", default_value_t = 900)]
    pub mail_window_secs: u64,
    /// How often the mailer looks for something to send, in milliseconds.
    #[arg(long, env = "INKWIRE_MAIL_POLL_MS", default_value_t = 2000)]
    pub mail_poll_ms: u64,
    /// Where readers reach the site, for the links in emails (`https://blog.example`).
    /// Required with `--smtp-url` for `command-service`; `inkwire dev` defaults to its own
    /// address.
    #[arg(long = "mail-public-url", env = "INKWIRE_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
}

impl MailArgs {
    /// The mailer's settings, or `None` when email is off; links go to `public_url`, or to
    /// `fallback` without one.
    ///
    /// # Errors
    /// When email is on and the settings are unusable or a public URL is missing.
    pub fn config(
        &self,
        fallback: Option<String>,
    ) -> anyhow::Result<Option<command_service::mail::MailConfig>> {
        let Some(smtp_url) = &self.smtp_url else {
            return Ok(None);
        };
        let public_url = self.public_url.clone().or(fallback).ok_or_else(|| {
            anyhow::anyhow!(
                "INKWIRE_SMTP_URL needs INKWIRE_PUBLIC_URL (--mail-public-url): where the links in emails point"
            )
        })?;
        let config = command_service::mail::MailConfig {
            smtp_url: smtp_url.clone(),
            from: self.mail_from.clone(),
            public_url,
            window: std::time::Duration::from_secs(self.mail_window_secs),
            poll: std::time::Duration::from_millis(self.mail_poll_ms.max(50)),
        };
        config.check().map_err(anyhow::Error::msg)?;
        Ok(Some(config))
    }
}

/// Settings of a projection-service process.
#[derive(Clone, Debug, Args)]
pub struct ProjectionArgs {
    /// Database, listener and log.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Consumer group; every projector of one read model shares it.
    #[arg(long, env = "INKWIRE_GROUP", default_value = projection_service::DEFAULT_GROUP)]
    pub group: String,
}

/// Where uploaded images are kept, and how large they may be.
#[derive(Clone, Debug, Args)]
pub struct MediaArgs {
    /// Where uploaded images are kept: a directory (or `file:///dir`), or `s3://bucket[/prefix]`
    /// for S3 or an S3-compatible store such as MinIO, configured by `AWS_ENDPOINT`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ALLOW_HTTP`. Every
    /// gateway of a site must share it. `inkwire dev`: `media/` in the data directory.
    #[arg(long, env = "INKWIRE_MEDIA_STORE")]
    pub media_store: Option<String>,
    /// Largest image upload, in MiB.
    #[arg(long, env = "INKWIRE_MEDIA_MAX_MB", default_value_t = 10)]
    pub media_max_mb: usize,
}

impl MediaArgs {
    /// The media library at `--media-store`, or at `default` without one; `None` when neither.
    ///
    /// # Errors
    /// When the store cannot be opened.
    pub fn library(
        &self,
        default: Option<&std::path::Path>,
    ) -> anyhow::Result<Option<media::MediaLibrary>> {
        let location = match (&self.media_store, default) {
            (Some(location), _) => location.clone(),
            (None, Some(dir)) => dir.display().to_string(),
            (None, None) => return Ok(None),
        };
        let limits = media::Limits {
            max_bytes: self.media_max_mb.max(1).saturating_mul(1 << 20),
            ..media::Limits::default()
        };
        Ok(Some(media::MediaLibrary::open(&location, limits)?))
    }
}

/// Settings of a query-gateway process.
#[derive(Clone, Debug, Args)]
pub struct GatewayArgs {
    /// Database (the read tables), listener and log.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Tokens.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Base URL of a command service (or of a load balancer in front of several).
    #[arg(
        long,
        env = "INKWIRE_COMMAND_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub command_url: String,
    /// Longest `waitForProjection`, in milliseconds.
    #[arg(long, env = "INKWIRE_PROJECTION_WAIT_MS", default_value_t = 5000)]
    pub projection_wait_ms: u64,
    /// Serve schema introspection (turn off in production).
    #[arg(long, env = "INKWIRE_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Origins allowed to call the API from another origin (CORS), comma-separated.
    #[arg(
        long = "cors-origin",
        env = "INKWIRE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Mutations per minute per signed-in user.
    #[arg(long, env = "INKWIRE_MUTATIONS_PER_MINUTE", default_value_t = 600)]
    pub mutations_per_minute: u32,
    /// Mutations per minute per client address without a token (anonymous comments, sign-ups).
    #[arg(
        long,
        env = "INKWIRE_ANONYMOUS_MUTATIONS_PER_MINUTE",
        default_value_t = 30
    )]
    pub anonymous_mutations_per_minute: u32,
    /// Events of slack per subscriber before a slow client is disconnected.
    #[arg(long, env = "INKWIRE_SUBSCRIBER_BUFFER", default_value_t = 1024)]
    pub subscriber_buffer: usize,
    /// Memory for answers to anonymous post reads, in MiB (0: no page cache).
    #[arg(long, env = "INKWIRE_PAGE_CACHE_MB", default_value_t = 64)]
    pub page_cache_mb: usize,
    /// Longest a cached page is served when no event made it stale, in milliseconds.
    #[arg(long, env = "INKWIRE_PAGE_CACHE_MAX_AGE_MS", default_value_t = 5000)]
    pub page_cache_max_age_ms: u64,
    /// The consumer group of the projection service that writes these read tables: the page
    /// cache turns on once it has applied the log up to where this gateway started reading.
    #[arg(long, env = "INKWIRE_GROUP", default_value = projection_service::DEFAULT_GROUP)]
    pub projection_group: String,
    /// Where readers reach the site (`https://blog.example`), for the absolute links of the
    /// Atom feeds, the sitemap and post pages; without it they come from each request's `Host`
    /// and `X-Forwarded-Proto`.
    #[arg(long, env = "INKWIRE_PUBLIC_URL", value_parser = public_url)]
    pub public_url: Option<String>,
    /// The web UI's build (`web/build`): served beside the API, post pages with their
    /// link-preview tags. Without it the gateway serves the API only.
    #[arg(long, env = "INKWIRE_WEB_DIR")]
    pub web_dir: Option<std::path::PathBuf>,
    /// Uploaded images.
    #[command(flatten)]
    pub media: MediaArgs,
}

/// An absolute `http(s)` URL with no query or fragment, without its trailing slash.
fn public_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no query, fragment or user name".to_owned());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl GatewayArgs {
    /// The gateway's behaviour.
    ///
    /// # Errors
    /// When the token secret is unusable.
    pub fn gateway_config(&self) -> anyhow::Result<query_gateway::GatewayConfig> {
        Ok(query_gateway::GatewayConfig {
            wait_timeout: std::time::Duration::from_millis(self.projection_wait_ms),
            introspection: self.introspection,
            subscriber_buffer: self.subscriber_buffer.max(1),
            cors_origins: self.cors_origins.clone(),
            mutations_per_minute: self.mutations_per_minute,
            anonymous_mutations_per_minute: self.anonymous_mutations_per_minute,
            page_cache_bytes: self.page_cache_mb.saturating_mul(1 << 20),
            page_cache_max_age: std::time::Duration::from_millis(self.page_cache_max_age_ms),
            projection_group: self.projection_group.clone(),
            public_url: self.public_url.clone(),
            web_ui: match &self.web_dir {
                Some(dir) => Some(query_gateway::site::web::WebUi::at(dir).ok_or_else(|| {
                    anyhow::anyhow!("no web UI build in {}: no index.html", dir.display())
                })?),
                None => None,
            },
            media: self.media.library(None)?,
            ..query_gateway::GatewayConfig::new(self.auth.keys()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{listen_addr, public_url};

    #[test]
    fn a_listen_address_may_be_a_port_or_a_host_name() {
        assert_eq!(listen_addr("8090"), Ok(([127, 0, 0, 1], 8090).into()));
        assert_eq!(listen_addr(":8090"), Ok(([127, 0, 0, 1], 8090).into()));
        assert_eq!(listen_addr("0.0.0.0:80"), Ok(([0, 0, 0, 0], 80).into()));
        let local = listen_addr("localhost:8090").expect("localhost resolves");
        assert!(local.ip().is_loopback() && local.port() == 8090, "{local}");
        let refused = listen_addr("eighty").expect_err("no address");
        assert!(refused.contains("localhost:8090"), "{refused}");
    }

    #[test]
    fn a_public_url_is_an_absolute_web_address() {
        assert_eq!(
            public_url("https://blog.example/").as_deref(),
            Ok("https://blog.example")
        );
        assert_eq!(
            public_url("http://127.0.0.1:8088/ink/").as_deref(),
            Ok("http://127.0.0.1:8088/ink")
        );
        for bad in [
            "blog.example",
            "ftp://blog.example",
            "https://blog.example/?a=1",
            "https://me@blog.example",
        ] {
            assert!(public_url(bad).is_err(), "{bad} accepted");
        }
    }
}
