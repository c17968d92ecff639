//! In the one-process stack the event store and the log share one SQLite file, so a command's
//! events are written to the log in the transaction that stores them: when a comment is
//! acknowledged it is already in the log, with no outbox row left for a relay to carry.

#[macro_use]
mod common;

use std::time::Duration;

use common::TestStack;
use infra::with_db;
use reqwest::StatusCode;
use sqlx::Row;

/// Outbox rows of `post`'s stream.
async fn waiting(stack: &TestStack, post: &str) -> i64 {
    let id = uuid::Uuid::parse_str(post).expect("post id");
    with_db!(&stack.db, |pool| sqlx::query(
        "SELECT COUNT(*) FROM outbox WHERE stream_id = $1"
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .and_then(|r| r.try_get::<i64, _>(0)))
    .expect("outbox rows")
}

/// Log records keyed by `post`, and the offset of the last one.
async fn logged(stack: &TestStack, post: &str) -> (i64, Option<i64>) {
    with_db!(&stack.db, |pool| sqlx::query(
        "SELECT COUNT(*), MAX(log_offset) FROM log_messages WHERE msg_key = $1"
    )
    .bind(post.as_bytes())
    .fetch_one(pool)
    .await
    .and_then(|r| Ok((
        r.try_get::<i64, _>(0)?,
        r.try_get::<Option<i64>, _>(1)?
    ))))
    .expect("log rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_comment_is_already_in_the_embedded_log() {
    let stack = TestStack::embedded().await;
    let post = stack.published_post().await;
    let (mut records, mut last) = logged(&stack, &post).await;
    assert_eq!(
        records, 2,
        "the post's draft and publication are in the log"
    );
    for i in 0..20 {
        let (status, body) = stack.comment(&post, &format!("comment {i}")).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // Read at once, before any relay could have run.
        let (now, at) = logged(&stack, &post).await;
        assert_eq!(
            now,
            records + 1,
            "comment {i} acknowledged but not in the log"
        );
        assert!(
            at > last,
            "comment {i} was not appended after the one before"
        );
        (records, last) = (now, at);
        assert_eq!(
            waiting(&stack, &post).await,
            0,
            "an outbox row for comment {i}"
        );
    }
    // And the projector, woken by those appends, reads them like any other record.
    stack.wait_comments(20, Duration::from_secs(20)).await;
    stack.stop().await;
}
