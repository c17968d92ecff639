//! Readers' reactions to posts and comments: once per kind per reader however often they
//! click, taken back, counted for everyone and pushed live to the post's subscribers, refused
//! with a clear code where they make no sense.

#[macro_use]
mod common;

use std::time::Duration;

use common::TestStack;
use common::graphql::{WsClient, WsEvent, add_comment, comment_events_cursor, error_code, gql};
use serde_json::{Value, json};

on_both_backends!(reactions_count_each_reader_once_and_reach_subscribers_live);
on_both_backends!(reactions_are_refused_where_they_make_no_sense);
on_both_backends!(reactions_to_a_post_reach_its_readers_live);

const RITA: &str = "01890000-0000-7000-8000-0000000000e1";
const SAM: &str = "01890000-0000-7000-8000-0000000000e2";

const ADD: &str = "mutation($kind: ReactionKind!, $post: ID, $comment: ID) { addReaction(kind: $kind, postId: $post, commentId: $comment) { changed reactions { kind emoji count viewerReacted } } }";
const REMOVE: &str = "mutation($kind: ReactionKind!, $post: ID, $comment: ID) { removeReaction(kind: $kind, postId: $post, commentId: $comment) { changed reactions { kind count viewerReacted } } }";
const COMMENTS: &str = "query($post: ID!) { comments(postId: $post, first: 10) { edges { node { id reactions { kind count viewerReacted } } } } }";
const POST: &str = "query($id: ID) { post(id: $id) { reactions { kind count viewerReacted } } }";
const LIVE: &str = "subscription($postId: ID!, $after: String) { commentEvents(postId: $postId, after: $after) { kind cursor comment { id reactions { kind count } } } }";

/// `kind`'s (count, viewerReacted) in a `reactions` list.
fn tally(reactions: &Value, kind: &str) -> (i64, bool) {
    let r = reactions
        .as_array()
        .unwrap_or_else(|| panic!("no reactions: {reactions}"))
        .iter()
        .find(|r| r["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} missing from {reactions}"));
    (
        r["count"].as_i64().expect("count"),
        r["viewerReacted"].as_bool().unwrap_or(false),
    )
}

async fn events_of(stack: &TestStack, post: &str, event_type: &str) -> i64 {
    let post: uuid::Uuid = post.parse().expect("id");
    infra::with_db!(&stack.db, |pool| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM events WHERE stream_id = $1 AND event_type = $2",
        )
        .bind(post)
        .bind(event_type)
        .fetch_one(pool)
        .await
        .expect("count")
    })
}

async fn readers(stack: &TestStack) {
    common::add_user(&stack.db, RITA, "rita-r", "rita-password", &["reader"]).await;
    common::add_user(&stack.db, SAM, "sam-r", "sam-password", &["reader"]).await;
}

