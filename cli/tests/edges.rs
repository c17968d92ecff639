//! The edges where people and standard tools first touch Inkwire (docs/security.md): nobody can
//! act as someone else by naming them in a header, no page on another site can make a visitor's
//! browser write, credentials are read the way clients send them, and `/graphql` behaves as the
//! GraphQL-over-HTTP specification says, checked with its own audit suite (npm `graphql-http`)
//! and graphql-js's introspection query.

#[macro_use]
mod common;

use std::time::Duration;

use common::graphql::error_code;
use common::{AUTHOR, TestStack};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_user_id_in_a_header_acts_as_nobody,
    cross_site_bodies_are_refused_before_anything_runs,
);

/// Everything written so far: events of every stream, users' included.
async fn events(stack: &TestStack) -> i64 {
    stack.count("events").await
}

async fn a_user_id_in_a_header_acts_as_nobody(stack: &TestStack) {
    let before = events(stack).await;
    let forged = [
        ("x-inkwire-user-id", AUTHOR.to_owned()),
        ("x-inkwire-user-name", "Author".to_owned()),
        ("x-inkwire-client", "127.0.0.1".to_owned()),
    ];
    let post_body = json!({ "title": "Impersonated", "slug": common::unique("imp").replace('_', "-"), "body_markdown": "x" });
    // Through the public port: there is no command API on it.
    let public = stack.graphql_url.trim_end_matches("/graphql");
    let mut req = stack
        .http
        .post(format!("{public}/v1/posts"))
        .json(&post_body);
    for (name, value) in &forged {
        req = req.header(*name, value);
    }
    let resp = req.send().await.expect("gateway reachable");
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "the public port serves no command API"
    );
    // Straight at the internal command API: without the gateway's proof, 401 and nothing runs.
    let attempts: [(&str, Option<String>); 4] = [
        ("a bare header", None),
        (
            "a proof signed with another secret",
            Some(
                command_api::auth::TokenKeys::new(
                    b"someone else's secret, also long enough",
                    Duration::from_secs(60),
                )
                .callers()
                .sign(Some(AUTHOR.parse().expect("uuid")), None)
                .expect("sign"),
            ),
        ),
        (
            "the user's own access token as a proof",
            Some(common::token_for(AUTHOR)),
        ),
        ("garbage", Some("not.a.proof".to_owned())),
    ];
    for (what, proof) in attempts {
        for (path, body) in [
            ("/v1/posts".to_owned(), post_body.clone()),
            (
                "/v1/users".to_owned(),
                json!({ "username": common::unique("u"), "password": "long-enough-password" }),
            ),
        ] {
            let mut req = stack
                .http
                .post(format!("{}{path}", stack.command_url))
                .json(&body);
            for (name, value) in &forged {
                req = req.header(*name, value);
            }
            if let Some(proof) = &proof {
                req = req.header(command_api::auth::CALLER_PROOF_HEADER, proof);
            }
            let resp = req.send().await.expect("command API reachable");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} {path}: {body}");
            assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{what}: {body}");
        }
    }
    // Wait as long as a projection takes, then count: nothing was written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events(stack).await, before, "a forged caller wrote events");
    // The gateway's own path still works: the same post through GraphQL, as the author.
    let r = common::graphql::gql(
        &stack.http,
        &stack.graphql_url,
        Some(AUTHOR),
        "mutation { createPost(input: { title: \"Mine\", body: \"x\" }) { post { id } } }",
        json!({}),
    )
    .await;
    assert!(r["data"]["createPost"]["post"]["id"].is_string(), "{r}");
    assert_eq!(events(stack).await, before + 1);
}

async fn cross_site_bodies_are_refused_before_anything_runs(stack: &TestStack) {
    let before = events(stack).await;
    let register = json!({
        "query": "mutation($u: String!) { register(username: $u, password: \"long-enough-password\") { token } }",
        "variables": { "u": common::unique("csrf") },
    })
    .to_string();
    // What a form or `fetch(..., {mode: 'no-cors'})` on another site can send without a
    // preflight, and a body with no type at all.
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=----x"),
        None,
    ] {
        let mut req = stack
            .http
            .post(&stack.graphql_url)
            .header("origin", "http://evil.example")
            .body(register.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("gateway reachable");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {body}"
        );
        assert_eq!(error_code(&body), Some("UNSUPPORTED_MEDIA_TYPE"), "{body}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        events(stack).await,
        before,
        "a cross-site body registered a user"
    );
    // And no CORS grant to another origin: a browser would not let the page read the answer.
    let resp = stack
        .http
        .request(reqwest::Method::OPTIONS, &stack.graphql_url)
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("gateway reachable");
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "CORS granted to another origin"
    );
}

