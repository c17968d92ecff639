//! What an author and an admin do with a post's history: every saved version listed from the
//! log, compared, and restored as a new edit, on both backends.

#[macro_use]
mod common;

use std::time::Duration;

use common::TestStack;
use common::graphql::{error_code, gql};
use serde_json::{Value, json};

on_both_backends!(revisions_list_every_saved_version_and_restore_makes_a_new_one);

const READER_ID: &str = "01890000-0000-7000-8000-0000000000b1";
const ADMIN_ID: &str = "01890000-0000-7000-8000-0000000000b2";

const REVISIONS: &str = "query($id: ID!, $first: Int, $after: String) { post(id: $id) { revisions(first: $first, after: $after) { edges { cursor node { version title slug body tags editedAt editor { id } } } pageInfo { hasNextPage endCursor } } } }";

async fn edit(stack: &TestStack, post: &str, input: Value) -> Value {
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(common::AUTHOR),
        "mutation($id: ID!, $input: EditPostInput!) { editPost(id: $id, input: $input, waitForProjection: true) { post { id version } } }",
        json!({ "id": post, "input": input }),
    )
    .await;
    assert!(r["data"]["editPost"]["post"]["id"].is_string(), "{r}");
    r
}

fn versions(r: &Value) -> Vec<i64> {
    r["data"]["post"]["revisions"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["node"]["version"].as_i64().expect("version"))
        .collect()
}

async fn revisions_list_every_saved_version_and_restore_makes_a_new_one(stack: &TestStack) {
    common::add_user(&stack.db, READER_ID, "rhea", "rhea-password", &["reader"]).await;
    common::add_user(&stack.db, ADMIN_ID, "ada", "ada-password", &["admin"]).await;
    let users = stack.count("user_streams").await;
    common::eventually(Duration::from_secs(20), || async {
        stack.count("rm_users").await >= users
    })
    .await;
    let url = &stack.graphql_url;
    let http = &stack.http;

    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        "mutation($i: CreatePostInput!) { createPost(input: $i, waitForProjection: true) { post { id slug } } }",
        json!({ "i": { "title": "First title", "body": "one\ntwo\n", "tags": ["a"] } }),
    )
    .await;
    let post = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let slug = r["data"]["createPost"]["post"]["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    edit(stack, &post, json!({ "body": "one\n2\n" })).await;
    // The comment policy alone is not a version of the content.
    edit(stack, &post, json!({ "allowAnonymousComments": true })).await;
    edit(
        stack,
        &post,
        json!({ "title": "Third title", "tags": ["a", "b"] }),
    )
    .await;

    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        REVISIONS,
        json!({ "id": post }),
    )
    .await;
    assert_eq!(versions(&r), [3, 2, 1], "newest first: {r}");
    let edges = &r["data"]["post"]["revisions"]["edges"];
    assert_eq!(edges[2]["node"]["title"], "First title");
    assert_eq!(edges[2]["node"]["body"], "one\ntwo\n");
    assert_eq!(edges[2]["node"]["tags"], json!(["a"]));
    assert_eq!(edges[2]["node"]["slug"], slug);
    assert_eq!(edges[1]["node"]["body"], "one\n2\n");
    assert_eq!(edges[1]["node"]["title"], "First title");
    assert_eq!(edges[0]["node"]["title"], "Third title");
    assert_eq!(edges[0]["node"]["tags"], json!(["a", "b"]));
    assert_eq!(edges[0]["node"]["editor"]["id"], common::AUTHOR);
    assert!(
        edges[0]["node"]["editedAt"]
            .as_str()
            .is_some_and(|t| t.len() > 10)
    );

    // Paged: one at a time, older ones after the cursor.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        REVISIONS,
        json!({ "id": post, "first": 1 }),
    )
    .await;
    assert_eq!(versions(&r), [3]);
    assert_eq!(
        r["data"]["post"]["revisions"]["pageInfo"]["hasNextPage"],
        true
    );
    let after = r["data"]["post"]["revisions"]["pageInfo"]["endCursor"].clone();
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        REVISIONS,
        json!({ "id": post, "first": 5, "after": after }),
    )
    .await;
    assert_eq!(versions(&r), [2, 1]);
    assert_eq!(
        r["data"]["post"]["revisions"]["pageInfo"]["hasNextPage"],
        false
    );
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        REVISIONS,
        json!({ "id": post, "after": "x" }),
    )
    .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");

    // Published: readers see the post, not its history; an admin sees it.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { id } } }",
        json!({ "id": post }),
    )
    .await;
    assert!(r["data"]["publishPost"]["post"]["id"].is_string(), "{r}");
    let r = gql(http, url, Some(READER_ID), REVISIONS, json!({ "id": post })).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = gql(http, url, None, REVISIONS, json!({ "id": post })).await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = gql(http, url, Some(ADMIN_ID), REVISIONS, json!({ "id": post })).await;
    assert_eq!(versions(&r), [3, 2, 1], "{r}");

    // Restoring version 1 saves its content as version 4; nothing is rewritten.
    const RESTORE: &str = "mutation($id: ID!, $v: Int!) { restorePostRevision(postId: $id, version: $v, waitForProjection: true) { post { title body tags slug } } }";
    let r = gql(
        http,
        url,
        Some(READER_ID),
        RESTORE,
        json!({ "id": post, "v": 1 }),
    )
    .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "a reader cannot: {r}");
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        RESTORE,
        json!({ "id": post, "v": 99 }),
    )
    .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        RESTORE,
        json!({ "id": post, "v": 1 }),
    )
    .await;
    let restored = &r["data"]["restorePostRevision"]["post"];
    assert_eq!(restored["title"], "First title", "{r}");
    assert_eq!(restored["body"], "one\ntwo\n");
    assert_eq!(restored["tags"], json!(["a"]));
    assert_eq!(restored["slug"], slug, "links keep working");
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        REVISIONS,
        json!({ "id": post }),
    )
    .await;
    assert_eq!(versions(&r), [4, 3, 2, 1], "{r}");
    let edges = &r["data"]["post"]["revisions"]["edges"];
    assert_eq!(edges[0]["node"]["body"], "one\ntwo\n");
    assert_eq!(edges[1]["node"]["title"], "Third title", "history kept");
    // Readers get the restored text.
    let r = gql(
        http,
        url,
        None,
        "query($s: String!) { post(slug: $s) { title body } }",
        json!({ "s": slug }),
    )
    .await;
    assert_eq!(r["data"]["post"]["title"], "First title", "{r}");
    // An admin may restore too.
    let r = gql(
        http,
        url,
        Some(ADMIN_ID),
        RESTORE,
        json!({ "id": post, "v": 3 }),
    )
    .await;
    assert_eq!(
        r["data"]["restorePostRevision"]["post"]["title"], "Third title",
        "{r}"
    );
}

