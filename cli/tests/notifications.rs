//! Reply notifications: who is told of what (never of their own comments, once per comment),
//! withdrawn when the comment is hidden or deleted and back when restored, read marks that only
//! move forward, and the live subscription, resumed from its cursor without loss or repeat.

#[macro_use]
mod common;

use std::time::Duration;

use common::graphql::{WsClient, WsEvent, comment_as, error_code, gql};
use common::{AUTHOR, TestStack};
use serde_json::{Value, json};

on_both_backends!(replies_and_comments_notify_live_and_withdraw);

const RITA: &str = "01890000-0000-7000-8000-0000000000f1";
const SAM: &str = "01890000-0000-7000-8000-0000000000f2";
const MOD: &str = "01890000-0000-7000-8000-0000000000f3";

const LIST: &str = "query($unread: Boolean, $after: String) { notifications(first: 10, unreadOnly: $unread, after: $after) { \
    unreadCount edges { cursor node { id kind read cursor comment { id body authorName } post { id slug } } } \
    pageInfo { hasNextPage endCursor } } }";
const MARK: &str = "mutation($upTo: String) { markNotificationsRead(upTo: $upTo) { unreadCount } }";
const EVENTS: &str = "subscription($after: String) { notificationEvents(after: $after) { kind cursor unreadCount notification { id kind comment { body } } } }";

async fn list(stack: &TestStack, user: &str, unread: bool) -> Value {
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(user),
        LIST,
        json!({ "unread": unread }),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["notifications"].clone()
}

/// (comment id, kind, read) of each notification listed, newest first.
fn rows(list: &Value) -> Vec<(String, String, bool)> {
    list["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["id"].as_str().expect("id").to_owned(),
                n["kind"].as_str().expect("kind").to_owned(),
                n["read"].as_bool().expect("read"),
            )
        })
        .collect()
}

async fn moderate(stack: &TestStack, mutation: &str, comment: &str, post: &str) {
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(MOD),
        mutation,
        json!({ "id": comment, "post": post }),
    )
    .await;
    assert!(r["errors"].is_null(), "{r}");
}

/// The next `notificationEvents` event on `ws`: (kind, comment id or "", unreadCount, cursor).
async fn next_event(ws: &mut WsClient) -> (String, String, i64, String) {
    match ws.next(Duration::from_secs(10)).await {
        Some(WsEvent::Next(_, payload)) => {
            let e = &payload["data"]["notificationEvents"];
            assert!(e.is_object(), "{payload}");
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["notification"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["unreadCount"].as_i64().expect("unreadCount"),
                e["cursor"].as_str().expect("cursor").to_owned(),
            )
        }
        other => panic!("expected a notification event, got {other:?}"),
    }
}

async fn subscribe(stack: &TestStack, user: &str, after: Option<&str>) -> WsClient {
    let token = common::token_for(user);
    let mut ws = WsClient::connect_with(
        &stack.graphql_url.replacen("http", "ws", 1),
        json!({ "authorization": format!("Bearer {token}") }),
    )
    .await
    .expect("ws");
    ws.send(json!({
        "id": "n", "type": "subscribe",
        "payload": { "query": EVENTS, "variables": { "after": after } }
    }))
    .await;
    ws
}

