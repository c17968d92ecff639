//! `inkwire replay`: a view rebuilt from the log beside the live one while comments keep being
//! written and read, switched live atomically, equal afterwards to a view built from scratch;
//! and a rebuild killed halfway that leaves the live view alone and is resumed by the next run.
//! On both backends, with the real binary.

#[macro_use]
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::graphql::gql;
use common::{AUTHOR, Backend, TestStack};
use infra::db::Db;
use infra::log::{LogConfig, StartAt};
use infra::with_db;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

on_both_backends!(
    rebuild_under_load_switches_to_a_view_equal_to_one_built_from_scratch,
    a_killed_rebuild_leaves_the_live_view_alone_and_the_next_run_resumes
);

/// `inkwire replay <args>` against the stack's database and log.
fn replay(stack: &TestStack, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inkwire"));
    cmd.arg("replay")
        .args(args)
        .args(["--database-url", &stack.db_url, "--group", &stack.group])
        .args(["--topic", &stack.topic]);
    match stack.backend {
        Backend::Embedded => cmd.args(["--partitions", "1"]),
        Backend::Distributed => cmd.args(["--kafka-brokers", &common::brokers()]),
    };
    cmd.env_remove("INKWIRE_KAFKA_BROKERS");
    cmd
}

/// Writes a post's worth of history: comments, replies, an edit, a deletion, a hidden one.
async fn history(stack: &TestStack, comments: usize) -> String {
    let post = stack.published_post().await;
    let mut ids: Vec<String> = Vec::new();
    for i in 0..comments {
        let parent = (i % 4 == 3).then(|| ids[i - 1].clone());
        let (status, body) = stack
            .post(
                &format!("/v1/posts/{post}/comments"),
                Some(AUTHOR),
                json!({ "body": format!("comment *{i}*"), "parent_id": parent }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["comment_id"].as_str().expect("id").to_owned());
    }
    let path = |id: &str| format!("/v1/posts/{post}/comments/{id}");
    for (method, id, body) in [
        (
            reqwest::Method::PATCH,
            &ids[0],
            json!({ "body": "edited **once**" }),
        ),
        (reqwest::Method::DELETE, &ids[1], json!({})),
    ] {
        let resp = stack
            .http
            .request(method, format!("{}{}", stack.command_url, path(id)))
            .header(
                command_api::auth::CALLER_PROOF_HEADER,
                common::caller_proof(Some(AUTHOR)),
            )
            .json(&body)
            .send()
            .await
            .expect("command API reachable");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let (s, b) = stack
        .post(
            &format!("{}/hide", path(&ids[2])),
            Some(AUTHOR),
            json!({ "reason": "spam" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    post
}

/// Waits until the live projector has applied everything in the event store.
async fn wait_projected(stack: &TestStack) {
    common::eventually(Duration::from_secs(60), || async {
        let (events, projected) = with_db!(&stack.db, |pool| {
            let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
                .fetch_one(pool)
                .await
                .expect("events");
            let projected: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM (SELECT version FROM rm_posts UNION ALL SELECT version FROM rm_users) v",
            )
            .fetch_one(pool)
            .await
            .expect("versions");
            (events, projected)
        });
        events == projected
    })
    .await;
}

/// The read model of `db` as comparable text rows (posts, comments, tags, users).
async fn dump(db: &Db) -> Vec<String> {
    let mut rows = common::read_model_dump(db).await;
    let extra = with_db!(db, |pool| {
        let mut out: Vec<String> = Vec::new();
        for row in sqlx::query(
            "SELECT id, changed_version, last_change, body_html FROM rm_comments ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .expect("comments")
        {
            out.push(format!(
                "comment-change {} {} {} {:?}",
                row.get::<uuid::Uuid, _>(0),
                row.get::<i64, _>(1),
                row.get::<String, _>(2),
                row.get::<Option<String>, _>(3)
            ));
        }
        for row in sqlx::query("SELECT tag, post_id FROM rm_post_tags ORDER BY tag, post_id")
            .fetch_all(pool)
            .await
            .expect("tags")
        {
            out.push(format!(
                "tag {} {}",
                row.get::<String, _>(0),
                row.get::<uuid::Uuid, _>(1)
            ));
        }
        for row in sqlx::query(
            "SELECT id, username, display_name, roles, disabled, version FROM rm_users ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .expect("users")
        {
            out.push(format!(
                "user {} {} {} {} {} {}",
                row.get::<uuid::Uuid, _>(0),
                row.get::<String, _>(1),
                row.get::<String, _>(2),
                row.get::<sqlx::types::Json<Vec<String>>, _>(3).0.join(","),
                row.get::<bool, _>(4),
                row.get::<i64, _>(5)
            ));
        }
        out
    });
    rows.extend(extra);
    rows
}

/// A read model built from scratch: every record of the stack's log applied, in log order, to a
/// fresh database of the same kind by the projector's own code.
async fn built_from_scratch(stack: &TestStack) -> Vec<String> {
    let (db, _dir) = match stack.backend {
        Backend::Embedded => {
            let dir = common::TempDir::new();
            (Db::open_data_dir(&dir.0).await.expect("sqlite"), Some(dir))
        }
        Backend::Distributed => {
            let url = common::fresh_database().await;
            (Db::connect(&url, 4).await.expect("postgres"), None)
        }
    };
    db.migrate().await.expect("migrations");
    let log = match stack.backend {
        Backend::Embedded => infra::log::embedded(stack.db.clone(), &stack.topic, 1),
        Backend::Distributed => LogConfig::Kafka(common::kafka(&stack.topic, &common::brokers())),
    };
    let ends: Vec<(i32, i64)> = log.high_watermarks().await.expect("watermarks");
    let total: i64 = ends.iter().map(|(_, n)| n).sum();
    let mut consumer = log.reader(&common::unique("scratch")).expect("consumer");
    let mut read = 0_i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read < total {
        assert!(std::time::Instant::now() < deadline, "log not read in time");
        consumer
            .position_fresh(&log, StartAt::Beginning)
            .await
            .expect("position");
        let batch = consumer
            .next_batch(1000, Duration::from_millis(100))
            .await
            .expect("read");
        let batch: Vec<_> = batch
            .into_iter()
            .filter(|r| {
                ends.iter()
                    .any(|(p, end)| *p == r.partition && r.offset < *end)
            })
            .collect();
        read += i64::try_from(batch.len()).expect("len");
        projection_service::projections::apply_batch(&db, "scratch", &batch)
            .await
            .expect("apply");
    }
    consumer.close();
    dump(&db).await
}

async fn count_next_tables(db: &Db) -> i64 {
    with_db!(db, |pool| {
        if db.is_sqlite() {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE 'rm\\_%\\_\\_next' ESCAPE '\\'",
            )
            .fetch_one(pool)
            .await
            .expect("tables")
        } else {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_name LIKE 'rm\\_%\\_\\_next'",
            )
            .fetch_one(pool)
            .await
            .expect("tables")
        }
    })
}

/// The indexes of each read table, by definition (names differ between generations).
async fn indexes(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["rm_posts", "rm_post_tags", "rm_comments", "rm_users"] {
        let defs: Vec<String> = with_db!(db, |pool| {
            if db.is_sqlite() {
                sqlx::query_scalar(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
                )
                .bind(table)
                .fetch_all(pool)
                .await
                .expect("indexes")
            } else {
                sqlx::query_scalar(
                    "SELECT indexdef::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1",
                )
                .bind(table)
                .fetch_all(pool)
                .await
                .expect("indexes")
            }
        });
        for def in defs {
            // `CREATE INDEX <name> ON <table> …`: keep what follows the name.
            let on = def.find(" ON ").map_or(def.as_str(), |at| &def[at..]);
            // SQLite quotes the table name once it has been renamed.
            out.push(format!("{table}:{}", on.replace('"', "")));
        }
    }
    out.sort();
    out
}

async fn rebuild_under_load_switches_to_a_view_equal_to_one_built_from_scratch(stack: &TestStack) {
    let post = history(stack, 200).await;
    wait_projected(stack).await;
    let indexes_before = indexes(&stack.db).await;
    // A projection "bug" that the rebuild repairs: names the events never said.
    with_db!(&stack.db, |pool| {
        sqlx::query("UPDATE rm_comments SET author_name = 'wrong' WHERE depth = 0")
            .execute(pool)
            .await
            .expect("corrupt")
            .rows_affected()
    });

    // Writers and readers keep going for the whole rebuild.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, http, url, post) = (
            stop.clone(),
            stack.http.clone(),
            stack.command_url.clone(),
            post.clone(),
        );
        tokio::spawn(async move {
            let mut written = 0;
            while !stop.load(Ordering::Relaxed) {
                let resp = http
                    .post(format!("{url}/v1/posts/{post}/comments"))
                    .header(
                        command_api::auth::CALLER_PROOF_HEADER,
                        common::caller_proof(Some(AUTHOR)),
                    )
                    .json(&json!({ "body": format!("during the rebuild {written}") }))
                    .send()
                    .await
                    .expect("command service answers");
                assert_eq!(resp.status(), StatusCode::CREATED);
                written += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            written
        })
    };
    let reader = {
        let (stop, http, url, post) = (
            stop.clone(),
            stack.http.clone(),
            stack.graphql_url.clone(),
            post.clone(),
        );
        tokio::spawn(async move {
            let (mut reads, mut floor) = (0, 0_i64);
            while !stop.load(Ordering::Relaxed) {
                let r = gql(
                    &http,
                    &url,
                    None,
                    "query($id: ID!) { post(id: $id) { commentCount } comments(postId: $id, first: 100) { edges { node { id } } } }",
                    json!({ "id": post }),
                )
                .await;
                assert!(
                    r.get("errors").is_none() && r.get("transport_error").is_none(),
                    "a query failed during the rebuild: {r}"
                );
                let count = r["data"]["post"]["commentCount"].as_i64().expect("count");
                let edges = r["data"]["comments"]["edges"]
                    .as_array()
                    .expect("edges")
                    .len();
                // A partial view would show fewer comments than were already visible.
                assert!(
                    count >= floor,
                    "comment count went back from {floor} to {count}"
                );
                assert_eq!(edges, 100, "a page of comments came back short: {r}");
                floor = count;
                reads += 1;
            }
            reads
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let out = replay(
        stack,
        &["posts", "--json", "--batch", "40", "--max-rate", "400"],
    )
    .output()
    .expect("inkwire replay runs");
    let stdout = common::succeeded(&out);
    let summary: Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    assert_eq!(summary["view"], "posts");
    assert_eq!(summary["generation"], 1);
    assert!(
        summary["events"].as_u64().expect("events") >= 200,
        "{summary}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.expect("writer");
    let reads = reader.await.expect("reader");
    assert!(
        written > 5 && reads > 5,
        "load ran during the rebuild: {written} writes, {reads} reads"
    );

    wait_projected(stack).await;
    assert_eq!(
        count_next_tables(&stack.db).await,
        0,
        "the next generation was renamed live"
    );
    assert_eq!(
        indexes(&stack.db).await,
        indexes_before,
        "the new generation has every index"
    );
    let live = dump(&stack.db).await;
    assert!(
        !live.iter().any(|row| row.contains("\"wrong\"")),
        "the rebuild replaced the corrupted rows"
    );
    assert_eq!(live, built_from_scratch(stack).await);

    // The users view too, and `--all` runs both in turn.
    let out = replay(stack, &["--all", "--json"])
        .output()
        .expect("replay --all");
    let stdout = common::succeeded(&out);
    let views: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(
        views
            .iter()
            .map(|v| v["view"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["posts", "users"]
    );
    assert_eq!(views[0]["generation"], 2);
    assert_eq!(dump(&stack.db).await, live);
}

async fn a_killed_rebuild_leaves_the_live_view_alone_and_the_next_run_resumes(stack: &TestStack) {
    history(stack, 400).await;
    wait_projected(stack).await;
    let before = dump(&stack.db).await;

    // Throttled so that it is surely killed halfway, once it is well under way.
    let mut child = replay(
        stack,
        &[
            "posts",
            "--batch",
            "5",
            "--max-rate",
            "200",
            "--lease-seconds",
            "3",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("replay starts");
    common::eventually(Duration::from_secs(60), || async {
        let applied: Option<i64> = with_db!(&stack.db, |pool| {
            sqlx::query_scalar(
                "SELECT events_applied FROM projection_rebuilds WHERE view_name = 'posts'",
            )
            .fetch_optional(pool)
            .await
            .expect("progress")
        });
        applied.is_some_and(|n| n >= 100)
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    assert_eq!(
        dump(&stack.db).await,
        before,
        "a killed rebuild changed the live view"
    );
    assert_eq!(
        count_next_tables(&stack.db).await,
        i64::try_from(projection_service::projections::View::Posts.tables().len()).expect("few"),
        "its progress is kept beside the live view"
    );

    // While its lease has not expired, nobody else may take the view over.
    let out = replay(stack, &["posts"]).output().expect("replay runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already running"), "{stderr}");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let dry = replay(stack, &["posts", "--dry-run", "--json"])
        .output()
        .expect("dry run");
    let estimate: Value = serde_json::from_str(common::succeeded(&dry).trim()).expect("JSON");
    let events = estimate["events"].as_u64().expect("events");
    assert!(
        estimate["resumable"].as_u64().expect("resumable") >= 100,
        "{estimate}"
    );
    assert!(
        estimate["estimated_seconds"].as_f64().expect("secs") > 0.0,
        "{estimate}"
    );

    let out = replay(stack, &["posts", "--json"])
        .output()
        .expect("replay runs");
    let summary: Value = serde_json::from_str(common::succeeded(&out).trim()).expect("JSON");
    let resumed = summary["resumed_from"].as_u64().expect("resumed");
    assert!(resumed >= 100, "{summary}");
    assert_eq!(
        resumed + summary["events"].as_u64().expect("events"),
        events,
        "{summary}"
    );
    assert_eq!(summary["generation"], 1);
    assert_eq!(dump(&stack.db).await, before);
    assert_eq!(before, built_from_scratch(stack).await);
}
