//! `inkwire stress`: load on a running Inkwire (embedded or cluster) through its GraphQL API, as
//! users make it — comments written at a target rate over several posts by several accounts,
//! WebSocket subscribers on those posts, readers loading post pages — with the accounting that
//! proves nothing was lost: every subscriber must receive every comment of its post once, in the
//! post's order. Prints a live progress line; writes `report.json` and a self-contained
//! `report.html`; exits non-zero when anything was lost, duplicated or reordered. Bounded in
//! count and time, and refuses non-loopback targets unless told otherwise.

mod report;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use backon::Retryable;

use crate::client::{gql, keepalive, ping, published_post, sign_in, subscribe, wait_connected};

/// Arguments of `inkwire stress`.
#[derive(Debug, Args)]
pub struct StressArgs {
    /// The gateway's GraphQL endpoint (a site's address alone means its `/graphql`).
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql", value_parser = graphql_endpoint)]
    pub url: String,
    /// Keep the posts this run made (they are deleted afterwards by default). The accounts it
    /// registers, `stress-<run>-<n>`, are disabled when the author is an admin.
    #[arg(long)]
    pub keep: bool,
    /// Where subscribers connect instead, round-robin (repeatable): e.g. each gateway of a
    /// cluster directly, when the proxy in front limits connections per client address.
    #[arg(long = "subscribe-url")]
    pub subscribe_urls: Vec<String>,
    /// An author account (creates the posts).
    #[arg(long, env = "INKWIRE_STRESS_USERNAME")]
    pub username: String,
    /// Its password.
    #[arg(long, env = "INKWIRE_STRESS_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Posts the comments are spread over.
    #[arg(long, default_value_t = 4)]
    pub posts: usize,
    /// WebSocket subscribers, spread over the posts.
    #[arg(long, default_value_t = 40)]
    pub subscribers: usize,
    /// Comments per second (all posts together).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of writing.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Post-page reads per second beside the writes.
    #[arg(long, default_value_t = 10.0)]
    pub queries_per_sec: f64,
    /// Accounts that write the comments (registered by the run; each stays under the gateway's
    /// per-user mutation limit).
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Where `report.json` and `report.html` go.
    #[arg(long, default_value = "stress-report")]
    pub report_dir: PathBuf,
    /// Allow a target that is not on loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Subscribers whose connection drops (a gateway killed or cut off) connect again, to the
    /// next `--subscribe-url`, and resume from their last event's cursor, as the web UI does: the
    /// accounting then proves that resuming loses and repeats nothing. Without it a dropped
    /// subscriber fails the run.
    #[arg(long)]
    pub resume: bool,
}

/// `raw`, with `/graphql` when it names a site rather than an endpoint.
fn graphql_endpoint(raw: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if matches!(url.path(), "" | "/") {
        url.set_path("/graphql");
    }
    Ok(url.to_string())
}

/// What one subscriber received: (comment id, version, when).
type Receipts = Vec<(String, i64, Instant)>;

/// Deliveries to all subscribers: how many, and how many of each comment.
#[derive(Default)]
struct Deliveries {
    total: AtomicU64,
    per_comment: std::sync::Mutex<HashMap<String, u64>>,
}

impl Deliveries {
    fn record(&self, comment: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut per) = self.per_comment.lock() {
            *per.entry(comment.to_owned()).or_default() += 1;
        }
    }

    /// Whether each comment of `owed` was delivered at least as many times as it says.
    fn all_of(&self, owed: &[(String, u64)]) -> bool {
        self.per_comment.lock().is_ok_and(|per| {
            owed.iter()
                .all(|(id, n)| per.get(id).is_some_and(|have| have >= n))
        })
    }
}

