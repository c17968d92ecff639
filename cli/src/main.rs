//! The `inkwire` command. Parses arguments and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = inkwire::Cli::parse();
    inkwire::telemetry(&cli);
    let result = inkwire::run(cli).await;
    // Export the spans still buffered before the process ends.
    infra::telemetry::shutdown_tracing();
    result
}
