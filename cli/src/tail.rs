//! `inkwire events tail`: the log, live, one readable line per event — what an operator reads
//! to see what the system is doing right now, or to follow one post. It reads every partition
//! without joining a consumer group and stores no offsets, so it never disturbs the projectors.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use events::{Envelope, RawEvent};
use infra::log::{LogRecord, StartAt};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::LogArgs;

/// `inkwire events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Prints the log live, one line per event.
    Tail(TailArgs),
}

/// Arguments of `inkwire events tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The database (it holds the log itself when no Kafka brokers are given).
    #[command(flatten)]
    pub database: crate::config::DatabaseArgs,
    /// The log.
    #[command(flatten)]
    pub log: LogArgs,
    /// Only the events of this post (its comments included).
    #[arg(long, value_name = "ID")]
    pub post: Option<Uuid>,
    /// Start at the beginning of the log instead of its end.
    #[arg(long)]
    pub from_beginning: bool,
    /// One JSON object per line (the stored event, with partition and offset).
    #[arg(long)]
    pub json: bool,
    /// How many events: with `--from-beginning` the first N, then it stops; without, the last
    /// N records of each partition, then it follows (like `tail -n N -f`).
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<usize>,
}

/// Runs `inkwire events …`.
///
/// # Errors
/// When the database or the log cannot be read, or stdout is closed.
pub async fn run(command: EventsCommand, cancel: CancellationToken) -> anyhow::Result<()> {
    match command {
        EventsCommand::Tail(args) => tail(args, cancel).await,
    }
}

async fn tail(args: TailArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let db = args.database.open_existing(2).await?;
    let log = args.database.log(&args.log, &db);
    let group = format!("inkwire-tail-{}", Uuid::new_v4().simple());
    let mut consumer = log.reader(&group)?;
    let start = match (args.from_beginning, args.limit) {
        (true, _) => StartAt::Beginning,
        (false, Some(n)) => StartAt::Last(i64::try_from(n).unwrap_or(i64::MAX)),
        (false, None) => StartAt::End,
    };
    // Only the first N from the beginning end the command; otherwise it follows.
    let stop_after = if args.from_beginning {
        args.limit
    } else {
        None
    };
    let mut said_waiting = false;
    let mut printed = 0usize;
    while !cancel.is_cancelled() {
        if let Err(e) = consumer.position_fresh(&log, start).await {
            tracing::debug!(error = %e, "partitions not positioned yet; retrying");
        }
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = consumer.next_batch(1000, Duration::from_millis(200)) => batch?,
        };
        if batch.is_empty() && !said_waiting {
            // On stderr: stdout carries only events, for pipes.
            said_waiting = true;
            let _ = writeln!(
                std::io::stderr(),
                "events tail: waiting for new events (Ctrl-C stops)"
            );
        }
        // The lock only while writing: never held across an await.
        let mut out = std::io::stdout().lock();
        for record in &batch {
            let Some(line) = render(record, args.post, args.json) else {
                continue;
            };
            writeln!(out, "{line}")?;
            printed += 1;
            if stop_after.is_some_and(|limit| printed >= limit) {
                out.flush()?;
                drop(out);
                consumer.close();
                return Ok(());
            }
        }
        out.flush()?;
    }
    consumer.close();
    Ok(())
}

/// The line for `record`, or `None` when `post` filters it out.
fn render(record: &LogRecord, post: Option<Uuid>, as_json: bool) -> Option<String> {
    let at = format!("p{}@{}", record.partition, record.offset);
    let envelope = match Envelope::decode(&record.payload) {
        Ok(e) => e,
        Err(e) => {
            // Undecodable records are shown (unless filtering by post: their post is unknown).
            return post.is_none().then(|| {
                if as_json {
                    json!({"partition": record.partition, "offset": record.offset, "error": e.to_string()})
                        .to_string()
                } else {
                    format!("{at} undecodable: {e}")
                }
            });
        }
    };
    let meta = &envelope.meta;
    if post.is_some_and(|p| p != meta.stream_id.0) {
        return None;
    }
    if as_json {
        let raw: RawEvent = envelope.to_raw();
        let mut value = serde_json::to_value(raw).ok()?;
        value["partition"] = json!(record.partition);
        value["offset"] = json!(record.offset);
        return Some(value.to_string());
    }
    let actor = meta
        .actor
        .name
        .as_deref()
        .map_or_else(|| "anonymous".to_owned(), |n| format!("{n:?}"));
    Some(format!(
        "{} {at} {} v{} {} by {actor}: {}",
        meta.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        meta.stream_id.0,
        meta.stream_version,
        envelope.event.event_type(),
        events::describe::summary(&envelope.event)
    ))
}
