//! `inkwire export` and `inkwire import`: a blog's whole event log as newline-delimited JSON
//! (docs/import-export.md), and back into another Inkwire, on either backend. The export is
//! the log itself, so it loses nothing; users' password hashes are left out unless asked for.
//! `export --markdown DIR` writes one markdown file per post instead, for people leaving.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clap::Args;
use command_service::store::{Append, CredentialChange, EventStore, SlugChange, slug_change};
use events::{Envelope, Event, RawEvent, StreamId, UserEvent};
use futures::TryStreamExt;
use infra::db::Db;
use infra::with_db;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use uuid::Uuid;

use crate::config::DatabaseArgs;

/// The format's name and version, in every export's first line.
pub const FORMAT: &str = "inkwire-export";
/// The version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What an imported account gets as its password hash without `--with-credentials`: not a
/// PHC string, so no password ever matches it.
const NO_PASSWORD: &str = "!imported-without-credentials";

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// When it was written.
    pub exported_at: DateTime<Utc>,
    /// Whether password hashes are in it.
    pub credentials: bool,
}

/// A user's password hash, written before the events when asked for.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    /// The user.
    pub user_id: Uuid,
    /// Their argon2id PHC string.
    pub password_hash: String,
}

#[derive(Debug, Deserialize)]
struct CredentialsLine {
    credentials: Credentials,
}

/// `inkwire export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where the blog is.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Include users' password hashes, so that they can sign in after an import. Keep such a
    /// file as safe as the database.
    #[arg(long)]
    pub with_credentials: bool,
    /// Write one markdown file per post (with front matter) into this directory instead of the
    /// event log.
    #[arg(long, value_name = "DIR")]
    pub markdown: Option<PathBuf>,
}

/// `inkwire import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read (`-`: stdin): an `inkwire export`, a WordPress export (WXR XML) or a
    /// Disqus comment export (XML), told apart by their content.
    pub file: PathBuf,
    /// Where to import into.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Events per transaction.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Events written.
    pub written: u64,
    /// Events already there (a run over a file imported before, in whole or in part).
    pub skipped: u64,
    /// Streams in the file.
    pub streams: u64,
}

/// Writes the whole event log of `db` to `out`, in the order events were given ids (each
/// stream in version order), read in one statement so that it is one consistent snapshot.
///
/// # Errors
/// The database or writer error.
pub async fn export(
    db: &Db,
    out: &mut (dyn Write + Send),
    with_credentials: bool,
) -> anyhow::Result<u64> {
    let header = Header {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        exported_at: Utc::now(),
        credentials: with_credentials,
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    if with_credentials {
        let rows: Vec<(Uuid, String)> = with_db!(db, |pool| {
            sqlx::query_as("SELECT user_id, password_hash FROM user_credentials ORDER BY user_id")
                .fetch_all(pool)
                .await
        })?;
        for (user_id, password_hash) in rows {
            serde_json::to_writer(
                &mut *out,
                &serde_json::json!({ "credentials": Credentials { user_id, password_hash } }),
            )?;
            out.write_all(b"\n")?;
        }
    }
    let mut written = 0u64;
    let result: anyhow::Result<()> = with_db!(db, |pool| {
        let mut rows = sqlx::query(
            "SELECT stream_id, version, event_id, event_type, event_version, data, meta, occurred_at \
             FROM events ORDER BY event_id",
        )
        .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            let Json(meta): Json<Value> = row.try_get("meta")?;
            let Json(data): Json<Value> = row.try_get("data")?;
            let occurred_at: DateTime<Utc> = row.try_get("occurred_at")?;
            let mut raw = serde_json::json!({
                "event_id": row.try_get::<Uuid, _>("event_id")?,
                "stream_id": row.try_get::<Uuid, _>("stream_id")?,
                "stream_version": row.try_get::<i64, _>("version")?,
                "occurred_at": occurred_at,
                "event_type": row.try_get::<String, _>("event_type")?,
                "event_version": row.try_get::<i64, _>("event_version")?,
                "data": data,
            });
            if let (Some(raw), Value::Object(meta)) = (raw.as_object_mut(), meta) {
                raw.extend(meta);
            }
            // Through the type, so the line is exactly what the log carries.
            let raw: RawEvent = serde_json::from_value(raw)?;
            out.write_all(&raw.encode())?;
            out.write_all(b"\n")?;
            written += 1;
        }
        Ok(())
    });
    result?;
    out.flush()?;
    Ok(written)
}

/// One line of an export that is an event, decoded.
struct Line {
    number: usize,
    envelope: Envelope,
}