/// `/graphql` over HTTP as the spec says: media types, status codes, GET for queries only,
/// request errors without `data`, `Int` range checked at validation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_over_http_follows_the_spec() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let url = &stack.graphql_url;
    let http = &stack.http;
    let post = |body: Value, accept: &'static str| {
        http.post(url).header("accept", accept).json(&body).send()
    };
    let grj = "application/graphql-response+json";
    // A good query, in the media type asked for.
    let resp = post(json!({ "query": "{ __typename }" }), grj)
        .await
        .expect("reachable");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with(grj)
    );
    // Request errors: 400 and no `data` with the new media type; 200 with application/json.
    for (what, body) in [
        ("parse", json!({ "query": "{" })),
        ("validation", json!({ "query": "{ nope }" })),
        (
            "coercion",
            json!({ "query": "query($n: Int!) { posts(first: $n) { edges { cursor } } }", "variables": { "n": "x" } }),
        ),
        (
            "Int literal out of range",
            json!({ "query": "{ posts(first: 99999999999) { edges { cursor } } }" }),
        ),
        (
            "Int variable out of range",
            json!({ "query": "query($n: Int) { posts(first: $n) { edges { cursor } } }", "variables": { "n": 3_000_000_000_u64 } }),
        ),
        (
            "Int out of range inside an input object, through a fragment-free mutation",
            json!({ "query": "mutation($id: ID!) { editPost(id: $id, input: { expectedVersion: -3000000000 }) { post { id } } }", "variables": { "id": uuid::Uuid::now_v7().to_string() } }),
        ),
        (
            "Int out of range inside an input object variable",
            json!({ "query": "mutation($id: ID!, $i: EditPostInput!) { editPost(id: $id, input: $i) { post { id } } }", "variables": { "id": uuid::Uuid::now_v7().to_string(), "i": { "expectedVersion": 1_u64 << 40 } } }),
        ),
        (
            "Int out of range in a fragment",
            json!({ "query": "query { ...F } fragment F on Query { posts(first: 4294967296) { edges { cursor } } }" }),
        ),
    ] {
        let resp = post(body.clone(), grj).await.expect("reachable");
        let status = resp.status();
        let r: Value = resp.json().await.expect("json");
        assert_eq!(status, 400, "{what}: {r}");
        assert!(r.get("data").is_none(), "{what}: `data` present: {r}");
        let code = error_code(&r).unwrap_or_default();
        assert!(
            ["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"].contains(&code),
            "{what}: {r}"
        );
        let resp = post(body, "application/json").await.expect("reachable");
        assert_eq!(resp.status(), 200, "{what} as application/json");
    }
    // No query at all.
    let resp = post(json!({ "variables": {} }), grj)
        .await
        .expect("reachable");
    assert_eq!(resp.status(), 400);
    // A client that accepts neither media type.
    let resp = post(json!({ "query": "{ __typename }" }), "text/csv")
        .await
        .expect("reachable");
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    // GET runs queries, never mutations.
    let resp = http
        .get(url)
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.expect("json");
    assert_eq!(r["data"]["__typename"], "Query");
    let before = stack.count("events").await;
    let resp = http
        .get(url)
        .query(&[(
            "query",
            "mutation { register(username: \"viaget\", password: \"long-enough-password\") { token } }",
        )])
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
    assert_eq!(stack.count("events").await, before);
    // A browser's GET is GraphiQL, from this origin's files only.
    let resp = http
        .get(url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), 200);
    let policy = resp.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let page = resp.text().await.expect("html");
    assert!(page.contains("/graphiql/graphiql.min.js"), "{page}");
    assert!(
        !page.contains("//unpkg") && !page.contains("cdn"),
        "a CDN: {page}"
    );
    assert!(policy.contains("script-src 'self'"), "{policy}");
    // A GET with neither a query nor a browser.
    let resp = http.get(url).send().await.expect("reachable");
    assert_eq!(resp.status(), 400);
    stack.stop().await;
}

/// graphql-http's audit suite (the spec's own) and graphql-js's introspection query, run with
/// their npm packages against the gateway: every MUST and SHOULD passes, and the schema loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_http_audit_suite_and_standard_introspection_pass() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let script = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo"))
        .join("tests/js/audit.mjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&stack.graphql_url)
        .output()
        .await
        .expect("node runs (scripts/test-deps.sh installs graphql-http)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "audit failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("ok introspection"), "{report}");
    // The depth limit still stops deep queries on data.
    let deep = format!(
        "{{ comment(id: \"{}\") {{ {}id{} }} }}",
        uuid::Uuid::now_v7(),
        "parent { ".repeat(20),
        " }".repeat(20)
    );
    let r = common::graphql::gql(&stack.http, &stack.graphql_url, None, &deep, json!({})).await;
    assert_eq!(error_code(&r), Some("QUERY_TOO_DEEP"), "{r}");
    stack.stop().await;
}

/// The production switch turns off both ways of reading the schema: introspection and the
/// "did you mean" suggestions in validation errors.
#[tokio::test]
async fn without_introspection_errors_suggest_no_field_names() {
    let registry = prometheus::Registry::new();
    let config = query_gateway::GatewayConfig {
        introspection: false,
        ..query_gateway::GatewayConfig::new(common::keys())
    };
    let schema = query_gateway::build_schema(
        None,
        &config,
        query_gateway::metrics::Metrics::new(&registry),
    );
    for query in [
        "{ __schema { types { name } } }",
        "{ __type(name: \"Post\") { name } }",
    ] {
        let r = schema.execute(query).await;
        assert_eq!(r.data.to_string(), "null", "introspection answered: {r:?}");
        assert!(
            r.errors[0].message.contains("introspection is turned off"),
            "{r:?}"
        );
    }
    let r = schema.execute("{ __typename }").await;
    assert!(r.errors.is_empty(), "__typename is no introspection: {r:?}");
    let r = schema.execute("{ post { titl } }").await;
    let message = &r.errors[0].message;
    assert!(!message.contains("Did you mean"), "{message}");
    let on = query_gateway::build_schema(
        None,
        &query_gateway::GatewayConfig::new(common::keys()),
        query_gateway::metrics::Metrics::new(&prometheus::Registry::new()),
    );
    let r = on.execute("{ post { titl } }").await;
    assert!(
        r.errors[0].message.contains("Did you mean"),
        "{:?}",
        r.errors
    );
}