/// One acknowledged comment.
struct Ack {
    post: usize,
    sent: Instant,
    acked: Instant,
    queryable: Option<Instant>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

fn summary(h: &Histogram<u64>) -> Value {
    json!({
        "samples": h.len(),
        "p50_ms": h.value_at_quantile(0.50) as f64 / 1000.0,
        "p90_ms": h.value_at_quantile(0.90) as f64 / 1000.0,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
        "max_ms": h.max() as f64 / 1000.0,
    })
}

/// Runs `inkwire stress`; answers whether every delivery was accounted for.
///
/// # Errors
/// When the target cannot be reached or refuses the setup.
pub async fn run(args: StressArgs, cancel: CancellationToken) -> anyhow::Result<bool> {
    for url in std::iter::once(&args.url).chain(&args.subscribe_urls) {
        let target = reqwest::Url::parse(url)?;
        let host = target.host_str().unwrap_or_default().to_owned();
        anyhow::ensure!(
            args.allow_remote
                || ["127.0.0.1", "localhost", "::1", "[::1]"].contains(&host.as_str()),
            "{host} is not loopback: pass --allow-remote to load it"
        );
    }
    anyhow::ensure!(
        args.posts > 0 && args.writers > 0 && args.seconds <= 3600,
        "need posts and writers, and at most an hour"
    );
    let http = reqwest::Client::new();
    let url = args.url.clone();
    let author = sign_in(&http, &url, &args.username, &args.password).await?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let mut writers = Vec::new();
    let mut writer_ids = Vec::new();
    for w in 0..args.writers {
        let name = format!("stress-{}-{w}", &run_id[run_id.len() - 8..]);
        // Sign-ups from one address are rate-limited (a burst, then one every two seconds):
        // wait for the budget like a patient user instead of failing the run.
        let give_up = Instant::now() + Duration::from_secs(120);
        let r = loop {
            let attempt = gql(
                &http,
                &url,
                "",
                "mutation($i: RegisterInput!) { register(input: $i) { token user { id } } }",
                json!({"i": {"username": name, "password": format!("{name}-password")}}),
            )
            .await;
            match attempt {
                Err(e) if e.to_string().contains("RATE_LIMITED") && Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => break other?,
            }
        };
        writers.push(
            r["data"]["register"]["token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("register refused: {r}"))?,
        );
        writer_ids.push(
            r["data"]["register"]["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let mut posts = Vec::new();
    let mut cursors = Vec::new();
    for _ in 0..args.posts {
        let (id, _) = published_post(&http, &url, &author).await?;
        let r = gql(
            &http,
            &url,
            "",
            "query($id: ID) { post(id: $id) { commentEventsCursor } }",
            json!({"id": id}),
        )
        .await?;
        cursors.push(
            r["data"]["post"]["commentEventsCursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        posts.push(id);
    }

    // Subscribers, each on one post from the cursor read with it.
    let ws_urls: Vec<String> = if args.subscribe_urls.is_empty() {
        vec![url.replacen("http", "ws", 1)]
    } else {
        args.subscribe_urls
            .iter()
            .map(|u| u.replacen("http", "ws", 1))
            .collect()
    };
    let stop = CancellationToken::new();
    let ready = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(Deliveries::default());
    let mut subscribers = tokio::task::JoinSet::new();
    let resumes = Arc::new(AtomicU64::new(0));
    for s in 0..args.subscribers {
        let post = s % args.posts;
        let (post_id, first_cursor) = (posts[post].clone(), cursors[post].clone());
        let (ws_urls, ready, delivered, stop, resumes) = (
            ws_urls.clone(),
            ready.clone(),
            delivered.clone(),
            stop.clone(),
            resumes.clone(),
        );
        let resume = args.resume;
        subscribers.spawn(async move {
            let mut mine: Receipts = Vec::new();
            let mut cursor = first_cursor;
            let mut attempt = 0usize;
            loop {
                let ws_url = &ws_urls[(s + attempt) % ws_urls.len()];
                let ended =
                    subscribe_once(s, attempt == 0, ws_url, &post_id, &mut cursor, &mut mine, &ready, &delivered, &stop)
                        .await;
                match ended {
                    Ok(()) => break,
                    Err(e) if resume && !stop.is_cancelled() => {
                        attempt += 1;
                        resumes.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(subscriber = s, error = %e, "subscriber resumes from its cursor");
                        tokio::select! {
                            () = stop.cancelled() => break,
                            () = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, anyhow::Error>((post, mine))
        });
    }
    /// One connection of subscriber `s`, from `cursor` (moved at each event); `Ok` when the run
    /// stops it, an error when the connection ends first. Only the first (`first`) counts as
    /// ready.
    #[allow(clippy::items_after_statements, clippy::too_many_arguments)]
    async fn subscribe_once(
        s: usize,
        first: bool,
        ws_url: &str,
        post_id: &str,
        cursor: &mut String,
        mine: &mut Receipts,
        ready: &AtomicU64,
        delivered: &Deliveries,
        stop: &CancellationToken,
    ) -> anyhow::Result<()> {
        let payload = json!({
            "query": "subscription($p: ID!, $a: String) { commentEvents(postId: $p, after: $a) { kind cursor comment { id version } } }",
            "variables": { "p": post_id, "a": cursor },
        });
        {
            // A front end that limits connections per address (nginx: 100/s, burst 500) turns
            // a burst of subscribers from one load generator away; like the web UI, come back
            // later.
            let mut ws = (|| subscribe(ws_url, &payload))
                .retry(
                    backon::ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(100))
                        .with_max_delay(Duration::from_secs(2))
                        .with_max_times(40)
                        .with_jitter(),
                )
                .when(throttled)
                .await?;
            let mut keepalive = keepalive();
            loop {
                let msg = tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    _ = keepalive.tick() => {
                        ws.send(ping()).await?;
                        continue;
                    }
                    msg = ws.next() => msg,
                };
                let Some(Ok(Message::Text(text))) = msg else {
                    match msg {
                        Some(Ok(_)) => continue,
                        _ => anyhow::bail!("subscriber {s}: connection closed"),
                    }
                };
                let v: Value = serde_json::from_str(&text)?;
                match v["type"].as_str() {
                    Some("connection_ack") if first => {
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("next") => {
                        let event = &v["payload"]["data"]["commentEvents"];
                        if event["kind"] == "ADDED" {
                            let id = event["comment"]["id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned();
                            let version = event["comment"]["version"].as_i64().unwrap_or_default();
                            delivered.record(&id);
                            mine.push((id, version, Instant::now()));
                        }
                        if let Some(next) = event["cursor"].as_str() {
                            next.clone_into(cursor);
                        }
                    }
                    Some("ping") => {
                        ws.send(Message::Text(json!({"type": "pong"}).to_string().into()))
                            .await?
                    }
                    Some("error" | "complete") => anyhow::bail!("subscriber {s}: ended: {text}"),
                    _ => {}
                }
            }
        }
    }
    wait_connected(&ready, args.subscribers, Duration::from_secs(60)).await?;
    // Subscriptions are registered a moment after connection_ack; resuming from the cursor makes
    // the exact moment irrelevant, so no sleep is needed for correctness.

    // Readers: post pages at a steady rate until the writers are done.
    let reads = Arc::new(AtomicU64::new(0));
    let read_errors = Arc::new(AtomicU64::new(0));
    let read_latency = Arc::new(Mutex::new(histogram()?));
    let reader = {
        let (http, url, posts, stop, reads, read_errors, read_latency) = (
            http.clone(),
            url.clone(),
            posts.clone(),
            stop.clone(),
            reads.clone(),
            read_errors.clone(),
            read_latency.clone(),
        );
        let every = Duration::from_secs_f64(1.0 / args.queries_per_sec.max(0.001));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut i = 0usize;
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if args.queries_per_sec <= 0.0 {
                    continue;
                }
                let started = Instant::now();
                let r = gql(
                    &http,
                    &url,
                    "",
                    crate::gateway::POST_PAGE,
                    json!({"id": posts[i % posts.len()]}),
                )
                .await;
                i += 1;
                reads.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(_) => {
                        let _ = read_latency.lock().await.record(micros(started.elapsed()));
                    }
                    Err(_) => {
                        read_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    // Writers: comments at the target rate, round robin over posts and accounts; every tenth is
    // also polled until a query shows it (ack-to-queryable).
    let total = ((args.rate * args.seconds as f64).round() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let acks: Arc<Mutex<HashMap<String, Ack>>> = Arc::new(Mutex::new(HashMap::new()));
    let refused: Arc<Mutex<std::collections::BTreeMap<String, u64>>> = Arc::default();
    let progress = indicatif::ProgressBar::new(total as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} comments {msg}",
        )?
        .progress_chars("=> "),
    );
    // Refusals per second of sending, for the timeline (acknowledgements are counted from `acks`).
    let refused_at: Arc<Mutex<std::collections::BTreeMap<u64, u64>>> = Arc::default();
    let started = Instant::now();
    let started_unix_ms = chrono::Utc::now().timestamp_millis();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..total {
        if cancel.is_cancelled() {
            break;
        }
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let post = i % args.posts;
        let (http, url, post_id, token, acks, refused, refused_at, bar) = (
            http.clone(),
            url.clone(),
            posts[post].clone(),
            writers[i % writers.len()].clone(),
            acks.clone(),
            refused.clone(),
            refused_at.clone(),
            progress.clone(),
        );
        writes.spawn(async move {
            let sent = Instant::now();
            let r = gql(
                &http,
                &url,
                &token,
                "mutation($i: AddCommentInput!) { addComment(input: $i) { comment { id } } }",
                json!({"i": {"postId": post_id, "body": format!("stress comment {i}")}}),
            )
            .await;
            let acked = Instant::now();
            bar.inc(1);
            let id = match &r {
                Ok(r) => r["data"]["addComment"]["comment"]["id"]
                    .as_str()
                    .map(str::to_owned),
                Err(_) => None,
            };
            let Some(id) = id else {
                // Refused: by the gateway (its code) or by a proxy (its HTTP status).
                let reason = match &r {
                    Err(e) => refusal(&e.to_string()),
                    Ok(_) => "no comment in the answer".to_owned(),
                };
                *refused.lock().await.entry(reason).or_default() += 1;
                let second = sent.saturating_duration_since(started).as_secs();
                *refused_at.lock().await.entry(second).or_default() += 1;
                return;
            };
            let mut queryable = None;
            if i % 10 == 0 {
                let limit = Instant::now() + Duration::from_secs(30);
                let mut poll = Duration::from_millis(10);
                while Instant::now() < limit {
                    let seen = gql(
                        &http,
                        &url,
                        "",
                        "query($id: ID!) { comment(id: $id) { id } }",
                        json!({"id": id}),
                    )
                    .await;
                    if seen.is_ok_and(|v| v["data"]["comment"]["id"].is_string()) {
                        queryable = Some(Instant::now());
                        break;
                    }
                    // Gently: while the read side is behind (a fault), hundreds of pollers at
                    // 100/s each would be the load, and a front end's rate limit the answer.
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(Duration::from_millis(250));
                }
            }
            acks.lock().await.insert(
                id,
                Ack {
                    post,
                    sent,
                    acked,
                    queryable,
                },
            );
        });
        if i % 20 == 0 {
            progress.set_message(format!(
                "| {} deliveries | {} reads",
                delivered.total.load(Ordering::Relaxed),
                reads.load(Ordering::Relaxed)
            ));
        }
    }
    while writes.join_next().await.is_some() {}
    progress.finish_and_clear();
    let wrote = started.elapsed();

    // Wait for the deliveries (bounded), then stop everyone.
    let per_post: Vec<u64> = {
        let acks = acks.lock().await;
        (0..args.posts)
            .map(|p| acks.values().filter(|a| a.post == p).count() as u64)
            .collect()
    };
    let expected: u64 = (0..args.subscribers)
        .map(|s| per_post[s % args.posts])
        .sum();
    // Every acknowledged comment delivered to every subscriber of its post. Not a count of all
    // deliveries: a comment written whose answer was lost (a gateway that died mid-request) is
    // delivered too, and would end the wait before the last acknowledged ones arrived.
    let owed: Vec<(String, u64)> = {
        let acks = acks.lock().await;
        let subscribers_of = |p: usize| {
            (0..args.subscribers)
                .filter(|s| s % args.posts == p)
                .count() as u64
        };
        acks.iter()
            .map(|(id, a)| (id.clone(), subscribers_of(a.post)))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !delivered.all_of(&owed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let _ = reader.await;
    let mut receipts = Vec::new();
    while let Some(done) = subscribers.join_next().await {
        receipts.push(done??);
    }

    // Accounting and latencies.
    let acks = acks.lock().await;
    let (mut ack_h, mut push_h, mut query_h) = (histogram()?, histogram()?, histogram()?);
    let mut buckets: HashMap<u64, (u64, Histogram<u64>)> = HashMap::new();
    for a in acks.values() {
        ack_h.record(micros(a.acked - a.sent))?;
        if let Some(q) = a.queryable {
            query_h.record(micros(q.saturating_duration_since(a.acked)))?;
        }
    }
    let (mut lost, mut duplicated, mut reordered) = (0u64, 0u64, 0u64);
    for (post, mine) in &receipts {
        let mut seen: HashMap<&str, u32> = HashMap::new();
        let mut last_version = i64::MIN;
        for (id, version, at) in mine {
            *seen.entry(id.as_str()).or_default() += 1;
            if *version <= last_version {
                reordered += 1;
            }
            last_version = last_version.max(*version);
            if let Some(a) = acks.get(id) {
                let latency = micros(at.saturating_duration_since(a.acked));
                push_h.record(latency)?;
                let second = at.saturating_duration_since(started).as_secs();
                let bucket = match buckets.entry(second) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert((0, histogram()?)),
                };
                bucket.0 += 1;
                bucket.1.record(latency)?;
            }
        }
        duplicated += seen
            .values()
            .filter(|n| **n > 1)
            .map(|n| u64::from(*n - 1))
            .sum::<u64>();
        let mine_ids: std::collections::HashSet<&str> = seen.keys().copied().collect();
        lost += acks
            .iter()
            .filter(|(id, a)| a.post == *post && !mine_ids.contains(id.as_str()))
            .count() as u64;
    }
    let mut timeline: Vec<(u64, u64, f64, f64)> = buckets
        .iter()
        .map(|(s, (n, h))| {
            (
                *s,
                *n,
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
            )
        })
        .collect();
    timeline.sort_unstable_by_key(|t| t.0);
    // What became of the writes sent in each second: acknowledged or refused.
    let mut writes_per_second: std::collections::BTreeMap<u64, (u64, u64)> =
        std::collections::BTreeMap::new();
    for a in acks.values() {
        let second = a.sent.saturating_duration_since(started).as_secs();
        writes_per_second.entry(second).or_default().0 += 1;
    }
    for (second, n) in refused_at.lock().await.iter() {
        writes_per_second.entry(*second).or_default().1 += n;
    }
    let ok = lost == 0 && duplicated == 0 && reordered == 0;
    let report = json!({
        "ok": ok,
        "target": args.url,
        "posts": args.posts,
        "subscribers": args.subscribers,
        "writers": args.writers,
        "rate_target": args.rate,
        "comments_sent": total,
        "comments_acked": acks.len(),
        "comments_refused": refused.lock().await.values().sum::<u64>(),
        "comments_refused_by_reason": *refused.lock().await,
        "write_seconds": wrote.as_secs_f64(),
        "acked_per_sec": acks.len() as f64 / wrote.as_secs_f64().max(0.001),
        "deliveries": { "expected": expected, "received": delivered.total.load(Ordering::Relaxed), "lost": lost, "duplicated": duplicated, "out_of_order": reordered },
        "resumes": resumes.load(Ordering::Relaxed),
        "acked_ids": acks.keys().collect::<Vec<_>>(),
        "post_ids": posts,
        "reads": { "count": reads.load(Ordering::Relaxed), "errors": read_errors.load(Ordering::Relaxed), "latency": summary(&*read_latency.lock().await) },
        "latency": { "command_ack": summary(&ack_h), "ack_to_push": summary(&push_h), "ack_to_queryable": summary(&query_h) },
        "started_unix_ms": started_unix_ms,
        "writes_timeline": writes_per_second.iter().map(|(s, (acked, refused))| json!({"second": s, "acked": acked, "refused": refused})).collect::<Vec<_>>(),
        "timeline": timeline.iter().map(|(s, n, p50, p99)| json!({"second": s, "deliveries": n, "ack_to_push_p50_ms": p50, "ack_to_push_p99_ms": p99})).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&args.report_dir)?;
    std::fs::write(
        args.report_dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(
        args.report_dir.join("report.html"),
        report::html(&report, &timeline),
    )?;
    let cleanup = if args.keep {
        format!(
            "kept: {} posts and {} accounts (--keep)",
            posts.len(),
            writer_ids.len()
        )
    } else {
        clean_up(&http, &url, &author, &posts, &writer_ids).await
    };
    println!(
        "{}",
        report::human_summary(&report, &cleanup, &args.report_dir)
    );
    Ok(ok)
}

/// Deletes the run's posts and disables its accounts (which needs an admin: an author's run
/// says what is left); returns what it did, in words.
async fn clean_up(
    http: &reqwest::Client,
    url: &str,
    author: &str,
    posts: &[String],
    writers: &[String],
) -> String {
    let mut deleted = 0;
    for post in posts {
        let r = gql(
            http,
            url,
            author,
            "mutation($id: ID!) { deletePost(id: $id) { post { id } } }",
            json!({ "id": post }),
        )
        .await;
        deleted += usize::from(r.is_ok());
    }
    let mut disabled = 0;
    for user in writers {
        let r = gql(
            http,
            url,
            author,
            "mutation($id: ID!) { disableUser(userId: $id) }",
            json!({ "id": user }),
        )
        .await;
        disabled += usize::from(r.is_ok());
    }
    let accounts = if disabled == writers.len() {
        format!("{disabled} accounts disabled")
    } else {
        format!(
            "{} of {} stress-* accounts left enabled (disabling them needs an admin)",
            writers.len() - disabled,
            writers.len()
        )
    };
    format!(
        "cleaned up: {deleted} of {} posts deleted, {accounts}",
        posts.len()
    )
}

/// Why a comment was refused, from the error: the gateway's `code/reason`, or a proxy's HTTP
/// status.
fn refusal(error: &str) -> String {
    let field = |name: &str| {
        error
            .split(&format!("\"{name}\":\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
    };
    match (field("code"), field("reason")) {
        (Some(code), Some(reason)) => format!("{code}/{reason}"),
        (Some(code), None) => code.to_owned(),
        _ if error.starts_with("HTTP ") => error.split(' ').take(2).collect::<Vec<_>>().join(" "),
        _ => "no answer".to_owned(),
    }
}

/// Whether a WebSocket connection was refused for now (429 or 503), so trying later may work.
fn throttled(error: &anyhow::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    matches!(
        error.downcast_ref::<Error>(),
        Some(Error::Http(response)) if matches!(response.status().as_u16(), 429 | 503)
    )
}

#[cfg(test)]
mod tests {
    use super::Deliveries;

    /// The wait for the last pushes ends only when every acknowledged comment reached every
    /// subscriber of its post: deliveries of a comment whose answer was lost (written, but the
    /// gateway died before answering) do not stand in for them.
    #[test]
    fn the_wait_is_for_acknowledged_comments_not_for_a_count() {
        let delivered = Deliveries::default();
        let owed = vec![("a".to_owned(), 2), ("b".to_owned(), 2)];
        for id in ["a", "a", "b", "unacknowledged", "unacknowledged"] {
            delivered.record(id);
        }
        assert!(
            !delivered.all_of(&owed),
            "b reached one of its two subscribers"
        );
        delivered.record("b");
        assert!(delivered.all_of(&owed));
    }
}
