//! The GraphQL gateway against both backends: reads and writes through the public schema,
//! statement counts of batched reads, live subscriptions with cursor resume, and bad input.

#[macro_use]
mod common;

use std::time::Duration;

use common::graphql::{
    WsClient, WsEvent, add_comment, comment_event, error_code, gql, published_post,
};
use common::{AUTHOR, TestStack};
use serde_json::{Value, json};

on_both_backends!(
    graphql_reads_and_writes_round_trip,
    a_page_of_posts_with_comments_costs_a_fixed_number_of_statements,
    subscribers_get_every_change_once_in_order_and_resume_from_a_cursor,
    bad_graphql_gets_stable_codes_and_the_gateway_stays_up,
    anonymous_post_pages_are_cached_but_never_older_than_a_push_or_a_waited_write,
    subscribers_of_one_shared_execution_each_get_every_comment_once_in_order,
);

/// A tag unique to this run (tags are at most 32 characters).
fn short_tag() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("t-{}", &id[20..])
}

fn ws_url(stack: &TestStack) -> String {
    stack.graphql_url.replacen("http://", "ws://", 1)
}

async fn q(stack: &TestStack, user: Option<&str>, query: &str, variables: Value) -> Value {
    gql(&stack.http, &stack.graphql_url, user, query, variables).await
}

const COMMENT_FIELDS: &str =
    "id body html depth replyCount status parentId parent { id } authorName";

