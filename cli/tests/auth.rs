//! Users, tokens and roles through the public API: who may do what is decided by the command
//! service with the roles it holds; the gateway only authenticates.

#[macro_use]
mod common;

use std::time::Duration;

use common::graphql::{WsClient, WsEvent, comment_event, error_code};
use common::{TEST_SECRET, TestStack};
use serde_json::{Value, json};

on_both_backends!(roles_decide_who_may_do_what);

const AUTHOR_ID: &str = "01890000-0000-7000-8000-0000000000a1";
const MODERATOR_ID: &str = "01890000-0000-7000-8000-0000000000a2";
const ADMIN_ID: &str = "01890000-0000-7000-8000-0000000000a3";

/// POSTs a GraphQL request with a raw `Authorization` value (or none).
async fn call(
    stack: &TestStack,
    auth: Option<&str>,
    client: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut req = stack
        .http
        .post(&stack.graphql_url)
        .header("x-forwarded-for", client)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let resp = req.send().await.expect("gateway reachable");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn as_token(stack: &TestStack, token: &str, query: &str, variables: Value) -> Value {
    call(
        stack,
        Some(&format!("Bearer {token}")),
        "10.0.0.9",
        query,
        variables,
    )
    .await
    .1
}

const LOGIN: &str = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { id username displayName roles } } }";

async fn login(stack: &TestStack, username: &str, password: &str, client: &str) -> Value {
    call(
        stack,
        None,
        client,
        LOGIN,
        json!({ "u": username, "p": password }),
    )
    .await
    .1
}

