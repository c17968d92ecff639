//! Database access for both backends. [`Db`] is PostgreSQL/CockroachDB or SQLite; the
//! [`with_db!`](crate::with_db) macro runs one body of sqlx code against whichever it is, so the
//! SQL and the Rust that binds it are written once and type-checked for both drivers.

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use prometheus::{IntCounterVec, Opts};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// How long PostgreSQL (or CockroachDB) keeps a session idle inside a transaction before ending
/// it; a URL that sets `idle_in_transaction_session_timeout` itself keeps its own.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "10s";

/// A connection pool to one of the two supported backends.
#[derive(Clone, Debug)]
pub enum Db {
    /// PostgreSQL or CockroachDB (same wire protocol).
    Postgres(PgPool),
    /// An embedded SQLite file.
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`. The body is compiled once per
/// backend, so everything in it must work with both drivers.
#[macro_export]
macro_rules! with_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::Sqlite($pool) => $body,
        }
    };
}

/// Tells, without a query, whether any process may have committed to a database since the last
/// look, so that an idle poller need not ask the database itself: every SQLite commit writes its
/// file or (in WAL mode) its `-wal` file, which changes their size or modification time. On
/// PostgreSQL, and once every [`ChangeProbe::SAFETY`] in any case (a commit can leave both the
/// same within a clock tick), the answer is "maybe".
#[derive(Debug)]
pub struct ChangeProbe {
    files: Option<[std::path::PathBuf; 2]>,
    last: Option<FileStamp>,
    looked: std::time::Instant,
}

type FileStamp = [(Option<std::time::SystemTime>, u64); 2];

impl ChangeProbe {
    /// The longest a probe says "unchanged" without a real look.
    pub const SAFETY: Duration = Duration::from_secs(5);

    /// A probe of `db`'s files (none for PostgreSQL or an in-memory database).
    #[must_use]
    pub fn new(db: &Db) -> Self {
        let files = match db {
            Db::Postgres(_) => None,
            Db::Sqlite(pool) => {
                let file = pool.connect_options().get_filename().to_path_buf();
                let name = file.to_string_lossy();
                if name.is_empty() || name.contains(":memory:") || name.contains("sqlx-in-memory") {
                    None
                } else {
                    let mut wal = file.clone().into_os_string();
                    wal.push("-wal");
                    Some([file, wal.into()])
                }
            }
        };
        Self {
            files,
            last: None,
            looked: std::time::Instant::now(),
        }
    }

    fn stamp(files: &[std::path::PathBuf; 2]) -> FileStamp {
        files.each_ref().map(|f| match std::fs::metadata(f) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(_) => (None, 0),
        })
    }

    /// Whether this probe looks at files (SQLite) rather than always saying "maybe".
    #[must_use]
    pub fn watches_files(&self) -> bool {
        self.files.is_some()
    }

    /// Whether the database may have changed since the last call that said so: true on the
    /// first call, when the files differ, on PostgreSQL, and after [`ChangeProbe::SAFETY`].
    pub fn maybe_changed(&mut self) -> bool {
        let Some(files) = &self.files else {
            return true;
        };
        let now = Self::stamp(files);
        if self.last == Some(now) && self.looked.elapsed() < Self::SAFETY {
            return false;
        }
        self.last = Some(now);
        self.looked = std::time::Instant::now();
        true
    }
}

/// Why a database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither `postgres://`/`postgresql://` nor `sqlite:`.
    #[error("unsupported database URL scheme (expected postgres://, postgresql:// or sqlite:)")]
    UnsupportedUrl,
    /// sqlx failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// Migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Db {
    /// Connects to `url` (`postgres://…` or `sqlite:…`).
    ///
    /// # Errors
    /// [`DbError`] when the URL is unsupported or the database cannot be reached.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut options = PgConnectOptions::from_str(url)?;
            if !url.contains("idle_in_transaction_session_timeout") {
                // A process paused or hung inside a transaction (SIGSTOP, a frozen VM, a GC
                // pause of the host) must not hold it open: its locks block others, and on
                // PostgreSQL one open SERIALIZABLE transaction keeps every overlapping one's
                // predicate locks alive cluster-wide, until unrelated databases fail with 40001
                // (the fault campaign's paused projectors did this). The server ends such a
                // session; the woken process gets an error and retries.
                options = options.options([(
                    "idle_in_transaction_session_timeout",
                    IDLE_IN_TRANSACTION_TIMEOUT,
                )]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Ok(Self::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(false)
                // 64 MiB of page cache (the default is 2 MiB): a read model of a million
                // comments keeps its hot index pages in memory.
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory");
            // One connection: SQLite allows one writer at a time, and a single connection turns
            // lock contention (SQLITE_BUSY on upgrade) into plain queueing in the pool.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }

    /// Opens (creating if needed) the SQLite database of an embedded data directory.
    ///
    /// # Errors
    /// [`DbError`] when the file cannot be opened.
    pub async fn open_data_dir(dir: &Path) -> Result<Self, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
        let url = format!("sqlite://{}", dir.join("inkwire.db").display());
        Self::connect(&url, 1).await
    }

    /// Applies the migrations of `schema/` for this backend. Never takes advisory locks
    /// (CockroachDB has none); the statements are idempotent, so two services migrating at once
    /// is retried rather than locked against.
    ///
    /// # Errors
    /// [`DbError`] when a migration fails three times.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let attempt = || async {
            match self {
                Db::Postgres(pool) => {
                    let mut m = sqlx::migrate!("../schema/postgres");
                    m.set_locking(false);
                    m.run(pool).await
                }
                Db::Sqlite(pool) => sqlx::migrate!("../schema/sqlite").run(pool).await,
            }
        };
        Ok(attempt
            .retry(
                ExponentialBuilder::default()
                    .with_max_times(3)
                    .with_jitter(),
            )
            .await?)
    }

