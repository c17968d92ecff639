//! Hostile content, table-driven, through the public API: every case is either stored and shown
//! as harmless text/markup, or refused with VALIDATION; none ever comes back as live HTML.

mod common;

use common::graphql::{error_code, gql};
use common::{AUTHOR, TestStack};
use serde_json::json;

/// Whether `html` holds active content (see `render::find_active_content`).
fn live_html(html: &str) -> Option<String> {
    render::find_active_content(html)
}

enum Expect {
    Stored,
    Refused(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_is_stored_harmlessly_or_refused() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let url = &stack.graphql_url;
    let r = gql(
        &stack.http,
        url,
        Some(AUTHOR),
        "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } } }",
        json!({ "i": { "title": "Hostile", "body": "x", "allowAnonymousComments": true } }),
    )
    .await;
    let post = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    gql(
        &stack.http,
        url,
        Some(AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { position } }",
        json!({ "id": post }),
    )
    .await;

    let big = "a".repeat(100 * 1024);
    let cases: Vec<(&str, String, Expect)> = vec![
        (
            "script tag",
            "<script>alert(1)</script> hi".into(),
            Expect::Stored,
        ),
        (
            "javascript: link",
            "[click](javascript:alert(1))".into(),
            Expect::Stored,
        ),
        (
            "javascript: autolink",
            "<javascript:alert(1)>".into(),
            Expect::Stored,
        ),
        (
            "event handler",
            "<img src=x onerror=alert(1)>".into(),
            Expect::Stored,
        ),
        (
            "svg payload",
            "<svg onload=alert(1)><script>alert(2)</script></svg>".into(),
            Expect::Stored,
        ),
        (
            "iframe",
            "<iframe src=\"https://evil.example\"></iframe>".into(),
            Expect::Stored,
        ),
        (
            "data url",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)".into(),
            Expect::Stored,
        ),
        (
            "sql injection",
            "'; DROP TABLE rm_comments; -- \" OR 1=1".into(),
            Expect::Stored,
        ),
        (
            "zero-width joiner (emoji)",
            "family: \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}".into(),
            Expect::Stored,
        ),
        (
            "rtl override",
            "invoice \u{202E}fdp.exe".into(),
            Expect::Refused("body"),
        ),
        (
            "control character",
            "bell \u{0007} here".into(),
            Expect::Refused("body"),
        ),
        ("100 KB body", big.clone(), Expect::Refused("body")),
    ];
    let add = "mutation($i: AddCommentInput!) { addComment(input: $i, waitForProjection: true) { comment { id body html } } }";
    for (what, body, expect) in &cases {
        let r = gql(
            &stack.http,
            url,
            Some(AUTHOR),
            add,
            json!({ "i": { "postId": post, "body": body } }),
        )
        .await;
        match expect {
            Expect::Stored => {
                let c = &r["data"]["addComment"]["comment"];
                let html = c["html"].as_str().unwrap_or_else(|| panic!("{what}: {r}"));
                assert_eq!(live_html(html), None, "{what}: live HTML in {html}");
                // Stored as written (NFC), and readable back through a query.
                let id = c["id"].as_str().expect("id");
                let back = gql(
                    &stack.http,
                    url,
                    None,
                    "query($id: ID!) { comment(id: $id) { body html } }",
                    json!({ "id": id }),
                )
                .await;
                assert_eq!(back["data"]["comment"]["body"], body.trim(), "{what}");
                assert_eq!(
                    live_html(back["data"]["comment"]["html"].as_str().expect("html")),
                    None,
                    "{what}"
                );
            }
            Expect::Refused(field) => {
                assert_eq!(error_code(&r), Some("VALIDATION"), "{what}: {r}");
                assert_eq!(r["errors"][0]["extensions"]["field"], *field, "{what}: {r}");
            }
        }
    }
    // The table survived the injection attempt.
    assert!(stack.count("rm_comments").await >= 9);

    // Names: invisible and bidi characters are refused in anonymous names and display names.
    let anon = "mutation($i: AddCommentInput!) { addComment(input: $i) { comment { id } } }";
    for name in ["Ad\u{200B}min", "admin\u{202E}", "bell\u{0007}"] {
        let r = gql(
            &stack.http,
            url,
            None,
            anon,
            json!({ "i": { "postId": post, "body": "hi", "authorName": name } }),
        )
        .await;
        assert_eq!(error_code(&r), Some("VALIDATION"), "{name:?}: {r}");
    }
    let r = gql(&stack.http, url, None, "mutation($i: RegisterInput!) { register(input: $i) { token } }", json!({ "i": { "username": "spoofer", "password": "long enough", "displayName": "Ad\u{200B}min" } })).await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");

    // Posts allow formatting HTML, never active content; a 100 KB body is fine.
    let hostile_post = format!(
        "# Title\n\n<script>alert(1)</script>\n\n<a href=\"javascript:alert(1)\" onclick=\"x()\">link</a>\n\n<img src=\"a.png\" onerror=\"alert(1)\">\n\n<svg><circle/></svg>\n\n{big}"
    );
    let r = gql(&stack.http, url, Some(AUTHOR), "mutation($i: CreatePostInput!) { createPost(input: $i, waitForProjection: true) { post { html body } } }", json!({ "i": { "title": "Formatted", "body": hostile_post } })).await;
    let html = r["data"]["createPost"]["post"]["html"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(
        live_html(html),
        None,
        "post HTML: {}",
        &html[..html.len().min(400)]
    );
    assert!(
        html.contains("<h1>Title</h1>") && html.contains("<img src=\"a.png\">"),
        "formatting kept"
    );
    assert_eq!(
        r["data"]["createPost"]["post"]["body"]
            .as_str()
            .map(str::len),
        Some(hostile_post.len())
    );
    stack.stop().await;
}