async fn reactions_count_each_reader_once_and_reach_subscribers_live(stack: &TestStack) {
    readers(stack).await;
    let (http, url) = (&stack.http, &stack.graphql_url);
    let post = common::graphql::published_post(http, url).await;
    let (comment, _) = add_comment(http, url, &post, "first!", true).await;

    // A second reader watches the post live.
    let after = comment_events_cursor(http, url, &post).await;
    let mut ws = WsClient::connect(&url.replacen("http", "ws", 1))
        .await
        .expect("ws");
    ws.send(json!({
        "id": "r", "type": "subscribe",
        "payload": { "query": LIVE, "variables": { "postId": post, "after": after } }
    }))
    .await;

    // Rita clicks ❤️ a hundred times: one reaction, one event.
    let mut changed = 0;
    for _ in 0..100 {
        let r = gql(
            http,
            url,
            Some(RITA),
            ADD,
            json!({ "kind": "HEART", "comment": comment }),
        )
        .await;
        let payload = &r["data"]["addReaction"];
        assert_eq!(tally(&payload["reactions"], "HEART"), (1, true), "{r}");
        changed += usize::from(payload["changed"] == true);
    }
    assert_eq!(changed, 1, "only the first click changes anything");
    assert_eq!(events_of(stack, &post, "reaction.added").await, 1);

    // Sam adds ❤️ and 👍; counts are everyone's, viewerReacted each one's own.
    for kind in ["HEART", "LIKE"] {
        let r = gql(
            http,
            url,
            Some(SAM),
            ADD,
            json!({ "kind": kind, "comment": comment }),
        )
        .await;
        assert_eq!(r["data"]["addReaction"]["changed"], true, "{r}");
    }
    let as_rita = gql(http, url, Some(RITA), COMMENTS, json!({ "post": post })).await;
    let reactions = &as_rita["data"]["comments"]["edges"][0]["node"]["reactions"];
    assert_eq!(tally(reactions, "HEART"), (2, true), "{as_rita}");
    assert_eq!(tally(reactions, "LIKE"), (1, false), "{as_rita}");
    assert_eq!(tally(reactions, "WOW"), (0, false), "{as_rita}");
    let r = &reactions[0];
    assert_eq!(
        (r["kind"].as_str(), r.as_object().map(|o| o.len())),
        (Some("LIKE"), Some(3))
    );
    let anonymous = gql(http, url, None, COMMENTS, json!({ "post": post })).await;
    let reactions = &anonymous["data"]["comments"]["edges"][0]["node"]["reactions"];
    assert_eq!(tally(reactions, "HEART"), (2, false), "{anonymous}");

    // The subscriber is told of the changes in order, each with the counts of its moment; changes
    // projected together reach it as one event with the latest counts (as edits do).
    let mut seen: Vec<(i64, i64)> = Vec::new();
    while seen.last() != Some(&(2, 1)) {
        match ws.next(Duration::from_secs(10)).await {
            Some(WsEvent::Next(_, payload)) => {
                let e = &payload["data"]["commentEvents"];
                assert_eq!(e["kind"], "REACTED", "{payload}");
                assert_eq!(e["comment"]["id"], comment.as_str());
                let reactions = &e["comment"]["reactions"];
                seen.push((tally(reactions, "HEART").0, tally(reactions, "LIKE").0));
            }
            other => panic!("expected a reaction event, got {other:?} after {seen:?}"),
        }
    }
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
            && seen.len() <= 3,
        "{seen:?}"
    );
    assert!(seen[0].0 >= 1, "{seen:?}");

    // Taken back once; again changes nothing.
    for expect_changed in [true, false] {
        let r = gql(
            http,
            url,
            Some(RITA),
            REMOVE,
            json!({ "kind": "HEART", "comment": comment }),
        )
        .await;
        assert_eq!(
            r["data"]["removeReaction"]["changed"], expect_changed,
            "{r}"
        );
        assert_eq!(
            tally(&r["data"]["removeReaction"]["reactions"], "HEART"),
            (1, false),
            "{r}"
        );
    }
    assert_eq!(events_of(stack, &post, "reaction.removed").await, 1);

    // The post itself takes reactions too.
    let r = gql(
        http,
        url,
        Some(SAM),
        ADD,
        json!({ "kind": "TADA", "post": post }),
    )
    .await;
    assert_eq!(
        tally(&r["data"]["addReaction"]["reactions"], "TADA"),
        (1, true),
        "{r}"
    );
    let read = gql(http, url, None, POST, json!({ "id": post })).await;
    assert_eq!(
        tally(&read["data"]["post"]["reactions"], "TADA"),
        (1, false),
        "{read}"
    );
    let read = gql(http, url, None, COMMENTS, json!({ "post": post })).await;
    let reactions = &read["data"]["comments"]["edges"][0]["node"]["reactions"];
    assert_eq!(
        tally(reactions, "TADA"),
        (0, false),
        "a post's reaction is not its comment's"
    );
}

const POST_LIVE: &str = "subscription($postId: ID!) { postReactionEvents(postId: $postId) { postId reactions { kind count viewerReacted } } }";

/// The next `postReactionEvents` payload's reactions on `ws`.
async fn next_post_reactions(ws: &mut WsClient) -> Value {
    match ws.next(Duration::from_secs(10)).await {
        Some(WsEvent::Next(_, payload)) => {
            payload["data"]["postReactionEvents"]["reactions"].clone()
        }
        other => panic!("expected post reactions, got {other:?}"),
    }
}