on_both_backends!(a_scheduled_draft_is_published_once_at_its_time);

const SCHEDULE: &str = "mutation($id: ID!, $at: DateTime!) { schedulePost(id: $id, at: $at, waitForProjection: true) { post { status scheduledAt } } }";
const UNSCHEDULE: &str = "mutation($id: ID!) { unschedulePost(id: $id, waitForProjection: true) { post { status scheduledAt } } }";
const STATUS: &str = "query($id: ID!) { post(id: $id) { status publishedAt scheduledAt } }";

async fn draft(stack: &TestStack, title: &str) -> String {
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(common::AUTHOR),
        "mutation($i: CreatePostInput!) { createPost(input: $i, waitForProjection: true) { post { id } } }",
        json!({ "i": { "title": title, "body": "soon" } }),
    )
    .await;
    r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

/// `post.published` events in `post`'s stream.
async fn publications(db: &infra::db::Db, post: &str) -> i64 {
    let post: uuid::Uuid = post.parse().expect("id");
    infra::with_db!(db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM events WHERE stream_id = $1 AND event_type = 'post.published'",
        )
        .bind(post)
        .fetch_one(pool)
        .await
        .expect("count")
    })
}

fn in_seconds(s: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339()
}

async fn a_scheduled_draft_is_published_once_at_its_time(stack: &TestStack) {
    common::add_user(&stack.db, READER_ID, "rhea", "rhea-password", &["reader"]).await;
    let (http, url) = (&stack.http, &stack.graphql_url);
    let post = draft(stack, "Tomorrow's news").await;

    // Bad times and bad callers are refused, and nothing is scheduled.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        SCHEDULE,
        json!({ "id": post, "at": in_seconds(-60) }),
    )
    .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["field"], "at", "{r}");
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        SCHEDULE,
        json!({ "id": post, "at": in_seconds(6 * 366 * 86_400) }),
    )
    .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    let r = gql(
        http,
        url,
        Some(READER_ID),
        SCHEDULE,
        json!({ "id": post, "at": in_seconds(60) }),
    )
    .await;
    assert!(
        matches!(error_code(&r), Some("FORBIDDEN" | "NOT_FOUND")),
        "{r}"
    );
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        UNSCHEDULE,
        json!({ "id": post }),
    )
    .await;
    assert_eq!(error_code(&r), Some("CONFLICT"), "nothing to cancel: {r}");

    // Scheduled, moved, cancelled: the draft says so, and the drafts list too.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        SCHEDULE,
        json!({ "id": post, "at": in_seconds(3600) }),
    )
    .await;
    assert_eq!(r["data"]["schedulePost"]["post"]["status"], "DRAFT", "{r}");
    assert!(
        r["data"]["schedulePost"]["post"]["scheduledAt"].is_string(),
        "{r}"
    );
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        "{ drafts { id scheduledAt } }",
        json!({}),
    )
    .await;
    let listed = r["data"]["drafts"]
        .as_array()
        .expect("drafts")
        .iter()
        .find(|d| d["id"] == post.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{r}"));
    assert!(listed["scheduledAt"].is_string(), "{listed}");
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        UNSCHEDULE,
        json!({ "id": post }),
    )
    .await;
    assert_eq!(
        r["data"]["unschedulePost"]["post"]["scheduledAt"],
        Value::Null,
        "{r}"
    );

    // Due in two seconds: published by the service itself, once.
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        SCHEDULE,
        json!({ "id": post, "at": at.to_rfc3339() }),
    )
    .await;
    assert!(
        r["data"]["schedulePost"]["post"]["scheduledAt"].is_string(),
        "{r}"
    );
    let r = gql(http, url, None, STATUS, json!({ "id": post })).await;
    assert_eq!(r["data"]["post"], Value::Null, "not before its time: {r}");
    common::eventually(Duration::from_secs(20), || async {
        let r = gql(http, url, None, STATUS, json!({ "id": post })).await;
        r["data"]["post"]["status"] == "PUBLISHED"
    })
    .await;
    let r = gql(http, url, None, STATUS, json!({ "id": post })).await;
    let published: chrono::DateTime<chrono::Utc> = r["data"]["post"]["publishedAt"]
        .as_str()
        .expect("publishedAt")
        .parse()
        .expect("time");
    assert!(
        published >= at - chrono::Duration::milliseconds(999),
        "{published} before {at}"
    );
    assert_eq!(r["data"]["post"]["scheduledAt"], Value::Null, "{r}");
    // Another look of the scheduler later finds nothing left to do.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(publications(&stack.db, &post).await, 1);
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        SCHEDULE,
        json!({ "id": post, "at": in_seconds(60) }),
    )
    .await;
    assert_eq!(error_code(&r), Some("CONFLICT"), "already published: {r}");
}

