//! Gateway benchmarks (`inkwire bench fanout`, `inkwire bench page`).
//!
//! - `fanout`: N WebSocket subscribers on one post, comments written through the gateway at a
//!   steady rate; reports deliveries per second, latency from the command's acknowledgement to
//!   each subscriber's receipt (p50/p99/max, HDR histogram), and the gateway's memory per idle
//!   subscription (with `--gateway-pid`: the slope of its RSS sampled at each quarter of the
//!   subscribers, and the growth from before the first, per subscriber).
//! - `page`: the post page query (a post and its first 20 comments) from C concurrent clients
//!   for a fixed time; reports requests per second and latency percentiles.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::client::{self, gql, sign_in};
use crate::wire;

/// The benchmark's author account (`scripts/bench*.sh` create it with `inkwire user add`).
const BENCH_LOGIN: (&str, &str) = ("bench", "bench-password");

/// Arguments of `inkwire bench fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// The gateway's `/graphql` URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    pub graphql_url: String,
    /// Concurrent subscribers (one WebSocket each), all on one post.
    #[arg(long, default_value_t = 2000)]
    pub subscribers: usize,
    /// Comments to write.
    #[arg(long, default_value_t = 500)]
    pub comments: usize,
    /// Comments per second.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// The gateway's process id, to measure its memory per idle subscription.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
}

/// Arguments of `inkwire bench page`.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// The gateway's `/graphql` URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/graphql")]
    pub graphql_url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// What each client asks for.
    #[arg(long, value_enum, default_value_t = PageRequest::Query)]
    pub request: PageRequest,
}

/// What `inkwire bench page` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PageRequest {
    /// The post page's GraphQL query: the post and its first 20 comments.
    Query,
    /// The post's HTML page (`GET /posts/{slug}`: the app with its link-preview tags).
    Html,
    /// The blog's Atom feed (`GET /feed.xml`).
    Feed,
    /// A two-word `searchPosts` query that matches the post.
    Search,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) the process `pid` has used so far, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces), fields 14 and 15: utime and stime.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ: 100 on every Linux architecture Inkwire runs on (`getconf CLK_TCK`).
    Some(ticks / 100.0)
}

/// The machine's CPU time so far, in ticks: (stolen by the hypervisor, idle, all).
fn machine_ticks() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    Some((*ticks.get(7)?, ticks[3] + ticks[4], ticks.iter().sum()))
}

/// Percent of the machine's CPU time between `before` and `after` that was stolen and idle.
fn machine_shares(before: (u64, u64, u64), after: (u64, u64, u64)) -> Option<(f64, f64)> {
    let all = after.2.checked_sub(before.2).filter(|t| *t > 0)? as f64;
    let percent = |a: u64, b: u64| (a.saturating_sub(b) as f64 / all * 1000.0).round() / 10.0;
    Some((percent(after.0, before.0), percent(after.1, before.1)))
}

/// The comment id in a `next` message, found without parsing the whole message: this runs
/// 100,000 times a second on the cores the gateway uses. The subscription selects the comment's
/// id last, so the message ends with it; anything else is searched for.
pub fn comment_id(text: &str) -> Option<u128> {
    const ID_LEN: usize = 36;
    let last = text.strip_suffix("\"}}}}}").and_then(|t| {
        let (before, id) = t.split_at_checked(t.len().checked_sub(ID_LEN)?)?;
        before.ends_with("\"id\":\"").then_some(id)
    });
    let id = match last {
        Some(id) => id,
        None => {
            let at = text.find("\"comment\"")?;
            let rest = &text[at..];
            let start = rest.find("\"id\":\"")? + 6;
            let end = rest[start..].find('"')? + start;
            &rest[start..end]
        }
    };
    uuid::Uuid::try_parse(id).ok().map(|u| u.as_u128())
}

