//! The projector's two guards, exercised directly on both backends: a redelivered record (same
//! offset) and a re-published event (same stream version, new offset) change nothing, and an
//! event that arrives ahead of its predecessor is held back until the in-order re-send. And the
//! consumer loop, which reads the next batch while it writes one, loses nothing when a write fails.

use events::{
    CommentAdded, CommentId, Envelope, PostDrafted, PostEvent, PostId, PostPublished, UserId,
};
use infra::db::Db;
use infra::log::LogRecord;
use projection_service::projections::{BatchOutcome, apply_batch};

fn history() -> Vec<Envelope> {
    let post = PostId::new();
    let author = UserId::new();
    let mut out = vec![
        testkit::envelope(
            post,
            1,
            PostEvent::PostDrafted(PostDrafted {
                author_id: author,
                title: "t".into(),
                slug: "s".into(),
                body_markdown: String::new(),
                tags: vec!["a".into()],
                allow_anonymous_comments: false,
            }),
        ),
        testkit::envelope(post, 2, PostEvent::PostPublished(PostPublished {})),
    ];
    for v in 3..=6 {
        out.push(testkit::envelope(
            post,
            v,
            PostEvent::CommentAdded(CommentAdded {
                comment_id: CommentId::new(),
                parent_id: None,
                author_id: Some(author),
                author_name: "a".into(),
                body: format!("comment {v}"),
            }),
        ));
    }
    out
}

async fn scenario(db: Db, reference: Db) {
    db.migrate().await.expect("migrations");
    reference.migrate().await.expect("migrations");
    let events = history();
    let records: Vec<LogRecord> = events
        .iter()
        .zip(0..)
        .map(|(e, o)| testkit::log_record(o, e))
        .collect();

    // Versions 1 to 4, in order (offsets 0 to 3).
    let first = apply_batch(&db, "g", &records[..4]).await.expect("batch");
    assert_eq!(first.applied, 4);
    let after_first = testkit::read_model_dump(&db).await;

    // The same records again (a redelivery after a lost Kafka commit): all skipped by offset.
    let again = apply_batch(&db, "g", &records[..4]).await.expect("batch");
    assert_eq!(
        again,
        BatchOutcome {
            redelivered: 4,
            ..BatchOutcome::default()
        }
    );
    assert_eq!(testkit::read_model_dump(&db).await, after_first);

    // The relay published version 4 a second time (new offset): skipped by version.
    let duplicate = testkit::log_record(4, &events[3]);
    let dup = apply_batch(&db, "g", &[duplicate]).await.expect("batch");
    assert_eq!(
        dup,
        BatchOutcome {
            duplicates: 1,
            ..BatchOutcome::default()
        }
    );
    assert_eq!(testkit::read_model_dump(&db).await, after_first);

    // Version 6 arrives at offset 5 but version 5 never did: held back, not applied.
    let ahead = testkit::log_record(5, &events[5]);
    let gap = apply_batch(&db, "g", &[ahead]).await.expect("batch");
    assert_eq!(
        gap,
        BatchOutcome {
            gaps: 1,
            ..BatchOutcome::default()
        }
    );
    assert_eq!(testkit::count(&db, "rm_comments").await, 2);

    // The relay re-sends from the first unacknowledged event: 5 then 6, in order.
    let resend = [
        testkit::log_record(6, &events[4]),
        testkit::log_record(7, &events[5]),
    ];
    let done = apply_batch(&db, "g", &resend).await.expect("batch");
    assert_eq!(done.applied, 2);
    assert_eq!(testkit::count(&db, "rm_comments").await, 4);

    // Identical to applying the six events once, in order.
    apply_batch(&reference, "g", &records).await.expect("batch");
    assert_eq!(
        testkit::read_model_dump(&db).await,
        testkit::read_model_dump(&reference).await
    );
}

#[tokio::test]
async fn redelivery_duplicates_and_gaps_on_sqlite() {
    let (dir, other) = (testkit::TempDir::new(), testkit::TempDir::new());
    scenario(
        Db::open_data_dir(&dir.0).await.expect("sqlite"),
        Db::open_data_dir(&other.0).await.expect("sqlite"),
    )
    .await;
}

