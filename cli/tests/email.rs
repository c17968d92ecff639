//! Notification email, against a real SMTP server (aiosmtpd, started here, writing what it
//! receives to a maildir): an address is confirmed by the link sent to it before anything else
//! goes there; replies arrive by email with a link to the comment; at most one email per window,
//! with what came in between gathered into the next; what the reader already read on the site is
//! not sent; the one-click unsubscribe (RFC 8058) stops it all; bad links and addresses are
//! refused with stable codes.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::graphql::{comment_as, error_code, gql};
use common::smtp::Sink;
use common::{Backend, TestStack};
use serde_json::{Value, json};

const RITA: &str = "01890000-0000-7000-8000-0000000000e1";
const SAM: &str = "01890000-0000-7000-8000-0000000000e2";
const WINDOW: Duration = Duration::from_secs(3);
const SITE: &str = "http://blog.test";

const SETTINGS: &str = "{ emailNotifications { email verified enabled available } }";
const UPDATE: &str = "mutation($email: String, $enabled: Boolean!) { updateEmailNotifications(email: $email, enabled: $enabled) { email verified enabled available } }";
const CONFIRM: &str = "mutation($token: String!) { confirmEmail(token: $token) }";
const MARK: &str = "mutation { markNotificationsRead { unreadCount } }";

/// The token of the link to `page` in `body`.
fn token(body: &str, page: &str) -> String {
    let start = format!("{SITE}/{page}?token=");
    let at = body
        .find(&start)
        .unwrap_or_else(|| panic!("no {start} link in {body}"));
    body[at + start.len()..]
        .split(|c: char| c.is_whitespace() || c == '>')
        .next()
        .expect("token")
        .to_owned()
}

async fn as_user(stack: &TestStack, user: Option<&str>, query: &str, variables: Value) -> Value {
    gql(&stack.http, &stack.graphql_url, user, query, variables).await
}