async fn graphql_reads_and_writes_round_trip(stack: &TestStack) {
    let create = "mutation($input: CreatePostInput!) { createPost(input: $input, waitForProjection: true) { post { id slug status version title html tags } position } }";
    let tag = short_tag();

    // Refusals keep the command service's codes and write nothing.
    let r = q(
        stack,
        None,
        create,
        json!({ "input": { "title": "Nope", "body": "x" } }),
    )
    .await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    let r = q(
        stack,
        Some(AUTHOR),
        create,
        json!({ "input": { "title": "", "body": "x" } }),
    )
    .await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(r["errors"][0]["extensions"]["field"], "title", "{r}");

    let r = q(stack, Some(AUTHOR), create, json!({ "input": { "title": "Hello GraphQL World", "body": "# Hi\n\n*there*", "tags": [tag] } })).await;
    let post = &r["data"]["createPost"]["post"];
    assert_eq!(post["status"], "DRAFT", "{r}");
    assert!(
        post["slug"]
            .as_str()
            .expect("slug")
            .starts_with("hello-graphql-world"),
        "{r}"
    );
    assert!(
        post["html"]
            .as_str()
            .expect("html")
            .contains("<em>there</em>"),
        "{r}"
    );
    let id = post["id"].as_str().expect("id").to_owned();
    let slug = post["slug"].as_str().expect("slug").to_owned();
    let first_position = r["data"]["createPost"]["position"]
        .as_str()
        .expect("position")
        .to_owned();

    // A draft is its author's only.
    let by_id = "query($id: ID) { post(id: $id) { id status commentCount } }";
    assert_eq!(
        q(stack, None, by_id, json!({ "id": id })).await["data"]["post"],
        Value::Null
    );
    assert_eq!(
        q(stack, Some(AUTHOR), by_id, json!({ "id": id })).await["data"]["post"]["status"],
        "DRAFT"
    );

    let r = q(stack, Some(AUTHOR), "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { status publishedAt version } position } }", json!({ "id": id })).await;
    assert_eq!(
        r["data"]["publishPost"]["post"]["status"], "PUBLISHED",
        "{r}"
    );
    assert!(
        r["data"]["publishPost"]["post"]["publishedAt"].is_string(),
        "{r}"
    );
    assert_ne!(
        r["data"]["publishPost"]["position"].as_str(),
        Some(first_position.as_str())
    );
    let r = q(
        stack,
        None,
        "query($slug: String) { post(slug: $slug) { id } }",
        json!({ "slug": slug }),
    )
    .await;
    assert_eq!(r["data"]["post"]["id"], id.as_str(), "{r}");

    // A thread: A, a reply to A, then B; shown depth first.
    let add = format!(
        "mutation($input: AddCommentInput!) {{ addComment(input: $input, waitForProjection: true) {{ comment {{ {COMMENT_FIELDS} }} position }} }}"
    );
    let a = q(
        stack,
        Some(AUTHOR),
        &add,
        json!({ "input": { "postId": id, "body": "first <b>bold</b>" } }),
    )
    .await;
    let a_id = a["data"]["addComment"]["comment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{a}"))
        .to_owned();
    let reply = q(
        stack,
        Some(AUTHOR),
        &add,
        json!({ "input": { "postId": id, "parentId": a_id, "body": "a reply" } }),
    )
    .await;
    let reply = &reply["data"]["addComment"]["comment"];
    assert_eq!(reply["depth"], 1, "{reply}");
    assert_eq!(reply["parent"]["id"], a_id.as_str(), "{reply}");
    let reply_id = reply["id"].as_str().expect("id").to_owned();
    let b = q(
        stack,
        Some(AUTHOR),
        &add,
        json!({ "input": { "postId": id, "body": "second" } }),
    )
    .await;
    let b_id = b["data"]["addComment"]["comment"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let list = format!(
        "query($post: ID!, $first: Int, $after: String, $under: ID) {{ comments(postId: $post, first: $first, after: $after, under: $under) {{ edges {{ cursor node {{ {COMMENT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let r = q(stack, None, &list, json!({ "post": id })).await;
    let edges = r["data"]["comments"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .clone();
    let order: Vec<&str> = edges
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(order, [a_id.as_str(), reply_id.as_str(), b_id.as_str()]);
    assert_eq!(edges[0]["node"]["replyCount"], 1);
    assert!(
        edges[0]["node"]["html"]
            .as_str()
            .expect("html")
            .contains("&lt;b&gt;bold&lt;/b&gt;"),
        "raw HTML in comments is text: {r}"
    );

    // Paging and sub-threads.
    let page1 = q(stack, None, &list, json!({ "post": id, "first": 1 })).await;
    assert_eq!(page1["data"]["comments"]["pageInfo"]["hasNextPage"], true);
    let after = page1["data"]["comments"]["pageInfo"]["endCursor"].clone();
    let page2 = q(
        stack,
        None,
        &list,
        json!({ "post": id, "first": 5, "after": after }),
    )
    .await;
    let ids: Vec<&str> = page2["data"]["comments"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [reply_id.as_str(), b_id.as_str()]);
    assert_eq!(page2["data"]["comments"]["pageInfo"]["hasNextPage"], false);
    let under = q(stack, None, &list, json!({ "post": id, "under": a_id })).await;
    let ids: Vec<&str> = under["data"]["comments"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [reply_id.as_str()]);

    // Edit, hide, restore, delete: each visible to the next query.
    let r = q(stack, Some(AUTHOR), "mutation($id: ID!) { editComment(id: $id, body: \"second, edited\", waitForProjection: true) { comment { body } } }", json!({ "id": b_id })).await;
    assert_eq!(
        r["data"]["editComment"]["comment"]["body"], "second, edited",
        "{r}"
    );
    let r = q(stack, Some(AUTHOR), "mutation($id: ID!) { hideComment(id: $id, reason: \"spam\", waitForProjection: true) { comment { status body } } }", json!({ "id": reply_id })).await;
    assert_eq!(
        r["data"]["hideComment"]["comment"]["status"], "HIDDEN",
        "{r}"
    );
    assert_eq!(r["data"]["hideComment"]["comment"]["body"], "", "{r}");
    assert_eq!(
        q(stack, None, by_id, json!({ "id": id })).await["data"]["post"]["commentCount"],
        2
    );
    let r = q(stack, Some(AUTHOR), "mutation($id: ID!) { restoreComment(id: $id, waitForProjection: true) { comment { status body } } }", json!({ "id": reply_id })).await;
    assert_eq!(
        r["data"]["restoreComment"]["comment"]["body"], "a reply",
        "{r}"
    );
    let r = q(stack, Some(AUTHOR), "mutation($id: ID!) { deleteComment(id: $id, waitForProjection: true) { comment { status } } }", json!({ "id": b_id })).await;
    assert_eq!(
        r["data"]["deleteComment"]["comment"]["status"], "DELETED",
        "{r}"
    );
    assert_eq!(
        q(stack, None, by_id, json!({ "id": id })).await["data"]["post"]["commentCount"],
        2
    );

    // The tag lists it; page sizes are bounded; unknown posts are NOT_FOUND.
    let r = q(
        stack,
        None,
        "query($tag: String) { posts(tag: $tag) { edges { node { id commentCount } } } }",
        json!({ "tag": tag }),
    )
    .await;
    assert_eq!(
        r["data"]["posts"]["edges"][0]["node"]["id"],
        id.as_str(),
        "{r}"
    );
    let r = q(
        stack,
        None,
        "{ posts(first: 1000) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
    let missing = uuid::Uuid::now_v7().to_string();
    let r = q(stack, None, &list, json!({ "post": missing })).await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    let r = q(
        stack,
        Some(AUTHOR),
        &add,
        json!({ "input": { "postId": missing, "body": "x" } }),
    )
    .await;
    assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
    let r = q(stack, None, by_id, json!({ "id": "not-a-uuid" })).await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
}

async fn statements(stack: &TestStack) -> f64 {
    let base = stack.graphql_url.trim_end_matches("/graphql");
    common::metric(&stack.http, base, "inkwire_gateway_sql_statements_total")
        .await
        .expect("inkwire_gateway_sql_statements_total in the gateway's /metrics")
}

async fn a_page_of_posts_with_comments_costs_a_fixed_number_of_statements(stack: &TestStack) {
    let tag = short_tag();
    for i in 0..6 {
        let r = q(stack, Some(AUTHOR), "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }", json!({ "input": { "title": format!("Batch {i}"), "body": "b", "tags": [tag], "slug": common::unique("batch").replace('_', "-") } })).await;
        let id = r["data"]["createPost"]["post"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned();
        q(
            stack,
            Some(AUTHOR),
            "mutation($id: ID!) { publishPost(id: $id) { position } }",
            json!({ "id": id }),
        )
        .await;
        let (parent, _) = add_comment(&stack.http, &stack.graphql_url, &id, "top", false).await;
        q(stack, Some(AUTHOR), "mutation($input: AddCommentInput!) { addComment(input: $input, waitForProjection: true) { position } }", json!({ "input": { "postId": id, "parentId": parent, "body": "reply" } })).await;
        add_comment(&stack.http, &stack.graphql_url, &id, "another", true).await;
    }
    let page = "query($first: Int, $tag: String) { posts(first: $first, tag: $tag) { edges { node { id title comments(first: 5) { edges { node { body parent { id body } } } } } } } }";
    let mut costs = Vec::new();
    for first in [2, 6] {
        let before = statements(stack).await;
        let r = q(stack, None, page, json!({ "first": first, "tag": tag })).await;
        let after = statements(stack).await;
        let edges = r["data"]["posts"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"));
        assert_eq!(edges.len(), first, "{r}");
        for edge in edges {
            let comments = edge["node"]["comments"]["edges"]
                .as_array()
                .expect("comments");
            assert_eq!(comments.len(), 3, "{edge}");
            assert!(
                comments
                    .iter()
                    .any(|c| c["node"]["parent"]["body"] == "top"),
                "{edge}"
            );
        }
        costs.push(after - before);
    }
    // posts, their comments, the parents of those comments: three, whatever the page size.
    assert_eq!(costs, [3.0, 3.0], "statements per page of 2 and of 6 posts");
}

async fn subscribers_get_every_change_once_in_order_and_resume_from_a_cursor(stack: &TestStack) {
    let post = published_post(&stack.http, &stack.graphql_url).await;
    let mut ws = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    ws.subscribe("1", &post, None).await;
    // Let the subscription register before writing (a subscription without `after` starts now).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut written = Vec::new();
    for i in 0..5 {
        let (id, r) = add_comment(
            &stack.http,
            &stack.graphql_url,
            &post,
            &format!("live {i}"),
            false,
        )
        .await;
        assert!(!id.is_empty(), "{r}");
        written.push(id);
    }
    let mut received = Vec::new();
    let mut last_cursor = String::new();
    while received.len() < 5 {
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Next(id, payload)) => {
                assert_eq!(id, "1");
                let (kind, comment, cursor) = comment_event(&payload);
                assert_eq!(kind, "ADDED", "{payload}");
                received.push(comment);
                last_cursor = cursor;
            }
            other => panic!("expected a comment event, got {other:?} after {received:?}"),
        }
    }
    assert_eq!(received, written, "every comment once, in acceptance order");
    drop(ws);

    // Missed while away: exactly those, then live.
    let mut missed = Vec::new();
    for i in 0..3 {
        missed.push(
            add_comment(
                &stack.http,
                &stack.graphql_url,
                &post,
                &format!("missed {i}"),
                i == 2,
            )
            .await
            .0,
        );
    }
    let mut ws = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    ws.subscribe("2", &post, Some(&last_cursor)).await;
    let mut resumed = Vec::new();
    while resumed.len() < 3 {
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Next(_, payload)) => resumed.push(comment_event(&payload).1),
            other => panic!("expected a missed comment, got {other:?}"),
        }
    }
    assert_eq!(resumed, missed);
    let (live, _) = add_comment(&stack.http, &stack.graphql_url, &post, "live again", false).await;
    match ws.next(Duration::from_secs(10)).await {
        Some(WsEvent::Next(_, payload)) => assert_eq!(comment_event(&payload).1, live),
        other => panic!("expected the live comment, got {other:?}"),
    }
    // Changes other than additions, with their kinds.
    q(
        stack,
        Some(AUTHOR),
        "mutation($id: ID!) { editComment(id: $id, body: \"changed\") { position } }",
        json!({ "id": live }),
    )
    .await;
    q(stack, Some(AUTHOR), "mutation($id: ID!) { hideComment(id: $id, reason: \"off-topic\", waitForProjection: true) { position } }", json!({ "id": written[0] })).await;
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Next(_, payload)) => {
                let (kind, id, _) = comment_event(&payload);
                kinds.push((kind, id));
            }
            other => panic!("expected an edit and a hide, got {other:?}"),
        }
    }
    assert_eq!(
        kinds,
        [
            ("EDITED".to_owned(), live.clone()),
            ("HIDDEN".to_owned(), written[0].clone())
        ]
    );
    assert!(
        ws.next(Duration::from_millis(500)).await.is_none(),
        "nothing twice"
    );
}

