//! `inkwire events tail` on both backends: one readable line per event of one post, in order,
//! user text quoted (control characters are refused at the door, and `events::describe` escapes
//! them anyway); and, started at the end of the log, the next event as it happens (JSON).

#[macro_use]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestStack};
use serde_json::Value;

on_both_backends!(tail_prints_a_posts_events_in_order_and_follows_new_ones);

fn tail(stack: &TestStack, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inkwire"));
    cmd.args(["events", "tail", "--database-url", &stack.db_url]);
    if stack.backend == Backend::Distributed {
        cmd.args([
            "--kafka-brokers",
            &common::brokers(),
            "--topic",
            &stack.topic,
        ]);
    }
    cmd.args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn tail_prints_a_posts_events_in_order_and_follows_new_ones(stack: &TestStack) {
    let other = stack.published_post().await;
    let post = stack.published_post().await;
    for (on, body) in [(&other, "elsewhere"), (&post, "first \"quoted\" words")] {
        let (status, answer) = stack.comment(on, body).await;
        assert!(status.is_success(), "{answer}");
    }

    let mut history = tail(
        stack,
        &["--post", &post, "--from-beginning", "--limit", "3"],
    );
    let out = tokio::task::spawn_blocking(move || history.output().expect("tail runs"))
        .await
        .expect("join");
    let stdout = common::succeeded(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, (version, kind)) in lines.iter().zip([
        (1, "post.drafted"),
        (2, "post.published"),
        (3, "comment.added"),
    ]) {
        assert!(
            line.contains(&format!("{post} v{version} {kind}")),
            "{line}"
        );
    }
    assert!(!stdout.contains(&other), "another post's events: {stdout}");
    assert!(
        lines[2].contains(r#""first \"quoted\" words""#),
        "user text quoted and escaped: {}",
        lines[2]
    );

    // From the end: the next comment, as JSON, as it happens. Keep commenting until tail has
    // positioned itself and printed one.
    let mut live = tokio::process::Command::from(tail(stack, &["--post", &post, "--json"]))
        .kill_on_drop(true)
        .spawn()
        .expect("tail starts");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        live.stdout.take().expect("stdout"),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    let first = loop {
        assert!(Instant::now() < deadline, "tail printed nothing live");
        sent += 1;
        let (status, answer) = stack.comment(&post, &format!("live {sent}")).await;
        assert!(status.is_success(), "{answer}");
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
        {
            break line.expect("read").expect("a line");
        }
    };
    drop(live);
    let event: Value = serde_json::from_str(&first).expect("one JSON line");
    assert_eq!(event["event_type"], "comment.added", "{event}");
    assert_eq!(event["stream_id"], post.as_str());
    let body = event["data"]["body"].as_str().expect("body");
    assert!(body.starts_with("live "), "{event}");
    assert!(
        event["offset"].is_i64() && event["partition"].is_i64(),
        "{event}"
    );
}
