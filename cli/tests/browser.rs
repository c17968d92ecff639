//! The web UI in a real browser: `inkwire dev --demo` as a newcomer starts it, with the built UI
//! (`web/build`), and `web/tests/browser.mjs` drives Debian's chromium through playwright-core:
//! live comments across two browser contexts, an offline context catching up with no gap and no
//! duplicate, hostile markup shown as text, an author publishing from the editor, a phone-sized
//! screen. Screenshots land in `SCREENSHOT_DIR` (default `web/test-results`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TempDir;
use serde_json::Value;

/// What the post page may ship as JavaScript, gzipped (the budget).
const POST_PAGE_JS_BUDGET: u64 = 60 * 1024;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo")).join("..")
}

#[tokio::test]
async fn readers_and_authors_in_a_real_browser() {
    let web = repo().join("web");
    let build = web.join("build");
    assert!(
        build.join("index.html").is_file(),
        "no web UI build in {}: scripts/test-deps.sh builds it (npm --prefix web ci && npm --prefix web run build)",
        build.display()
    );
    let data = TempDir::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_inkwire"))
            .args(["dev", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&data.0)
            .arg("--web-dir")
            .arg(&build)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("inkwire dev starts"),
    );
    let http = reqwest::Client::new();
    // The UI answers client routes with the app; then wait for the demo's comments.
    common::eventually(Duration::from_secs(20), || async {
        http.get(format!("{base}/posts/welcome-to-inkwire"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    wait_for_demo(&http, &base).await;

    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(web.join("tests/browser.mjs"))
            .env("BASE_URL", &base)
            .env("WEB_BUILD", &build)
            .stderr(Stdio::inherit())
            .output()
            .expect("node runs (Node 20 is on the machine)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser test failed ({}): {stdout}",
        output.status
    );
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no report ({e}): {stdout}"));
    assert_eq!(report["ok"], true, "{report}");
    let metrics = &report["metrics"];
    eprintln!("browser measurements: {metrics}");
    let js = metrics["post_js_gzip_bytes"].as_u64().expect("JS size");
    assert!(
        js > 0 && js < POST_PAGE_JS_BUDGET,
        "the post page ships {js} bytes of gzipped JavaScript (budget {POST_PAGE_JS_BUDGET})"
    );
}

/// Waits until the demo's first post has its comments in the read tables.
async fn wait_for_demo(http: &reqwest::Client, base: &str) {
    common::eventually(Duration::from_secs(20), || async {
        let Ok(r) = http
            .post(format!("{base}/graphql"))
            .json(&serde_json::json!({"query": "{ post(slug: \"welcome-to-inkwire\") { commentCount } }"}))
            .send()
            .await
        else {
            return false;
        };
        r.json::<Value>().await.is_ok_and(|v| {
            v["data"]["post"]["commentCount"]
                .as_i64()
                .is_some_and(|n| n > 0)
        })
    })
    .await;
}
