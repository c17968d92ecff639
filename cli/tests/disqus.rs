//! A Disqus comment export imported onto the Inkwire posts its threads were: matched by the
//! slug at the end of the thread's URL, with replies kept, deleted and spam comments left out,
//! unmatched threads reported, nothing added twice, and a broken file refused by line.

#[macro_use]
mod common;

use common::TestStack;
use common::graphql::gql;
use serde_json::json;

on_both_backends!(disqus_comments_land_on_the_posts_their_threads_were);

fn export(slug: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <category dsq:id="1"><forum>oldblog</forum><title>General</title><isDefault>true</isDefault></category>
  <thread dsq:id="100">
    <id>42</id><forum>oldblog</forum><category dsq:id="1"/>
    <link>https://old.example.com/posts/{slug}/?utm_source=x</link>
    <title>The post</title><createdAt>2018-05-01T10:00:00Z</createdAt>
    <author><name>Owner</name><isAnonymous>false</isAnonymous><username>owner</username></author>
    <isClosed>false</isClosed><isDeleted>false</isDeleted>
  </thread>
  <thread dsq:id="200">
    <id/><forum>oldblog</forum><category dsq:id="1"/>
    <link>https://old.example.com/posts/gone-long-ago/</link><title>Gone</title>
    <createdAt>2018-05-01T10:00:00Z</createdAt><isClosed>false</isClosed><isDeleted>false</isDeleted>
  </thread>
  <post dsq:id="1001">
    <id/><message><![CDATA[<p>First &amp; best</p>]]></message>
    <createdAt>2018-05-02T10:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>
    <author><name>Bob</name><isAnonymous>false</isAnonymous><username>bob</username></author>
    <thread dsq:id="100"/>
  </post>
  <post dsq:id="1002">
    <id/><message><![CDATA[<p>Agreed, Bob</p>]]></message>
    <createdAt>2018-05-03T10:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>
    <author><name>Carol</name><isAnonymous>true</isAnonymous></author>
    <thread dsq:id="100"/><parent dsq:id="1001"/>
  </post>
  <post dsq:id="1003">
    <id/><message><![CDATA[cheap pills]]></message>
    <createdAt>2018-05-04T10:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>true</isSpam>
    <author><name>Spammer</name></author><thread dsq:id="100"/>
  </post>
  <post dsq:id="1004">
    <id/><message><![CDATA[taken back]]></message>
    <createdAt>2018-05-05T10:00:00Z</createdAt><isDeleted>true</isDeleted><isSpam>false</isSpam>
    <author><name>Dave</name></author><thread dsq:id="100"/>
  </post>
  <post dsq:id="2001">
    <id/><message><![CDATA[on a page that is gone]]></message>
    <createdAt>2018-05-02T10:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>
    <author><name>Erin</name></author><thread dsq:id="200"/>
  </post>
</disqus>
"#
    )
}

async fn disqus_comments_land_on_the_posts_their_threads_were(stack: &TestStack) {
    let (http, url) = (&stack.http, &stack.graphql_url);
    let post = common::graphql::published_post(http, url).await;
    let (own, _) = common::graphql::add_comment(http, url, &post, "written here", true).await;
    let r = gql(
        http,
        url,
        None,
        "query($id: ID) { post(id: $id) { slug } }",
        json!({ "id": post }),
    )
    .await;
    let slug = r["data"]["post"]["slug"].as_str().expect("slug").to_owned();
    let file = export(&slug);
    assert!(inkwire::disqus::is_disqus(&file));
    assert!(!inkwire::disqus::is_disqus(
        "<?xml version=\"1.0\"?><rss><channel/></rss>"
    ));
    let hidden = indicatif::ProgressBar::hidden();
    let before = common::count(&stack.db, "events").await;

    // A broken file: refused by line, nothing written.
    let broken = file.replacen(
        "</thread>\n  <thread dsq:id=\"200\">",
        "</thred>\n  <thread dsq:id=\"200\">",
        1,
    );
    let err = inkwire::transfer::import_disqus(&stack.db, &broken, 100, &hidden)
        .await
        .expect_err("broken XML is refused");
    assert!(err.to_string().contains("line 10:"), "{err}");
    assert_eq!(common::count(&stack.db, "events").await, before);

    let (done, unmatched) = inkwire::transfer::import_disqus(&stack.db, &file, 100, &hidden)
        .await
        .expect("import");
    assert_eq!(
        done.written, 2,
        "Bob's and Carol's; not spam, not deleted, not the gone page's"
    );
    assert_eq!(
        unmatched,
        vec!["https://old.example.com/posts/gone-long-ago/".to_owned()]
    );
    let (again, _) = inkwire::transfer::import_disqus(&stack.db, &file, 100, &hidden)
        .await
        .expect("again");
    assert_eq!(again.written, 0);

    // On the post after what was written here, with their dates, names and thread.
    let query = "query($id: ID!) { comments(postId: $id, first: 10) { edges { node { id parentId authorName body createdAt } } } }";
    let mut edges = Vec::new();
    for _ in 0..100 {
        let r = gql(http, url, None, query, json!({ "id": post })).await;
        edges = r["data"]["comments"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if edges.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let nodes: Vec<_> = edges.iter().map(|e| e["node"].clone()).collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(nodes[0]["id"], own.as_str());
    assert_eq!(
        (
            &nodes[1]["authorName"],
            &nodes[1]["body"],
            &nodes[1]["createdAt"]
        ),
        (
            &json!("Bob"),
            &json!("First & best"),
            &json!("2018-05-02T10:00:00+00:00")
        )
    );
    assert_eq!(nodes[2]["authorName"], "Carol");
    assert_eq!(nodes[2]["parentId"], nodes[1]["id"]);
}