/// The post page as a signed-out reader's browser asks for it.
const POST_PAGE: &str = "query($id: ID) { post(id: $id) { title status commentCount author { displayName } comments(first: 50) { edges { node { id body status } } } } }";

/// The raw answer to the post page, signed out, optionally asking to bypass caches.
async fn page_bytes(stack: &TestStack, post: &str, no_cache: bool) -> String {
    let mut req = stack
        .http
        .post(&stack.graphql_url)
        .json(&json!({ "query": POST_PAGE, "variables": { "id": post } }));
    if no_cache {
        req = req.header("cache-control", "no-cache");
    }
    req.send()
        .await
        .expect("gateway reachable")
        .text()
        .await
        .expect("an answer")
}

fn page_comment_ids(page: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(page).unwrap_or_else(|_| panic!("{page}"));
    v["data"]["post"]["comments"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn anonymous_post_pages_are_cached_but_never_older_than_a_push_or_a_waited_write(
    stack: &TestStack,
) {
    let base = stack.graphql_url.trim_end_matches("/graphql");
    let hits = || async {
        common::metric(
            &stack.http,
            base,
            "inkwire_gateway_page_cache_lookups_total{result=\"hit\"}",
        )
        .await
        .unwrap_or(0.0)
    };
    let r = q(stack, Some(AUTHOR), "mutation($input: CreatePostInput!) { createPost(input: $input, waitForProjection: true) { post { id } } }", json!({ "input": { "title": "Cached", "body": "Hello", "allowAnonymousComments": true, "slug": common::unique("cached").replace('_', "-") } })).await;
    let post = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();

    // A draft: signed-out readers get null, its author gets the draft. Neither answer is served
    // to the other.
    let draft = page_bytes(stack, &post, false).await;
    assert!(draft.contains("\"post\":null"), "{draft}");
    let mine = q(stack, Some(AUTHOR), POST_PAGE, json!({ "id": post })).await;
    assert_eq!(mine["data"]["post"]["status"], "DRAFT", "{mine}");
    assert_eq!(page_bytes(stack, &post, false).await, draft);
    q(
        stack,
        Some(AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { position } }",
        json!({ "id": post }),
    )
    .await;
    // Published: the cached null is not served any more (the author's waited write saw to it).
    let first = page_bytes(stack, &post, false).await;
    assert!(first.contains("\"status\":\"PUBLISHED\""), "{first}");

    // The same page again comes from the cache: same bytes, no SQL.
    let (hits_before, sql_before) = (hits().await, statements(stack).await);
    let again = page_bytes(stack, &post, false).await;
    assert_eq!(again, first);
    assert_eq!(hits().await, hits_before + 1.0);
    assert_eq!(
        statements(stack).await,
        sql_before,
        "a cached page costs no statement"
    );
    // `Cache-Control: no-cache` goes to the database.
    let fresh: Value = serde_json::from_str(&page_bytes(stack, &post, true).await).expect("json");
    assert_eq!(fresh, serde_json::from_str::<Value>(&first).expect("json"));
    assert!(statements(stack).await > sql_before);

    // A comment pushed to a subscriber is on the page the moment the push arrives.
    let mut ws = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    ws.subscribe("1", &post, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        // Warm the cache with the page as it is, then write without waiting.
        page_bytes(stack, &post, false).await;
        let (id, r) = add_comment(
            &stack.http,
            &stack.graphql_url,
            &post,
            &format!("pushed {i}"),
            false,
        )
        .await;
        assert!(!id.is_empty(), "{r}");
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Next(_, payload)) => assert_eq!(comment_event(&payload).1, id),
            other => panic!("expected the comment, got {other:?}"),
        }
        let page = page_bytes(stack, &post, false).await;
        assert!(
            page_comment_ids(&page).contains(&id),
            "pushed {id}, page without it: {page}"
        );
    }

    // A signed-out commenter who waited for the projection sees their comment at once.
    for i in 0..3 {
        page_bytes(stack, &post, false).await;
        let r = q(stack, None, "mutation($input: AddCommentInput!) { addComment(input: $input, waitForProjection: true) { comment { id } } }", json!({ "input": { "postId": post, "body": format!("anonymous {i}"), "authorName": "Reader" } })).await;
        let id = r["data"]["addComment"]["comment"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned();
        let page = page_bytes(stack, &post, false).await;
        assert!(page_comment_ids(&page).contains(&id), "{page}");
    }

    // A moderator's hide reaches the cached page at once.
    let pushed_first = page_comment_ids(&first);
    assert!(pushed_first.is_empty(), "{first}");
    let page = page_bytes(stack, &post, false).await;
    let target = page_comment_ids(&page)[0].clone();
    q(stack, Some(AUTHOR), "mutation($id: ID!) { hideComment(id: $id, reason: \"spam\", waitForProjection: true) { position } }", json!({ "id": target })).await;
    // Signed-out readers no longer see it.
    let page = page_bytes(stack, &post, false).await;
    assert!(!page_comment_ids(&page).contains(&target), "{page}");
}

/// Reads `n` comment events from `ws`: (comment id, cursor) in arrival order.
async fn comment_ids(ws: &mut WsClient, n: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while got.len() < n {
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Next(_, payload)) => {
                let (kind, id, cursor) = comment_event(&payload);
                assert_eq!(kind, "ADDED", "{payload}");
                got.push((id, cursor));
            }
            other => panic!("expected a comment event, got {other:?} after {got:?}"),
        }
    }
    got
}

