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

    // Everything goes through the gateway, as a client's would: the command API is not served,
    // so naming the author in a header writes nothing (docs/security.md).
    let graphql = format!("{base}/graphql");
    let forged = http
        .post(format!("{base}/v1/posts"))
        .header("x-inkwire-user-id", AUTHOR)
        .json(&json!({ "title": "Forged", "slug": "forged", "body_markdown": "x" }))
        .send()
        .await
        .expect("reachable");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    let id = common::graphql::published_post(&http, &graphql).await;
    // The write side reserves slugs: the one the forged request named is still free.
    let mine = common::graphql::gql(
        &http,
        &graphql,
        Some(AUTHOR),
        "mutation { createPost(input: { title: \"Mine\", body: \"x\", slug: \"forged\" }) { post { id } } }",
        json!({}),
    )
    .await;
    assert!(
        mine["data"]["createPost"]["post"]["id"].is_string(),
        "the forged request took the slug: {mine}"
    );
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
    let mut ws = common::graphql::WsClient::connect(&graphql.replacen("http", "ws", 1))
        .await
        .expect("the WebSocket connects");
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

/// A newcomer's second `inkwire dev` on a busy port: it says which address and how to pick
/// another, and leaves no data behind; `--port` points to `--listen`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_on_a_busy_port_says_so_and_writes_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = busy.local_addr().expect("addr").port();
    let dir = TempDir::new();
    let data = dir.0.join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args(["dev", "--demo", "--listen", &port.to_string(), "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("inkwire dev runs");
    assert!(!out.status.success(), "started on a busy port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        err.contains("--listen") && err.contains("INKWIRE_LISTEN"),
        "{err}"
    );
    assert!(!err.contains("\u{1b}["), "colour codes in a pipe: {err}");
    assert!(
        !data.exists(),
        "a data directory was made before the port was had"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args(["dev", "--port", "8090", "--data-dir"])
        .arg(&data)
        .output()
        .expect("inkwire dev runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean --listen 8090"), "{err}");
    assert!(!data.exists());
    drop(busy);
}

/// The operator commands find the data of `inkwire dev` by its data directory, as `user add`
/// does; the read-only ones never make a database where there is none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_read_the_data_dir_of_inkwire_dev() {
    let dir = TempDir::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let child = start_with(&dir, port, &["--demo"]);
    wait_up(&http, &base).await;
    let inkwire = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inkwire"));
        cmd.args(args)
            .arg("--data-dir")
            .arg(&dir.0)
            .env("RUST_LOG", "warn")
            .env_remove("INKWIRE_DATABASE_URL");
        cmd
    };

    // `lag`: the embedded log's one partition, with Kafka's tools' columns.
    let out = inkwire(&["lag"]).output().expect("lag runs");
    let table = common::succeeded(&out);
    assert!(
        table.contains("CURRENT-OFFSET") && table.contains("LOG-END-OFFSET"),
        "{table}"
    );
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "one group, one partition: {table}");

    // `events tail -n 3`: the last three events, then it says it waits, and follows.
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args(["events", "tail", "-n", "3", "--data-dir"])
        .arg(&dir.0)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tail runs");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        tail.stdout.take().expect("stdout"),
    ));
    let mut errs = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        tail.stderr.take().expect("stderr"),
    ));
    let mut got = Vec::new();
    while got.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("tail printed the last events")
            .expect("read")
            .expect("a line");
        got.push(line);
    }
    let waiting = tokio::time::timeout(Duration::from_secs(20), errs.next_line())
        .await
        .expect("tail says it waits")
        .expect("read")
        .unwrap_or_default();
    assert!(waiting.contains("waiting for new events"), "{waiting}");
    // Then the next event, live.
    let graphql = format!("{base}/graphql");
    let token = common::graphql::gql(
        &http,
        &graphql,
        None,
        "mutation { login(username: \"ada\", password: \"ada-demo-password\") { token } }",
        json!({}),
    )
    .await["data"]["login"]["token"]
        .as_str()
        .expect("ada signs in")
        .to_owned();
    let created = http
        .post(&graphql)
        .bearer_auth(&token)
        .json(&json!({ "query": "mutation { createPost(input: { title: \"Tailed\", body: \"x\" }) { post { id } } }" }))
        .send()
        .await
        .expect("create");
    assert!(created.status().is_success());
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("tail followed")
        .expect("read")
        .expect("a line");
    assert!(
        line.contains("post.drafted") || line.contains("Tailed"),
        "{line}"
    );
    drop(tail);

    // `replay --dry-run` reads the same data.
    let out = inkwire(&["replay", "posts", "--dry-run"])
        .output()
        .expect("replay runs");
    assert!(common::succeeded(&out).contains("events"), "dry run");

    // A wrong directory: each read-only command names the file it looked for, makes nothing.
    let wrong = dir.0.join("not-here");
    for args in [
        vec!["lag"],
        vec!["events", "tail", "--from-beginning", "--limit", "1"],
        vec!["replay", "posts", "--dry-run"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_inkwire"))
            .args(&args)
            .arg("--data-dir")
            .arg(&wrong)
            .env_remove("INKWIRE_DATABASE_URL")
            .output()
            .expect("runs");
        assert!(
            !out.status.success(),
            "{args:?} found data in an empty place"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&wrong.join("inkwire.db").display().to_string()),
            "{args:?}: {err}"
        );
        assert!(!wrong.exists(), "{args:?} made {}", wrong.display());
    }

    // `user add` says where it wrote, and warns when that place was new.
    for (target, new) in [(dir.0.clone(), false), (wrong.clone(), true)] {
        let mut add = Command::new(env!("CARGO_BIN_EXE_inkwire"))
            .args(["user", "add", "--username", "newcomer", "--data-dir"])
            .arg(&target)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("user add");
        std::io::Write::write_all(add.stdin.as_mut().expect("stdin"), b"newcomer-password\n")
            .expect("password");
        drop(add.stdin.take());
        let out = add.wait_with_output().expect("user add ends");
        common::succeeded(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&target.join("inkwire.db").display().to_string()),
            "{err}"
        );
        assert_eq!(err.contains("warning"), new, "{err}");
    }
    terminate(child);
}
