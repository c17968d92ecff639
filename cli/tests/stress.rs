//! `inkwire stress` against `inkwire dev --demo`: comments over several posts by several accounts,
//! subscribers and readers at once; every delivery accounted for (none lost, duplicated or out of
//! order), latencies reported, JSON and HTML reports written; a remote target is refused unless
//! asked for.

mod common;

use std::process::Command;

use common::{DevServer, TempDir};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_accounts_for_every_delivery_and_writes_its_reports() {
    let server = DevServer::demo(&[]).await;
    let reports = TempDir::new();
    // The site's address is enough: stress finds its `/graphql`.
    let url = server.base.clone();
    let dir = reports.0.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_inkwire"))
            .args([
                "stress",
                "--url",
                &url,
                "--username",
                "ada",
                "--password",
                "ada-demo-password",
            ])
            .args([
                "--posts",
                "3",
                "--subscribers",
                "9",
                "--writers",
                "3",
                // Longer than the gateway's 30 s keep-alive: idle subscribers must keep their
                // connections by pinging, as the web UI does.
                "--rate",
                "3",
                "--seconds",
                "40",
            ])
            .arg("--report-dir")
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .output()
            .expect("inkwire stress runs")
    })
    .await
    .expect("join");
    let summary = common::succeeded(&out);
    // A summary for people, not a line of JSON, that says where the report is.
    assert!(summary.starts_with("stress: OK"), "{summary}");
    assert!(summary.contains("report.html"), "{summary}");
    assert!(
        summary.contains("cleaned up: 3 of 3 posts deleted"),
        "{summary}"
    );
    // The run's posts are gone from the blog.
    let http = reqwest::Client::new();
    let posts = common::graphql::gql(
        &http,
        &format!("{}/graphql", server.base),
        None,
        "{ posts(first: 50) { edges { node { slug } } } }",
        serde_json::json!({}),
    )
    .await;
    let slugs = posts["data"]["posts"]["edges"].to_string();
    assert!(
        !slugs.contains("bench-"),
        "stress posts left behind: {slugs}"
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(reports.0.join("report.json")).expect("report.json"),
    )
    .expect("JSON");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["comments_acked"], 120, "{report}");
    let deliveries = &report["deliveries"];
    // 9 subscribers on 3 posts, 40 comments per post: each subscriber gets its post's 40.
    assert_eq!(deliveries["expected"], 360, "{report}");
    assert_eq!(deliveries["received"], 360, "{report}");
    for key in ["lost", "duplicated", "out_of_order"] {
        assert_eq!(deliveries[key], 0, "{key}: {report}");
    }
    for latency in ["command_ack", "ack_to_push", "ack_to_queryable"] {
        assert!(
            report["latency"][latency]["samples"].as_u64() > Some(0),
            "{latency}: {report}"
        );
    }
    assert!(report["reads"]["count"].as_u64() > Some(0), "{report}");
    let html = std::fs::read_to_string(reports.0.join("report.html")).expect("report.html");
    assert!(html.contains("Every delivery accounted for") && html.contains("<svg"));
    // Plots with axes and units, and the figures in a table a person reads.
    assert!(html.contains("seconds since the run started") && html.contains("milliseconds"));
    assert!(html.contains("<table>") && html.contains("Acknowledged → pushed"));

    let remote = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args([
            "stress",
            "--url",
            "http://example.org/graphql",
            "--username",
            "a",
            "--password",
            "b",
        ])
        .output()
        .expect("runs");
    assert!(!remote.status.success());
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("not loopback"),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
}