/// A checked export: its events, and the password hashes by user it carried.
type Export = (Vec<Line>, HashMap<Uuid, String>);

/// A post as the markdown export writes it: slug, title, body, tags, status, publication,
/// creation, author's name.
type PostFile = (
    String,
    String,
    String,
    Json<Vec<String>>,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    String,
);

/// Reads and checks a whole export: every line decodes, every stream's versions follow on
/// from what `heads` (the target's streams: version and last event id) hold. Errors name the
/// line; nothing is written by the caller unless this succeeds.
fn read_export(
    input: impl BufRead,
    heads: &HashMap<Uuid, (i64, Uuid)>,
) -> Result<Export, Vec<String>> {
    let mut errors = Vec::new();
    let mut lines = Vec::new();
    let mut credentials = HashMap::new();
    let mut next: HashMap<Uuid, i64> = HashMap::new();
    let mut header_seen = false;
    for (i, line) in input.lines().enumerate() {
        let number = i + 1;
        if errors.len() >= 20 {
            errors.push("… (more errors not shown)".to_owned());
            break;
        }
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                errors.push(format!("line {number}: unreadable: {e}"));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            match serde_json::from_str::<Header>(&line) {
                Ok(h) if h.format == FORMAT && h.version == FORMAT_VERSION => continue,
                Ok(h) => {
                    errors.push(format!(
                        "line {number}: a {} export of version {}; this Inkwire reads {FORMAT} version {FORMAT_VERSION}",
                        h.format, h.version
                    ));
                    break;
                }
                Err(_) => {
                    errors.push(format!(
                        "line {number}: not an Inkwire export (its first line must be the {FORMAT} header)"
                    ));
                    break;
                }
            }
        }
        if line.trim_start().starts_with("{\"credentials\"") {
            match serde_json::from_str::<CredentialsLine>(&line) {
                Ok(c) => {
                    credentials.insert(c.credentials.user_id, c.credentials.password_hash);
                }
                Err(e) => errors.push(format!("line {number}: bad credentials line: {e}")),
            }
            continue;
        }
        let envelope = match Envelope::decode(line.as_bytes()) {
            Ok(envelope) => envelope,
            Err(e) => {
                errors.push(format!("line {number}: {e}"));
                continue;
            }
        };
        let stream = envelope.meta.stream_id.0;
        let version = envelope.meta.stream_version;
        let (head, head_id) = heads.get(&stream).copied().unwrap_or((0, Uuid::nil()));
        if version == head && envelope.meta.event_id != head_id {
            errors.push(format!(
                "line {number}: stream {stream} version {version} is another event in the database: \
                 this is not the blog that was imported there"
            ));
            continue;
        }
        // A stream starts at 1, or right after what the database holds (comments imported
        // into posts that are there).
        let expected = next
            .get(&stream)
            .copied()
            .unwrap_or(if version == head + 1 { version } else { 1 });
        if version != expected {
            errors.push(format!(
                "line {number}: stream {stream} version {version} where version {expected} was due"
            ));
        }
        next.insert(stream, version + 1);
        lines.push(Line { number, envelope });
    }
    if !header_seen {
        errors.push("line 1: empty file, not an Inkwire export".to_owned());
    }
    if errors.is_empty() {
        Ok((lines, credentials))
    } else {
        Err(errors)
    }
}

/// Each stream's last version and event id in `db`.
async fn heads(db: &Db) -> anyhow::Result<HashMap<Uuid, (i64, Uuid)>> {
    let rows: Vec<(Uuid, i64, Uuid)> = with_db!(db, |pool| {
        sqlx::query_as(
            "SELECT e.stream_id, e.version, e.event_id FROM events e \
             WHERE e.version = (SELECT MAX(x.version) FROM events x WHERE x.stream_id = e.stream_id)",
        )
        .fetch_all(pool)
        .await
    })?;
    Ok(rows.into_iter().map(|(s, v, id)| (s, (v, id))).collect())
}

/// A user's account as the write model keeps it, replayed from their events.
#[derive(Default)]
struct Account {
    roles: Vec<String>,
}

