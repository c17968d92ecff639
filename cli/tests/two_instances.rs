//! Two command-service instances (two relays, one lease) on one database and topic: concurrent
//! comments through both, on the same posts, are all accepted once, with distinct versions, and
//! reach the read model in the order they were accepted. This exercises the cross-instance
//! conflict retry and PostgreSQL's SERIALIZABLE (40001) retry path.

mod common;

use std::time::Duration;

use common::{AUTHOR, TestStack};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_posts_without_losing_or_reordering_comments() {
    let first = TestStack::distributed(&common::brokers()).await;
    let second =
        TestStack::distributed_on(&first.db_url, &first.topic, &common::brokers(), false).await;
    let mut posts = Vec::new();
    for _ in 0..10 {
        posts.push(first.published_post().await);
    }
    let instances = [&first, &second];
    let results: Vec<(String, StatusCode, Value)> = futures::stream::iter(0..400)
        .map(|i| {
            let post = posts[i % posts.len()].clone();
            let stack = instances[i % 2];
            async move {
                let (status, body) = stack
                    .post(
                        &format!("/v1/posts/{post}/comments"),
                        Some(AUTHOR),
                        json!({ "body": format!("c{i}") }),
                    )
                    .await;
                (post, status, body)
            }
        })
        .buffer_unordered(40)
        .collect()
        .await;
    let accepted = common::acknowledged(&results);
    first.wait_comments(400, Duration::from_secs(120)).await;
    first.assert_read_model_matches(&accepted).await;
    second.stop().await;
    first.stop().await;
}

/// An instance whose cache still holds a post as a draft accepts a comment once the other
/// instance published it: refusals are checked against the store, never decided on a stale cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cache_never_refuses_a_valid_command() {
    let first = TestStack::distributed(&common::brokers()).await;
    let second =
        TestStack::distributed_on(&first.db_url, &first.topic, &common::brokers(), false).await;
    let slug = common::unique("stale").replace('_', "-");
    let (status, body) = first
        .post(
            "/v1/posts",
            Some(AUTHOR),
            json!({ "title": "Stale", "slug": slug, "body_markdown": "draft" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let post = body["post_id"].as_str().expect("id").to_owned();
    let comment = |stack: &'static str| json!({ "body": format!("from {stack}") });
    // The second instance loads and caches the draft: commenting on it is refused, rightly.
    let (status, body) = second
        .post(
            &format!("/v1/posts/{post}/comments"),
            Some(AUTHOR),
            comment("second"),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The first publishes; the second's cache does not know.
    let (status, body) = first
        .post(
            &format!("/v1/posts/{post}/publish"),
            Some(AUTHOR),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = second
        .post(
            &format!("/v1/posts/{post}/comments"),
            Some(AUTHOR),
            comment("second"),
        )
        .await;
    assert!(
        status.is_success(),
        "refused on a stale cache: {status} {body}"
    );
    second.stop().await;
    first.stop().await;
}
