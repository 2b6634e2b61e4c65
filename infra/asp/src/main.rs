//! The `asp` command: parses the arguments and hands over to [`asp::cli::run`].

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    asp::cli::run(asp::cli::Cli::parse()).await
}