    /// A pool for readers that should not queue behind writers: for SQLite, its own connection
    /// to the same file (WAL lets readers work while the one writer writes; a reader sees every
    /// transaction committed before its statement began), opened on first use; for PostgreSQL
    /// the same pool, which already has several connections. An in-memory SQLite database is
    /// private to its connection, so it gets the same pool too.
    #[must_use]
    pub fn reader(&self) -> Db {
        self.readers(1)
    }

    /// [`Db::reader`] with up to `connections` SQLite connections, for readers that run many
    /// statements at once (the gateway's queries): WAL lets them all read while the writer
    /// writes, where the one shared connection made every read queue behind every write.
    #[must_use]
    pub fn readers(&self, connections: u32) -> Db {
        match self {
            Db::Postgres(_) => self.clone(),
            Db::Sqlite(pool) => {
                let options = pool.connect_options();
                let file = options.get_filename().to_string_lossy();
                if file.contains(":memory:") || file.contains("sqlx-in-memory") {
                    return self.clone();
                }
                let options = (*options).clone();
                Db::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(connections.max(1))
                        .acquire_timeout(Duration::from_secs(30))
                        .connect_lazy_with(options),
                )
            }
        }
    }

    /// Whether this is the embedded backend.
    #[must_use]
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Db::Sqlite(_))
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// The sqlx error when it does not.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_db!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))
    }
}

/// Whether `err` is a transient conflict that a retry of the whole transaction resolves:
/// SQLSTATE 40001 (serialization failure, CockroachDB's normal retry signal), 40P01 (deadlock),
/// or SQLite's busy/locked.
#[must_use]
pub fn is_retryable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001") | Some("40P01") | Some("5") | Some("6") | Some("517")
        ),
        _ => false,
    }
}

/// Whether `err` is a unique or primary-key violation, and on which constraint when known.
#[must_use]
pub fn unique_violation(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(
            db.constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned()),
        ),
        _ => None,
    }
}

/// Whether `err` means the database cannot be reached or will not serve now (so the caller
/// should answer 503 and the client may retry): I/O and pool errors, the SQLSTATEs of a
/// server that is shutting down, refusing connections or out of them (08xxx, 57P0x, 53300,
/// and 55000 for a database that does not accept connections), and a transient conflict
/// ([`is_retryable`]) that outlived its retries, which is as passing as an outage.
#[must_use]
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "55000"
            }) || is_retryable(err)
        }
        _ => false,
    }
}

