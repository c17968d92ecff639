//! A WordPress export (WXR) imported into Inkwire: 10,000 comments over ten posts, generated
//! here, arrive with their threads, tags, authors and dates; pingbacks and unapproved comments
//! stay out; a second run adds nothing; a broken file is refused by line with nothing written.

#[macro_use]
mod common;

use std::fmt::Write as _;
use std::time::Duration;

use common::TestStack;
use common::graphql::gql;
use serde_json::json;

on_both_backends!(a_wordpress_blog_with_ten_thousand_comments_moves_in);

const POSTS: usize = 10;
const COMMENTS: usize = 1000;

fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// A WXR file as WordPress 6 writes it: two authors, `POSTS` published posts with a tag and a
/// category, each with `COMMENTS` approved comments (every fourth a reply to the one before,
/// one by the blog's author), a pingback and an unapproved comment; and a page.
fn wxr(site: &str) -> String {
    let mut x = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel>
	<title>Old blog</title>
"#,
    );
    let _ = writeln!(
        x,
        "\t<link>{site}</link>\n\t<wp:wxr_version>1.2</wp:wxr_version>"
    );
    for (id, login, name) in [
        (1, "admin", "Ada Admin"),
        (2, "guest.writer", "Guest Writer"),
    ] {
        let _ = writeln!(
            x,
            "\t<wp:author><wp:author_id>{id}</wp:author_id><wp:author_login>{}</wp:author_login>\
             <wp:author_email>{login}@example.com</wp:author_email><wp:author_display_name>{}</wp:author_display_name></wp:author>",
            cdata(login),
            cdata(name)
        );
    }
    for p in 0..POSTS {
        let creator = if p == 0 { "guest.writer" } else { "admin" };
        let _ = write!(
            x,
            "\t<item>\n\t\t<title>Post {p} &amp; friends</title>\n\t\t<link>{site}/2019/01/post-{p}/</link>\n\
             \t\t<pubDate>Tue, 01 Jan 2019 10:00:00 +0000</pubDate>\n\t\t<dc:creator>{}</dc:creator>\n\
             \t\t<content:encoded>{}</content:encoded>\n\t\t<wp:post_id>{}</wp:post_id>\n\
             \t\t<wp:post_date_gmt>2019-01-{:02} 10:00:00</wp:post_date_gmt>\n\t\t<wp:post_name>post-{p}</wp:post_name>\n\
             \t\t<wp:status>publish</wp:status>\n\t\t<wp:post_type>post</wp:post_type>\n\
             \t\t<category domain=\"category\" nicename=\"news\">{}</category>\n\
             \t\t<category domain=\"post_tag\" nicename=\"imported\">{}</category>\n",
            cdata(creator),
            cdata(&format!("<p>Text of post {p}.</p>")),
            100 + p,
            p + 1,
            cdata("News"),
            cdata("Imported")
        );
        for c in 0..COMMENTS {
            let id = p * 10_000 + c + 1;
            let parent = if c % 4 == 3 { id - 1 } else { 0 };
            let user = if c == 10 { 1 } else { 0 };
            let _ = write!(
                x,
                "\t\t<wp:comment>\n\t\t\t<wp:comment_id>{id}</wp:comment_id>\n\t\t\t<wp:comment_author>{}</wp:comment_author>\n\
                 \t\t\t<wp:comment_date_gmt>2019-02-01 {:02}:{:02}:{:02}</wp:comment_date_gmt>\n\
                 \t\t\t<wp:comment_content>{}</wp:comment_content>\n\t\t\t<wp:comment_approved>1</wp:comment_approved>\n\
                 \t\t\t<wp:comment_type>comment</wp:comment_type>\n\t\t\t<wp:comment_parent>{parent}</wp:comment_parent>\n\
                 \t\t\t<wp:comment_user_id>{user}</wp:comment_user_id>\n\t\t</wp:comment>\n",
                cdata(&format!("Reader {}", c % 50)),
                c / 3600,
                c / 60 % 60,
                c % 60,
                cdata(&format!("Comment {c} on post {p}"))
            );
        }
        for (id, approved, kind) in [
            (p * 10_000 + 9001, "1", "pingback"),
            (p * 10_000 + 9002, "0", "comment"),
        ] {
            let _ = writeln!(
                x,
                "\t\t<wp:comment><wp:comment_id>{id}</wp:comment_id><wp:comment_author>spam</wp:comment_author>\
                 <wp:comment_date_gmt>2019-03-01 00:00:00</wp:comment_date_gmt><wp:comment_content>not shown</wp:comment_content>\
                 <wp:comment_approved>{approved}</wp:comment_approved><wp:comment_type>{kind}</wp:comment_type>\
                 <wp:comment_parent>0</wp:comment_parent><wp:comment_user_id>0</wp:comment_user_id></wp:comment>"
            );
        }
        x.push_str("\t</item>\n");
    }
    x.push_str(
        "\t<item><title>About</title><wp:post_id>999</wp:post_id><wp:post_date_gmt>2019-01-01 00:00:00</wp:post_date_gmt>\
         <wp:post_name>about</wp:post_name><wp:status>publish</wp:status><wp:post_type>page</wp:post_type></item>\n",
    );
    x.push_str("</channel>\n</rss>\n");
    x
}