async fn replies_and_comments_notify_live_and_withdraw(stack: &TestStack) {
    common::add_user(&stack.db, RITA, "rita-n", "rita-password", &["reader"]).await;
    common::add_user(&stack.db, SAM, "sam-n", "sam-password", &["reader"]).await;
    common::add_user(&stack.db, MOD, "mod-n", "mod-password", &["moderator"]).await;
    let post = common::graphql::published_post(&stack.http, &stack.graphql_url).await;

    // The author follows their notifications from now.
    let mut live = subscribe(stack, AUTHOR, None).await;
    // Subscribing is not instant: let it start before the first comment, so "from now" holds.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let rita = comment_as(
        &stack.http,
        &stack.graphql_url,
        RITA,
        &post,
        None,
        "Rita on the post",
    )
    .await;
    let own = comment_as(
        &stack.http,
        &stack.graphql_url,
        AUTHOR,
        &post,
        None,
        "the author's own",
    )
    .await;
    let sam = comment_as(
        &stack.http,
        &stack.graphql_url,
        SAM,
        &post,
        Some(&rita),
        "Sam answers Rita",
    )
    .await;
    let to_author = comment_as(
        &stack.http,
        &stack.graphql_url,
        RITA,
        &post,
        Some(&own),
        "Rita answers the author",
    )
    .await;
    let self_reply = comment_as(
        &stack.http,
        &stack.graphql_url,
        RITA,
        &post,
        Some(&rita),
        "Rita adds to her own",
    )
    .await;

    // The author: every comment on the post but their own, once each; a reply to them is a
    // REPLY (not also a COMMENT). Newest first, all unread.
    let author = list(stack, AUTHOR, false).await;
    assert_eq!(
        rows(&author),
        vec![
            (self_reply.clone(), "COMMENT".into(), false),
            (to_author.clone(), "REPLY".into(), false),
            (sam.clone(), "COMMENT".into(), false),
            (rita.clone(), "COMMENT".into(), false),
        ],
        "{author}"
    );
    assert_eq!(author["unreadCount"], 4);
    assert_eq!(
        author["edges"][1]["node"]["comment"]["body"],
        "Rita answers the author"
    );
    assert_eq!(author["edges"][1]["node"]["post"]["id"], post.as_str());
    // Rita is told of Sam's reply only (not of her reply to herself); Sam of nothing.
    assert_eq!(
        rows(&list(stack, RITA, false).await),
        vec![(sam.clone(), "REPLY".into(), false)]
    );
    assert!(rows(&list(stack, SAM, false).await).is_empty());

    // Live, in order, each once.
    let mut added = Vec::new();
    while added.len() < 4 {
        let (kind, id, _, _) = next_event(&mut live).await;
        assert_eq!(kind, "ADDED");
        added.push(id);
    }
    assert_eq!(
        added,
        vec![
            rita.clone(),
            sam.clone(),
            to_author.clone(),
            self_reply.clone()
        ]
    );

    // A moderator hides Sam's reply: withdrawn for the author and for Rita, live too.
    let hide = "mutation($id: ID!, $post: ID) { hideComment(id: $id, reason: \"off topic\", postId: $post, waitForProjection: true) { comment { id } } }";
    let restore = "mutation($id: ID!, $post: ID) { restoreComment(id: $id, postId: $post, waitForProjection: true) { comment { id } } }";
    moderate(stack, hide, &sam, &post).await;
    let (kind, id, unread, cursor) = next_event(&mut live).await;
    assert_eq!(
        (kind.as_str(), id.as_str(), unread),
        ("WITHDRAWN", sam.as_str(), 3)
    );
    assert_eq!(list(stack, AUTHOR, false).await["unreadCount"], 3);
    assert!(rows(&list(stack, RITA, false).await).is_empty());
    moderate(stack, restore, &sam, &post).await;
    let (kind, id, unread, _) = next_event(&mut live).await;
    assert_eq!(
        (kind.as_str(), id.as_str(), unread),
        ("RESTORED", sam.as_str(), 4)
    );
    assert_eq!(rows(&list(stack, RITA, false).await).len(), 1);

    // Read up to the second newest: the newest stays unread, here and on the author's other
    // devices (READ, live).
    let author = list(stack, AUTHOR, false).await;
    let second = author["edges"][1]["node"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        MARK,
        json!({ "upTo": second }),
    )
    .await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 1, "{r}");
    let (kind, id, unread, _) = next_event(&mut live).await;
    assert_eq!((kind.as_str(), id.as_str(), unread), ("READ", "", 1));
    let reads: Vec<bool> = rows(&list(stack, AUTHOR, false).await)
        .into_iter()
        .map(|r| r.2)
        .collect();
    assert_eq!(reads, vec![false, true, true, true]);
    let unread_only = list(stack, AUTHOR, true).await;
    assert_eq!(
        rows(&unread_only),
        vec![(self_reply.clone(), "COMMENT".into(), false)]
    );
    // An older mark does not move it back.
    let oldest = author["edges"][3]["node"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        MARK,
        json!({ "upTo": oldest }),
    )
    .await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 1, "{r}");

    // Disconnected, the author misses a deletion and a read-all; resuming from the last cursor
    // brings both, once each and in order.
    drop(live);
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(RITA),
        "mutation($id: ID!, $post: ID) { deleteComment(id: $id, postId: $post, waitForProjection: true) { comment { status } } }",
        json!({ "id": self_reply, "post": post }),
    )
    .await;
    assert_eq!(
        r["data"]["deleteComment"]["comment"]["status"], "DELETED",
        "{r}"
    );
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        MARK,
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 0, "{r}");
    let mut resumed = subscribe(stack, AUTHOR, Some(&cursor)).await;
    let mut missed = Vec::new();
    while missed.last().map(|(k, _): &(String, String)| k.as_str()) != Some("READ") {
        let (kind, id, _, _) = next_event(&mut resumed).await;
        missed.push((kind, id));
    }
    // One round of catch-up: the changes in order, then where the read mark stands.
    assert_eq!(
        missed,
        vec![
            ("RESTORED".to_owned(), sam.clone()),
            ("WITHDRAWN".to_owned(), self_reply.clone()),
            ("READ".to_owned(), String::new()),
        ],
        "{missed:?}"
    );
    assert!(
        resumed.next(Duration::from_millis(700)).await.is_none(),
        "something repeated after the catch-up"
    );
    assert_eq!(list(stack, AUTHOR, false).await["unreadCount"], 0);

    // Signed out: a clear refusal, for the list, the mark and the subscription.
    let r = gql(&stack.http, &stack.graphql_url, None, LIST, json!({})).await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    let r = gql(&stack.http, &stack.graphql_url, None, MARK, json!({})).await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        LIST,
        json!({ "after": "nonsense" }),
    )
    .await;
    assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
}