/// Imports an export read from `input` into `db`, appending its events (with their outbox rows,
/// slug reservations and accounts, as the command service does) in transactions of `batch`
/// events. Events the database already holds are skipped, so a run stopped half-way is resumed
/// by running it again. A bad file is refused whole, with line-numbered errors.
///
/// # Errors
/// The file's errors, or the database's.
pub async fn import(
    db: &Db,
    input: impl BufRead,
    batch: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Imported> {
    db.migrate().await?;
    let heads = heads(db).await?;
    let (lines, credentials) = read_export(input, &heads)
        .map_err(|errors| anyhow::anyhow!("nothing was imported:\n  {}", errors.join("\n  ")))?;
    let store = EventStore::new(db.clone());
    let mut accounts: HashMap<Uuid, Account> = HashMap::new();
    let mut appends: Vec<Append> = Vec::with_capacity(batch);
    let mut done = Imported {
        streams: lines
            .iter()
            .map(|l| l.envelope.meta.stream_id.0)
            .collect::<std::collections::HashSet<_>>()
            .len() as u64,
        ..Imported::default()
    };
    progress.set_length(lines.len() as u64);
    for Line { number, envelope } in lines {
        let stream = envelope.meta.stream_id.0;
        let credentials = match &envelope.event {
            Event::User(e) => {
                let account = accounts.entry(stream).or_default();
                account_change(e, account, credentials.get(&stream))
            }
            Event::Post(_) => None,
        };
        let slug = match &envelope.event {
            Event::Post(e) => slug_change(e),
            Event::User(_) => SlugChange::default(),
        };
        if envelope.meta.stream_version <= heads.get(&stream).map_or(0, |h| h.0) {
            done.skipped += 1;
            progress.inc(1);
            continue;
        }
        appends.push(Append {
            stream_id: StreamId(stream),
            events: vec![envelope],
            slug,
            credentials,
        });
        if appends.len() >= batch {
            flush(&store, &mut appends, number, &mut done, progress).await?;
        }
    }
    flush(&store, &mut appends, 0, &mut done, progress).await?;
    progress.finish_and_clear();
    Ok(done)
}

/// `events` as an export without credentials, for [`import`] to check and append.
fn as_export(events: &[Envelope]) -> anyhow::Result<Vec<u8>> {
    let mut file = serde_json::to_vec(&Header {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        exported_at: Utc::now(),
        credentials: false,
    })?;
    file.push(b'\n');
    for envelope in events {
        file.extend_from_slice(&envelope.encode());
        file.push(b'\n');
    }
    Ok(file)
}

/// Imports a WordPress export (WXR) into `db`: its authors, posts and approved comments as
/// events ([`crate::wxr`]), then as [`import`] does. Errors name the file's lines; a file with
/// any is refused whole. Importing the same file again adds nothing.
///
/// # Errors
/// The file's errors, or the database's.
pub async fn import_wxr(
    db: &Db,
    text: &str,
    batch: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Imported> {
    let events = crate::wxr::events(text)
        .map_err(|errors| anyhow::anyhow!("nothing was imported:\n  {}", errors.join("\n  ")))?;
    let file = as_export(&events)?;
    import(db, file.as_slice(), batch, progress).await
}

/// Imports a Disqus comment export into `db`: its comments on the posts whose slugs its
/// threads' URLs end in ([`crate::disqus`]), then as [`import`] does. Answers what was done and
/// the URLs of threads that matched no post.
///
/// # Errors
/// The file's errors (by line; nothing written), or the database's.
pub async fn import_disqus(
    db: &Db,
    text: &str,
    batch: usize,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<(Imported, Vec<String>)> {
    db.migrate().await?;
    let (events, unmatched) = crate::disqus::events(db, text).await?;
    let file = as_export(&events)?;
    Ok((
        import(db, file.as_slice(), batch, progress).await?,
        unmatched,
    ))
}

async fn flush(
    store: &EventStore,
    appends: &mut Vec<Append>,
    line: usize,
    done: &mut Imported,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    if appends.is_empty() {
        return Ok(());
    }
    store.append(appends).await.map_err(|e| {
        let at = if line > 0 {
            format!(" (a batch ending at line {line})")
        } else {
            String::new()
        };
        anyhow::anyhow!(
            "import stopped{at}: {e}; what was written before stays, and running it again resumes"
        )
    })?;
    done.written += appends.len() as u64;
    progress.inc(appends.len() as u64);
    appends.clear();
    Ok(())
}

/// What a user event changes in the account, with `hash` the password hash the export carried.
fn account_change(
    event: &UserEvent,
    account: &mut Account,
    hash: Option<&String>,
) -> Option<CredentialChange> {
    match event {
        UserEvent::Registered(e) => {
            account.roles = vec!["reader".to_owned()];
            Some(CredentialChange::Register {
                username: e.username.clone(),
                display_name: e.display_name.clone(),
                password_hash: hash.cloned().unwrap_or_else(|| NO_PASSWORD.to_owned()),
                roles: account.roles.clone(),
            })
        }
        UserEvent::RoleGranted(e) => {
            if !account.roles.contains(&e.role) {
                account.roles.push(e.role.clone());
            }
            Some(CredentialChange::Roles(account.roles.clone()))
        }
        UserEvent::RoleRevoked(e) => {
            account.roles.retain(|r| *r != e.role);
            Some(CredentialChange::Roles(account.roles.clone()))
        }
        UserEvent::DisplayNameChanged(e) => {
            Some(CredentialChange::DisplayName(e.display_name.clone()))
        }
        UserEvent::Disabled(_) => Some(CredentialChange::Disabled),
        // The hash the export carries is the latest: it was given at registration.
        UserEvent::PasswordChanged(_)
        | UserEvent::MediaUploaded(_)
        | UserEvent::NotificationsRead(_) => None,
    }
}

/// Writes every post that is not deleted as `DIR/<slug>.md`, with YAML front matter, from the
/// read tables. Returns how many.
///
/// # Errors
/// The database or file error.
pub async fn export_markdown(db: &Db, dir: &std::path::Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let rows: Vec<PostFile> = with_db!(db, |pool| {
        sqlx::query_as(
                "SELECT p.slug, p.title, p.body_markdown, p.tags, p.status, p.published_at, p.created_at, \
                 COALESCE(u.display_name, '') FROM rm_posts p LEFT JOIN rm_users u ON u.id = p.author_id \
                 WHERE p.status <> 'deleted' ORDER BY p.created_at",
            )
            .fetch_all(pool)
            .await
    })?;
    let mut n = 0;
    for (slug, title, body, Json(tags), status, published_at, created_at, author) in rows {
        let mut text = String::from("---\n");
        text.push_str(&format!("title: {}\n", serde_json::to_string(&title)?));
        text.push_str(&format!("slug: {slug}\n"));
        text.push_str(&format!("author: {}\n", serde_json::to_string(&author)?));
        text.push_str(&format!("status: {status}\n"));
        text.push_str(&format!("created: {}\n", created_at.to_rfc3339()));
        if let Some(at) = published_at {
            text.push_str(&format!("date: {}\n", at.to_rfc3339()));
        }
        text.push_str(&format!("tags: {}\n", serde_json::to_string(&tags)?));
        text.push_str("---\n\n");
        text.push_str(&body);
        if !body.ends_with('\n') {
            text.push('\n');
        }
        // Slugs are lower-case letters, digits and dashes (events::is_slug): safe file names.
        std::fs::write(dir.join(format!("{slug}.md")), text)?;
        n += 1;
    }
    Ok(n)
}

/// Runs `inkwire export`.
///
/// # Errors
/// The database or output error.
pub async fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let db = args.database.open_existing(2).await?;
    db.migrate().await?;
    if let Some(dir) = &args.markdown {
        let n = export_markdown(&db, dir).await?;
        eprintln!("export: {n} posts written to {}", dir.display());
        return Ok(());
    }
    let started = Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let n = match export(&db, &mut out, args.with_credentials).await {
        Ok(n) => n,
        // The reader went away (`| head`): as any Unix filter does, stop without an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    eprintln!(
        "export: {n} events in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if args.with_credentials {
            ", with password hashes"
        } else {
            ""
        }
    );
    Ok(())
}

/// Runs `inkwire import`.
///
/// # Errors
/// The file's or the database's error.
pub async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    let bytes = if args.file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        bytes
    } else {
        std::fs::read(&args.file).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?
    };
    let db = args.database.open(2).await?;
    let progress =
        indicatif::ProgressBar::new(0).with_style(indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} events, {per_sec}, {eta} left",
        )?);
    let started = Instant::now();
    let batch = args.batch.max(1);
    let done = if crate::wxr::is_xml(&bytes) {
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 ({e})", args.file.display()))?;
        if crate::disqus::is_disqus(&text) {
            let (done, unmatched) = import_disqus(&db, &text, batch, &progress).await?;
            for link in &unmatched {
                eprintln!("import: no post has the slug of {link}; its comments were left out");
            }
            done
        } else {
            import_wxr(&db, &text, batch, &progress).await?
        }
    } else {
        import(&db, bytes.as_slice(), batch, &progress).await?
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "import: {} events written ({} already there) in {} streams, {seconds:.1} s ({:.0} events/s) into {}; \
         they reach the read tables when a relay and projector run (`inkwire dev` on it does both)",
        done.written,
        done.skipped,
        done.streams,
        done.written as f64 / seconds.max(1e-9),
        args.database.describe()
    );
    Ok(())
}
