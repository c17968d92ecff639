//! The tests' side of [`loadgen::client`], the GraphQL client the load tools use too: requests
//! as a test user, and the scenarios' common steps.

use serde_json::{Value, json};

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use loadgen::client::{COMMENT_EVENTS, WsClient, WsEvent, error_code};

/// POSTs a GraphQL request to `url` (`http://…/graphql`) as `user`; returns the whole response
/// (a failure to reach the server as `{"transport_error"}`).
pub async fn gql(
    http: &reqwest::Client,
    url: &str,
    user: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let token = user.map(super::token_for);
    loadgen::client::request(http, url, token.as_deref(), query, variables)
        .await
        .unwrap_or_else(|e| json!({ "transport_error": e.to_string() }))
}

/// Adds a comment through the gateway; returns (comment id, whole response).
pub async fn add_comment(
    http: &reqwest::Client,
    url: &str,
    post: &str,
    body: &str,
    wait: bool,
) -> (String, Value) {
    let r = gql(
        http,
        url,
        Some(super::AUTHOR),
        "mutation($input: AddCommentInput!, $wait: Boolean) { addComment(input: $input, waitForProjection: $wait) { comment { id } position } }",
        json!({ "input": { "postId": post, "body": body }, "wait": wait }),
    )
    .await;
    let id = r["data"]["addComment"]["comment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (id, r)
}

/// Adds a comment (a reply under `parent`) as `user` and waits for its projection; returns
/// its id.
pub async fn comment_as(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    post: &str,
    parent: Option<&str>,
    body: &str,
) -> String {
    let r = gql(
        http,
        url,
        Some(user),
        "mutation($input: AddCommentInput!) { addComment(input: $input, waitForProjection: true) { comment { id } } }",
        json!({ "input": { "postId": post, "parentId": parent, "body": body } }),
    )
    .await;
    r["data"]["addComment"]["comment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

/// The cursor to subscribe to `post`'s comment events from, read with the post as the web UI
/// reads it: a subscription from it misses nothing written after this read.
pub async fn comment_events_cursor(http: &reqwest::Client, url: &str, post: &str) -> String {
    let r = gql(
        http,
        url,
        None,
        "query($id: ID) { post(id: $id) { commentEventsCursor } }",
        json!({ "id": post }),
    )
    .await;
    r["data"]["post"]["commentEventsCursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

/// Creates and publishes a post through the gateway; returns its id.
pub async fn published_post(http: &reqwest::Client, url: &str) -> String {
    let r = gql(
        http,
        url,
        Some(super::AUTHOR),
        "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
        json!({ "input": { "title": "Live post", "body": "Hello", "slug": super::unique("live").replace('_', "-") } }),
    )
    .await;
    let id = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let r = gql(
        http,
        url,
        Some(super::AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { status } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        r["data"]["publishPost"]["post"]["status"], "PUBLISHED",
        "{r}"
    );
    id
}

/// (kind, comment id, cursor) of a `next` payload of [`COMMENT_EVENTS`].
pub fn comment_event(payload: &Value) -> (String, String, String) {
    let e = &payload["data"]["commentEvents"];
    (
        e["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("not a comment event: {payload}"))
            .to_owned(),
        e["comment"]["id"].as_str().unwrap_or_default().to_owned(),
        e["cursor"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The comment ids of a `comments { edges { node { id } } }` answer, in order.
pub fn comment_ids(r: &Value) -> Vec<String> {
    r["data"]["comments"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}
