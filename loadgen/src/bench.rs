//! The write and projection benchmarks behind `inkwire bench` (numbers go to
//! `docs/benchmarks.md`; `scripts/bench.sh` runs the whole set against PostgreSQL + the broker).
//! Each takes its target already opened (a database, a log) or as a URL, and reaches it
//! through public APIs only.
//!
//! - `comments`: accepted comment commands per second over HTTP, end to end (acknowledged,
//!   relayed to the log, projected), and acknowledgement latency percentiles (HDR histogram),
//!   optionally at a fixed rate.
//! - `catchup`: projection catch-up on a backlog: writes N synthetic but valid events straight to
//!   the log, then times a fresh projector (new group, empty read tables) until it has applied
//!   them all.
//! - `consume`: how fast a bare consumer reads the same topic (the log's own limit).
//! - `produce`: how fast the log accepts comment events published the way the outbox relay
//!   publishes them (same producer settings, headers and batches): the ceiling of any
//!   end-to-end command rate on that log.
//! - `replay`: a blue/green rebuild of the posts view from a backlog (`inkwire replay`'s engine),
//!   beside a bare reader's rate on the same log in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use events::{
    CommentAdded, CommentId, Envelope, PostDrafted, PostEvent, PostId, PostPublished, StoredMeta,
    UserId,
};
use hdrhistogram::Histogram;
use infra::db::Db;
use infra::log::{LogConfig, OutgoingMessage, Producer};
use serde_json::json;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Arguments of `inkwire bench comments`.
#[derive(Debug, Args)]
pub struct CommentsArgs {
    /// Base URL of the command API (loopback by default).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub command_url: String,
    /// Base URL of the read API, polled until every comment is projected.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub read_url: String,
    /// Published posts the comments are spread over.
    #[arg(long, default_value_t = 50)]
    pub posts: usize,
    /// Comments to send (bounded: the run stops by itself).
    #[arg(long, default_value_t = 10_000)]
    pub comments: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Target rate in commands per second; unset: as fast as acknowledged.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Give up waiting for projection after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// The secret the command service checks caller proofs with: its `INKWIRE_JWT_SECRET`, or
    /// the first of its `INKWIRE_CALLER_SECRETS` when it has them. The benchmark stands where
    /// a gateway would.
    #[arg(long, env = "INKWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
}

/// Arguments of `inkwire bench catchup`.
#[derive(Debug, Args)]
pub struct CatchupArgs {
    /// Read-model database for the fresh projector (`postgresql://…` or `sqlite://…`).
    #[arg(long)]
    pub database_url: String,
    /// Backlog size in events.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Posts the backlog's comments are spread over.
    #[arg(long, default_value_t = 100)]
    pub posts: u64,
    /// Skip writing the backlog (it is already on the topic).
    #[arg(long)]
    pub no_fill: bool,
    /// Most records per transaction in `bench replay` (`inkwire replay --batch`).
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
}

/// Arguments of `inkwire bench consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "INKWIRE_KAFKA_BROKERS")]
    pub kafka_brokers: String,
    /// Topic to read.
    #[arg(long, env = "INKWIRE_TOPIC", default_value = "inkwire.posts")]
    pub topic: String,
    /// Stop after this many messages.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
}

/// Arguments of `inkwire bench produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The database of the embedded log (unused with `--kafka-brokers`).
    #[arg(long, default_value = "sqlite::memory:")]
    pub database_url: String,
    /// Events to publish.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Posts the events are keyed by.
    #[arg(long, default_value_t = 100)]
    pub posts: u64,
}

const BENCH_USER: &str = "01890000-0000-7000-8000-00000000b0b0";

