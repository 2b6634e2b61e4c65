//! `call-bench`: wiring only (see the library's documentation).

use std::process::ExitCode;

use call_bench::{bench, setup};

#[tokio::main]
async fn main() -> ExitCode {
    let args = <setup::Args as clap::Parser>::parse();
    let bench = match setup::prepare(&args).await {
        Ok(bench) => bench,
        Err(e) => {
            eprintln!("call-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match bench::run(&bench).await {
        Ok(figures) => {
            println!("{figures}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("call-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
