//! When the database stops serving, commands get 503 with code UNAVAILABLE (not a 500, not a
//! hang), nothing is half-written, and service resumes by itself once the database is back.

mod common;

use std::time::Duration;

use common::TestStack;
use infra::db::Db;
use reqwest::StatusCode;

async fn admin(sql: String) {
    let Db::Postgres(pool) = Db::connect(&common::admin_url(), 1).await.expect("admin") else {
        unreachable!("the admin URL is PostgreSQL")
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .expect("admin statement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_answers_503_and_recovers() {
    let stack = TestStack::boot(common::Backend::Distributed).await;
    let post = stack.published_post().await;
    let (status, _) = stack.comment(&post, "before").await;
    assert_eq!(status, StatusCode::CREATED);
    let name = stack.db_url.rsplit('/').next().expect("db name").to_owned();

    // Refuse new connections and drop the existing ones, as a database failover would.
    admin(format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ))
    .await;
    admin(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let (status, body) = stack.comment(&post, "during").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "UNAVAILABLE");

    admin(format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).await;
    common::eventually(Duration::from_secs(30), || async {
        stack.comment(&post, "after").await.0 == StatusCode::CREATED
    })
    .await;
    // "before" and "after" only: the refused command left nothing behind.
    stack.wait_comments(2, Duration::from_secs(30)).await;
    assert_eq!(
        common::count(&stack.db, "events").await - common::count(&stack.db, "user_events").await,
        4,
        "drafted, published, before, after"
    );
    stack.stop().await;
}
