//! The outbox relay against a real broker when publishing keeps failing on one instance: it
//! does not hold the lease while unable to publish.

mod common;

use std::time::Duration;

use common::TestStack;

/// A relay that holds the outbox lease but cannot publish what the outbox holds (here one
/// instance's client refuses messages over 1,000 bytes; in production, say, one node's wrong
/// credentials) gives the lease up after failing for a lease's time, so a healthy instance
/// publishes instead of the post's comments stalling for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_keeps_failing_gives_the_lease_to_one_that_can_publish() {
    let db_url = common::fresh_database().await;
    let topic = common::unique("posts");
    let brokers = common::brokers();
    let db = infra::db::Db::connect(&db_url, 4).await.expect("db");
    db.migrate().await.expect("migrations");
    let mut settings = common::kafka(&topic, &brokers);
    settings
        .properties
        .push(("message.max.bytes".into(), "1000".into()));
    let log = infra::log::LogConfig::Kafka(settings);
    log.ensure_topic().await.expect("topic");
    let cancel = tokio_util::sync::CancellationToken::new();
    let (listener, _) = common::listener().await;
    let failing = tokio::spawn(command_service::serve(
        listener,
        db.clone(),
        log,
        common::keys(),
        None,
        cancel.clone(),
    ));
    // The failing instance takes the lease first (its relay looks every 100 ms).
    let infra::db::Db::Postgres(pool) = &db else {
        unreachable!("a PostgreSQL database")
    };
    let holder = || async {
        sqlx::query_scalar::<_, String>("SELECT holder FROM leases WHERE name = 'outbox-relay'")
            .fetch_optional(pool)
            .await
            .expect("leases")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let failing_holder = loop {
        if let Some(h) = holder().await {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no relay took the lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let healthy = TestStack::distributed_on(&db_url, &topic, &brokers, true).await;
    let post = healthy.published_post().await;
    assert_eq!(
        holder().await.as_deref(),
        Some(failing_holder.as_str()),
        "the failing instance's relay should still hold the lease"
    );
    // A comment too big for the failing instance's client: the post's events stop there until
    // a relay that can publish it holds the lease.
    let (status, body) = healthy.comment(&post, &"long ".repeat(400)).await;
    assert!(status.is_success(), "{status} {body}");
    healthy.wait_comments(1, Duration::from_secs(40)).await;
    assert_ne!(holder().await.as_deref(), Some(failing_holder.as_str()));

    cancel.cancel();
    let _ = failing.await;
    healthy.stop().await;
}
