//! `inkwire dev` as a newcomer runs it: one process, a comment posted over HTTP is in the read
//! model within a second, it stops cleanly on SIGTERM, and it keeps its data across a restart.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{AUTHOR, TempDir};
use reqwest::StatusCode;
use serde_json::json;

fn start(dir: &TempDir, port: u16) -> Child {
    start_with(dir, port, &[])
}

/// `inkwire dev` on `dir` and `port`, with `extra` flags.
fn start_with(dir: &TempDir, port: u16, extra: &[&str]) -> Child {
    // The tests' token secret, so tokens they mint are this instance's.
    std::fs::create_dir_all(&dir.0).expect("data dir");
    std::fs::write(dir.0.join("jwt-secret"), common::TEST_SECRET).expect("secret");
    Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .arg("dev")
        .args(extra)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir.0)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("inkwire dev starts")
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    common::eventually(Duration::from_secs(20), || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

fn terminate(mut child: Child) {
    // SIGTERM, as a service manager would send it.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            assert!(exit.success(), "inkwire dev exited with {exit} on SIGTERM");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "inkwire dev did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_comments_live_stops_cleanly_and_keeps_its_data() {
    let dir = TempDir::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // The first author, as an operator would create them.
    let mut add = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args([
            "user",
            "add",
            "--username",
            "author",
            "--role",
            "author",
            "--id",
            AUTHOR,
            "--data-dir",
        ])
        .arg(&dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("inkwire user add");
    std::io::Write::write_all(add.stdin.as_mut().expect("stdin"), b"author-password\n")
        .expect("password");
    drop(add.stdin.take());
    let added = add.wait_with_output().expect("user add ends");
    assert!(added.status.success(), "user add failed");
    assert_eq!(String::from_utf8_lossy(&added.stdout).trim(), AUTHOR);

    let child = start(&dir, port);
    wait_up(&http, &base).await;

    // Everything goes through the gateway, as a client's would: the command API is not served.
    let graphql = format!("{base}/graphql");
    let id = common::graphql::published_post(&http, &graphql).await;
    let sent = Instant::now();
    let (comment, r) = common::graphql::add_comment(&http, &graphql, &id, "live?", false).await;
    assert!(!comment.is_empty(), "{r}");
    loop {
        let page = common::graphql::gql(
            &http,
            &graphql,
            None,
            "query($id: ID) { post(id: $id) { commentCount } }",
            json!({ "id": id }),
        )
        .await;
        if page["data"]["post"]["commentCount"] == 1 {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "comment not in the read model within a second: {page}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The GraphQL gateway serves GraphiQL and live subscriptions on the same port.
    let page = common::graphql::gql(
        &http,
        &graphql,
        None,
        "query($id: ID) { post(id: $id) { title commentCount comments { edges { node { body } } } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(page["data"]["post"]["commentCount"], 1, "{page}");
    assert_eq!(
        page["data"]["post"]["comments"]["edges"][0]["node"]["body"], "live?",
        "{page}"
    );
    let graphiql = http
        .get(&graphql)
        .header("accept", "text/html")
        .send()
        .await
        .expect("GraphiQL")
        .text()
        .await
        .expect("html");
    assert!(
        graphiql.to_lowercase().contains("graphiql"),
        "GET /graphql serves GraphiQL"
    );
    let mut ws = common::graphql::WsClient::connect(&graphql.replacen("http", "ws", 1)).await;
    ws.subscribe("1", &id, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (pushed, _) =
        common::graphql::add_comment(&http, &graphql, &id, "pushed live", false).await;
    match ws.next(Duration::from_secs(1)).await {
        Some(common::graphql::WsEvent::Next(_, payload)) => {
            assert_eq!(common::graphql::comment_event(&payload).1, pushed);
        }
        other => panic!("no live comment within a second: {other:?}"),
    }

    // Operators see the command and projection metrics on the same port.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "inkwire_command_duration_seconds_bucket{outcome=\"accepted\"",
        "inkwire_projection_events_total{outcome=\"applied\"}",
        "inkwire_projection_batch_duration_seconds",
        "inkwire_outbox_published_total",
        "inkwire_gateway_deliveries_total",
        "inkwire_gateway_operations_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    terminate(child);

    let child = start(&dir, port);
    wait_up(&http, &base).await;
    let view = common::graphql::gql(
        &http,
        &graphql,
        None,
        "query($id: ID) { post(id: $id) { commentCount version } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        view["data"]["post"]["commentCount"], 2,
        "data lost across a restart: {view}"
    );
    let (_, accepted) =
        common::graphql::add_comment(&http, &graphql, &id, "after restart", true).await;
    assert!(
        accepted["data"]["addComment"]["comment"]["id"].is_string(),
        "the restarted process takes comments: {accepted}"
    );
    let view = common::graphql::gql(
        &http,
        &graphql,
        None,
        "query($id: ID) { post(id: $id) { commentCount version } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        view["data"]["post"]["version"], 5,
        "the restarted process continues the stream: {view}"
    );
    terminate(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_demo_shows_a_living_blog_at_once_and_only_seeds_once() {
    let dir = TempDir::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let graphql = format!("{base}/graphql");
    let http = reqwest::Client::new();
    let page = "{ posts { edges { node { title author { displayName } commentCount comments { edges { node { body depth author { username } } } } } } } }";
    for round in 0..2 {
        let child = start_with(&dir, port, &["--demo"]);
        wait_up(&http, &base).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let posts = loop {
            let r = common::graphql::gql(&http, &graphql, None, page, json!({})).await;
            let edges = r["data"]["posts"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if edges.len() == 3 && edges.iter().all(|e| e["node"]["commentCount"] == 3) {
                break edges;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: demo blog not there: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(posts[0]["node"]["author"]["displayName"], "Ada Lovelace");
        let comments = posts[0]["node"]["comments"]["edges"]
            .as_array()
            .expect("comments");
        assert!(
            comments.iter().any(|c| c["node"]["depth"] == 1),
            "a reply: {comments:?}"
        );
        let r = common::graphql::gql(&http, &graphql, None, "mutation { login(username: \"ada\", password: \"ada-demo-password\") { user { roles } } }", json!({})).await;
        assert!(
            r["data"]["login"]["user"]["roles"]
                .as_array()
                .expect("roles")
                .contains(&json!("author")),
            "{r}"
        );
        terminate(child);
    }
}

/// A shared link to a post unfurls with the post's own title and summary, and a feed reader
/// finds the blog's posts, from `inkwire dev` alone (the same gateway code answers behind nginx
/// in `gateway_cluster`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_post_pages_carry_their_link_preview_and_the_feed_lists_the_posts() {
    let build = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/build");
    assert!(
        build.join("index.html").is_file(),
        "no web UI build: scripts/test-deps.sh builds it"
    );
    let server = common::DevServer::demo(&["--web-dir".as_ref(), build.as_os_str()]).await;
    let base = &server.base;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();

    let page = get("/posts/welcome-to-inkwire").await.expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    for tag in [
        "<title>Welcome to Inkwire · Inkwire</title>".to_owned(),
        r#"<meta property="og:title" content="Welcome to Inkwire">"#.to_owned(),
        r#"<meta name="description" content="Hello! This blog is event-sourced: every post and comment is an event on a log, and what you read is a projection of it. Open this page in two windows and comment: the other window updates live.">"#.to_owned(),
        format!(r#"<link rel="canonical" href="{base}/posts/welcome-to-inkwire">"#),
    ] {
        assert!(html.contains(&tag), "no {tag} in {html}");
    }
    assert_eq!(html.matches("<title>").count(), 1, "{html}");

    let missing = get("/posts/not-a-post").await.expect("missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let html = missing.text().await.expect("html");
    assert!(
        html.contains("noindex") && html.contains("/_app/immutable/"),
        "{html}"
    );
    // Other pages are the app as built.
    let home = get("/").await.expect("home").text().await.expect("html");
    assert!(home.contains("<title>Inkwire</title>"), "{home}");

    let feed = get("/feed.xml")
        .await
        .expect("feed")
        .text()
        .await
        .expect("xml");
    let feed: atom_syndication::Feed = feed.parse().expect("atom");
    let mut titles: Vec<&str> = feed
        .entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        [
            "Notes on the Analytical Engine",
            "Welcome to Inkwire",
            "Why comments appear live"
        ]
    );
    assert!(
        feed.entries
            .iter()
            .all(|e| e.links[0].href.starts_with(&format!("{base}/posts/"))),
        "{:?}",
        feed.entries
    );
}