/// `bench comments`.
///
/// # Errors
/// When the target cannot be reached or the run does not complete.
pub async fn comments(
    args: CommentsArgs,
    cancel: CancellationToken,
) -> anyhow::Result<serde_json::Value> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let mut posts = Vec::with_capacity(args.posts);
    let run_id = Uuid::now_v7().simple().to_string();
    // Each request carries a caller proof signed as a gateway signs it (and as often).
    let callers =
        command_api::auth::TokenKeys::new(args.jwt_secret.as_bytes(), Duration::from_secs(60))
            .callers()
            .clone();
    let user: Uuid = BENCH_USER.parse()?;
    let proof = move || callers.sign(Some(user), Some("bench")).unwrap_or_default();
    for i in 0..args.posts {
        let created: serde_json::Value = client
            .post(format!("{}/v1/posts", args.command_url))
            .header(command_api::auth::CALLER_PROOF_HEADER, proof())
            .json(&json!({ "title": format!("Bench post {i}"), "slug": format!("bench-{run_id}-{i}"), "body_markdown": "bench" }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["post_id"].as_str().unwrap_or_default().to_owned();
        client
            .post(format!("{}/v1/posts/{id}/publish", args.command_url))
            .header(command_api::auth::CALLER_PROOF_HEADER, proof())
            .send()
            .await?
            .error_for_status()?;
        posts.push(id);
    }
    let posts = Arc::new(posts);
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let failures = Arc::new(AtomicU64::new(0));
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let progress = indicatif::ProgressBar::new(args.comments as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} acks {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / r.max(0.001)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.comments {
        if cancel.is_cancelled() {
            break;
        }
        if let Some(interval) = interval {
            let due = started + interval.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = limit.clone().acquire_owned().await?;
        let signed = proof();
        let (client, posts, histogram, failures, progress) = (
            client.clone(),
            posts.clone(),
            histogram.clone(),
            failures.clone(),
            progress.clone(),
        );
        let url = format!(
            "{}/v1/posts/{}/comments",
            args.command_url,
            posts[i % posts.len()]
        );
        tasks.spawn(async move {
            let sent = Instant::now();
            let ok = client
                .post(url)
                .header(command_api::auth::CALLER_PROOF_HEADER, signed)
                .json(&json!({ "body": format!("comment {i}") }))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
            if ok {
                let _ = histogram.lock().await.record(micros.max(1));
            } else {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            progress.inc(1);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let acked_in = started.elapsed();
    progress.finish_and_clear();
    let failed = failures.load(Ordering::Relaxed);
    let accepted = args.comments as u64 - failed;
    // Wait until every accepted comment is visible in the read model.
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let projected_in = loop {
        let mut total = 0u64;
        for id in posts.iter() {
            let post: serde_json::Value = client
                .get(format!("{}/v1/read/posts/{id}", args.read_url))
                .send()
                .await?
                .json()
                .await?;
            total += post["comment_count"].as_u64().unwrap_or(0);
        }
        if total >= accepted {
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {total} of {accepted} comments projected in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let h = histogram.lock().await;
    Ok(json!({
        "bench": "comments",
        "comments": args.comments,
        "accepted": accepted,
        "failed": failed,
        "posts": args.posts,
        "concurrency": args.concurrency,
        "target_rate": args.rate,
        "acked_per_sec": accepted as f64 / acked_in.as_secs_f64(),
        "end_to_end_per_sec": accepted as f64 / projected_in.as_secs_f64(),
        "ack_ms": { "p50": h.value_at_quantile(0.5) as f64 / 1000.0, "p99": h.value_at_quantile(0.99) as f64 / 1000.0, "max": h.max() as f64 / 1000.0 },
    }))
}

/// A valid backlog: each post drafted, published, then commented on round-robin.
fn backlog(events: u64, posts: u64) -> Vec<Envelope> {
    let author = UserId::new();
    let post_ids: Vec<PostId> = (0..posts.max(1)).map(|_| PostId::new()).collect();
    let mut versions = vec![0_i64; post_ids.len()];
    let mut out = Vec::with_capacity(usize::try_from(events).unwrap_or(0));
    let envelope = |index: usize, event: PostEvent, versions: &mut Vec<i64>| {
        versions[index] += 1;
        Envelope {
            meta: StoredMeta {
                event_id: Uuid::now_v7(),
                stream_id: post_ids[index].into(),
                stream_version: versions[index],
                occurred_at: Utc::now(),
                actor: events::Actor {
                    user_id: Some(author),
                    name: None,
                },
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                traceparent: None,
            },
            event: event.into(),
        }
    };
    for (i, _) in post_ids.clone().iter().enumerate() {
        out.push(envelope(
            i,
            PostEvent::PostDrafted(PostDrafted {
                author_id: author,
                title: format!("Backlog {i}"),
                slug: format!("backlog-{i}"),
                body_markdown: "backlog".into(),
                tags: vec!["bench".into()],
                allow_anonymous_comments: false,
            }),
            &mut versions,
        ));
        out.push(envelope(
            i,
            PostEvent::PostPublished(PostPublished {}),
            &mut versions,
        ));
    }
    let mut n = 0usize;
    while (out.len() as u64) < events {
        let i = n % post_ids.len();
        out.push(envelope(
            i,
            PostEvent::CommentAdded(CommentAdded {
                comment_id: CommentId::new(),
                parent_id: None,
                author_id: Some(author),
                author_name: "bench".into(),
                body: format!("backlog comment {n}"),
            }),
            &mut versions,
        ));
        n += 1;
    }
    out
}

/// Publishes `messages` as one batch, waiting for the log's acknowledgements.
async fn publish_batch(producer: &Producer, messages: &[OutgoingMessage]) -> anyhow::Result<()> {
    let (acked, error) = producer.publish(messages).await;
    match error {
        Some(e) => anyhow::bail!("publishing failed after {acked} messages of a batch: {e}"),
        None => Ok(()),
    }
}

/// Writes the backlog to `log` unless `--no-fill`.
async fn fill(args: &CatchupArgs, log: &LogConfig) -> anyhow::Result<()> {
    if !args.no_fill {
        let started = Instant::now();
        let producer = log.producer()?;
        for chunk in backlog(args.events, args.posts).chunks(5000) {
            let messages: Vec<OutgoingMessage> = chunk
                .iter()
                .map(|e| OutgoingMessage {
                    key: e.meta.stream_id.to_string().into_bytes(),
                    payload: e.encode(),
                    headers: vec![],
                })
                .collect();
            publish_batch(&producer, &messages).await?;
        }
        tracing::info!(
            events = args.events,
            secs = started.elapsed().as_secs_f64(),
            "backlog written"
        );
    }
    Ok(())
}

/// `bench catchup`: a fresh projector on `db` (migrated) catching up with `log`.
///
/// # Errors
/// When the backlog cannot be written or the projector fails.
pub async fn catchup(
    args: CatchupArgs,
    db: Db,
    log: LogConfig,
    cancel: CancellationToken,
) -> anyhow::Result<serde_json::Value> {
    fill(&args, &log).await?;
    let group = format!("bench-{}", Uuid::now_v7().simple());
    let registry = prometheus::Registry::new();
    let metrics = projection_service::metrics::Metrics::new(&registry);
    let stop = cancel.child_token();
    let started = Instant::now();
    let projector = tokio::spawn(projection_service::consumer::run(
        db.clone(),
        log.clone(),
        group.clone(),
        metrics.clone(),
        None,
        stop.clone(),
    ));
    let progress = indicatif::ProgressBar::new(args.events);
    loop {
        let applied: u64 = ["applied", "duplicate", "gap", "dead_letter"]
            .iter()
            .map(|l| metrics.events.with_label_values(&[l]).get())
            .sum();
        progress.set_position(applied);
        if applied >= args.events || cancel.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();
    stop.cancel();
    projector.await??;
    Ok(json!({
        "bench": "catchup",
        "backend": if db.is_sqlite() { "sqlite + embedded log" } else { "postgres + kafka" },
        "events": args.events,
        "seconds": elapsed.as_secs_f64(),
        "events_per_sec": args.events as f64 / elapsed.as_secs_f64(),
        // Time inside the projection transactions; the rest is reading the log and decoding.
        "apply_seconds": metrics.batch_seconds.get_sample_sum(),
        "batches": metrics.batch_seconds.get_sample_count(),
    }))
}

/// `bench replay`: a rebuild of the posts view on `db` from `log`, beside a bare reader.
///
/// # Errors
/// When the backlog cannot be written or the rebuild fails.
pub async fn replay(
    args: CatchupArgs,
    db: Db,
    log: LogConfig,
    cancel: CancellationToken,
) -> anyhow::Result<serde_json::Value> {
    fill(&args, &log).await?;
    let total: u64 = log
        .high_watermarks()
        .await?
        .iter()
        .map(|(_, n)| n.unsigned_abs())
        .sum();
    // The log's own limit first: a bare reader from the beginning, nothing applied.
    let raw = match &log {
        LogConfig::Kafka(kafka) => consume(ConsumeArgs {
            kafka_brokers: kafka.brokers.clone(),
            topic: kafka.topic.clone(),
            events: total,
        })
        .await?["events_per_sec"]
            .as_f64()
            .unwrap_or(0.0),
        LogConfig::Embedded(_) => {
            projection_service::rebuild::read_rate(
                &log,
                &format!("bench-bare-{}", Uuid::now_v7().simple()),
                total,
                Duration::from_secs(3600),
            )
            .await?
        }
    };
    let options = projection_service::rebuild::RebuildOptions {
        view: projection_service::projections::View::Posts,
        live_group: format!("bench-live-{}", Uuid::now_v7().simple()),
        lease_ttl: Duration::from_secs(30),
        batch: args.batch.max(1),
        restart: true,
        max_rate: None,
    };
    let bar = indicatif::ProgressBar::new(total);
    let mut on_progress = |p: projection_service::rebuild::Progress| bar.set_position(p.done);
    let summary =
        projection_service::rebuild::rebuild(&db, &log, &options, &mut on_progress, &cancel)
            .await?;
    bar.finish_and_clear();
    Ok(json!({
        "bench": "replay",
        "backend": if db.is_sqlite() { "sqlite + embedded log" } else { "postgres + kafka" },
        "events": summary.events,
        "seconds": summary.seconds,
        "rebuild_events_per_sec": summary.events_per_second,
        // From the first record on, as the bare reader is timed.
        "rebuild_reading_events_per_sec": summary.events as f64 / summary.reading_seconds.max(1e-9),
        "bare_read_events_per_sec": raw,
        "ratio": summary.events_per_second / raw.max(1e-9),
        "ratio_from_first_record": summary.events as f64 / summary.reading_seconds.max(1e-9) / raw.max(1e-9),
    }))
}

/// `bench produce`: publishes a backlog to `log` the way the outbox relay does: the same
/// message shape (key, payload and routing headers, [`OutgoingMessage::event`]), in the relay's
/// batches ([`infra::log::PUBLISH_BATCH`]), each waited for before the next.
///
/// # Errors
/// When the log refuses a batch.
pub async fn produce(args: ProduceArgs, log: LogConfig) -> anyhow::Result<serde_json::Value> {
    let producer = log.producer()?;
    let messages: Vec<OutgoingMessage> = backlog(args.events, args.posts)
        .iter()
        .map(|e| OutgoingMessage::event(e.meta.stream_id.0, e.encode()))
        .collect();
    let started = Instant::now();
    for batch in messages.chunks(infra::log::PUBLISH_BATCH) {
        publish_batch(&producer, batch).await?;
    }
    let elapsed = started.elapsed();
    Ok(json!({
        "bench": "produce",
        "events": messages.len(),
        "batch": infra::log::PUBLISH_BATCH,
        "seconds": elapsed.as_secs_f64(),
        "events_per_sec": messages.len() as f64 / elapsed.as_secs_f64().max(1e-9),
    }))
}

/// `bench consume`: a bare Kafka consumer reading the topic from its start.
///
/// # Errors
/// When the broker cannot be read.
pub async fn consume(args: ConsumeArgs) -> anyhow::Result<serde_json::Value> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &args.kafka_brokers)
        .set(
            "group.id",
            format!("bench-bare-{}", Uuid::now_v7().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[&args.topic])?;
    let mut started = None;
    let mut n = 0u64;
    while n < args.events {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        started.get_or_insert_with(Instant::now);
        drop(message);
        n += 1;
    }
    let elapsed = started.map_or(Duration::ZERO, |s| s.elapsed());
    Ok(json!({
        "bench": "consume",
        "events": n,
        "seconds": elapsed.as_secs_f64(),
        "events_per_sec": n as f64 / elapsed.as_secs_f64().max(1e-9),
    }))
}