async fn subscribers_of_one_shared_execution_each_get_every_comment_once_in_order(
    stack: &TestStack,
) {
    let base = stack.graphql_url.trim_end_matches("/graphql");
    let gauge = |name: &'static str| async move {
        common::metric(&stack.http, base, name)
            .await
            .unwrap_or(-1.0)
    };
    let post = published_post(&stack.http, &stack.graphql_url).await;
    let executions_before = gauge("inkwire_gateway_shared_executions").await;
    let open_before = gauge("inkwire_gateway_subscriptions_open").await;
    let mut first = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    first.subscribe("a", &post, None).await;
    let mut second = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    second.subscribe("b", &post, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Two clients, one execution.
    assert_eq!(
        gauge("inkwire_gateway_subscriptions_open").await,
        open_before + 2.0
    );
    assert_eq!(
        gauge("inkwire_gateway_shared_executions").await,
        executions_before + 1.0
    );

    // Comments keep coming while a third client resumes from a cursor and a fourth joins live.
    let writer = {
        let (http, url, post) = (stack.http.clone(), stack.graphql_url.clone(), post.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..30 {
                let (id, r) = add_comment(&http, &url, &post, &format!("shared {i}"), false).await;
                assert!(!id.is_empty(), "{r}");
                ids.push(id);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            ids
        })
    };
    let early = comment_ids(&mut first, 5).await;
    let mut resumed = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    resumed.subscribe("c", &post, Some(&early[4].1)).await;
    let mut late = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    late.subscribe("d", &post, None).await;
    let written = writer.await.expect("writer");

    let ids = |events: Vec<(String, String)>| -> Vec<String> {
        events.into_iter().map(|(id, _)| id).collect()
    };
    let mut all_first = ids(early);
    all_first.extend(ids(comment_ids(&mut first, 25).await));
    assert_eq!(
        all_first, written,
        "the first subscriber: everything once, in order"
    );
    assert_eq!(ids(comment_ids(&mut second, 30).await), written);
    assert_eq!(
        ids(comment_ids(&mut resumed, 25).await),
        written[5..],
        "resumed from the 5th cursor mid-stream: no gap, no duplicate"
    );
    // The late one sees a contiguous tail: whatever came after it joined, once, in order.
    let mut tail = Vec::new();
    while let Some(WsEvent::Next(_, payload)) = late.next(Duration::from_millis(700)).await {
        tail.push(comment_event(&payload).1);
    }
    let from = written.len() - tail.len();
    assert_eq!(tail, written[from..], "late joiner");
    for ws in [&mut first, &mut second, &mut resumed, &mut late] {
        assert!(
            ws.next(Duration::from_millis(200)).await.is_none(),
            "nothing twice"
        );
    }
    drop((first, second, resumed, late));
    // The execution stops with its last subscriber.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gauge("inkwire_gateway_shared_executions").await > executions_before
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        gauge("inkwire_gateway_shared_executions").await,
        executions_before
    );
    assert_eq!(
        gauge("inkwire_gateway_subscriptions_open").await,
        open_before
    );
}

