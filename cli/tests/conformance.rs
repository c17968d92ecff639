//! One behavioural suite, two backends: every scenario here runs against the embedded default
//! (SQLite + embedded log, one process) and against PostgreSQL (at SERIALIZABLE) + a real
//! Kafka-protocol broker, so the two never drift.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{AUTHOR, TestStack};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    threaded_comments_reach_the_read_model,
    a_thousand_concurrent_comments_land_exactly_once_in_acceptance_order,
    concurrent_edits_from_one_version_let_exactly_one_win,
    bad_input_gets_a_stable_code_and_stores_nothing,
    comment_lifecycle_keeps_counts_right,
);

async fn threaded_comments_reach_the_read_model(stack: &TestStack) {
    let post = stack.published_post().await;
    let (status, first) = stack.comment(&post, "First!").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_id = first["comment_id"].as_str().expect("comment id");
    let (status, reply) = stack
        .post(
            &format!("/v1/posts/{post}/comments"),
            Some(AUTHOR),
            json!({ "body": "A reply", "parent_id": first_id }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, second) = stack.comment(&post, "Second").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    stack.wait_comments(3, Duration::from_secs(20)).await;

    let comments = stack.read(&format!("/v1/read/posts/{post}/comments")).await;
    let bodies: Vec<(&str, i64)> = comments
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["body"].as_str().expect("body"),
                c["depth"].as_i64().expect("depth"),
            )
        })
        .collect();
    // Thread order: the reply sits under its parent, before the later top-level comment.
    assert_eq!(bodies, vec![("First!", 0), ("A reply", 1), ("Second", 0)]);
    assert_eq!(comments[0]["reply_count"], 1);
    let post_view = stack.read(&format!("/v1/read/posts/{post}")).await;
    assert_eq!(post_view["comment_count"], 3);
    assert_eq!(post_view["status"], "published");
    assert_eq!(post_view["version"], second["version"]);
}