async fn settings(stack: &TestStack) -> Value {
    let r = as_user(stack, Some(RITA), SETTINGS, json!({})).await;
    assert!(r["errors"].is_null(), "{r}");
    r["data"]["emailNotifications"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    let mut sink = Sink::start();
    let stack = TestStack::boot_with_mail(Backend::Embedded, sink.config(SITE, WINDOW)).await;
    replies_arrive_by_email_once_per_window(&stack, &mut sink).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_kafka() {
    let mut sink = Sink::start();
    let stack = TestStack::boot_with_mail(Backend::Distributed, sink.config(SITE, WINDOW)).await;
    replies_arrive_by_email_once_per_window(&stack, &mut sink).await;
    stack.stop().await;
}

async fn replies_arrive_by_email_once_per_window(stack: &TestStack, sink: &mut Sink) {
    common::add_user(&stack.db, RITA, "rita-mail", "rita-password", &["reader"]).await;
    common::add_user(&stack.db, SAM, "sam-mail", "sam-password", &["reader"]).await;
    let post = common::graphql::published_post(&stack.http, &stack.graphql_url).await;
    let r = as_user(
        stack,
        None,
        "query($id: ID!) { post(id: $id) { slug } }",
        json!({ "id": post }),
    )
    .await;
    let slug = r["data"]["post"]["slug"].as_str().expect("slug").to_owned();
    let reply = |parent: String, body: &'static str| {
        let post = post.clone();
        async move {
            comment_as(
                &stack.http,
                &stack.graphql_url,
                SAM,
                &post,
                Some(&parent),
                body,
            )
            .await
        }
    };

    // Nothing is set; signed out is refused; a bad address is refused by field.
    assert_eq!(
        settings(stack).await,
        json!({ "email": null, "verified": false, "enabled": false, "available": true })
    );
    let r = as_user(stack, None, SETTINGS, json!({})).await;
    assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{r}");
    for bad in [
        "rita",
        "rita@localhost",
        "rita@example.org\r\nBcc: eve@example.org",
    ] {
        let r = as_user(
            stack,
            Some(RITA),
            UPDATE,
            json!({ "email": bad, "enabled": true }),
        )
        .await;
        assert_eq!(error_code(&r), Some("VALIDATION"), "{bad}: {r}");
        assert_eq!(r["errors"][0]["extensions"]["field"], "email", "{r}");
    }

    // Rita gives her address: it is unconfirmed, and a confirmation link goes to it.
    let r = as_user(
        stack,
        Some(RITA),
        UPDATE,
        json!({ "email": "rita@example.org", "enabled": true }),
    )
    .await;
    assert_eq!(
        r["data"]["updateEmailNotifications"],
        json!({ "email": "rita@example.org", "verified": false, "enabled": true, "available": true }),
        "{r}"
    );
    let confirm = sink.next(Duration::from_secs(10)).await;
    assert!(confirm.to.contains("rita@example.org"), "{confirm:?}");
    assert_eq!(confirm.subject, "Confirm your email address");
    assert!(confirm.list_unsubscribe.is_none(), "{confirm:?}");

    // Until she follows it, a reply reaches her on the site but not by email.
    let rita = comment_as(
        &stack.http,
        &stack.graphql_url,
        RITA,
        &post,
        None,
        "Rita's first",
    )
    .await;
    let first = reply(rita.clone(), "Sam answers, before the address is confirmed").await;
    sink.nothing_for(WINDOW + Duration::from_secs(1)).await;

    // A forged or mangled link is refused; the real one works signed out, and again.
    let link = token(&confirm.body, "confirm-email");
    let r = as_user(stack, None, CONFIRM, json!({ "token": format!("{link}x") })).await;
    assert_eq!(error_code(&r), Some("VALIDATION"), "{r}");
    assert_eq!(
        r["errors"][0]["extensions"]["reason"], "INVALID_LINK",
        "{r}"
    );
    for _ in 0..2 {
        let r = as_user(stack, None, CONFIRM, json!({ "token": link })).await;
        assert_eq!(r["data"]["confirmEmail"], true, "{r}");
    }
    assert_eq!(settings(stack).await["verified"], true);

    // The reply that came since she turned email on arrives now, with a link to it.
    let mail = sink.next(Duration::from_secs(10)).await;
    assert_eq!(
        mail.subject, "sam-mail replied to your comment on “Live post”",
        "{mail:?}"
    );
    assert!(
        mail.body
            .contains("> Sam answers, before the address is confirmed"),
        "{}",
        mail.body
    );
    assert!(
        mail.body
            .contains(&format!("{SITE}/posts/{slug}#comment-{first}")),
        "{}",
        mail.body
    );
    // A mail client's one-click unsubscribe (RFC 8058) is offered.
    let unsubscribe = token(
        mail.list_unsubscribe.as_deref().expect("List-Unsubscribe"),
        "unsubscribe/one-click",
    );
    assert_eq!(
        mail.one_click.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(token(&mail.body, "unsubscribe"), unsubscribe);
    let sent_at = Instant::now();

    // Two replies inside the window: no email until it has passed, then one with both.
    let second = reply(rita.clone(), "Sam's second").await;
    let third = reply(rita.clone(), "Sam's third").await;
    let mail = sink.next(Duration::from_secs(10)).await;
    assert!(
        sent_at.elapsed() >= WINDOW - Duration::from_millis(300),
        "an email {:?} after the last one; the window is {WINDOW:?}",
        sent_at.elapsed()
    );
    assert_eq!(
        mail.subject, "2 new replies and comments for you",
        "{mail:?}"
    );
    for (id, text) in [(&second, "> Sam's second"), (&third, "> Sam's third")] {
        assert!(mail.body.contains(text), "{}", mail.body);
        assert!(
            mail.body.contains(&format!("#comment-{id}")),
            "{}",
            mail.body
        );
    }
    assert!(
        !mail.body.contains("before the address"),
        "sent twice: {}",
        mail.body
    );

    // What she reads on the site before the window passes is not emailed.
    reply(rita.clone(), "Sam's fourth, read on the site").await;
    let r = as_user(stack, Some(RITA), MARK, json!({})).await;
    assert_eq!(r["data"]["markNotificationsRead"]["unreadCount"], 0, "{r}");
    sink.nothing_for(WINDOW + Duration::from_secs(1)).await;

    // One click from the mail client: no more email, and the settings say so.
    let http = &stack.http;
    let base = stack.graphql_url.trim_end_matches("/graphql");
    let bad = http
        .post(format!("{base}/unsubscribe/one-click?token=nonsense"))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["reason"], "INVALID_LINK", "{body}");
    for _ in 0..2 {
        let done = http
            .post(format!("{base}/unsubscribe/one-click?token={unsubscribe}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("post");
        assert_eq!(done.status(), 200);
    }
    assert_eq!(
        settings(stack).await,
        json!({ "email": "rita@example.org", "verified": true, "enabled": false, "available": true })
    );
    reply(rita.clone(), "Sam after the unsubscribe").await;
    sink.nothing_for(WINDOW + Duration::from_secs(1)).await;

    // Forgetting the address removes it.
    let r = as_user(
        stack,
        Some(RITA),
        UPDATE,
        json!({ "email": null, "enabled": false }),
    )
    .await;
    assert_eq!(
        r["data"]["updateEmailNotifications"]["email"],
        Value::Null,
        "{r}"
    );
}
