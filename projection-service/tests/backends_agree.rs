//! One log, two backends: the embedded backend writes comments through SQLite's own handle
//! (not sqlx's driver), so the same events projected on SQLite and on PostgreSQL must still
//! give the same read model, value for value: ids, authors (signed in or anonymous), paths,
//! times, bodies and their HTML, replies, edits and hidden comments, across batches larger
//! than one lock of the SQLite connection.

use events::{
    CommentAdded, CommentEdited, CommentHidden, CommentId, Envelope, PostDrafted, PostEdited,
    PostEvent, PostId, PostPublished, UserId,
};
use infra::db::Db;
use infra::log::LogRecord;
use projection_service::projections::apply_batch;
use uuid::Uuid;

/// A post with `comments` top-level comments of every kind of body and author, a reply, an
/// edit and a hidden comment in the middle of them.
fn post_history(comments: i64) -> Vec<Envelope> {
    let post = PostId::new();
    let author = UserId::new();
    let mut out = vec![
        testkit::envelope(
            post,
            1,
            PostEvent::PostDrafted(PostDrafted {
                author_id: author,
                title: "Backends".into(),
                slug: format!("backends-{}", Uuid::now_v7()),
                body_markdown: "*both*".into(),
                tags: vec!["sqlite".into(), "postgres".into()],
                allow_anonymous_comments: true,
            }),
        ),
        testkit::envelope(post, 2, PostEvent::PostPublished(PostPublished {})),
    ];
    let bodies = [
        "plain words",
        "**bold** and a [link](https://example.com)",
        "<script>alert(1)</script> stays text",
        "two\n\nparagraphs",
        "unicode: héllo 世界 🎉",
        "1. a list",
    ];
    // Each event takes the stream's next version.
    let push = |out: &mut Vec<Envelope>, event: PostEvent| {
        let version = i64::try_from(out.len()).expect("version") + 1;
        out.push(testkit::envelope(post, version, event));
    };
    let mut ids = Vec::new();
    for i in 0..comments {
        let id = CommentId::new();
        ids.push(id);
        let index = usize::try_from(i).expect("index");
        push(
            &mut out,
            PostEvent::CommentAdded(CommentAdded {
                comment_id: id,
                parent_id: None,
                author_id: (i % 3 != 0).then_some(author),
                author_name: format!("reader {i}"),
                body: format!("{} #{i}", bodies[index % bodies.len()]),
            }),
        );
        if i == comments / 2 {
            push(
                &mut out,
                PostEvent::CommentAdded(CommentAdded {
                    comment_id: CommentId::new(),
                    parent_id: Some(ids[3]),
                    author_id: Some(author),
                    author_name: "author".into(),
                    body: "a reply".into(),
                }),
            );
            push(
                &mut out,
                PostEvent::CommentEdited(CommentEdited {
                    comment_id: ids[5],
                    body: "edited _later_".into(),
                }),
            );
            push(
                &mut out,
                PostEvent::CommentHidden(CommentHidden {
                    comment_id: ids[7],
                    reason: "spam".into(),
                }),
            );
            // Reactions: to a comment (one given and kept, one given and taken back) and to
            // the post.
            for (comment, kind, added) in [
                (Some(ids[5]), "like", true),
                (Some(ids[5]), "heart", true),
                (Some(ids[5]), "heart", false),
                (None, "tada", true),
            ] {
                let reaction = events::Reaction {
                    comment_id: comment,
                    user_id: author,
                    kind: kind.into(),
                };
                push(
                    &mut out,
                    if added {
                        PostEvent::ReactionAdded(reaction)
                    } else {
                        PostEvent::ReactionRemoved(reaction)
                    },
                );
            }
            // The author edits the post mid-thread (a new revision), then only its comment
            // policy (no revision).
            push(
                &mut out,
                PostEvent::PostEdited(PostEdited {
                    title: Some("Backends, revised".into()),
                    body_markdown: Some("*both*, **again**".into()),
                    tags: Some(vec!["sqlite".into()]),
                    ..PostEdited::default()
                }),
            );
            push(
                &mut out,
                PostEvent::PostEdited(PostEdited {
                    allow_anonymous_comments: Some(false),
                    ..PostEdited::default()
                }),
            );
        }
    }
    out
}

