//! Several gateway processes behind a real nginx, on PostgreSQL and the Kafka-protocol broker:
//! fan-out to many subscribers across instances, a gateway SIGKILLed mid-stream, read-your-writes
//! across instances, and the npm `graphql-ws` client.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, MediaStore};
use common::graphql::{
    WsClient, WsEvent, add_comment, comment_event, comment_events_cursor, gql, published_post,
};
use serde_json::json;

const POSTS: usize = 5;
const SUBSCRIBERS: usize = 50;
const COMMENTS: usize = 500;

/// What one subscriber received, in order, and how often it had to reconnect.
#[derive(Default)]
struct Received {
    ids: Vec<String>,
    reconnects: usize,
}

/// Subscribes through `url` and keeps going across dropped connections, resuming from the last
/// cursor, like a real client would.
async fn subscriber(url: String, post: String, start: String, into: Arc<Mutex<Received>>) {
    // Like a page that loaded the post: from the cursor of that read, so nothing in between is
    // lost, not even when the first connection dies before its first event.
    let mut cursor: Option<String> = Some(start);
    loop {
        let mut ws = loop {
            match WsClient::connect(&url).await {
                Ok(ws) => break ws,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        ws.subscribe("s", &post, cursor.as_deref()).await;
        loop {
            match ws.next(Duration::from_secs(3600)).await {
                Some(WsEvent::Next(_, payload)) => {
                    let (kind, id, next) = comment_event(&payload);
                    assert_eq!(kind, "ADDED", "{payload}");
                    into.lock().expect("lock").ids.push(id);
                    cursor = Some(next);
                }
                // A transient failure (a database timeout under load): resubscribe from the
                // cursor, as a real client does. Anything else is a bug.
                Some(WsEvent::Error(_, payload)) => {
                    let code = payload[0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or_default();
                    assert!(
                        ["UNAVAILABLE", "INTERNAL", "SLOW_CONSUMER"].contains(&code),
                        "subscription error: {payload}"
                    );
                    eprintln!("subscriber resubscribes after {payload}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                Some(WsEvent::Closed(..) | WsEvent::Complete(_)) | None => break,
            }
        }
        into.lock().expect("lock").reconnects += 1;
    }
}

async fn comments_in_order(cluster: &Cluster, post: &str) -> Vec<String> {
    let r = gql(
        &cluster.http,
        &cluster.nginx_url(),
        None,
        "query($post: ID!) { comments(postId: $post, first: 200) { edges { node { id } } } }",
        json!({ "post": post }),
    )
    .await;
    common::graphql::comment_ids(&r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_subscribers_behind_nginx_get_every_comment_once_in_order_through_a_gateway_kill() {
    let mut cluster = Cluster::start(2).await;
    let url = cluster.nginx_url();
    let mut posts = Vec::new();
    for _ in 0..POSTS {
        posts.push(published_post(&cluster.http, &url).await);
    }
    let received: Vec<Arc<Mutex<Received>>> = (0..SUBSCRIBERS).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    let mut starts = Vec::new();
    for post in &posts {
        starts.push(comment_events_cursor(&cluster.http, &url, post).await);
    }
    for (i, into) in received.iter().enumerate() {
        tasks.push(tokio::spawn(subscriber(
            cluster.nginx_ws(),
            posts[i % POSTS].clone(),
            starts[i % POSTS].clone(),
            into.clone(),
        )));
    }
    // Write once every subscription is open, so that the kill below hits live subscriptions.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.open_subscriptions().await < SUBSCRIBERS as i64 {
        assert!(
            Instant::now() < deadline,
            "only {} subscriptions open",
            cluster.open_subscriptions().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut on_each = Vec::new();
    for i in 0..cluster.gateways.len() {
        on_each.push(cluster.open_subscriptions_on(i).await);
    }
    assert!(
        on_each.iter().all(|n| *n > 0),
        "nginx spread subscribers over both gateways: {on_each:?}"
    );

    // 500 comments over 5 posts, 10 writers at a time; gateway 0 is SIGKILLed at 200 and
    // restarted a second later while the writers keep going through nginx.
    let written = Arc::new(Mutex::new(0_usize));
    let mut writers = Vec::new();
    for w in 0..10 {
        let (http, url, posts, written) = (
            cluster.http.clone(),
            url.clone(),
            posts.clone(),
            written.clone(),
        );
        writers.push(tokio::spawn(async move {
            for n in 0..COMMENTS / 10 {
                let post = &posts[(w + n) % POSTS];
                // A write that fails (its gateway died under it) is retried; the read tables are
                // the truth the subscribers are checked against.
                loop {
                    let (id, _) =
                        add_comment(&http, &url, post, &format!("w{w} n{n}"), false).await;
                    if !id.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                *written.lock().expect("lock") += 1;
            }
        }));
    }
    while *written.lock().expect("lock") < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.kill_gateway(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_gateway(0).await;
    for w in writers {
        w.await.expect("writer");
    }

    // The read tables are the truth: wait until they hold every accepted comment (a write
    // whose answer was lost to the kill may have landed too), then once more after a pause.
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for post in &posts {
            expected.insert(post.clone(), comments_in_order(&cluster, post).await);
        }
        let total: usize = expected.values().map(Vec::len).sum();
        if total >= COMMENTS {
            break;
        }
        assert!(Instant::now() < deadline, "only {total} comments projected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for post in &posts {
        expected.insert(post.clone(), comments_in_order(&cluster, post).await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = received
            .iter()
            .enumerate()
            .all(|(i, r)| r.lock().expect("lock").ids.len() >= expected[&posts[i % POSTS]].len());
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more, so that a duplicate would have arrived.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut reconnected = 0;
    for (i, r) in received.iter().enumerate() {
        let r = r.lock().expect("lock");
        let want = &expected[&posts[i % POSTS]];
        let missing: Vec<usize> = want
            .iter()
            .enumerate()
            .filter(|(_, id)| !r.ids.contains(id))
            .map(|(n, _)| n)
            .collect();
        assert!(
            &r.ids == want,
            "subscriber {i}: got {} events, want {} (exactly once, in order); missing positions {missing:?}, reconnects {}\ngateway0: {}\ngateway1: {}",
            r.ids.len(),
            want.len(),
            r.reconnects,
            cluster.log_tail("gateway0"),
            cluster.log_tail("gateway1")
        );
        reconnected += usize::from(r.reconnects > 0);
    }
    assert!(
        reconnected > 0,
        "the killed gateway's subscribers had to reconnect"
    );
    for t in tasks {
        t.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_projection_is_read_your_writes_on_the_other_instance_every_time() {
    let cluster = Cluster::start(2).await;
    let (a, b) = (cluster.gateway_url(0), cluster.gateway_url(1));
    let post = published_post(&cluster.http, &a).await;
    let list = "query($post: ID!, $after: String) { comments(postId: $post, first: 200, after: $after) { edges { cursor node { id } } } }";
    let mut after: Option<String> = None;
    for i in 0..100 {
        let (id, r) = add_comment(&cluster.http, &a, &post, &format!("ryw {i}"), true).await;
        assert!(!id.is_empty(), "{r}");
        let r = gql(
            &cluster.http,
            &b,
            None,
            list,
            json!({ "post": post, "after": after }),
        )
        .await;
        let edges = r["data"]["comments"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            edges.iter().any(|e| e["node"]["id"] == id.as_str()),
            "write {i} not visible on the other gateway right after waitForProjection: {r}"
        );
        after = edges
            .last()
            .and_then(|e| e["cursor"].as_str())
            .map(str::to_owned);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_graphql_ws_client_receives_a_comment_through_nginx() {
    let cluster = Cluster::start(2).await;
    let post = published_post(&cluster.http, &cluster.nginx_url()).await;
    let script = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("tests/js/subscribe.mjs");
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .arg(cluster.nginx_ws())
        .arg(&post)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/test-deps.sh installs graphql-ws)");
    // Wait until the subscription is open on a gateway, then comment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.open_subscriptions().await < 1 {
        assert!(
            Instant::now() < deadline,
            "the graphql-ws client never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (id, _) = add_comment(
        &cluster.http,
        &cluster.nginx_url(),
        &post,
        "hello from Rust",
        false,
    )
    .await;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("client exits")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "graphql-ws client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("an event line")).expect("JSON");
    assert_eq!(event["kind"], "ADDED");
    assert_eq!(event["comment"]["id"], id.as_str());
    assert_eq!(event["comment"]["body"], "hello from Rust");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_the_web_ui_beside_the_api() {
    let cluster = Cluster::start(1).await;
    let base = cluster.nginx_url().trim_end_matches("/graphql").to_owned();
    let get = |path: &str| cluster.http.get(format!("{base}{path}")).send();
    // A client route gets the app, revalidated on every visit.
    let page = get("/tags/some-tag").await.expect("page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Its policy as a header too (frame-ancestors works only there), connections to this origin.
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(policy.contains("script-src 'self' 'sha256-"), "{policy}");
    assert!(policy.contains("connect-src 'self';"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await.expect("html");
    assert!(html.contains("content-security-policy"), "{html}");
    // Its scripts are content-hashed, served gzipped, and cached for good.
    let script = html
        .split('"')
        .find(|s| s.starts_with("/_app/immutable/") && s.ends_with(".js"))
        .unwrap_or_else(|| panic!("no script in {html}"))
        .to_owned();
    let asset = cluster
        .http
        .get(format!("{base}{script}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), 200, "{script}");
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(asset.headers()["content-encoding"], "gzip");
    let missing = get("/_app/immutable/nope.js").await.expect("missing asset");
    assert_eq!(missing.status(), 404);
    // An email's unsubscribe link is the app's page; a mail client's one-click POST (RFC 8058)
    // has its own address, which a gateway answers (a bad token, here).
    let page = get("/unsubscribe?token=abc")
        .await
        .expect("unsubscribe page");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("content-security-policy")
    );
    let one_click = cluster
        .http
        .post(format!("{base}/unsubscribe/one-click?token=abc"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click");
    assert_eq!(one_click.status(), 422);
    let refused: serde_json::Value = one_click.json().await.expect("json");
    assert_eq!(refused["error"]["reason"], "INVALID_LINK", "{refused}");
    // The API is still the API.
    let api = gql(
        &cluster.http,
        &cluster.nginx_url(),
        None,
        "{ posts { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert!(api["data"]["posts"]["edges"].is_array(), "{api}");
    // A post's page is the app too, built by a gateway with the post's own title, summary and
    // link-preview tags, what a chat app unfurling a shared link reads; a post that does not
    // exist is the app with 404 and noindex.
    let missing = get("/posts/no-such-post").await.expect("missing post");
    assert_eq!(missing.status(), 404);
    let html = missing.text().await.expect("html");
    assert!(html.contains("content-security-policy"), "{html}");
    assert!(
        html.contains(r#"<meta name="robots" content="noindex">"#),
        "{html}"
    );
    let slug = common::unique("shared").replace('_', "-");
    let created = gql(
        &cluster.http,
        &cluster.nginx_url(),
        Some(common::AUTHOR),
        "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
        json!({ "input": { "title": r#"Tom & "Jerry" <b>"#, "slug": slug, "tags": ["cartoons"],
                           "body": "# Chasing\n\nA cat, a mouse and *many* traps.\n\n```\nhidden()\n```" } }),
    )
    .await;
    let id = created["data"]["createPost"]["post"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    gql(
        &cluster.http,
        &cluster.nginx_url(),
        Some(common::AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { id } } }",
        json!({ "id": id }),
    )
    .await;
    let shared = get(&format!("/posts/{slug}")).await.expect("post page");
    assert_eq!(shared.status(), 200);
    assert_eq!(shared.headers()["cache-control"], "no-cache");
    assert!(
        shared.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("frame-ancestors 'none'"),
        "a gateway's post page without its policy"
    );
    let html = shared.text().await.expect("html");
    for tag in [
        "<title>Tom &amp; &quot;Jerry&quot; &lt;b&gt; · Inkwire</title>".to_owned(),
        r#"<meta property="og:title" content="Tom &amp; &quot;Jerry&quot; &lt;b&gt;">"#.to_owned(),
        r#"<meta name="description" content="Chasing A cat, a mouse and many traps.">"#.to_owned(),
        format!(r#"<link rel="canonical" href="{base}/posts/{slug}">"#),
        r#"<meta property="article:tag" content="cartoons">"#.to_owned(),
    ] {
        assert!(html.contains(&tag), "no {tag} in {html}");
    }
    assert!(html.contains("/_app/immutable/"), "not the app: {html}");
    // So are the Atom feeds: built by a gateway, linking to the address readers used.
    let post = published_post(&cluster.http, &cluster.nginx_url()).await;
    let feed = get("/feed.xml").await.expect("feed");
    assert_eq!(feed.status(), 200);
    assert_eq!(
        feed.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let etag = feed.headers()["etag"].to_str().expect("etag").to_owned();
    let feed: atom_syndication::Feed = feed.text().await.expect("xml").parse().expect("atom");
    assert_eq!(feed.id, format!("{base}/feed.xml"));
    let entry = &feed.entries[0];
    assert_eq!(entry.id, format!("urn:uuid:{post}"));
    assert!(
        entry.links[0].href.starts_with(&format!("{base}/posts/")),
        "{:?}",
        entry.links
    );
    let again = cluster
        .http
        .get(format!("{base}/feed.xml"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("feed again");
    assert_eq!(again.status(), 304);
    let tagged = get("/tags/nothing-here/feed.xml").await.expect("tag feed");
    assert_eq!(tagged.status(), 200);
    for (path, expect) in [
        ("/sitemap.xml", format!("<loc>{base}/posts/")),
        ("/robots.txt", format!("Sitemap: {base}/sitemap.xml")),
    ] {
        let r = get(path).await.expect(path);
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.expect("text");
        assert!(text.contains(&expect), "{path}: {text}");
    }
}

/// A photo of a few megabytes (over nginx's default body limit) uploaded through nginx is stored
/// once where every gateway finds it: each serves it, and its sized variant, by id. In a shared
/// directory (scripts/cluster.sh) and in an S3 bucket (compose.yml's MinIO).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_uploaded_through_nginx_is_served_by_every_gateway_from_a_shared_directory() {
    let cluster = Cluster::start_with(2, MediaStore::SharedDirectory).await;
    photo_served_by_every_gateway(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_uploaded_through_nginx_is_served_by_every_gateway_from_an_s3_bucket() {
    let cluster = Cluster::start_with(2, MediaStore::S3Bucket).await;
    let id = photo_served_by_every_gateway(&cluster).await;
    // Kept in the bucket, under the store's prefix: the original and the variant made.
    let store = cluster.media_setting("INKWIRE_MEDIA_STORE").expect("store");
    let bucket = store
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .expect("bucket");
    let listing = cluster
        .http
        .get(format!("{}/{bucket}?list-type=2", common::s3_endpoint()))
        .send()
        .await
        .expect("S3 API")
        .text()
        .await
        .expect("listing");
    for key in [format!("images/{id}/original"), format!("images/{id}/w640")] {
        assert!(
            listing.contains(&format!("<Key>{key}</Key>")),
            "{key} not in {listing}"
        );
    }
}

/// Uploads a photo through nginx and reads it back from every gateway; its id.
async fn photo_served_by_every_gateway(cluster: &Cluster) -> String {
    let base = cluster.nginx_url().trim_end_matches("/graphql").to_owned();
    // Noise does not compress: a 1200x900 PNG of it is about 3 MB.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let noise = image::RgbImage::from_fn(1200, 900, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let [r, g, b, ..] = seed.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(noise)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    let png = png.into_inner();
    assert!(png.len() > 2 << 20, "{} bytes", png.len());

    let (content_type, body) = common::multipart("file", "noise.png", "image/png", &png);
    let response = cluster
        .http
        .post(format!("{base}/media"))
        .bearer_auth(common::token_for(common::AUTHOR))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("nginx answers");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let uploaded: serde_json::Value = response.json().await.expect("json");
    assert_eq!(uploaded["width"], 1200);
    let url = uploaded["url"].as_str().expect("url").to_owned();
    let id = uploaded["id"].as_str().expect("id").to_owned();

    for (port, _) in &cluster.gateways {
        for (query, width) in [("", 1200), ("?w=640", 640)] {
            let served = cluster
                .http
                .get(format!("http://127.0.0.1:{port}{url}{query}"))
                .send()
                .await
                .expect("gateway answers");
            assert_eq!(served.status(), 200, "gateway {port}: {url}{query}");
            assert_eq!(served.headers()["content-type"], "image/png");
            let bytes = served.bytes().await.expect("bytes");
            let image = image::load_from_memory(&bytes).expect("an image");
            assert_eq!(image.width(), width, "gateway {port}: {url}{query}");
        }
    }
    // And through nginx, with the gateways' long cache.
    let served = cluster
        .http
        .get(format!("{base}{url}"))
        .send()
        .await
        .expect("nginx answers");
    assert_eq!(served.status(), 200);
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("immutable")
    );
    id
}