async fn token(stack: &TestStack, username: &str, password: &str) -> String {
    let r = login(stack, username, password, "10.0.0.9").await;
    r["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

async fn roles_decide_who_may_do_what(stack: &TestStack) {
    common::add_user(
        &stack.db,
        AUTHOR_ID,
        "writer",
        "writer-password",
        &["author"],
    )
    .await;
    common::add_user(
        &stack.db,
        MODERATOR_ID,
        "mod",
        "mod-password",
        &["moderator"],
    )
    .await;
    common::add_user(&stack.db, ADMIN_ID, "root", "root-password", &["admin"]).await;
    // Users added this way reach the read model through the outbox, on partitions of their own:
    // wait for them, as a post's `waitForProjection` covers only the post's own stream.
    let users = stack.count("user_streams").await;
    common::eventually(std::time::Duration::from_secs(20), || async {
        stack.count("rm_users").await >= users
    })
    .await;
    let author = token(stack, "writer", "writer-password").await;
    let moderator = token(stack, "mod", "mod-password").await;
    let admin = token(stack, "root", "root-password").await;

    // A reader signs up and is signed in at once.
    let reader_name = format!("reader{}", &uuid::Uuid::now_v7().simple().to_string()[24..]);
    let r = call(stack, None, "10.0.0.9", "mutation($i: RegisterInput!) { register(input: $i) { token user { id username displayName roles } } }", json!({ "i": { "username": reader_name, "password": "reader-password", "displayName": "Rita Reader" } })).await.1;
    let reader = r["data"]["register"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let reader_id = r["data"]["register"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(r["data"]["register"]["user"]["roles"], json!(["reader"]));
    let r = as_token(
        stack,
        &reader,
        "{ viewer { username displayName roles } }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["viewer"]["displayName"], "Rita Reader", "{r}");
    let r = call(stack, None, "10.0.0.9", "{ viewer { id } }", json!({}))
        .await
        .1;
    assert_eq!(r["data"]["viewer"], Value::Null, "signed out: no viewer");
    // The same username again is taken.
    let r = call(
        stack,
        None,
        "10.0.0.9",
        "mutation($i: RegisterInput!) { register(input: $i) { token } }",
        json!({ "i": { "username": reader_name, "password": "another-password" } }),
    )
    .await
    .1;
    assert_eq!(error_code(&r), Some("CONFLICT"), "{r}");

    // Readers do not write posts; the author does.
    let create = "mutation($i: CreatePostInput!) { createPost(input: $i, waitForProjection: true) { post { id author { username roles } } } }";
    let r = as_token(
        stack,
        &reader,
        create,
        json!({ "i": { "title": "Mine", "body": "x" } }),
    )
    .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = as_token(
        stack,
        &author,
        create,
        json!({ "i": { "title": "Authored", "body": "Hello" } }),
    )
    .await;
    let post = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    assert_eq!(
        r["data"]["createPost"]["post"]["author"]["username"], "writer",
        "{r}"
    );
    as_token(
        stack,
        &author,
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { position } }",
        json!({ "id": post }),
    )
    .await;

    // The reader comments, and may not edit the post or hide the comment.
    let r = as_token(stack, &reader, "mutation($i: AddCommentInput!) { addComment(input: $i, waitForProjection: true) { comment { id author { username } authorName } } }", json!({ "i": { "postId": post, "body": "Nice post" } })).await;
    let comment = r["data"]["addComment"]["comment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    assert_eq!(
        r["data"]["addComment"]["comment"]["author"]["username"],
        reader_name.as_str(),
        "{r}"
    );
    assert_eq!(
        r["data"]["addComment"]["comment"]["authorName"], "Rita Reader",
        "{r}"
    );
    let events_before = stack.count("events").await;
    let r = as_token(
        stack,
        &reader,
        "mutation($id: ID!) { editPost(id: $id, input: { title: \"Hijacked\" }) { position } }",
        json!({ "id": post }),
    )
    .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = as_token(
        stack,
        &reader,
        "mutation($id: ID!) { hideComment(id: $id, reason: \"mine\") { position } }",
        json!({ "id": comment }),
    )
    .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    let r = as_token(
        stack,
        &reader,
        "mutation($u: ID!) { grantRole(userId: $u, role: \"admin\") { roles } }",
        json!({ "u": reader_id }),
    )
    .await;
    assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
    assert_eq!(
        stack.count("events").await,
        events_before,
        "refusals write nothing"
    );

    // A moderator hides it with a reason: subscribers get HIDDEN and queries no longer show it.
    let mut ws = WsClient::connect(&stack.graphql_url.replacen("http", "ws", 1))
        .await
        .expect("the WebSocket connects");
    ws.subscribe("h", &post, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = as_token(stack, &moderator, "mutation($id: ID!) { hideComment(id: $id, reason: \"spam\", waitForProjection: true) { comment { status } } }", json!({ "id": comment })).await;
    assert_eq!(
        r["data"]["hideComment"]["comment"]["status"], "HIDDEN",
        "{r}"
    );
    match ws.next(Duration::from_secs(10)).await {
        Some(WsEvent::Next(_, payload)) => {
            let (kind, id, _) = comment_event(&payload);
            assert_eq!((kind.as_str(), id.as_str()), ("HIDDEN", comment.as_str()));
        }
        other => panic!("expected HIDDEN, got {other:?}"),
    }
    let r = as_token(stack, &reader, "query($p: ID!) { comments(postId: $p) { edges { node { id } } } post(id: $p) { commentCount } }", json!({ "p": post })).await;
    assert_eq!(r["data"]["comments"]["edges"], json!([]), "{r}");
    assert_eq!(r["data"]["post"]["commentCount"], 0, "{r}");
    let reason: Option<String> = {
        use sqlx::Row;
        infra::with_db!(&stack.db, |pool| sqlx::query(
            "SELECT hidden_reason FROM rm_comments WHERE id = $1"
        )
        .bind(comment.parse::<uuid::Uuid>().expect("uuid"))
        .fetch_one(pool)
        .await
        .expect("row")
        .try_get(0)
        .expect("reason"))
    };
    assert_eq!(reason.as_deref(), Some("spam"), "the reason is kept");

    // An admin makes the reader an author; the command side sees it at once.
    let r = as_token(
        stack,
        &admin,
        "mutation($u: ID!) { grantRole(userId: $u, role: \"author\") { roles } }",
        json!({ "u": reader_id }),
    )
    .await;
    assert!(
        r["data"]["grantRole"]["roles"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .contains(&json!("author"))
    );
    let r = as_token(
        stack,
        &reader,
        create,
        json!({ "i": { "title": "My first post", "body": "x" } }),
    )
    .await;
    assert!(r["data"]["createPost"]["post"]["id"].is_string(), "{r}");
}

fn forge(claims: &Value, secret: &[u8], alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_over_http_and_websocket() {
    use base64::Engine;
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let good = common::token_for(common::AUTHOR);
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({ "sub": common::AUTHOR, "username": "author", "name": "A", "roles": [], "iss": "inkwire", "iat": now - 7200, "exp": exp });
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = good.split('.').collect();
    let payload = String::from_utf8(b64.decode(parts[1]).expect("b64"))
        .expect("utf8")
        .replace("\"Tester\"", "\"Mallory\"");
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(payload), parts[2]);
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let bad = [
        (
            "expired",
            format!(
                "Bearer {}",
                forge(
                    &claims(now - 3600),
                    TEST_SECRET.as_bytes(),
                    jsonwebtoken::Algorithm::HS256
                )
            ),
        ),
        ("tampered", format!("Bearer {tampered}")),
        (
            "another key",
            format!(
                "Bearer {}",
                forge(
                    &claims(now + 3600),
                    b"someone else's secret, also long enough",
                    jsonwebtoken::Algorithm::HS256
                )
            ),
        ),
        ("alg none", format!("Bearer {none}")),
        ("garbage", "Bearer not.a.token".to_owned()),
        ("not bearer", format!("Basic {good}")),
        ("two words", "Bearer a b".to_owned()),
    ];
    let create = "mutation { createPost(input: { title: \"T\", body: \"b\" }) { post { id } } }";
    for (what, auth) in &bad {
        let (status, r) = call(&stack, Some(auth), "10.0.0.9", create, json!({})).await;
        let message = r["errors"][0]["message"].as_str().unwrap_or_default();
        // A header that is no bearer token at all says so; a token that is not ours, or
        // expired, is UNAUTHENTICATED with its own words.
        let (want_status, want_code, words) = match *what {
            "not bearer" | "two words" => (400, "BAD_REQUEST", "must be `Bearer"),
            "expired" => (401, "UNAUTHENTICATED", "expired"),
            _ => (401, "UNAUTHENTICATED", "invalid access token"),
        };
        assert_eq!(
            (status, error_code(&r)),
            (want_status, Some(want_code)),
            "{what}: {r}"
        );
        assert!(message.contains(words), "{what}: {message}");
        // Over WebSocket: in connection_init, the connection is refused with 4403 Forbidden, as
        // graphql-transport-ws says.
        let ws_url = stack.graphql_url.replacen("http", "ws", 1);
        match WsClient::connect_with(&ws_url, json!({ "authorization": auth })).await {
            Err(closed) => assert!(
                closed.contains("4403") || closed.contains("Library(4403)"),
                "{what}: {closed}"
            ),
            Ok(_) => panic!("{what}: WebSocket accepted"),
        }
    }
    // No token, or an empty one (some clients send `Bearer ` before sign-in), is anonymous:
    // public reads and sign-in work, writes that need an account say so.
    for empty in ["Bearer ", "Bearer", ""] {
        let (status, r) = call(
            &stack,
            Some(empty),
            "10.0.0.9",
            "{ posts(first: 1) { edges { cursor } } }",
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{empty:?}: {r}");
        assert!(r["errors"].is_null(), "{empty:?}: {r}");
        let (status, r) = call(
            &stack,
            Some(empty),
            "10.0.0.10",
            "mutation { login(username: \"author\", password: \"author-password\") { token } }",
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "{empty:?}: {r}");
        assert!(r["data"]["login"]["token"].is_string(), "{empty:?}: {r}");
        let ws_url = stack.graphql_url.replacen("http", "ws", 1);
        assert!(
            WsClient::connect_with(&ws_url, json!({ "authorization": empty }))
                .await
                .is_ok(),
            "{empty:?} over WebSocket"
        );
    }
    let (_, r) = call(&stack, None, "10.0.0.9", create, json!({})).await;
    assert_eq!(
        error_code(&r),
        Some("UNAUTHENTICATED"),
        "missing token: {r}"
    );
    let (status, r) = call(
        &stack,
        Some(&format!("Bearer {good}")),
        "10.0.0.9",
        create,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        r["data"]["createPost"]["post"]["id"].is_string(),
        "the good token works: {r}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_passwords_are_throttled_and_the_right_one_still_works() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    common::add_user(
        &stack.db,
        AUTHOR_ID,
        "target",
        "the-right-password",
        &["author"],
    )
    .await;
    let mut throttled = 0;
    let mut wrong = 0;
    for i in 0..1000 {
        let r = login(&stack, "target", &format!("guess-{i}"), "10.0.0.66").await;
        match error_code(&r) {
            Some("RATE_LIMITED") => throttled += 1,
            Some("UNAUTHENTICATED") => wrong += 1,
            other => panic!("attempt {i}: {other:?} {r}"),
        }
    }
    assert!(
        throttled >= 990,
        "only {throttled} of 1000 throttled ({wrong} checked)"
    );
    // Same message for an unknown user as for a wrong password.
    let unknown = login(&stack, "nobody-here", "whatever-password", "10.0.0.67").await;
    let known = login(&stack, "target", "wrong-password", "10.0.0.67").await;
    assert_eq!(
        unknown["errors"][0]["message"],
        known["errors"][0]["message"]
    );
    assert_eq!(error_code(&unknown), Some("UNAUTHENTICATED"));
    // The owner, from their own address, still gets in.
    let r = login(&stack, "target", "the-right-password", "10.0.0.7").await;
    assert!(r["data"]["login"]["token"].is_string(), "{r}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_mutations_are_rate_limited_per_client_and_signed_in_users_are_not_slowed() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    let r = common::graphql::gql(
        &stack.http,
        &stack.graphql_url,
        Some(common::AUTHOR),
        "mutation($i: CreatePostInput!) { createPost(input: $i) { post { id } } }",
        json!({ "i": { "title": "Open", "body": "x", "allowAnonymousComments": true } }),
    )
    .await;
    let post = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    common::graphql::gql(
        &stack.http,
        &stack.graphql_url,
        Some(common::AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { position } }",
        json!({ "id": post }),
    )
    .await;
    let anon = "mutation($i: AddCommentInput!) { addComment(input: $i) { comment { id } } }";
    let mut accepted = 0;
    let mut limited = 0;
    for i in 0..25 {
        let (_, r) = call(&stack, None, "10.0.0.50", anon, json!({ "i": { "postId": post, "body": format!("drive-by {i}"), "authorName": "Anon" } })).await;
        match error_code(&r) {
            None => accepted += 1,
            Some("RATE_LIMITED") => limited += 1,
            other => panic!("{other:?}: {r}"),
        }
    }
    assert!(
        (5..=12).contains(&accepted),
        "a burst of about 10 is allowed, then refused: {accepted} accepted"
    );
    assert_eq!(accepted + limited, 25);
    // Another address, and a signed-in author from the same address, are not affected.
    let (_, r) = call(
        &stack,
        None,
        "10.0.0.51",
        anon,
        json!({ "i": { "postId": post, "body": "hello", "authorName": "Other" } }),
    )
    .await;
    assert_eq!(error_code(&r), None, "{r}");
    let token = common::token_for(common::AUTHOR);
    let (_, r) = call(
        &stack,
        Some(&format!("Bearer {token}")),
        "10.0.0.50",
        anon,
        json!({ "i": { "postId": post, "body": "signed in" } }),
    )
    .await;
    assert_eq!(error_code(&r), None, "{r}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_change_their_name_and_password_refresh_tokens_and_can_be_disabled() {
    let stack = TestStack::boot(common::Backend::Embedded).await;
    common::add_user(&stack.db, ADMIN_ID, "root", "root-password", &["admin"]).await;
    common::add_user(
        &stack.db,
        AUTHOR_ID,
        "writer",
        "writer-password",
        &["author"],
    )
    .await;
    let admin = token(&stack, "root", "root-password").await;
    let writer = token(&stack, "writer", "writer-password").await;

    let r = as_token(
        &stack,
        &writer,
        "mutation { changeDisplayName(displayName: \"W. Riter\") }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["changeDisplayName"], true, "{r}");
    let r = as_token(&stack, &writer, "mutation { changePassword(currentPassword: \"wrong-password\", newPassword: \"a-new-password\") }", json!({})).await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    let r = as_token(&stack, &writer, "mutation { changePassword(currentPassword: \"writer-password\", newPassword: \"a-new-password\") }", json!({})).await;
    assert_eq!(r["data"]["changePassword"], true, "{r}");
    assert_eq!(
        error_code(&login(&stack, "writer", "writer-password", "10.0.0.20").await),
        Some("UNAUTHENTICATED")
    );
    let r = login(&stack, "writer", "a-new-password", "10.0.0.21").await;
    assert_eq!(r["data"]["login"]["user"]["displayName"], "W. Riter", "{r}");

    // A refreshed token carries current facts and works.
    let r = as_token(
        &stack,
        &writer,
        "mutation { refreshToken { token user { displayName roles } } }",
        json!({}),
    )
    .await;
    let refreshed = r["data"]["refreshToken"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    assert_eq!(r["data"]["refreshToken"]["user"]["displayName"], "W. Riter");
    let create =
        "mutation { createPost(input: { title: \"Still here\", body: \"x\" }) { post { id } } }";
    assert!(
        as_token(&stack, &refreshed, create, json!({})).await["data"]["createPost"]["post"]["id"]
            .is_string()
    );

    // Disabled: no more changes with any of its tokens, no sign-in, no refresh.
    let r = as_token(
        &stack,
        &writer,
        "mutation { disableUser(userId: \"01890000-0000-7000-8000-0000000000a3\") }",
        json!({}),
    )
    .await;
    assert_eq!(
        error_code(&r),
        Some("FORBIDDEN"),
        "only admins disable: {r}"
    );
    let r = as_token(
        &stack,
        &admin,
        &format!("mutation {{ disableUser(userId: \"{AUTHOR_ID}\") }}"),
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["disableUser"], true, "{r}");
    assert_eq!(
        error_code(&as_token(&stack, &refreshed, create, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        error_code(
            &as_token(
                &stack,
                &refreshed,
                "mutation { refreshToken { token } }",
                json!({})
            )
            .await
        ),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        error_code(&login(&stack, "writer", "a-new-password", "10.0.0.22").await),
        Some("UNAUTHENTICATED")
    );
    stack.stop().await;
}
