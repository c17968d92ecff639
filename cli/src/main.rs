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
    // Before any SQLite connection opens: no global allocation statistics (a process-wide
    // mutex on every SQLite allocation; nothing here reads them).
    // SAFETY: called once, before SQLite is initialised, with the option's documented argument.
    let memstatus = unsafe {
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
            0 as std::ffi::c_int,
        )
    };
    let cli = inkwire::Cli::parse();
    inkwire::telemetry(&cli);
    if memstatus != libsqlite3_sys::SQLITE_OK {
        tracing::warn!(
            code = memstatus,
            "SQLite allocation statistics could not be turned off"
        );
    }
    let result = inkwire::run(cli).await;
    // Export the spans still buffered before the process ends.
    infra::telemetry::shutdown_tracing();
    result
}
