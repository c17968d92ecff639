//! The `inkwire` command. Parses arguments and hands over to the library.

use clap::Parser;

/// mimalloc instead of glibc's allocator: the projector's batches allocate and free many
/// medium-sized buffers (multi-row statements, decoded events), where glibc spent a quarter of a
/// rebuild's time (docs/benchmarks.md). Its `override` feature makes it the C libraries'
/// `malloc` too (SQLite copies every bound value and every value it reads out).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = inkwire::Cli::parse();
    inkwire::telemetry(&cli);
    let result = inkwire::run(cli).await;
    // Export the spans still buffered before the process ends.
    infra::telemetry::shutdown_tracing();
    result
}
