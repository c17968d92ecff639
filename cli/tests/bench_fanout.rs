//! `inkwire bench fanout` against `inkwire dev`: every subscriber's socket receives every comment
//! once, each receipt carries the kernel's arrival stamp, and the report says so.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, eventually, free_port};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_accounts_for_every_delivery_at_the_sockets() {
    let data = TempDir::new();
    let mut add = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args([
            "user",
            "add",
            "--username",
            "bench",
            "--role",
            "author",
            "--data-dir",
        ])
        .arg(&data.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("inkwire user add starts");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"bench-password\n")
        .expect("password written");
    assert!(add.wait().expect("user add ends").success());

    let port = free_port();
    let mut dev = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args(["dev", "--mutations-per-minute", "1000000", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data.0)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("inkwire dev starts");
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    eventually(Duration::from_secs(30), || {
        let (http, ready) = (&http, &ready);
        async move {
            http.get(ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;

    let url = format!("http://127.0.0.1:{port}/graphql");
    let pid = dev.id().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_inkwire"))
            .args([
                "bench",
                "fanout",
                "--graphql-url",
                &url,
                "--gateway-pid",
                &pid,
            ])
            .args(["--subscribers", "24", "--comments", "40", "--rate", "40"])
            .output()
            .expect("bench fanout runs")
    })
    .await
    .expect("joined");
    let _ = dev.kill();
    let _ = dev.wait();
    let stdout = common::succeeded(&out);
    let report: Value = serde_json::from_str(stdout.lines().last().expect("a report line"))
        .expect("the report is JSON");

    assert_eq!(report["expected"], 24 * 40);
    assert_eq!(report["delivered"], 24 * 40, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(
        report["closed_by_gateway"],
        serde_json::json!([]),
        "{report}"
    );
    assert_eq!(
        report["unstamped_reads"], 0,
        "every read has the kernel's stamp"
    );
    assert_eq!(report["ack_to_receipt"]["samples"], 24 * 40);
    assert_eq!(report["first_to_last_receipt"]["samples"], 40);
    // A receipt reaches the socket before the load generator reads it, and both come after
    // the comment's acknowledgement, within the run.
    let ms = |k: &str, p: &str| report[k][p].as_f64().expect("a latency");
    assert!(
        ms("ack_to_receipt", "p50_ms") <= ms("ack_to_read", "p50_ms"),
        "{report}"
    );
    assert!(
        ms("ack_to_receipt", "max_ms") <= ms("ack_to_read", "max_ms"),
        "{report}"
    );
    assert!(ms("ack_to_receipt", "max_ms") < 10_000.0, "{report}");
    assert!(
        report["gateway_cpu_us_per_delivery"]
            .as_f64()
            .is_some_and(|us| us > 0.0)
    );
    assert!(
        report["client_cpu_us_per_delivery"]
            .as_f64()
            .is_some_and(|us| us > 0.0)
    );
    assert_eq!(report["send_to_ack"]["samples"], 40, "{report}");
    assert!(
        report["receipts_before_ack"]
            .as_u64()
            .is_some_and(|n| n <= 24 * 40)
    );
    // How much of the machine the host took away, and how much was left idle, meanwhile.
    let (steal, idle) = (
        report["machine_steal_percent"].as_f64(),
        report["machine_idle_percent"].as_f64(),
    );
    assert!(
        steal
            .zip(idle)
            .is_some_and(|(s, i)| (0.0..=100.0).contains(&s)
                && (0.0..=100.0).contains(&i)
                && s + i <= 100.0),
        "{report}"
    );
    assert_eq!(
        report["gateway_rss_kib_by_subscribers"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "RSS sampled at each quarter of the subscribers"
    );
}
