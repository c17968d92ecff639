//! `cargo bench -p render`: how fast comments and posts render (the projector renders every
//! comment once; a rebuild renders them all again). Plain `harness = false` timing: each case
//! runs for about a second after a warm-up, and prints the time per call and calls per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

fn measure(name: &str, input: &str, render: fn(&str) -> String) {
    for _ in 0..1000 {
        black_box(render(black_box(input)));
    }
    let started = Instant::now();
    let mut calls = 0_u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            black_box(render(black_box(input)));
        }
        calls += 100;
    }
    let per_call = started.elapsed().as_secs_f64() / calls as f64;
    println!(
        "{name:<40} {:>9.2} µs/call {:>10.0} calls/s",
        per_call * 1e6,
        1.0 / per_call
    );
}

fn main() {
    let plain = "Thanks for writing this up, it helped me a lot with my own projector.";
    let markdown = "I *really* like the part about **offsets**; see [the ADR](https://example.com/adr) \
                    and `apply_batch`.\n\n> quoted\n\n- one\n- two";
    let hostile = "<img src=x onerror=alert(1)> <script>alert(1)</script> [x](javascript:alert(1))";
    let post = "# Title\n\nSome *intro* text with a [link](https://example.com).\n\n".repeat(40);
    measure("comment_html, plain sentence", plain, render::comment_html);
    measure("comment_html, markdown", markdown, render::comment_html);
    measure("comment_html, hostile HTML", hostile, render::comment_html);
    measure("post_html, 40 sections", &post, render::post_html);
}
