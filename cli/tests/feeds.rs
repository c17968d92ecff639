//! Atom feeds on both backends, read the way a feed reader reads them: parsed as Atom, polled
//! with `If-None-Match`, and refused with a stable code when the path is not a tag; and the
//! sitemap and robots.txt search engines read.

#[macro_use]
mod common;

use std::time::Duration;

use atom_syndication::Feed;
use common::graphql::{error_code, gql};
use common::{AUTHOR, TestStack};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(an_atom_feed_follows_what_readers_can_see,);

async fn q(stack: &TestStack, query: &str, variables: Value) -> Value {
    let r = gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        query,
        variables,
    )
    .await;
    assert_eq!(error_code(&r), None, "{r}");
    r["data"].clone()
}

/// Creates and publishes a post tagged `tag`; returns (id, slug).
async fn publish(stack: &TestStack, title: &str, body: &str, tag: &str) -> (String, String) {
    let slug = common::unique("feed").replace('_', "-");
    let d = q(
        stack,
        "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
        json!({ "input": { "title": title, "body": body, "slug": slug, "tags": [tag, "feeds"] } }),
    )
    .await;
    let id = d["createPost"]["post"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    q(
        stack,
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { id } } }",
        json!({ "id": id }),
    )
    .await;
    // Posts are ordered by their publication instant.
    tokio::time::sleep(Duration::from_millis(5)).await;
    (id, slug)
}

/// GETs `path` of the gateway with an optional `If-None-Match`.
async fn get(stack: &TestStack, path: &str, etag: Option<&str>) -> reqwest::Response {
    let base = stack.graphql_url.trim_end_matches("/graphql");
    let mut request = stack.http.get(format!("{base}{path}"));
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    request.send().await.expect("gateway answers")
}