async fn reactions_to_a_post_reach_its_readers_live(stack: &TestStack) {
    readers(stack).await;
    let (http, url) = (&stack.http, &stack.graphql_url);
    let post = common::graphql::published_post(http, url).await;
    let ws_url = url.replacen("http", "ws", 1);

    // Sam watches signed in, so `viewerReacted` is his; a first event gives the counts now.
    let token = common::token_for(SAM);
    let mut ws = WsClient::connect_with(
        &ws_url,
        json!({ "authorization": format!("Bearer {token}") }),
    )
    .await
    .expect("ws");
    ws.send(json!({
        "id": "p", "type": "subscribe",
        "payload": { "query": POST_LIVE, "variables": { "postId": post } }
    }))
    .await;
    assert_eq!(
        tally(&next_post_reactions(&mut ws).await, "TADA"),
        (0, false)
    );

    // Rita's 🎉, then Sam's own: each reaches him with the counts of its moment.
    gql(
        http,
        url,
        Some(RITA),
        ADD,
        json!({ "kind": "TADA", "post": post }),
    )
    .await;
    assert_eq!(
        tally(&next_post_reactions(&mut ws).await, "TADA"),
        (1, false)
    );
    gql(
        http,
        url,
        Some(SAM),
        ADD,
        json!({ "kind": "TADA", "post": post }),
    )
    .await;
    assert_eq!(
        tally(&next_post_reactions(&mut ws).await, "TADA"),
        (2, true)
    );

    // Comments and reactions to comments change the post's version but not its reactions: they
    // push nothing here, so the next event is the next change to the post's own reactions.
    let (comment, _) = add_comment(http, url, &post, "nice post", true).await;
    gql(
        http,
        url,
        Some(RITA),
        ADD,
        json!({ "kind": "LIKE", "comment": comment }),
    )
    .await;
    gql(
        http,
        url,
        Some(RITA),
        REMOVE,
        json!({ "kind": "TADA", "post": post }),
    )
    .await;
    let now = next_post_reactions(&mut ws).await;
    assert_eq!(tally(&now, "TADA"), (1, true), "{now}");
    assert_eq!(
        tally(&now, "LIKE"),
        (0, false),
        "a comment's like is not the post's: {now}"
    );

    // A new subscriber (reconnecting) starts from the counts as they are.
    let mut again = WsClient::connect(&ws_url).await.expect("ws");
    again
        .send(json!({
            "id": "q", "type": "subscribe",
            "payload": { "query": POST_LIVE, "variables": { "postId": post } }
        }))
        .await;
    assert_eq!(
        tally(&next_post_reactions(&mut again).await, "TADA"),
        (1, false)
    );

    // No such post: refused with a code, not an empty stream.
    again
        .send(json!({
            "id": "x", "type": "subscribe",
            "payload": { "query": POST_LIVE, "variables": { "postId": "01890000-0000-7000-8000-00000000dead" } }
        }))
        .await;
    match again.next(Duration::from_secs(10)).await {
        Some(WsEvent::Next(id, payload)) => {
            assert_eq!(id, "x");
            let error = &payload["errors"][0]["extensions"];
            assert_eq!(
                (&error["code"], &error["reason"]),
                (&json!("NOT_FOUND"), &json!("POST_NOT_FOUND")),
                "{payload}"
            );
        }
        other => panic!("expected POST_NOT_FOUND, got {other:?}"),
    }
}

async fn reactions_are_refused_where_they_make_no_sense(stack: &TestStack) {
    readers(stack).await;
    let (http, url) = (&stack.http, &stack.graphql_url);
    let post = common::graphql::published_post(http, url).await;
    let (comment, _) = add_comment(http, url, &post, "spam spam", true).await;
    let refused = |r: &Value| {
        assert!(r["data"].is_null(), "{r}");
        (
            error_code(r).map(str::to_owned),
            r["errors"][0]["extensions"]["reason"]
                .as_str()
                .map(str::to_owned),
        )
    };
    // Signed out.
    let r = gql(
        http,
        url,
        None,
        ADD,
        json!({ "kind": "LIKE", "comment": comment }),
    )
    .await;
    assert_eq!(refused(&r).0.as_deref(), Some("UNAUTHENTICATED"), "{r}");
    // No target, an unknown kind, an unknown comment.
    let r = gql(http, url, Some(RITA), ADD, json!({ "kind": "LIKE" })).await;
    assert_eq!(refused(&r).0.as_deref(), Some("BAD_USER_INPUT"), "{r}");
    let r = gql(
        http,
        url,
        Some(RITA),
        ADD,
        json!({ "kind": "THUMBS_DOWN", "comment": comment }),
    )
    .await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("ReactionKind")),
        "{r}"
    );
    let r = gql(
        http,
        url,
        Some(RITA),
        ADD,
        json!({ "kind": "LIKE", "post": post, "comment": uuid::Uuid::now_v7().to_string() }),
    )
    .await;
    assert_eq!(refused(&r).0.as_deref(), Some("NOT_FOUND"), "{r}");
    // A hidden comment takes no reactions.
    let r = gql(
        http,
        url,
        Some(common::AUTHOR),
        "mutation($id: ID!) { hideComment(id: $id, reason: \"spam\", waitForProjection: true) { comment { status } } }",
        json!({ "id": comment }),
    )
    .await;
    assert_eq!(
        r["data"]["hideComment"]["comment"]["status"], "HIDDEN",
        "{r}"
    );
    let r = gql(
        http,
        url,
        Some(RITA),
        ADD,
        json!({ "kind": "LIKE", "comment": comment }),
    )
    .await;
    assert_eq!(
        refused(&r),
        (
            Some("CONFLICT".to_owned()),
            Some("COMMENT_HIDDEN".to_owned())
        ),
        "{r}"
    );
    // Nothing was recorded by any of them.
    assert_eq!(events_of(stack, &post, "reaction.added").await, 0);
}
