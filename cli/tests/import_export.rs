//! `inkwire export` and `inkwire import`: a blog exported and imported into an empty Inkwire is
//! the same blog through GraphQL (posts, comments, users, reactions, notifications), its people
//! can sign in when the credentials went along, a second run adds nothing, and a damaged file
//! is refused by line number with nothing written.

#[macro_use]
mod common;

use std::time::Duration;

use common::graphql::{comment_as, gql};
use common::{AUTHOR, Backend, TestStack};
use infra::db::Db;
use serde_json::{Value, json};

on_both_backends!(an_exported_blog_imported_elsewhere_is_the_same_blog);

const RITA: &str = "01890000-0000-7000-8000-0000000000c1";

const BLOG: &str = "{ posts(first: 20) { edges { node { id slug title html tags status publishedAt \
    author { id username displayName } commentCount reactions { kind count } \
    comments(first: 50) { edges { node { id parentId body html authorName authorId status createdAt \
    replyCount reactions { kind count } } } } } } } }";
const MINE: &str = "{ viewer { id username displayName roles } drafts(first: 10) { id title } \
    notifications(first: 10) { unreadCount edges { node { id kind read } } } }";

async fn seed(stack: &TestStack) {
    common::add_user(&stack.db, RITA, "rita-x", "rita-password", &["reader"]).await;
    let (http, url) = (&stack.http, &stack.graphql_url);
    // `user add` writes through the outbox: compare once the original shows her too.
    common::eventually(Duration::from_secs(15), || async {
        gql(http, url, Some(RITA), "{ viewer { username } }", json!({})).await["data"]["viewer"]
            ["username"]
            == "rita-x"
    })
    .await;
    let post = common::graphql::published_post(http, url).await;
    let draft = gql(
        http,
        url,
        Some(AUTHOR),
        "mutation { createPost(input: { title: \"Not yet\", body: \"*soon*\", tags: [\"later\"] }) { post { id } } }",
        json!({}),
    )
    .await;
    assert!(draft["errors"].is_null(), "{draft}");
    let first = comment_as(http, url, AUTHOR, &post, None, "Welcome, **all**").await;
    let reply = comment_as(http, url, RITA, &post, Some(&first), "Thanks!").await;
    let spam = comment_as(http, url, RITA, &post, None, "buy things").await;
    for (user, q, vars) in [
        (
            AUTHOR,
            "mutation($id: ID!) { hideComment(id: $id, reason: \"spam\", waitForProjection: true) { comment { id } } }",
            json!({ "id": spam }),
        ),
        (
            RITA,
            "mutation($p: ID) { addReaction(kind: LIKE, postId: $p) { changed } }",
            json!({ "p": post }),
        ),
        (
            AUTHOR,
            "mutation($c: ID) { addReaction(kind: HEART, commentId: $c) { reactions { count } } }",
            json!({ "c": reply }),
        ),
    ] {
        let r = gql(http, url, Some(user), q, vars).await;
        assert!(r["errors"].is_null(), "{r}");
    }
}

/// What the blog shows: to everyone, to its author and to Rita.
async fn shown(stack: &TestStack) -> Value {
    let (http, url) = (&stack.http, &stack.graphql_url);
    json!({
        "public": gql(http, url, None, BLOG, json!({})).await,
        "author": gql(http, url, Some(AUTHOR), MINE, json!({})).await,
        "rita": gql(http, url, Some(RITA), MINE, json!({})).await,
    })
}

async fn events(db: &Db) -> i64 {
    common::count(db, "events").await
}

async fn an_exported_blog_imported_elsewhere_is_the_same_blog(stack: &TestStack) {
    seed(stack).await;
    let before = shown(stack).await;
    assert_eq!(
        before["public"]["data"]["posts"]["edges"][0]["node"]["commentCount"], 2,
        "{before}"
    );

    let mut file = Vec::new();
    let written = inkwire::transfer::export(&stack.db, &mut file, true)
        .await
        .expect("export");
    assert_eq!(written as i64, events(&stack.db).await);
    let text = String::from_utf8(file.clone()).expect("utf-8");
    assert!(
        text.lines()
            .next()
            .unwrap_or("")
            .contains("\"inkwire-export\"")
    );
    // Password hashes only when asked for.
    let mut plain = Vec::new();
    inkwire::transfer::export(&stack.db, &mut plain, false)
        .await
        .expect("export");
    assert!(!String::from_utf8_lossy(&plain).contains("$argon2"));
    assert!(text.contains("$argon2"));

    // For people leaving: one markdown file per post, with front matter.
    let md = common::TempDir::new();
    let n = inkwire::transfer::export_markdown(&stack.db, &md.0)
        .await
        .expect("markdown");
    assert_eq!(n, 2);
    let slug = before["public"]["data"]["posts"]["edges"][0]["node"]["slug"]
        .as_str()
        .expect("slug");
    let page = std::fs::read_to_string(md.0.join(format!("{slug}.md"))).expect("post file");
    assert!(
        page.starts_with("---\ntitle: \"Live post\"\n") && page.ends_with("---\n\nHello\n"),
        "{page}"
    );
    assert!(
        page.contains("\nstatus: published\n") && page.contains("\ndate: "),
        "{page}"
    );

    // Into an empty Inkwire of the same kind.
    let hidden = indicatif::ProgressBar::hidden();
    let (target, target_url, target_db) = match stack.backend {
        Backend::Embedded => {
            let dir = common::TempDir::new();
            let db = Db::open_data_dir(&dir.0).await.expect("sqlite");
            (Some(dir), None, db)
        }
        Backend::Distributed => {
            let url = common::fresh_database().await;
            let db = Db::connect(&url, 4).await.expect("db");
            (None, Some(url), db)
        }
    };
    // A damaged file first: refused by line, nothing written.
    let mut damaged: Vec<&str> = text.lines().collect();
    damaged[4] = "{\"event_type\": \"comment.added\"";
    let err = inkwire::transfer::import(&target_db, damaged.join("\n").as_bytes(), 100, &hidden)
        .await
        .expect_err("a damaged file is refused");
    assert!(err.to_string().contains("line 5:"), "{err}");
    assert_eq!(
        events(&target_db).await,
        0,
        "a refused file wrote something"
    );

    let done = inkwire::transfer::import(&target_db, file.as_slice(), 7, &hidden)
        .await
        .expect("import");
    assert_eq!(done.written as i64, written as i64);
    // Again: nothing twice.
    let again = inkwire::transfer::import(&target_db, file.as_slice(), 7, &hidden)
        .await
        .expect("import again");
    assert_eq!((again.written, again.skipped), (0, written));
    assert_eq!(events(&target_db).await, written as i64);

    drop(target_db);
    let copy = match (target, target_url) {
        (Some(dir), _) => TestStack::embedded_in(dir).await,
        (None, Some(url)) => {
            TestStack::distributed_on(&url, &common::unique("posts"), &common::brokers(), true)
                .await
        }
        (None, None) => unreachable!("a target was made above"),
    };
    // The copy projects what it imported: then it shows exactly what the original does.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let after = shown(&copy).await;
        if after == before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the imported blog differs:\nbefore: {before}\nafter:  {after}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // With the credentials, Rita signs in on the copy with her own password.
    let r = gql(
        &copy.http,
        &copy.graphql_url,
        None,
        "mutation { login(username: \"rita-x\", password: \"rita-password\") { token } }",
        json!({}),
    )
    .await;
    assert!(r["data"]["login"]["token"].is_string(), "{r}");
    copy.stop().await;
}
