//! Runtimes of their own for work that must not queue behind other work.
//!
//! **The pipeline runtime**: a small Tokio runtime of its own for the work between a command's
//! commit and the push to subscribers (group commit, outbox relay, projector, the gateway's log
//! follower and broadcaster, shared subscription executions).
//!
//! On the process's main runtime that work queued behind the client tasks a fan-out wakes: one
//! comment on a post with 2,000 subscribers wakes 2,000 connection tasks, and every step of the
//! next comment's path (each SQLite statement hands back to its task) waited its turn behind
//! them. With 2,000 subscribers at 50 comments/s that put a median 22 ms between a comment's
//! acknowledgement and its first delivery, against 1.6 ms with one subscriber
//! (docs/benchmarks.md). Here the pipeline's tasks have worker threads of their own, which the
//! operating system schedules beside the main runtime's, so a fan-out in progress no longer
//! holds the next comment back.
//!
//! **The subscribers' runtime** ([`subscribers`]): the WebSocket connections of live
//! subscribers. A push wakes every one of them at once; on the main runtime the HTTP answers
//! (a comment's acknowledgement, a page's query) queued behind those wakes, so under a large
//! fan-out a writer learnt its comment was accepted seconds after readers had it
//! (docs/benchmarks.md). With the connections here, a request waits for a thread of its own
//! runtime, which the operating system shares out fairly, never for 2,000 pushes.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// Worker threads of each runtime: the pipeline's work is short steps, mostly waiting on the
/// database, and the subscribers' is writing frames, so two (this machine's cores) keep each
/// moving without taking cores from the rest.
const WORKERS: usize = 2;

/// The pipeline runtime's handle, starting it on first use. It lives as long as the process.
///
/// # Panics
/// When the operating system refuses to start its threads (a startup invariant).
#[must_use]
pub fn pipeline() -> Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    start(&RUNTIME, "inkwire-pipeline")
}

/// The subscribers' runtime's handle, starting it on first use: where live subscribers'
/// connections run. It lives as long as the process.
///
/// # Panics
/// When the operating system refuses to start its threads (a startup invariant).
#[must_use]
pub fn subscribers() -> Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    start(&RUNTIME, "inkwire-subscribers")
}

fn start(runtime: &'static OnceLock<Runtime>, name: &'static str) -> Handle {
    runtime
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name(name)
                .enable_all()
                .build()
                .expect("a runtime's threads start")
        })
        .handle()
        .clone()
}

#[cfg(test)]
mod tests {
    use super::{pipeline, subscribers};

    #[tokio::test]
    async fn pipeline_and_subscriber_tasks_run_on_threads_of_their_own() {
        let thread = || async { std::thread::current().name().map(str::to_owned) };
        let name = pipeline().spawn(thread()).await.ok().flatten();
        assert_eq!(name.as_deref(), Some("inkwire-pipeline"));
        let name = subscribers().spawn(thread()).await.ok().flatten();
        assert_eq!(name.as_deref(), Some("inkwire-subscribers"));
        assert_ne!(
            std::thread::current().name(),
            Some("inkwire-pipeline"),
            "the test itself runs elsewhere"
        );
    }
}