async fn bad_graphql_gets_stable_codes_and_the_gateway_stays_up(stack: &TestStack) {
    let post = published_post(&stack.http, &stack.graphql_url).await;
    // A bystander subscribed throughout must be unaffected.
    let mut bystander = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    bystander.subscribe("b", &post, None).await;

    let r = q(stack, None, "{ posts(first: ", json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_PARSE_FAILED"), "{r}");
    let r = q(stack, None, "{ nosuchfield }", json!({})).await;
    assert_eq!(error_code(&r), Some("GRAPHQL_VALIDATION_FAILED"), "{r}");
    let deep = format!(
        "{{ comment(id: \"{post}\") {{ {}id{} }} }}",
        "parent { ".repeat(20),
        " }".repeat(20)
    );
    let r = q(stack, None, &deep, json!({})).await;
    assert_eq!(error_code(&r), Some("QUERY_TOO_DEEP"), "{r}");
    let aliases: String = (0..100)
        .map(|i| format!("a{i}: posts {{ pageInfo {{ hasNextPage }} }} "))
        .collect();
    let r = q(stack, None, &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&r), Some("TOO_MANY_ALIASES"), "{r}");
    let r = q(
        stack,
        None,
        "query($id: ID) { post(id: $id) { id } }",
        json!({ "id": "x".repeat(600 * 1024) }),
    )
    .await;
    assert_eq!(error_code(&r), Some("PAYLOAD_TOO_LARGE"), "{r}");
    // Security headers; no CORS grant for an origin nobody allowed.
    let resp = stack
        .http
        .post(&stack.graphql_url)
        .header("origin", "https://evil.example")
        .json(&json!({ "query": "{ posts { pageInfo { hasNextPage } } }" }))
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = stack
        .http
        .post(&stack.graphql_url)
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
    let r: Value = resp.json().await.expect("json");
    assert_eq!(error_code(&r), Some("BAD_REQUEST"), "{r}");

    // A subscription to a missing post is an error on that operation only.
    let mut ws = WsClient::connect(&ws_url(stack))
        .await
        .expect("the WebSocket connects");
    ws.subscribe("m", &uuid::Uuid::now_v7().to_string(), None)
        .await;
    match ws.next(Duration::from_secs(10)).await {
        Some(WsEvent::Error(id, payload)) | Some(WsEvent::Next(id, payload)) => {
            assert_eq!(id, "m");
            let code = payload[0]["extensions"]["code"]
                .as_str()
                .or(payload["errors"][0]["extensions"]["code"].as_str());
            assert_eq!(code, Some("NOT_FOUND"), "{payload}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // Garbage frames close that connection with graphql-transport-ws's 4400 Bad Request.
    ws.send_text("{{{ this is not json").await;
    loop {
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Complete(_)) => {}
            Some(WsEvent::Closed(code, _)) => {
                assert_eq!(code, Some(4400));
                break;
            }
            other => panic!("expected the connection closed with 4400, got {other:?}"),
        }
    }

    let (id, _) = add_comment(&stack.http, &stack.graphql_url, &post, "still here", false).await;
    // Generous: the suite shares its broker with tests that flood it.
    match bystander.next(Duration::from_secs(30)).await {
        Some(WsEvent::Next(_, payload)) => assert_eq!(comment_event(&payload).1, id),
        other => panic!("the bystander lost its subscription: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_gets_slow_consumer_with_a_cursor_and_never_slows_others() {
    use futures::StreamExt;
    use query_gateway::live::{Hub, LiveError};

    let stack = TestStack::boot(common::Backend::Embedded).await;
    let registry = prometheus::Registry::new();
    let metrics = query_gateway::metrics::Metrics::new(&registry);
    let read = read_model::ReadModel::new(stack.db.clone(), metrics.sql_statements.clone());
    // Eight events of slack per subscriber.
    let cache =
        query_gateway::live::cache::PageCache::new(0, std::time::Duration::ZERO, metrics.clone());
    let hub = Hub::new(read, metrics.clone(), 8, cache, None);
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(hub.clone().broadcast(cancel.clone()));
    let post = published_post(&stack.http, &stack.graphql_url).await;
    let post_id: uuid::Uuid = post.parse().expect("uuid");

    let mut slow = Box::pin(hub.subscribe(post_id, None, true).await.expect("subscribe"));
    let mut fast = Box::pin(hub.subscribe(post_id, None, true).await.expect("subscribe"));
    let fast_reader = tokio::spawn(async move {
        let mut ids = Vec::new();
        while ids.len() < 40 {
            match fast.next().await {
                Some(Ok(event)) => ids.push(event.comment.id.to_string()),
                other => panic!("the fast subscriber was cut off: {other:?}"),
            }
        }
        ids
    });
    let mut written = Vec::new();
    for i in 0..40 {
        written.push(
            add_comment(
                &stack.http,
                &stack.graphql_url,
                &post,
                &format!("burst {i}"),
                false,
            )
            .await
            .0,
        );
    }
    let fast_ids = tokio::time::timeout(Duration::from_secs(20), fast_reader)
        .await
        .expect("fast subscriber keeps up")
        .expect("task");
    assert_eq!(
        fast_ids, written,
        "the fast subscriber got everything, in order"
    );

    // The slow one never read: it has its first events, then SLOW_CONSUMER with a cursor.
    let mut slow_ids = Vec::new();
    let cursor = loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .expect("an answer")
        {
            Some(Ok(event)) => slow_ids.push(event.comment.id.to_string()),
            Some(Err(LiveError::SlowConsumer { last_version })) => break last_version,
            None => panic!("ended without SLOW_CONSUMER"),
        }
    };
    assert!(slow_ids.len() < written.len(), "it did fall behind");
    assert!(
        slow.next().await.is_none(),
        "the subscription ends after SLOW_CONSUMER"
    );
    assert_eq!(metrics.slow_disconnects.get(), 1);

    // Resuming from the cursor gives exactly the rest.
    let mut resumed = Box::pin(
        hub.subscribe(post_id, Some(cursor), true)
            .await
            .expect("resume"),
    );
    while slow_ids.len() < written.len() {
        match tokio::time::timeout(Duration::from_secs(5), resumed.next())
            .await
            .expect("catch-up")
        {
            Some(Ok(event)) => slow_ids.push(event.comment.id.to_string()),
            other => panic!("resume failed: {other:?}"),
        }
    }
    assert_eq!(slow_ids, written);
    cancel.cancel();
    stack.stop().await;
}

/// Older clients (Apollo's subscriptions-transport-ws) speak the legacy `graphql-ws` protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_graphql_ws_protocol_works_too() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let stack = TestStack::boot(common::Backend::Embedded).await;
    let post = published_post(&stack.http, &stack.graphql_url).await;
    let mut request = ws_url(&stack).into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-ws".parse().expect("header"),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-ws");
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({ "type": "connection_init", "payload": {} })))
        .await
        .expect("init");
    ws.send(send(json!({ "type": "start", "id": "1", "payload": { "query": common::graphql::COMMENT_EVENTS, "variables": { "postId": post } } })))
        .await
        .expect("start");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (id, _) = add_comment(&stack.http, &stack.graphql_url, &post, "legacy", false).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a data message")
            .expect("open")
            .expect("frame");
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).expect("json");
        if v["type"] == "data" {
            assert_eq!(comment_event(&v["payload"]).1, id);
            break;
        }
        assert!(
            ["connection_ack", "ka"].contains(&v["type"].as_str().unwrap_or_default()),
            "unexpected {v}"
        );
    }
    stack.stop().await;
}