/// The schedule is a fact in the database, not a timer in a process: a stack stopped before the
/// time publishes the post once it runs again, late but once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_survives_a_restart() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let post = draft(&stack, "Published while nobody watched").await;
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(common::AUTHOR),
        SCHEDULE,
        json!({ "id": post, "at": in_seconds(2) }),
    )
    .await;
    assert!(
        r["data"]["schedulePost"]["post"]["scheduledAt"].is_string(),
        "{r}"
    );
    let dir = stack.stop_keeping_data().await.expect("embedded data dir");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stack = TestStack::embedded_in(dir).await;
    common::eventually(Duration::from_secs(20), || async {
        let r = gql(
            &stack.http,
            &stack.graphql_url,
            None,
            STATUS,
            json!({ "id": post }),
        )
        .await;
        r["data"]["post"]["status"] == "PUBLISHED"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(publications(&stack.db, &post).await, 1);
    stack.stop().await;
}

/// Two command services on one database both look for due posts: each post is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_publish_each_scheduled_post_once() {
    let a = TestStack::boot(common::Backend::Distributed).await;
    let b = TestStack::distributed_on(&a.db_url, &a.topic, &common::brokers(), false).await;
    let mut posts = Vec::new();
    for i in 0..8 {
        let post = draft(&a, &format!("Race {i}")).await;
        let r = gql(
            &a.http,
            &a.graphql_url,
            Some(common::AUTHOR),
            SCHEDULE,
            json!({ "id": post, "at": in_seconds(2) }),
        )
        .await;
        assert!(
            r["data"]["schedulePost"]["post"]["scheduledAt"].is_string(),
            "{r}"
        );
        posts.push(post);
    }
    for post in &posts {
        common::eventually(Duration::from_secs(30), || async {
            publications(&a.db, post).await == 1
        })
        .await;
    }
    // Both schedulers look again; neither publishes anything twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for post in &posts {
        assert_eq!(publications(&a.db, post).await, 1, "{post}");
    }
    b.stop().await;
    a.stop().await;
}
