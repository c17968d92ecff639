//! The gateway benchmarks against `inkwire dev`: `bench fanout` sees every subscriber's socket
//! receive every comment once, each receipt with the kernel's arrival stamp, and says so; `bench
//! page` gets a right answer to every request it makes, whichever it asks for.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TempDir, eventually, free_port};
use serde_json::Value;

/// A child process killed when dropped, so a failed assertion leaves no server behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `inkwire dev` on a fresh data directory with the benchmarks' `bench` author, serving the web
/// UI's build; its data directory, process and port.
async fn dev_with_bench_author() -> (TempDir, Killed, u16) {
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
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/build");
    let dev = Command::new(env!("CARGO_BIN_EXE_inkwire"))
        .args(["dev", "--mutations-per-minute", "1000000", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data.0)
        .arg("--web-dir")
        .arg(web)
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
    (data, Killed(dev), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_accounts_for_every_delivery_at_the_sockets() {
    let (_data, dev, port) = dev_with_bench_author().await;
    let url = format!("http://127.0.0.1:{port}/graphql");
    let pid = dev.0.id().to_string();
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
    drop(dev);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_gets_a_right_answer_to_every_request_it_makes() {
    let (_data, dev, port) = dev_with_bench_author().await;
    let url = format!("http://127.0.0.1:{port}/graphql");
    for request in ["query", "html", "feed", "search"] {
        let url = url.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_inkwire"))
                .args(["bench", "page", "--graphql-url", &url, "--request", request])
                .args(["--clients", "4", "--seconds", "1"])
                .output()
                .expect("bench page runs")
        })
        .await
        .expect("joined");
        let stdout = common::succeeded(&out);
        let report: Value = serde_json::from_str(stdout.lines().last().expect("a report line"))
            .expect("the report is JSON");
        assert_eq!(report["request"], request, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert!(
            report["requests"].as_u64().is_some_and(|n| n > 10),
            "{report}"
        );
    }
    drop(dev);
}
