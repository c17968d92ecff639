//! The `inkwire` command. Parses arguments and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = inkwire::Cli::parse();
    inkwire::telemetry(&cli);
    inkwire::run(cli).await
}