/// A write whose projection does not come within the gateway's bounded wait: the mutation says
/// `PROJECTION_TIMEOUT` with the write's position, after the wait and not long after; the write
/// itself was accepted and shows once a projector runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waited_for_past_its_projection_times_out_with_its_position_and_still_lands() {
    let db_url = common::fresh_database().await;
    let topic = common::unique("posts");
    // No projector: nothing the command service accepts reaches the read tables yet.
    let stack = TestStack::distributed_on(&db_url, &topic, &common::brokers(), false).await;
    let slug = format!("late-{}", short_tag());
    let started = std::time::Instant::now();
    let r = q(
        &stack,
        Some(AUTHOR),
        "mutation($input: CreatePostInput!) { createPost(input: $input, waitForProjection: true) { post { id } position } }",
        json!({ "input": { "title": "Late", "body": "Projected later.", "slug": slug } }),
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(error_code(&r), Some("PROJECTION_TIMEOUT"), "{r}");
    assert!(
        r["errors"][0]["extensions"]["position"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "the error carries the write's position: {r}"
    );
    // The default wait is 5 s: answered after it, and not left hanging.
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );

    // The write was accepted: a projector started now makes it visible.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cancel = tokio_util::sync::CancellationToken::new();
    let projector = tokio::spawn(projection_service::serve(
        listener,
        stack.db.clone(),
        infra::log::LogConfig::Kafka(common::kafka(&topic, &common::brokers())),
        stack.group.clone(),
        cancel.clone(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = q(
            &stack,
            Some(AUTHOR),
            "query($slug: String) { post(slug: $slug) { title } }",
            json!({ "slug": slug }),
        )
        .await;
        if r["data"]["post"]["title"] == "Late" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never projected: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cancel.cancel();
    projector
        .await
        .expect("projector joins")
        .expect("projector stops cleanly");
    stack.stop().await;
}

/// The graphql-transport-ws rules a client can break, each answered as the protocol says: a
/// subscribe before the handshake (4401), a second `connection_init` (4429), an operation id
/// already in use (4409), no `connection_init` in time (4408), a message it does not know or
/// cannot read (4400, with a reason that fits a close frame); a `ping` gets its `pong` with the
/// same payload; an operation that fails validation gets an `error` message and no `complete`.
/// Over raw frames, since client libraries hide malformed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_transport_ws_protocol_rules_close_with_their_codes() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let post = published_post(&stack.http, &stack.graphql_url).await;
    let url = ws_url(&stack);
    let short = Duration::from_secs(10);
    let closed_with = |m: Option<Result<Value, (Option<u16>, String)>>| match m {
        Some(Err((code, _))) => code,
        other => panic!("expected a close, got {other:?}"),
    };

    let mut ws = WsClient::open(&url).await.expect("opens");
    ws.subscribe("1", &post, None).await;
    assert_eq!(
        closed_with(ws.message(short).await),
        Some(4401),
        "subscribe before init"
    );

    let mut ws = WsClient::connect(&url)
        .await
        .expect("the WebSocket connects");
    ws.send(json!({ "type": "ping", "payload": { "n": 7 } }))
        .await;
    assert_eq!(
        ws.message(short).await.expect("an answer").expect("pong"),
        json!({ "type": "pong", "payload": { "n": 7 } })
    );
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(
        closed_with(ws.message(short).await),
        Some(4429),
        "a second init"
    );

    let mut ws = WsClient::connect(&url)
        .await
        .expect("the WebSocket connects");
    ws.subscribe("same", &post, None).await;
    ws.subscribe("same", &post, None).await;
    assert_eq!(
        closed_with(ws.message(short).await),
        Some(4409),
        "an id in use"
    );

    // Messages the protocol does not know, or that lack a field, or are no JSON: 4400, with a
    // reason that fits a close frame (RFC 6455: 123 bytes), so clients see it rather than 1006.
    for (what, text) in [
        (
            "unknown type",
            r#"{"type":"start","id":"1","payload":{"query":"{ __typename }"}}"#.to_owned(),
        ),
        (
            "made-up type",
            format!(r#"{{"type":"{}"}}"#, "x".repeat(300)),
        ),
        ("no type", r#"{"id":"1"}"#.to_owned()),
        (
            "subscribe without id",
            r#"{"type":"subscribe","payload":{"query":"{ __typename }"}}"#.to_owned(),
        ),
        (
            "subscribe without payload",
            r#"{"type":"subscribe","id":"1"}"#.to_owned(),
        ),
        ("not JSON", "{{{".to_owned()),
        (
            "init payload not an object",
            r#"{"type":"connection_init","payload":"token"}"#.to_owned(),
        ),
    ] {
        let mut ws = if what.starts_with("init") {
            WsClient::open(&url).await.expect("opens")
        } else {
            WsClient::connect(&url)
                .await
                .expect("the WebSocket connects")
        };
        ws.send_text(&text).await;
        match ws.message(short).await {
            Some(Err((code, reason))) => {
                assert_eq!(code, Some(4400), "{what}: {reason}");
                assert!(reason.len() <= 123, "{what}: {} bytes", reason.len());
                assert!(
                    reason.starts_with("Invalid message received"),
                    "{what}: {reason}"
                );
            }
            other => panic!("{what}: expected 4400, got {other:?}"),
        }
    }

    // An operation that fails validation gets one `error` message and no `complete`; the
    // connection stays open for the next.
    let mut ws = WsClient::connect(&url)
        .await
        .expect("the WebSocket connects");
    ws.send(json!({ "id": "bad", "type": "subscribe", "payload": { "query": "subscription { nope }" } }))
        .await;
    match ws.message(short).await {
        Some(Ok(m)) => {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["id"], "bad", "{m}");
            assert_eq!(
                m["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
                "{m}"
            );
        }
        other => panic!("expected an error message, got {other:?}"),
    }
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(
        ws.message(short).await.expect("an answer").expect("pong"),
        json!({ "type": "pong" }),
        "no `complete` after the error, and the connection lives on"
    );

    // Silent after connecting: closed once the 10 s for `connection_init` are up.
    let mut ws = WsClient::open(&url).await.expect("opens");
    let opened = std::time::Instant::now();
    assert_eq!(
        closed_with(ws.message(Duration::from_secs(20)).await),
        Some(4408),
        "no init in time"
    );
    assert!(
        opened.elapsed() >= Duration::from_secs(9),
        "not before its time"
    );
    stack.stop().await;
}

/// A gateway that starts while the projector lags must not cache a page the log has already
/// moved past: its follower starts at the log's end and never sees those changes. Here a comment
/// is in the log but not in the read tables when a second gateway starts and serves the post's
/// comments; once the projector applies it, that gateway shows it at once (not after the page
/// cache's maximum age), and its cache does turn on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_behind_the_projector_never_serves_a_stale_cached_page() {
    let db_url = common::fresh_database().await;
    let topic = common::unique("posts");
    let brokers = common::brokers();
    let stack = TestStack::distributed_on(&db_url, &topic, &brokers, false).await;
    let log = infra::log::LogConfig::Kafka(common::kafka(&topic, &brokers));
    let projector = |cancel: tokio_util::sync::CancellationToken| {
        let (db, log, group) = (stack.db.clone(), log.clone(), stack.group.clone());
        tokio::spawn(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            projection_service::serve(l, db, log, group, cancel).await
        })
    };
    let comments = "query($p: ID!) { comments(postId: $p, first: 50) { edges { node { id } } } }";

    // The post and a first comment, projected.
    let running = tokio_util::sync::CancellationToken::new();
    let first_run = projector(running.clone());
    let post = stack.published_post().await;
    let (status, body) = stack.comment(&post, "projected").await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    stack.wait_comments(1, Duration::from_secs(30)).await;
    running.cancel();
    first_run
        .await
        .expect("joins")
        .expect("projector stops cleanly");

    // A second comment reaches the log while nothing projects it.
    let (status, body) = stack.comment(&post, "in the log only").await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let second = body["comment_id"].as_str().expect("comment id").to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A gateway starts now, with a page cache that would keep answers for a minute.
    let cancel = tokio_util::sync::CancellationToken::new();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/graphql", l.local_addr().expect("addr"));
    let gateway = tokio::spawn(query_gateway::serve(
        l,
        stack.db.clone(),
        log.clone(),
        stack.command_url.clone(),
        query_gateway::GatewayConfig {
            projection_group: stack.group.clone(),
            page_cache_max_age: Duration::from_secs(60),
            ..query_gateway::GatewayConfig::new(common::keys())
        },
        cancel.clone(),
    ));
    let read = || gql(&stack.http, &url, None, comments, json!({ "p": post }));
    common::eventually(Duration::from_secs(20), || async {
        read().await["data"]["comments"].is_object()
    })
    .await;
    for _ in 0..5 {
        let seen = common::graphql::comment_ids(&read().await);
        assert_eq!(seen.len(), 1, "only the projected comment yet: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The projector catches up: the new gateway shows the comment as soon as the tables do.
    let resumed = tokio_util::sync::CancellationToken::new();
    let second_run = projector(resumed.clone());
    stack.wait_comments(2, Duration::from_secs(30)).await;
    let seen = common::graphql::comment_ids(&read().await);
    assert!(seen.contains(&second), "a stale page was served: {seen:?}");

    // And its cache is on: the same read is now answered from it.
    let base = url.trim_end_matches("/graphql").to_owned();
    common::eventually(Duration::from_secs(20), || async {
        read().await;
        common::metric(
            &stack.http,
            &base,
            "inkwire_gateway_page_cache_lookups_total{result=\"hit\"}",
        )
        .await
        .unwrap_or(0.0)
            > 0.0
    })
    .await;
    assert!(common::graphql::comment_ids(&read().await).contains(&second));

    cancel.cancel();
    gateway
        .await
        .expect("joins")
        .expect("gateway stops cleanly");
    resumed.cancel();
    second_run
        .await
        .expect("joins")
        .expect("projector stops cleanly");
    stack.stop().await;
}

/// At SERIALIZABLE, and always on CockroachDB, the database may abort a plain read that
/// overlaps writers with SQLSTATE 40001 (a rebuild's view switch did, in CI). Readers must not
/// see that: the gateway and the read API run the read again. A conflict that never clears is
/// "unavailable, try again", not an internal error. The test makes the database answer 40001
/// the way it would: the comments table is put behind a view whose filter raises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_aborted_by_a_serialization_conflict_is_run_again() {
    let stack = TestStack::distributed(&common::brokers()).await;
    let post = stack.published_post().await;
    for body in ["one", "two", "three"] {
        let (status, r) = stack.comment(&post, body).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{r}");
    }
    stack.wait_comments(3, Duration::from_secs(30)).await;
    let infra::db::Db::Postgres(pool) = &stack.db else {
        panic!("a PostgreSQL stack");
    };
    let conflict_first = |times: i64| {
        format!(
            "CREATE OR REPLACE FUNCTION inkwire_test_conflict() RETURNS boolean \
             LANGUAGE plpgsql VOLATILE AS $$ BEGIN \
               IF nextval('inkwire_test_conflicts') <= {times} THEN \
                 RAISE EXCEPTION 'could not serialize access (injected)' USING ERRCODE = '40001'; \
               END IF; RETURN true; END $$"
        )
    };
    for sql in [
        "CREATE SEQUENCE inkwire_test_conflicts".to_owned(),
        conflict_first(3),
        "ALTER TABLE rm_comments RENAME TO rm_comments_rows".to_owned(),
        "CREATE VIEW rm_comments AS SELECT * FROM rm_comments_rows WHERE inkwire_test_conflict()"
            .to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("inject");
    }
    let conflicts_raised = || async {
        let (n,): (i64,) = sqlx::query_as("SELECT last_value FROM inkwire_test_conflicts")
            .fetch_one(pool)
            .await
            .expect("sequence");
        n
    };
    let comments =
        "query($p: ID!) { comments(postId: $p, first: 50) { edges { node { id body } } } }";

    // Three aborted attempts, then the answer.
    let r = q(&stack, Some(AUTHOR), comments, json!({ "p": post })).await;
    assert!(r["errors"].is_null(), "{r}");
    let bodies: Vec<&str> = r["data"]["comments"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["body"].as_str())
        .collect();
    assert_eq!(bodies, ["one", "two", "three"], "{r}");
    assert!(
        conflicts_raised().await > 3,
        "the injected conflicts never fired"
    );
    // Operators see them.
    let base = stack.graphql_url.trim_end_matches("/graphql");
    let retried = common::metric(
        &stack.http,
        base,
        "inkwire_db_conflict_retries_total{kind=\"read\"}",
    )
    .await;
    assert!(
        retried >= Some(3.0),
        "read retries on /metrics: {retried:?}"
    );

    // The read API does the same.
    sqlx::query("ALTER SEQUENCE inkwire_test_conflicts RESTART")
        .execute(pool)
        .await
        .expect("restart");
    let read = stack.read(&format!("/v1/read/posts/{post}/comments")).await;
    assert_eq!(read.as_array().map(Vec::len), Some(3), "{read}");
    assert!(
        conflicts_raised().await > 3,
        "the injected conflicts never fired"
    );

    // A conflict that never clears: a clear, retryable code, and the gateway stays up.
    sqlx::query(sqlx::AssertSqlSafe(conflict_first(i64::MAX)))
        .execute(pool)
        .await
        .expect("inject");
    let r = q(&stack, Some(AUTHOR), comments, json!({ "p": post })).await;
    assert_eq!(error_code(&r), Some("UNAVAILABLE"), "{r}");
    let response = stack
        .http
        .get(format!("{}/v1/read/posts/{post}/comments", stack.read_url))
        .send()
        .await
        .expect("reachable");
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let r = q(
        &stack,
        Some(AUTHOR),
        "query($p: ID!) { post(id: $p) { id commentCount } }",
        json!({ "p": post }),
    )
    .await;
    assert_eq!(r["data"]["post"]["commentCount"], 3, "{r}");
    stack.stop().await;
}