/// The least-squares slope of `y` over `x`, when there are two distinct `x`.
fn slope(points: &[(usize, u64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|&(x, _)| x as f64).sum::<f64>() / n;
    let mean_y = points.iter().map(|&(_, y)| y as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in points {
        sxy += (x as f64 - mean_x) * (y as f64 - mean_y);
        sxx += (x as f64 - mean_x).powi(2);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

fn percentiles(h: &Histogram<u64>) -> Value {
    json!({
        "p50_ms": h.value_at_quantile(0.50) as f64 / 1000.0,
        "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
        "max_ms": h.max() as f64 / 1000.0,
        "samples": h.len(),
    })
}

/// Runs `inkwire bench fanout`.
///
/// # Errors
/// When the gateway cannot be reached.
pub async fn fanout(args: FanoutArgs, cancel: CancellationToken) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let token = sign_in(&http, &args.graphql_url, BENCH_LOGIN.0, BENCH_LOGIN.1).await?;
    let (post, _) = client::published_post(&http, &args.graphql_url, &token).await?;
    let endpoint = wire::Endpoint::parse(&args.graphql_url)?;
    let rss_before = args.gateway_pid.and_then(rss_kib);

    // RSS is sampled at each quarter of the subscribers (after they settle): the slope through
    // those points is what one more idle subscription costs, without the one-off growth the
    // first ones cause (database pool, allocator arenas, runtime buffers), and one sample caught
    // before or after the allocator returns freed pages cannot swing it alone.
    let quarters: Vec<usize> = (1..=4).map(|q| args.subscribers * q / 4).collect();
    let mut rss_samples: Vec<(usize, u64)> = Vec::new();
    let subscription = json!({
        "query": "subscription($p: ID!) { commentEvents(postId: $p) { kind cursor comment { id } } }",
        "variables": { "p": post },
    })
    .to_string();
    // Two reading threads, as many as this machine kind has cores.
    let mut receivers = wire::Receivers::start(2)?;
    let mut connected = 0;
    while connected < args.subscribers {
        anyhow::ensure!(!cancel.is_cancelled(), "cancelled");
        // Handshakes in batches, so as not to stampede the listener's accept queue.
        let batch = 50.min(args.subscribers - connected);
        let mut handshakes = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (endpoint, subscription, expected) =
                (endpoint.clone(), subscription.clone(), args.comments);
            handshakes.spawn_blocking(move || {
                wire::Subscriber::connect(&endpoint, &subscription, expected)
            });
        }
        while let Some(subscriber) = handshakes.join_next().await {
            receivers.add(subscriber??)?;
            connected += 1;
            if quarters.contains(&connected) {
                // Let the subscriptions settle before measuring memory.
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Some(rss) = args.gateway_pid.and_then(rss_kib) {
                    rss_samples.push((connected, rss));
                }
            }
        }
    }
    let rss_idle = rss_samples.last().map(|&(_, rss)| rss);

    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let posters: Arc<std::sync::Mutex<Vec<wire::Poster>>> = Arc::default();
    let cpu_before = args.gateway_pid.and_then(cpu_seconds);
    let own_cpu_before = cpu_seconds(std::process::id());
    let machine_before = machine_ticks();
    let started = Instant::now();
    let started_stamp = wire::now();
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..args.comments {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let (endpoint, posters, token) = (endpoint.clone(), posters.clone(), token.clone());
        let body = json!({
            "query": "mutation($input: AddCommentInput!) { addComment(input: $input) { comment { id } } }",
            "variables": { "input": { "postId": post, "body": format!("fan-out {i}") } },
        })
        .to_string();
        writers.spawn_blocking(move || {
            let idle = posters.lock().ok().and_then(|mut p| p.pop());
            let mut poster = match idle {
                Some(poster) => poster,
                None => wire::Poster::connect(&endpoint)?,
            };
            let sent = wire::now();
            let (answer, acked) = poster.post(&token, &body)?;
            if let Ok(mut idle) = posters.lock() {
                idle.push(poster);
            }
            let answer: Value = serde_json::from_slice(&answer)?;
            anyhow::ensure!(answer.get("errors").is_none(), "GraphQL error: {answer}");
            let id = answer["data"]["addComment"]["comment"]["id"]
                .as_str()
                .unwrap_or_default();
            Ok::<_, anyhow::Error>((uuid::Uuid::try_parse(id)?.as_u128(), sent, acked))
        });
    }
    let mut acks: HashMap<u128, wire::Stamp> = HashMap::with_capacity(args.comments);
    // From sending a comment to its acknowledgement reaching the writer's socket.
    let histogram = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3);
    let mut to_ack = histogram()?;
    while let Some(done) = writers.join_next().await {
        let (id, sent, acked) = done??;
        to_ack.record(micros_between(sent, acked))?;
        acks.insert(id, acked);
    }
    let wrote = started.elapsed();
    let expected_total = (args.subscribers * args.comments) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while receivers.delivered.load(Ordering::Relaxed) < expected_total
        && Instant::now() < deadline
        && !cancel.is_cancelled()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let gateway_cpu = cpu_before
        .zip(args.gateway_pid.and_then(cpu_seconds))
        .map(|(before, after)| after - before);
    let own_cpu = own_cpu_before
        .zip(cpu_seconds(std::process::id()))
        .map(|(before, after)| after - before);
    let machine = machine_before
        .zip(machine_ticks())
        .and_then(|(before, after)| machine_shares(before, after));
    let subscribers = tokio::task::spawn_blocking(move || receivers.finish()).await??;

    let (mut latency, mut read_latency) = (histogram()?, histogram()?);
    let mut last_receipt = started_stamp;
    let (mut delivered, mut duplicates, mut unstamped, mut closed) = (0u64, 0u64, 0u64, Vec::new());
    // Receipts that reached their subscriber before the acknowledgement reached its writer
    // (counted as 1 µs in `ack_to_receipt`): the push outran the answer.
    let mut before_ack = 0_u64;
    // Per comment, its first and last receipt: the first says how long the pipeline took to
    // reach the fan-out, the difference how long the fan-out itself took.
    let mut per_comment: HashMap<u128, (wire::Stamp, wire::Stamp)> = HashMap::new();
    for subscriber in &subscribers {
        let mut ids: Vec<u128> = subscriber.receipts.iter().map(|r| r.0).collect();
        ids.sort_unstable();
        ids.dedup();
        duplicates += (subscriber.receipts.len() - ids.len()) as u64;
        delivered += subscriber.receipts.len() as u64;
        unstamped += subscriber.unstamped;
        if let Some(reason) = &subscriber.closed {
            closed.push(reason.clone());
        }
        for &(id, arrived, read) in &subscriber.receipts {
            last_receipt = last_receipt.max(arrived);
            if let Some(&acked) = acks.get(&id) {
                if arrived < acked {
                    before_ack += 1;
                }
                latency.record(micros_between(acked, arrived))?;
                read_latency.record(micros_between(acked, read))?;
                let span = per_comment.entry(id).or_insert((arrived, arrived));
                span.0 = span.0.min(arrived);
                span.1 = span.1.max(arrived);
            }
        }
    }
    let (mut first_receipt, mut fan_out) = (histogram()?, histogram()?);
    for (id, (first, last)) in &per_comment {
        if let Some(&acked) = acks.get(id) {
            first_receipt.record(micros_between(acked, *first))?;
        }
        fan_out.record(micros_between(*first, *last))?;
    }
    closed.sort();
    closed.dedup();
    let span = (Duration::from_nanos(u64::try_from(last_receipt - started_stamp).unwrap_or(0)))
        .max(wrote)
        .as_secs_f64();
    Ok(json!({
        "bench": "gateway_fanout",
        "subscribers": args.subscribers,
        "comments": args.comments,
        "rate": args.rate,
        "delivered": delivered,
        "expected": expected_total,
        "duplicates": duplicates,
        "closed_by_gateway": closed,
        // Reads the kernel did not stamp (their receipts are the time they were read).
        "unstamped_reads": unstamped,
        "deliveries_per_sec": (delivered as f64 / span).round(),
        "elapsed_s": elapsed.as_secs_f64(),
        // From the kernel's stamp of the acknowledgement reaching the writer's socket to the
        // kernel's stamp of the comment reaching each subscriber's socket.
        "ack_to_receipt": percentiles(&latency),
        "receipts_before_ack": before_ack,
        // From sending a comment to its acknowledgement's arrival.
        "send_to_ack": percentiles(&to_ack),
        // The same, to when the load generator read it (its own queue included).
        "ack_to_read": percentiles(&read_latency),
        // Per comment: acknowledgement to its first receipt, and first to last receipt.
        "ack_to_first_receipt": percentiles(&first_receipt),
        "first_to_last_receipt": percentiles(&fan_out),
        // What the gateway's process spent while the comments were written and delivered
        // (the command and projection work too, in the one-process stack).
        "gateway_cpu_cores": gateway_cpu.map(|s| (s / elapsed.as_secs_f64() * 100.0).round() / 100.0),
        "gateway_cpu_us_per_delivery": gateway_cpu
            .filter(|_| delivered > 0)
            .map(|s| (s * 1e6 / delivered as f64 * 10.0).round() / 10.0),
        // What this load generator spent meanwhile, on the same machine.
        "client_cpu_us_per_delivery": own_cpu
            .filter(|_| delivered > 0)
            .map(|s| (s * 1e6 / delivered as f64 * 10.0).round() / 10.0),
        // The whole machine meanwhile: CPU time the hypervisor gave to other guests (a virtual
        // machine's "steal"), and time left idle. Figures from runs with much steal say more
        // about the host than about Inkwire.
        "machine_steal_percent": machine.map(|m| m.0),
        "machine_idle_percent": machine.map(|m| m.1),
        "gateway_rss_kib_before": rss_before,
        "gateway_rss_kib_by_subscribers": rss_samples,
        "gateway_rss_kib_idle": rss_idle,
        "kib_per_idle_subscription": slope(&rss_samples).map(|k| (k * 100.0).round() / 100.0),
        "kib_per_idle_subscription_from_start": match (rss_before, rss_idle) {
            (Some(b), Some(i)) => Some(((i.saturating_sub(b)) as f64 / args.subscribers as f64 * 100.0).round() / 100.0),
            _ => None,
        },
    }))
}

/// Microseconds from `from` to `to` (at least 1, for the histogram; 1 when `to` came first).
fn micros_between(from: wire::Stamp, to: wire::Stamp) -> u64 {
    u64::try_from((to - from) / 1_000).unwrap_or(0).max(1)
}

/// The post page: a post and its first 20 comments.
pub const POST_PAGE: &str = "query($id: ID) { post(id: $id) { id title html tags publishedAt commentCount comments(first: 20) { edges { cursor node { id html authorName createdAt depth replyCount parentId } } pageInfo { hasNextPage endCursor } } } }";

/// A search for the bench post's words.
pub const SEARCH_PAGE: &str = "query($q: String!) { searchPosts(query: $q, first: 10) { edges { node { id slug title tags publishedAt commentCount } } } }";

/// Runs `inkwire bench page`.
///
/// # Errors
/// When the gateway cannot be reached.
pub async fn page(args: PageArgs, cancel: CancellationToken) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let token = sign_in(&http, &args.graphql_url, BENCH_LOGIN.0, BENCH_LOGIN.1).await?;
    let (post, slug) = client::published_post(&http, &args.graphql_url, &token).await?;
    for i in 0..25 {
        gql(
            &http,
            &args.graphql_url,
            &token,
            "mutation($input: AddCommentInput!, $w: Boolean) { addComment(input: $input, waitForProjection: $w) { position } }",
            json!({ "input": { "postId": post, "body": format!("Comment {i} with *markdown* and a [link](https://example.com)") }, "w": i == 24 }),
        )
        .await?;
    }
    let base = args.graphql_url.trim_end_matches("/graphql").to_owned();
    // The request, and how its answer starts when it is right.
    let (get, body, expect): (Option<String>, String, &'static [u8]) = match args.request {
        PageRequest::Query => (
            None,
            json!({ "query": POST_PAGE, "variables": { "id": post } }).to_string(),
            b"{\"data\":{\"post\":{",
        ),
        PageRequest::Search => (
            None,
            json!({ "query": SEARCH_PAGE, "variables": { "q": "little markdown" } }).to_string(),
            b"{\"data\":{\"searchPosts\":{\"edges\":[{",
        ),
        PageRequest::Html => (
            Some(format!("{base}/posts/{slug}")),
            String::new(),
            b"<!doctype html>",
        ),
        PageRequest::Feed => (Some(format!("{base}/feed.xml")), String::new(), b"<?xml"),
    };
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let (http, url, get, body, histogram, errors, cancel) = (
            http.clone(),
            args.graphql_url.clone(),
            get.clone(),
            body.clone(),
            histogram.clone(),
            errors.clone(),
            cancel.clone(),
        );
        tasks.spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid bounds"));
            while Instant::now() < stop && !cancel.is_cancelled() {
                let sent = Instant::now();
                let request = match &get {
                    Some(page) => http.get(page),
                    None => http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                };
                let ok = match request.send().await {
                    Ok(r) => r.bytes().await.is_ok_and(|b| b.starts_with(expect)),
                    Err(_) => false,
                };
                if ok {
                    let _ = local.record(
                        u64::try_from(sent.elapsed().as_micros())
                            .unwrap_or(u64::MAX)
                            .max(1),
                    );
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let _ = histogram.lock().await.add(&local);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let h = histogram.lock().await;
    Ok(json!({
        "bench": "gateway_post_page",
        "request": format!("{:?}", args.request).to_lowercase(),
        "clients": args.clients,
        "requests": h.len(),
        "errors": errors.load(Ordering::Relaxed),
        "requests_per_sec": (h.len() as f64 / elapsed).round(),
        "latency": percentiles(&h),
    }))
}

#[cfg(test)]
mod tests {
    use super::{comment_id, machine_shares, slope};

    #[test]
    fn steal_and_idle_are_shares_of_the_time_between_two_readings() {
        // (steal, idle + iowait, all) ticks: 1,000 ticks passed, 150 stolen, 300 idle.
        assert_eq!(
            machine_shares((50, 900, 10_000), (200, 1_200, 11_000)),
            Some((15.0, 30.0))
        );
        assert_eq!(
            machine_shares((0, 0, 10), (0, 0, 10)),
            None,
            "no time passed"
        );
    }

    #[test]
    fn the_memory_slope_follows_the_points_and_needs_two_distinct_counts() {
        let line = [(500, 1_000), (1000, 4_000), (1500, 7_000), (2000, 10_000)];
        assert_eq!(slope(&line), Some(6.0));
        // One low sample (freed pages returned just then) bends the slope, not its sign.
        let dip = [(500, 1_000), (1000, 4_000), (1500, 4_500), (2000, 10_000)];
        assert!(slope(&dip).is_some_and(|k| k > 4.0 && k < 6.0));
        assert_eq!(slope(&[(2000, 10_000)]), None);
        assert_eq!(slope(&[]), None);
    }

    #[test]
    fn comment_ids_are_read_from_next_messages_in_either_shape() {
        let id = "0193a4c2-7d1e-7a35-9b2f-3c4d5e6f7a8b";
        let want = uuid::Uuid::parse_str(id).unwrap().as_u128();
        let last = format!(
            r#"{{"type":"next","id":"1","payload":{{"data":{{"commentEvents":{{"kind":"ADDED","cursor":"c","comment":{{"id":"{id}"}}}}}}}}}}"#
        );
        assert_eq!(comment_id(&last), Some(want));
        let reordered = format!(
            r#"{{"type":"next","id":"1","payload":{{"data":{{"commentEvents":{{"comment":{{"id":"{id}"}},"kind":"ADDED"}}}}}}}}"#
        );
        assert_eq!(comment_id(&reordered), Some(want));
        assert_eq!(comment_id(r#"{"type":"ping"}"#), None);
        assert_eq!(comment_id(r#"{"comment":{"id":"not-a-uuid"}}"#), None);
    }
}