async fn a_thousand_concurrent_comments_land_exactly_once_in_acceptance_order(stack: &TestStack) {
    let mut posts = Vec::new();
    for _ in 0..50 {
        posts.push(stack.published_post().await);
    }
    let results: Vec<(String, StatusCode, Value)> = futures::stream::iter(0..1000)
        .map(|i| {
            let post = posts[i % posts.len()].clone();
            async move {
                let (status, body) = stack.comment(&post, &format!("comment {i}")).await;
                (post, status, body)
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    // Acceptance order per post is the stream version each acknowledgement carries.
    let accepted = common::acknowledged(&results);
    stack.wait_comments(1000, Duration::from_secs(120)).await;
    stack.assert_read_model_matches(&accepted).await;
    for post in &posts {
        let view = stack.read(&format!("/v1/read/posts/{post}")).await;
        assert_eq!(view["comment_count"], 20);
    }
}

async fn concurrent_edits_from_one_version_let_exactly_one_win(stack: &TestStack) {
    let post = stack.published_post().await;
    for round in 0..5 {
        let (_, current) = stack.comment(&post, "bump").await;
        let version = current["version"].as_i64().expect("version");
        let edit = |title: String| {
            let url = format!("{}/v1/posts/{post}", stack.command_url);
            let http = stack.http.clone();
            async move {
                let resp = http
                    .patch(url)
                    .header(
                        command_api::auth::CALLER_PROOF_HEADER,
                        common::caller_proof(Some(AUTHOR)),
                    )
                    .json(&json!({ "expected_version": version, "title": title }))
                    .send()
                    .await
                    .expect("reachable");
                let status = resp.status();
                (status, resp.json::<Value>().await.expect("json"))
            }
        };
        let (a, b) = tokio::join!(edit(format!("A{round}")), edit(format!("B{round}")));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}: {a:?} {b:?}"
        );
        let loser = if a.0 == StatusCode::CONFLICT {
            &a.1
        } else {
            &b.1
        };
        assert_eq!(loser["error"]["code"], "CONFLICT");
        assert_eq!(loser["error"]["reason"], "VERSION_CONFLICT");
    }
}

async fn bad_input_gets_a_stable_code_and_stores_nothing(stack: &TestStack) {
    let post = stack.published_post().await;
    let (_, draft) = stack
        .post(
            "/v1/posts",
            Some(AUTHOR),
            json!({ "title": "Draft", "slug": common::unique("draft").replace('_', "-") }),
        )
        .await;
    let draft = draft["post_id"].as_str().expect("draft id").to_owned();
    let events_before = stack.count("events").await;
    let outbox_and_events = stack.count("post_slugs").await;

    let url = |path: &str| format!("{}{path}", stack.command_url);
    let comments = url(&format!("/v1/posts/{post}/comments"));
    let raw = |target: String, body: Vec<u8>, content_type: Option<&'static str>| {
        let http = stack.http.clone();
        async move {
            let mut req = http
                .post(target)
                .header(
                    command_api::auth::CALLER_PROOF_HEADER,
                    common::caller_proof(Some(AUTHOR)),
                )
                .body(body);
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.expect("reachable");
            (
                resp.status(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let json_ct = Some("application/json");
    // (what, (status, body) received, status wanted, code wanted, reason wanted)
    type Case = (
        &'static str,
        (StatusCode, Value),
        StatusCode,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            raw(comments.clone(), b"{\"body\": ".to_vec(), json_ct).await,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "MALFORMED_JSON",
        ),
        (
            "empty body",
            raw(comments.clone(), Vec::new(), json_ct).await,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "MALFORMED_JSON",
        ),
        (
            "unknown field",
            raw(
                comments.clone(),
                br#"{"body":"hi","admin":true}"#.to_vec(),
                json_ct,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "INVALID_BODY",
        ),
        (
            "wrong type",
            raw(comments.clone(), br#"{"body":42}"#.to_vec(), json_ct).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "INVALID_BODY",
        ),
        (
            "invalid UTF-8",
            raw(
                comments.clone(),
                b"{\"body\":\"\xff\xfe\"}".to_vec(),
                json_ct,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "MALFORMED_JSON",
        ),
        (
            "1 MB body",
            oversized(&comments).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "PAYLOAD_TOO_LARGE",
        ),
        (
            "no content type",
            raw(comments.clone(), br#"{"body":"hi"}"#.to_vec(), None).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "invalid UUID",
            raw(
                url("/v1/posts/not-a-uuid/comments"),
                br#"{"body":"hi"}"#.to_vec(),
                json_ct,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "INVALID_ID",
        ),
        (
            "invalid parent UUID",
            raw(
                comments.clone(),
                br#"{"body":"hi","parent_id":"nope"}"#.to_vec(),
                json_ct,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "INVALID_BODY",
        ),
        (
            "parent from nowhere",
            raw(
                comments.clone(),
                format!(r#"{{"body":"hi","parent_id":"{}"}}"#, uuid::Uuid::now_v7()).into_bytes(),
                json_ct,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "PARENT_NOT_IN_POST",
        ),
        (
            "empty comment",
            raw(comments.clone(), br#"{"body":"   "}"#.to_vec(), json_ct).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "INVALID_FIELD",
        ),
        (
            "over-long title",
            raw(
                url("/v1/posts"),
                format!(r#"{{"title":"{}","slug":"long-title"}}"#, "t".repeat(201)).into_bytes(),
                json_ct,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "INVALID_FIELD",
        ),
        (
            "bad slug",
            raw(
                url("/v1/posts"),
                br#"{"title":"ok","slug":"Not A Slug"}"#.to_vec(),
                json_ct,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION",
            "INVALID_FIELD",
        ),
        (
            "comment on a missing post",
            raw(
                url(&format!("/v1/posts/{}/comments", uuid::Uuid::now_v7())),
                br#"{"body":"hi"}"#.to_vec(),
                json_ct,
            )
            .await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "POST_NOT_FOUND",
        ),
        (
            "comment on an unpublished post",
            raw(
                url(&format!("/v1/posts/{draft}/comments")),
                br#"{"body":"hi"}"#.to_vec(),
                json_ct,
            )
            .await,
            StatusCode::CONFLICT,
            "CONFLICT",
            "POST_NOT_PUBLISHED",
        ),
        (
            "post without an author",
            stack
                .post("/v1/posts", None, json!({"title":"x","slug":"anon"}))
                .await,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
        ),
        (
            "unknown route",
            raw(url("/v1/nothing"), b"{}".to_vec(), json_ct).await,
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "NO_SUCH_ROUTE",
        ),
    ];
    for (name, (status, body), want_status, want_code, want_reason) in cases {
        assert_eq!(status, want_status, "{name}: {body}");
        assert_eq!(body["error"]["code"], want_code, "{name}: {body}");
        assert_eq!(body["error"]["reason"], want_reason, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: no message"
        );
    }
    // A taken slug is a conflict, and does not leave the new post half-created.
    let (_, existing) = stack
        .post(
            "/v1/posts",
            Some(AUTHOR),
            json!({"title":"one","slug":"taken-slug"}),
        )
        .await;
    let (status, body) = stack
        .post(
            "/v1/posts",
            Some(AUTHOR),
            json!({"title":"two","slug":"taken-slug"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["reason"], "SLUG_TAKEN");
    assert!(existing["post_id"].is_string());

    assert_eq!(
        stack.count("events").await,
        events_before + 1,
        "only the first taken-slug post was stored"
    );
    assert_eq!(stack.count("post_slugs").await, outbox_and_events + 1);
}

async fn comment_lifecycle_keeps_counts_right(stack: &TestStack) {
    let post = stack.published_post().await;
    let mut ids = Vec::new();
    for body in ["one", "two", "three"] {
        let (status, c) = stack.comment(&post, body).await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        ids.push(c["comment_id"].as_str().expect("id").to_owned());
    }
    let (status, body) = stack
        .post(
            &format!("/v1/posts/{post}/comments/{}/hide", ids[0]),
            Some(AUTHOR),
            json!({ "reason": "spam" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp = stack
        .http
        .delete(format!(
            "{}/v1/posts/{post}/comments/{}",
            stack.command_url, ids[1]
        ))
        .header(
            command_api::auth::CALLER_PROOF_HEADER,
            common::caller_proof(Some(AUTHOR)),
        )
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = stack
        .http
        .patch(format!(
            "{}/v1/posts/{post}/comments/{}",
            stack.command_url, ids[1]
        ))
        .header(
            command_api::auth::CALLER_PROOF_HEADER,
            common::caller_proof(Some(AUTHOR)),
        )
        .json(&json!({ "body": "resurrect" }))
        .send()
        .await
        .expect("reachable");
    assert_eq!(
        resp.status(),
        StatusCode::CONFLICT,
        "no edit of a deleted comment"
    );
    let (status, last) = stack
        .post(
            &format!("/v1/posts/{post}/comments/{}/restore", ids[0]),
            Some(AUTHOR),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{last}");
    let want = last["version"].as_i64().expect("version");
    common::eventually(Duration::from_secs(20), || async {
        stack.read(&format!("/v1/read/posts/{post}")).await["version"].as_i64() == Some(want)
    })
    .await;
    let view = stack.read(&format!("/v1/read/posts/{post}")).await;
    assert_eq!(
        view["comment_count"], 2,
        "hidden then restored counts, deleted does not"
    );
    let comments = stack.read(&format!("/v1/read/posts/{post}/comments")).await;
    let statuses: BTreeSet<(String, String)> = comments
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().expect("id").to_owned(),
                c["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect();
    assert!(statuses.contains(&(ids[0].clone(), "visible".into())));
    assert!(statuses.contains(&(ids[1].clone(), "deleted".into())));
}

/// POSTs a 1 MB JSON body over a raw connection. The server answers 413 as soon as it sees the
/// Content-Length, before the upload ends, and closes the connection; an HTTP client library
/// may report the broken upload instead of the answer, so read the answer ourselves.
async fn oversized(url: &str) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(url).expect("url");
    let body = format!("{{\"body\":\"{}\"}}", "x".repeat(1 << 20));
    let proof = common::caller_proof(Some(AUTHOR));
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nx-inkwire-caller: {proof}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path(),
        url.authority(),
        body.len()
    );
    let stream =
        tokio::net::TcpStream::connect((url.host_str().expect("host"), url.port().expect("port")))
            .await
            .expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let upload = tokio::spawn(async move {
        // The server may stop reading part-way: a failed write is expected here.
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(body.as_bytes()).await;
    });
    let mut response = Vec::new();
    let _ = reader.read_to_end(&mut response).await;
    upload.abort();
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let json = text
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (StatusCode::from_u16(status).expect("status"), json)
}
