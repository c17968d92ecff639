//! The README stays true: its shell blocks marked `<!-- readme-test -->` run as written, in
//! order, in one shell, against a fresh `inkwire dev --demo` started the way the README says
//! (in a fresh directory, so its data lands in `./inkwire-data`), with `inkwire` on `PATH` as
//! `scripts/install.sh` puts it there. Only the port differs (`localhost:8080` becomes a free
//! one). A block fails the test when the shell fails or an answer carries GraphQL `errors`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::TempDir;

/// The marked blocks of `markdown`, in order.
fn marked_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- readme-test -->" {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(
            fence.trim(),
            "```sh",
            "a marked block must follow its marker"
        );
        let mut block = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        blocks.push(block);
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_shell_blocks_work_when_pasted() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let blocks = marked_blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "the README's GraphQL quick start is marked for this test"
    );
    let home = TempDir::new();
    let port = common::free_port();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_inkwire"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("bin dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut dev = Command::new(bin)
        .args(["dev", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&home.0)
        .env("RUST_LOG", "warn")
        .env_remove("INKWIRE_DATA_DIR")
        .env_remove("INKWIRE_LISTEN")
        .stdout(Stdio::null())
        .spawn()
        .expect("inkwire dev starts");
    let http = reqwest::Client::new();
    common::eventually(Duration::from_secs(20), || async {
        http.get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    let mut script = String::from("set -euo pipefail\n");
    for (i, block) in blocks.iter().enumerate() {
        script.push_str(&block.replace("localhost:8080", &format!("localhost:{port}")));
        script.push_str(&format!("echo '@@ block {i} done'\n"));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&home.0)
        .env("PATH", path)
        .env_remove("INKWIRE_DATA_DIR")
        .env_remove("INKWIRE_DATABASE_URL")
        .output()
        .expect("bash runs");
    let _ = dev.kill();
    let _ = dev.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let done = stdout.matches("@@ block ").count();
    assert!(
        out.status.success(),
        "README block {done} failed:\n{}\n--- output:\n{stdout}\n{stderr}",
        blocks.get(done).map_or("", String::as_str)
    );
    assert_eq!(done, blocks.len(), "{stdout}");
    // Every answer printed is a success: GraphQL says failure in `errors`, not in the status.
    let mut block = 0;
    for line in stdout.lines() {
        if line.starts_with("@@ block ") {
            block += 1;
            continue;
        }
        assert!(
            !line.contains("\"errors\""),
            "README block {block} answered an error: {line}\n{}",
            blocks[block]
        );
    }
    // And they did what they say: the post is published and the new author signed in.
    assert!(stdout.contains("\"slug\":\"hello\""), "{stdout}");
    assert!(stdout.contains("\"username\":\"writer\""), "{stdout}");
}
