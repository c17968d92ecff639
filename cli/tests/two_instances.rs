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