#[tokio::test]
async fn sqlite_and_postgres_project_the_same_read_model() {
    let mut history = post_history(1_300);
    history.extend(post_history(40));
    let records: Vec<LogRecord> = history
        .iter()
        .enumerate()
        .map(|(offset, e)| testkit::log_record(i64::try_from(offset).expect("offset"), e))
        .collect();

    let dir = testkit::TempDir::new();
    let sqlite = Db::open_data_dir(&dir.0).await.expect("sqlite");
    let postgres = Db::connect(&testkit::fresh_database().await, 4)
        .await
        .expect("postgres");
    for db in [&sqlite, &postgres] {
        db.migrate().await.expect("migrations");
        // Two batches, the first ending in the middle of the first post's comments.
        let (first, second) = records.split_at(900);
        let a = apply_batch(db, "g", first).await.expect("batch");
        let b = apply_batch(db, "g", second).await.expect("batch");
        assert_eq!(
            a.applied + b.applied,
            u64::try_from(records.len()).expect("count")
        );
    }
    let (on_sqlite, on_postgres) = (
        testkit::read_model_dump(&sqlite).await,
        testkit::read_model_dump(&postgres).await,
    );
    let only_sqlite: Vec<_> = on_sqlite
        .iter()
        .filter(|l| !on_postgres.contains(l))
        .collect();
    let only_postgres: Vec<_> = on_postgres
        .iter()
        .filter(|l| !on_sqlite.contains(l))
        .collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only on SQLite: {only_sqlite:#?}\nonly on PostgreSQL: {only_postgres:#?}"
    );
    // Two posts; 1,340 top-level comments and a reply in each post; two revisions of each; two
    // standing reactions in each; a notification to the post's author of each anonymous comment
    // (every third: 434 + 14), none of the author's own.
    assert_eq!(on_sqlite.len(), 2 + 1_340 + 2 + 4 + 4 + 448);
    assert_eq!(on_sqlite, on_postgres);
}

/// The fields of a comment row a reader sees, times to the microsecond (PostgreSQL's precision).
fn comment_facts(c: &read_model::CommentRow) -> String {
    format!(
        "{} {:?} {} {} {:?} {} {:?} {:?} {} {:?} {} {} {} {} {}",
        c.id,
        c.parent_id,
        c.depth,
        c.path,
        c.author_id,
        c.author_name,
        c.body,
        c.body_html,
        c.status,
        c.hidden_reason,
        c.reply_count,
        c.post_version,
        c.changed_version,
        c.last_change,
        c.created_at.timestamp_micros(),
    )
}

fn post_facts(p: &read_model::PostRow) -> String {
    format!(
        "{} {} {} {} {:?} {:?} {} {} {} {} {:?}",
        p.id,
        p.author_id,
        p.title,
        p.slug,
        p.body_html,
        p.tags.0,
        p.status,
        p.comment_count,
        p.version,
        p.allow_anonymous_comments,
        p.published_at.map(|t| t.timestamp_micros()),
    )
}

/// The projector writes SQL and the gateway folds events in memory (`read_model::fold`) to
/// answer before the projector catches up: both must give the same rows, on both backends.
#[tokio::test]
async fn the_projector_writes_what_the_fold_computes() {
    let mut history = post_history(600);
    history.extend(post_history(20));
    // A duplicate delivery changes nothing, in either.
    history.push(history[5].clone());
    let records: Vec<LogRecord> = history
        .iter()
        .enumerate()
        .map(|(offset, e)| testkit::log_record(i64::try_from(offset).expect("offset"), e))
        .collect();
    let (posts, comments) = read_model::fold::posts_and_comments(&history);
    let revisions = read_model::fold::revisions(&history);
    assert_eq!(revisions.values().map(Vec::len).sum::<usize>(), 4);
    let mut want: Vec<String> = posts.values().map(post_facts).collect();
    want.extend(comments.values().map(comment_facts));
    want.sort();

    let dir = testkit::TempDir::new();
    let sqlite = Db::open_data_dir(&dir.0).await.expect("sqlite");
    let postgres = Db::connect(&testkit::fresh_database().await, 4)
        .await
        .expect("postgres");
    for db in [sqlite, postgres] {
        db.migrate().await.expect("migrations");
        let backend = if db.is_sqlite() {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        apply_batch(&db, "g", &records).await.expect("batch");
        let read = read_model::ReadModel::uncounted(db.clone());
        let mut got = Vec::new();
        for id in posts.keys() {
            let post = read
                .post_by_id(*id, true)
                .await
                .expect("read")
                .expect("post");
            got.push(post_facts(&post));
            got.extend(
                read.thread(*id)
                    .await
                    .expect("read")
                    .iter()
                    .map(comment_facts),
            );
        }
        got.sort();
        assert_eq!(got.len(), 2 + 620 + 2, "{backend}");
        let differ: Vec<_> = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| g != w)
            .take(3)
            .collect();
        assert!(
            differ.is_empty(),
            "{backend}: projector vs fold {differ:#?}"
        );
        assert_eq!(got, want);
        // Revisions: the draft and the content edit of each post, as the fold saves them.
        for (id, want) in &revisions {
            let got = read.revisions(*id, None, 100).await.expect("read");
            let got: Vec<String> = got.iter().rev().map(revision_facts).collect();
            let want: Vec<String> = want.iter().map(revision_facts).collect();
            assert_eq!(got, want, "{backend}: revisions of {id}");
        }
    }
}

fn revision_facts(r: &read_model::RevisionRow) -> String {
    format!(
        "{} {} {} {} {} {} {:?} {:?} {}",
        r.post_id,
        r.revision,
        r.stream_version,
        r.title,
        r.slug,
        r.body_markdown,
        r.tags.0,
        r.editor_id,
        r.edited_at.timestamp_micros(),
    )
}
