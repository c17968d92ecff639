//! The web UI in a real browser: `inkwire dev --demo` as a newcomer starts it, with the built UI
//! (`web/build`), and `web/tests/browser.mjs` drives Debian's chromium through playwright-core:
//! live comments across two browser contexts, an offline context catching up with no gap and no
//! duplicate, hostile markup shown as text, an author publishing from the editor, the moderation
//! log showing a hide as it happens and undoing it, an author comparing and restoring versions
//! and scheduling a post that then appears by itself, a reader giving an email address for
//! notifications and confirming it with the link that arrives at a real SMTP server, a
//! phone-sized screen. Screenshots land in `SCREENSHOT_DIR` (default `web/test-results`).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::DevServer;
use serde_json::Value;

/// What the post page may ship as JavaScript, gzipped (the budget).
const POST_PAGE_JS_BUDGET: u64 = 60 * 1024;

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
    // Notification email goes to a real SMTP server, whose maildir the script reads.
    let sink = common::smtp::Sink::start();
    let smtp = sink.url();
    let server = DevServer::demo(&[
        "--web-dir".as_ref(),
        build.as_os_str(),
        "--smtp-url".as_ref(),
        smtp.as_ref(),
        "--mail-window-secs".as_ref(),
        "1".as_ref(),
        "--mail-poll-ms".as_ref(),
        "100".as_ref(),
    ])
    .await;
    let maildir = sink.new_mail_dir();
    let base = server.base.clone();
    // The UI answers client routes with the app.
    let page = reqwest::get(format!("{base}/posts/welcome-to-inkwire"))
        .await
        .expect("page");
    assert!(page.status().is_success());

    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(web.join("tests/browser.mjs"))
            .env("BASE_URL", &base)
            .env("WEB_BUILD", &build)
            .env("MAILDIR", &maildir)
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