async fn a_wordpress_blog_with_ten_thousand_comments_moves_in(stack: &TestStack) {
    let site = format!(
        "https://{}.example.com",
        common::unique("wp").replace('_', "-")
    );
    let file = wxr(&site);
    let hidden = indicatif::ProgressBar::hidden();
    let events_before = common::count(&stack.db, "events").await;

    // Broken files first: refused by line, nothing written.
    let cut = file
        .find("<wp:comment_date_gmt>2019-02-01 00:00:07")
        .expect("a comment");
    let line = file[..cut].matches('\n').count() + 1;
    let bad_date = file.replacen(
        "<wp:comment_date_gmt>2019-02-01 00:00:07",
        "<wp:comment_date_gmt>yesterday",
        1,
    );
    let err = inkwire::transfer::import_wxr(&stack.db, &bad_date, 500, &hidden)
        .await
        .expect_err("a bad date is refused");
    let wanted = format!("line {line}:");
    assert!(err.to_string().contains(&wanted), "{wanted} not in {err}");
    let truncated = &file[..file.len() / 2];
    let err = inkwire::transfer::import_wxr(&stack.db, truncated, 500, &hidden)
        .await
        .expect_err("a truncated file is refused");
    assert!(err.to_string().contains("line "), "{err}");
    assert_eq!(common::count(&stack.db, "events").await, events_before);

    // The whole blog: two authors (registered, author role), ten posts (drafted, published),
    // ten thousand comments; no page, pingback or unapproved comment.
    let started = std::time::Instant::now();
    let done = inkwire::transfer::import_wxr(&stack.db, &file, 2000, &hidden)
        .await
        .expect("import");
    let imported_in = started.elapsed();
    assert_eq!(done.written, (2 * 2 + POSTS * 2 + POSTS * COMMENTS) as u64);
    eprintln!(
        "wxr import: {} events in {:.2} s",
        done.written,
        imported_in.as_secs_f64()
    );
    // Again: nothing twice.
    let again = inkwire::transfer::import_wxr(&stack.db, &file, 2000, &hidden)
        .await
        .expect("again");
    assert_eq!((again.written, again.skipped), (0, done.written));

    // The read tables catch up through the relay and the projector, as for any write.
    let (http, url) = (&stack.http, &stack.graphql_url);
    let query = "{ posts(first: 20, tag: \"imported\") { edges { node { slug title tags commentCount author { displayName username } } } } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let posts = loop {
        let r = gql(http, url, None, query, json!({})).await;
        let edges = r["data"]["posts"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if edges.len() == POSTS
            && edges
                .iter()
                .all(|e| e["node"]["commentCount"] == COMMENTS as i64)
        {
            break edges;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not projected in time: {r}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let first = posts
        .iter()
        .find(|e| e["node"]["slug"] == "post-0")
        .expect("post-0")["node"]
        .clone();
    assert_eq!(first["title"], "Post 0 & friends");
    assert_eq!(first["tags"], json!(["news", "imported"]));
    assert_eq!(first["author"]["displayName"], "Guest Writer");
    assert_eq!(first["author"]["username"], "guest-writer");

    // Threads kept: every fourth comment answers the one before it.
    let r = gql(
        http,
        url,
        None,
        "{ post(slug: \"post-1\") { publishedAt comments(first: 12) { edges { node { id parentId depth authorName body createdAt } } } } }",
        json!({}),
    )
    .await;
    let post = &r["data"]["post"];
    assert_eq!(post["publishedAt"], "2019-01-02T10:00:00+00:00", "{r}");
    let c = post["comments"]["edges"].as_array().expect("comments");
    assert_eq!(c[0]["node"]["body"], "Comment 0 on post 1", "{r}");
    assert_eq!(
        c[0]["node"]["createdAt"], "2019-02-01T00:00:00+00:00",
        "{r}"
    );
    assert_eq!(c[3]["node"]["parentId"], c[2]["node"]["id"], "{r}");
    assert_eq!(c[3]["node"]["depth"], 1, "{r}");
    assert!(c[2]["node"]["parentId"].is_null(), "{r}");
    // The comment written signed in on WordPress is the imported account's.
    let signed = c
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["body"] == "Comment 10 on post 1")
        .expect("comment 10");
    assert_eq!(signed["authorName"], "Ada Admin", "{r}");
    assert!(!r.to_string().contains("not shown"), "{r}");
    assert_eq!(
        gql(
            http,
            url,
            None,
            "{ post(slug: \"about\") { id } }",
            json!({})
        )
        .await["data"]["post"],
        serde_json::Value::Null
    );
}
