//! Seeds rolling-DNIS pairs into the pairs table, optionally creating the tables first.
//!
//! ```text
//! seed-pairs [--create-tables] [--pairs-table NAME] [--calls-table NAME]
//!            (--pairs-file FILE | --sma-numbers A,B,C --connect-numbers X,Y,Z)...
//! ```
//!
//! Table names default to `$PAIRS_TABLE` / `$CALLS_TABLE`; `seed-pairs --help` lists every flag. The AWS SDK's usual configuration
//! applies: `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local
//! (`eval "$(infra/dynamodb-local.sh env)"`). Re-running adds only new pairs; pairs that exist,
//! free or in use, are left untouched. Prints a JSON report.

use std::process::ExitCode;

use clap::Parser;

use takeback_dynamo::seed::{PairsFile, seed_pairs};
use takeback_dynamo::tables::{self, create_table};

/// Table names fall back to the functions' own variables (`PAIRS_TABLE`, `CALLS_TABLE`).
#[derive(Debug, Parser)]
#[command(
    name = "seed-pairs",
    about = "Creates the pairs and calls tables (optional) and seeds rolling-DNIS pairs",
    after_help = "The AWS SDK's usual configuration applies (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB \
                  Local). Re-running adds only new pairs. Prints a JSON report."
)]
struct Args {
    /// Create the pairs and calls tables first (left as they are when they exist)
    #[arg(long)]
    create_tables: bool,
    /// Pairs table name
    #[arg(long, value_name = "NAME", env = tables::PAIRS.env_var)]
    pairs_table: Option<String>,
    /// Calls table name (needed with --create-tables)
    #[arg(long, value_name = "NAME", env = tables::CALLS.env_var)]
    calls_table: Option<String>,
    /// A pairs file (JSON, as infra/pairs.example.json); may be repeated
    #[arg(long = "pairs-file", value_name = "FILE")]
    files: Vec<String>,
    /// SMA numbers (E.164), comma-separated; paired with --connect-numbers
    #[arg(long, value_name = "A,B,...", value_delimiter = ',', value_parser = trimmed)]
    sma_numbers: Vec<String>,
    /// Connect numbers (E.164), comma-separated
    #[arg(long, value_name = "X,Y,...", value_delimiter = ',', value_parser = trimmed)]
    connect_numbers: Vec<String>,
}

fn trimmed(value: &str) -> Result<String, String> {
    Ok(value.trim().to_owned())
}

impl Args {
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, clap::Error> {
        let mut parsed =
            Self::try_parse_from(std::iter::once("seed-pairs".to_owned()).chain(args))?;
        // `--sma-numbers "+1800…, "` leaves an empty item: not a number, just punctuation.
        parsed.sma_numbers.retain(|n| !n.is_empty());
        parsed.connect_numbers.retain(|n| !n.is_empty());
        Ok(parsed)
    }
}

fn table_name(name: Option<String>, def: &tables::TableDef) -> Result<String, String> {
    name.filter(|n| !n.trim().is_empty())
        .ok_or_else(|| format!("no table name: pass the flag or set {}", def.env_var))
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let mut pairs = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let file: PairsFile = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        pairs.extend(file.pairs().map_err(|e| format!("{path}: {e}"))?);
    }
    let cli = PairsFile {
        sma_numbers: args.sma_numbers,
        connect_numbers: args.connect_numbers,
        ..PairsFile::default()
    };
    pairs.extend(cli.pairs().map_err(|e| e.to_string())?);
    if pairs.is_empty() {
        return Err("no pairs given: --pairs-file, or --sma-numbers with --connect-numbers".into());
    }
    let pairs_table = table_name(args.pairs_table, &tables::PAIRS)?;

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let mut created = serde_json::Map::new();
    if args.create_tables {
        let calls_table = table_name(args.calls_table, &tables::CALLS)?;
        for (def, name) in [
            (&tables::PAIRS, &pairs_table),
            (&tables::CALLS, &calls_table),
        ] {
            let outcome = create_table(&client, def, name)
                .await
                .map_err(|e| format!("creating {name}: {}", takeback_common::error::chain(&e)))?;
            created.insert(name.clone(), format!("{outcome:?}").into());
        }
    }
    let report = seed_pairs(&client, &pairs_table, &pairs)
        .await
        .map_err(|e| {
            format!(
                "seeding {pairs_table}: {}",
                takeback_common::error::chain(&e)
            )
        })?;
    Ok(serde_json::json!({
        "pairs_table": pairs_table,
        "tables": created,
        "requested": report.requested,
        "added": report.added,
        "existing": report.existing,
        "write_batches": report.write_batches,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    // --help and usage errors: clap prints them and exits (0, or 2 as before).
    let args = match Args::from_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    match run(args).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seed-pairs: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(v: &[&str]) -> Result<Args, clap::Error> {
        Args::from_args(v.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn the_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_lists_and_flags() {
        let a = args(&[
            "--create-tables",
            "--sma-numbers",
            "+18005557777, +18005558888,",
            "--connect-numbers",
            "+18005551111",
            "--pairs-table",
            "p",
        ])
        .unwrap();
        assert!(a.create_tables);
        assert_eq!(a.sma_numbers, ["+18005557777", "+18005558888"]);
        assert_eq!(a.pairs_table.as_deref(), Some("p"));
        assert!(args(&["--pairs-file"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }

    /// What the Makefile's `seed` target and infra/demo.sh run.
    #[test]
    fn the_scripts_invocations_parse() {
        let a = args(&[
            "--pairs-table",
            "takeback-pairs",
            "--calls-table",
            "takeback-calls",
            "--create-tables",
            "--pairs-file",
            "infra/pairs.example.json",
        ])
        .unwrap();
        assert_eq!(a.files, ["infra/pairs.example.json"]);
        assert_eq!(a.calls_table.as_deref(), Some("takeback-calls"));
        let help = Args::command().render_help().to_string();
        assert!(help.contains("PAIRS_TABLE") && help.contains("CALLS_TABLE"));
    }
}