/// The feed at `path`, parsed, with its `ETag`.
async fn feed(stack: &TestStack, path: &str) -> (Feed, String) {
    let r = get(stack, path, None).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    assert_eq!(
        r.headers()["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    let text = r.text().await.expect("body");
    let feed: Feed = text.parse().unwrap_or_else(|e| panic!("{e}: {text}"));
    (feed, etag)
}

fn titles(feed: &Feed) -> Vec<&str> {
    feed.entries
        .iter()
        .map(|e| e.title.value.as_str())
        .collect()
}

async fn an_atom_feed_follows_what_readers_can_see(stack: &TestStack) {
    let tag = format!("f-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let hostile = r#"Tom & "Jerry" <script>alert(1)</script>"#;
    let (first, first_slug) = publish(
        stack,
        hostile,
        "See [the other post](/posts/elsewhere).\n\n<script>alert(2)</script>",
        &tag,
    )
    .await;
    let (_second, _) = publish(stack, "Second", "Two", &tag).await;
    let (third, _) = publish(stack, "Third, unpublished again", "Three", &tag).await;
    q(
        stack,
        "mutation($id: ID!) { unpublishPost(id: $id, waitForProjection: true) { post { id } } }",
        json!({ "id": third }),
    )
    .await;
    q(
        stack,
        "mutation($input: CreatePostInput!) { createPost(input: $input, waitForProjection: true) { post { id } } }",
        json!({ "input": { "title": "A draft", "body": "Not yet", "tags": [tag] } }),
    )
    .await;
    // The first post's page shows it as the API does.
    let page = q(
        stack,
        "query($id: ID) { post(id: $id) { html } viewer { displayName } }",
        json!({ "id": first }),
    )
    .await;

    // The tag's feed: published posts only, newest first, titles as written (markup in a
    // title is text, not markup), the body's sanitised HTML, absolute links to the pages.
    let (tagged, etag) = feed(stack, &format!("/tags/{tag}/feed.xml")).await;
    assert_eq!(titles(&tagged), ["Second", hostile]);
    let base = stack.graphql_url.trim_end_matches("/graphql");
    assert_eq!(tagged.id, format!("{base}/tags/{tag}/feed.xml"));
    let entry = &tagged.entries[1];
    assert_eq!(entry.id, format!("urn:uuid:{first}"));
    assert_eq!(entry.links[0].href, format!("{base}/posts/{first_slug}"));
    let content = entry.content.as_ref().expect("content");
    assert_eq!(content.value.as_deref(), page["post"]["html"].as_str());
    assert!(
        !content
            .value
            .as_deref()
            .unwrap_or_default()
            .contains("<script")
    );
    assert_eq!(content.base.as_deref(), Some(entry.links[0].href.as_str()));
    assert_eq!(
        entry.authors[0].name,
        page["viewer"]["displayName"].as_str().expect("name")
    );
    assert!(
        entry.categories.iter().any(|c| c.term == tag),
        "{:?}",
        entry.categories
    );
    assert!(entry.published.is_some());
    assert_eq!(tagged.updated, tagged.entries[0].updated);

    // The whole blog's feed has them too; tags are matched as stored (case, spaces).
    let (all, _) = feed(stack, "/feed.xml").await;
    assert_eq!(titles(&all), ["Second", hostile]);
    let (shouted, _) = feed(stack, &format!("/tags/{}/feed.xml", tag.to_uppercase())).await;
    assert_eq!(titles(&shouted), ["Second", hostile]);
    let (none, _) = feed(stack, "/tags/no-such-tag/feed.xml").await;
    assert!(none.entries.is_empty());

    // Search engines find the same pages: the sitemap lists the published posts and their tags'
    // pages, robots.txt says where it is.
    let r = get(stack, "/sitemap.xml", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let sitemap = r.text().await.expect("sitemap");
    assert!(
        sitemap.contains(&format!("<loc>{base}/posts/{first_slug}</loc><lastmod>")),
        "{sitemap}"
    );
    assert!(
        sitemap.contains(&format!("<loc>{base}/tags/{tag}</loc>")),
        "{sitemap}"
    );
    assert_eq!(
        sitemap.matches("<url>").count(),
        1 + 2 + 2,
        "home, two posts, two tags: {sitemap}"
    );
    let robots = get(stack, "/robots.txt", None)
        .await
        .text()
        .await
        .expect("robots");
    assert!(
        robots.contains(&format!("Sitemap: {base}/sitemap.xml")),
        "{robots}"
    );
    assert!(robots.contains("Disallow: /write"), "{robots}");

    // Feeds and the sitemap travel compressed to a client that accepts it, and decompress to
    // the same document.
    for path in ["/feed.xml", "/sitemap.xml"] {
        let plain = get(stack, path, None).await.bytes().await.expect("body");
        let r = stack
            .http
            .get(format!(
                "{}{path}",
                stack.graphql_url.trim_end_matches("/graphql")
            ))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("gateway reachable");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
        let gz = r.bytes().await.expect("body");
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped)
            .expect("gzip");
        assert_eq!(unzipped, plain, "{path}");
        assert!(gz.len() < plain.len(), "{path} not smaller");
    }

    // A reader polling with the ETag it holds gets 304 and no body, until something in the
    // feed changes: an edit, or a post published again.
    let r = get(stack, &format!("/tags/{tag}/feed.xml"), Some(&etag)).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.expect("body").is_empty());
    q(
        stack,
        "mutation($id: ID!) { editPost(id: $id, input: { body: \"Edited *now*\" }, waitForProjection: true) { post { id } } }",
        json!({ "id": first }),
    )
    .await;
    let r = get(stack, &format!("/tags/{tag}/feed.xml"), Some(&etag)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (edited, new_etag) = feed(stack, &format!("/tags/{tag}/feed.xml")).await;
    assert_ne!(new_etag, etag);
    let body = edited.entries[1]
        .content
        .as_ref()
        .and_then(|c| c.value.clone());
    assert!(body.unwrap_or_default().contains("<em>now</em>"));
    // The edit is the entry's update, and the feed's; the other entry is as it was.
    let revised = &edited.entries[1];
    assert!(Some(revised.updated) > revised.published, "{revised:?}");
    assert_eq!(edited.updated, revised.updated);
    assert_eq!(edited.entries[0].updated, tagged.entries[0].updated);
    q(
        stack,
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { id } } }",
        json!({ "id": third }),
    )
    .await;
    let (again, _) = feed(stack, &format!("/tags/{tag}/feed.xml")).await;
    assert_eq!(
        titles(&again),
        ["Third, unpublished again", "Second", hostile]
    );

    // A path that cannot name a tag is refused with a stable code.
    for bad in ["%3Cscript%3E", "a%2Fb", &"x".repeat(33)] {
        let r = get(stack, &format!("/tags/{bad}/feed.xml"), None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = r.json().await.expect("json error");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{body}");
        assert_eq!(body["error"]["reason"], "INVALID_TAG", "{body}");
    }

    // Operators see what readers asked.
    for (result, at_least) in [("ok", 7.0), ("not_modified", 1.0), ("error", 3.0)] {
        let name = format!("inkwire_gateway_feed_requests_total{{result=\"{result}\"}}");
        let n = common::metric(&stack.http, base, &name)
            .await
            .unwrap_or_else(|| panic!("no {name} in /metrics"));
        assert!(n >= at_least, "{result}: {n}");
    }
}