#[tokio::test]
async fn redelivery_duplicates_and_gaps_on_postgres() {
    let (url, other) = (
        testkit::fresh_database().await,
        testkit::fresh_database().await,
    );
    scenario(
        Db::connect(&url, 4).await.expect("postgres"),
        Db::connect(&other, 4).await.expect("postgres"),
    )
    .await;
}

/// The consumer writes one batch while it reads the next: when the write fails, the batch read
/// ahead must be dropped and both read again from the database's offsets (applying the one read
/// ahead would skip the failed one's events). Against PostgreSQL and the broker, the first write
/// to `rm_comments` is refused (a trigger) while a backlog of several batches waits; every event
/// must still be applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_and_the_batch_read_ahead_are_applied_once_after_recovery() {
    let url = testkit::fresh_database().await;
    let db = Db::connect(&url, 4).await.expect("postgres");
    db.migrate().await.expect("migrations");
    let Db::Postgres(pool) = &db else {
        unreachable!("PostgreSQL")
    };
    sqlx::raw_sql(
        "CREATE SEQUENCE comment_writes;
         CREATE FUNCTION refuse_comments() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           -- A sequence is not rolled back with the failed transaction: only the first fails.
           IF nextval('comment_writes') = 1 THEN RAISE EXCEPTION 'refused by the test'; END IF;
           RETURN NULL;
         END $$;
         CREATE TRIGGER refuse_comments BEFORE INSERT ON rm_comments
           FOR EACH STATEMENT EXECUTE FUNCTION refuse_comments();",
    )
    .execute(pool)
    .await
    .expect("trigger");

    // 20 posts with 600 comments each: 12,040 events, more than two batches of 5,000.
    let posts: Vec<Vec<Envelope>> = (0..20)
        .map(|_| {
            let mut events = history();
            events.truncate(2);
            let post = PostId(events[0].meta.stream_id.0);
            for v in 3..=602 {
                events.push(testkit::envelope(
                    post,
                    v,
                    PostEvent::CommentAdded(CommentAdded {
                        comment_id: CommentId::new(),
                        parent_id: None,
                        author_id: None,
                        author_name: "reader".into(),
                        body: format!("comment {v}"),
                    }),
                ));
            }
            events
        })
        .collect();
    // One partition, so that the batch read ahead continues the refused one.
    let mut settings = testkit::kafka(&testkit::unique("refused"), &testkit::brokers());
    settings.partitions = 1;
    let log = infra::log::LogConfig::Kafka(settings);
    log.ensure_topic().await.expect("topic");
    let producer = log.producer().expect("producer");
    let messages: Vec<infra::log::OutgoingMessage> = posts
        .iter()
        .flatten()
        .map(|e| infra::log::OutgoingMessage {
            key: e.meta.stream_id.to_string().into_bytes(),
            payload: e.encode(),
            headers: Vec::new(),
        })
        .collect();
    for chunk in messages.chunks(1000) {
        let (sent, error) = producer.publish(chunk).await;
        assert_eq!(sent, chunk.len(), "{error:?}");
    }

    let registry = prometheus::Registry::new();
    let metrics = projection_service::metrics::Metrics::new(&registry);
    let cancel = tokio_util::sync::CancellationToken::new();
    let group = testkit::unique("g");
    let projector = tokio::spawn(projection_service::consumer::run(
        db.clone(),
        log.clone(),
        group.clone(),
        metrics.clone(),
        None,
        cancel.clone(),
    ));
    testkit::eventually(std::time::Duration::from_secs(60), || async {
        testkit::count(&db, "rm_comments").await == 12_000
    })
    .await;
    // Exactly once: every post counts its 600 comments once and stands at its last version.
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT comment_count, version FROM rm_posts")
        .fetch_all(pool)
        .await
        .expect("posts");
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| *r == (600, 602)), "{rows:?}");
    let writes: i64 = sqlx::query_scalar("SELECT last_value FROM comment_writes")
        .fetch_one(pool)
        .await
        .expect("sequence");
    assert!(
        writes > 1,
        "the refused write happened, and others after it"
    );
    cancel.cancel();
    projector.await.expect("join").expect("projector");
}