/// Runs a transaction body, retrying it with jittered exponential backoff while it fails with a
/// retryable error ([`is_retryable`]). The body must be safe to run again from the start: open
/// its transaction inside, commit at its end.
///
/// # Errors
/// The body's last error, once it is not retryable or the retries are spent.
pub async fn retry_tx<T, E, F, Fut>(body: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: TxError + std::fmt::Debug,
{
    retry(body, "transaction", Duration::from_millis(500), 30).await
}

/// Runs a read, retrying it like [`retry_tx`] but on a budget fit for a request someone waits
/// on (about a second). At SERIALIZABLE, and always on CockroachDB, a read-only statement can be
/// the one chosen to abort (SQLSTATE 40001) when it overlaps writers; the read is side-effect
/// free, so running it again is always safe. A conflict that outlives the budget is returned:
/// callers answer "unavailable, try again" for it ([`is_unavailable`]).
///
/// # Errors
/// The read's last error, once it is not retryable or the retries are spent.
pub async fn retry_read<T, F, Fut>(read: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    retry(read, "read", Duration::from_millis(100), 12).await
}

/// How many times this process ran a transaction or a read again after a transient conflict,
/// by `kind` (`transaction`, `read`): `inkwire_db_conflict_retries_total`, on every service's
/// `/metrics`. On CockroachDB a rising rate is the sign of contention worth looking into.
pub fn conflict_retries() -> &'static IntCounterVec {
    static RETRIES: OnceLock<IntCounterVec> = OnceLock::new();
    RETRIES.get_or_init(|| {
        let retries = IntCounterVec::new(
            Opts::new(
                "inkwire_db_conflict_retries_total",
                "Transactions and reads run again after a serialization conflict (SQLSTATE \
                 40001/40P01, SQLite busy)",
            ),
            &["kind"],
        )
        .expect("valid metric definition");
        // Both series exist from the start, at 0, so a rate is defined before the first retry.
        for kind in ["transaction", "read"] {
            retries.with_label_values(&[kind]);
        }
        retries
    })
}

async fn retry<T, E, F, Fut>(
    body: F,
    kind: &'static str,
    max_delay: Duration,
    times: usize,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: TxError + std::fmt::Debug,
{
    body.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(2))
            .with_max_delay(max_delay)
            .with_max_times(times)
            .with_jitter(),
    )
    .when(TxError::is_retryable)
    .notify(|e: &E, wait| {
        conflict_retries().with_label_values(&[kind]).inc();
        tracing::debug!(error = ?e, ?wait, kind, "retrying after a serialization conflict");
    })
    .await
}

/// An error that may be a transient transaction conflict, worth retrying from the start.
pub trait TxError {
    /// Whether retrying the whole transaction may succeed.
    fn is_retryable(&self) -> bool;
}

impl TxError for sqlx::Error {
    fn is_retryable(&self) -> bool {
        is_retryable(self)
    }
}

/// Runs `f` on `conn`'s own SQLite handle through rusqlite, inside whatever transaction `conn`
/// has open. SQLite runs in process: a statement stepped in place costs no round trip, where
/// sqlx's driver copies every value and hands every statement and row to its worker thread and
/// back, which made it the embedded projector's largest cost. For the hot loops only (comment
/// inserts, log reads); `f` blocks its thread, so callers keep each call to a bounded amount
/// of work.
///
/// # Errors
/// The outer error when sqlx cannot hand the connection over; the inner one is `f`'s.
pub async fn sqlite_in_place<T>(
    conn: &mut sqlx::SqliteConnection,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<rusqlite::Result<T>, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is an open connection that sqlx's worker leaves alone while `handle`
    // is held; `from_handle` never closes it, and `db` is dropped before `handle`.
    let db = match unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
        Ok(db) => db,
        Err(e) => return Ok(Err(e)),
    };
    let out = f(&db);
    drop(db);
    drop(handle);
    Ok(out)
}
