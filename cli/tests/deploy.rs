//! The operator's kit in `deploy/` holds: `promtool` accepts the alert rules and the Prometheus
//! configuration, and every metric the Grafana dashboards and the alert rules name is exported by
//! the services of a running cluster (separate processes on PostgreSQL and the broker), so no
//! panel stays empty and no alert watches a name that does not exist.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::graphql::{add_comment, published_post};

fn deploy() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("../deploy")
}

fn promtool(args: &[&str]) {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let out = std::process::Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{bin} runs (scripts/test-deps.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `inkwire_…` name in `text`.
fn metric_names(text: &str, into: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(at) = rest.find("inkwire_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        into.insert(name);
    }
}

/// Series names (with `_bucket`, `_count`, … as exposed) in a `/metrics` page.
fn exported(page: &str, into: &mut BTreeSet<String>) {
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            into.insert(name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_name_only_metrics_the_services_export() {
    let dir = deploy();
    promtool(&[
        "check",
        "rules",
        &dir.join("alerts.yml").display().to_string(),
    ]);
    promtool(&[
        "check",
        "config",
        &dir.join("prometheus.yml").display().to_string(),
    ]);

    let mut named = BTreeSet::new();
    metric_names(
        &std::fs::read_to_string(dir.join("alerts.yml")).expect("alerts.yml"),
        &mut named,
    );
    let dashboards = dir.join("grafana/dashboards");
    for entry in std::fs::read_dir(&dashboards).expect("grafana/dashboards") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("dashboard");
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        metric_names(&text, &mut named);
    }
    assert!(named.len() >= 15, "too few metrics named: {named:?}");

    // A cluster with some traffic, so labelled series exist.
    let cluster = Cluster::start(1).await;
    let post = published_post(&cluster.http, &cluster.nginx_url()).await;
    add_comment(
        &cluster.http,
        &cluster.nginx_url(),
        &post,
        "for the dashboards",
        true,
    )
    .await;
    let ports = [
        cluster.command_port,
        cluster.projector_port,
        cluster.gateways[0].0,
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut have = BTreeSet::new();
        for port in ports {
            let page = cluster
                .http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            exported(&page, &mut have);
        }
        let missing: Vec<&String> = named.difference(&have).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "named in deploy/ but exported by no service: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
