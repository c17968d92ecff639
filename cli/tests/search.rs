//! Searching the published posts through GraphQL on both backends: every word must match the
//! title, the text or a tag, case aside; `%` and `_` are plain characters; drafts stay out; bad
//! searches get stable codes.

#[macro_use]
mod common;

use common::graphql::{error_code, gql};
use common::{AUTHOR, TestStack};
use serde_json::{Value, json};

on_both_backends!(searches_find_published_posts_by_every_word,);

const SEARCH: &str = "query($q: String!, $first: Int, $after: String) { searchPosts(query: $q, first: $first, after: $after) { edges { node { title } } pageInfo { hasNextPage endCursor } } }";

async fn create(stack: &TestStack, title: &str, body: &str, tags: &[&str], publish: bool) {
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        "mutation($input: CreatePostInput!) { createPost(input: $input, waitForProjection: true) { post { id } } }",
        json!({ "input": { "title": title, "body": body, "tags": tags } }),
    )
    .await;
    let id = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    if publish {
        let r = gql(
            &stack.http,
            &stack.graphql_url,
            Some(AUTHOR),
            "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { id } } }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(error_code(&r), None, "{r}");
    }
}

async fn search(stack: &TestStack, q: &str, first: Option<i32>, after: Option<&str>) -> Value {
    gql(
        &stack.http,
        &stack.graphql_url,
        None,
        SEARCH,
        json!({ "q": q, "first": first, "after": after }),
    )
    .await
}

async fn titles(stack: &TestStack, q: &str) -> Vec<String> {
    let r = search(stack, q, None, None).await;
    r["data"]["searchPosts"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: {r}"))
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn searches_find_published_posts_by_every_word(stack: &TestStack) {
    create(
        stack,
        "Weaving on the Loom",
        "The Jacquard loom weaves flowers and leaves.",
        &[],
        true,
    )
    .await;
    create(
        stack,
        "Engines",
        "An analytical engine fills 100% of its tables.",
        &[],
        true,
    )
    .await;
    create(stack, "Underscores", "Write a_b in code.", &[], true).await;
    create(
        stack,
        "Letters",
        "Write axb in prose.",
        &["ferrofluid"],
        true,
    )
    .await;
    create(stack, "A loom draft", "Jacquard, unpublished.", &[], false).await;

    // Title, text or tag; any case; the draft never shows.
    assert_eq!(titles(stack, "loom").await, ["Weaving on the Loom"]);
    assert_eq!(titles(stack, "JACQUARD").await, ["Weaving on the Loom"]);
    assert_eq!(titles(stack, "ferrofluid").await, ["Letters"]);
    // Every word must match, in any field.
    assert_eq!(titles(stack, "weaves  loom").await, ["Weaving on the Loom"]);
    assert!(titles(stack, "jacquard engine").await.is_empty());
    // LIKE's wildcards are plain characters.
    assert_eq!(titles(stack, "0%").await, ["Engines"]);
    assert_eq!(titles(stack, "a_b").await, ["Underscores"]);
    // Newest first, paged.
    assert_eq!(titles(stack, "write").await, ["Letters", "Underscores"]);
    let r = search(stack, "write", Some(1), None).await;
    let page = &r["data"]["searchPosts"];
    assert_eq!(page["edges"][0]["node"]["title"], "Letters", "{r}");
    assert_eq!(page["pageInfo"]["hasNextPage"], true, "{r}");
    let r = search(
        stack,
        "write",
        Some(1),
        page["pageInfo"]["endCursor"].as_str(),
    )
    .await;
    assert_eq!(
        r["data"]["searchPosts"]["edges"][0]["node"]["title"], "Underscores",
        "{r}"
    );
    assert_eq!(
        r["data"]["searchPosts"]["pageInfo"]["hasNextPage"], false,
        "{r}"
    );

    // Searches that cannot be run get stable codes.
    let long_words: Vec<String> = (0..11).map(|i| format!("w{i}")).collect();
    let long_words = long_words.join(" ");
    for (q, reason) in [
        ("   ", "EMPTY_SEARCH"),
        (&"x".repeat(201)[..], "SEARCH_TOO_LONG"),
        (long_words.as_str(), "SEARCH_TOO_LONG"),
    ] {
        let r = search(stack, q, None, None).await;
        assert_eq!(error_code(&r), Some("BAD_USER_INPUT"), "{r}");
        assert_eq!(r["errors"][0]["extensions"]["reason"], reason, "{r}");
    }
}
