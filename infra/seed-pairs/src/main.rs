//! Seeds rolling-DNIS pairs into the pairs table, optionally creating the tables first.
//!
//! ```text
//! seed-pairs [--create-tables] [--pairs-table NAME] [--calls-table NAME]
//!            (--pairs-file FILE | --sma-numbers A,B,C --connect-numbers X,Y,Z)...
//! ```
//!
//! Table names default to `$PAIRS_TABLE` / `$CALLS_TABLE`. The AWS SDK's usual configuration
//! applies: `AWS_ENDPOINT_URL_DYNAMODB` points it at DynamoDB Local
//! (`eval "$(infra/dynamodb-local.sh env)"`). Re-running adds only new pairs; pairs that exist,
//! free or in use, are left untouched. Prints a JSON report.

use std::process::ExitCode;

use takeback_common::config::process_env;
use takeback_dynamo::seed::{PairsFile, seed_pairs};
use takeback_dynamo::tables::{self, create_table};

#[derive(Debug, Default)]
struct Args {
    create_tables: bool,
    pairs_table: Option<String>,
    calls_table: Option<String>,
    files: Vec<String>,
    sma_numbers: Vec<String>,
    connect_numbers: Vec<String>,
}

const USAGE: &str = "usage: seed-pairs [--create-tables] [--pairs-table NAME] [--calls-table NAME] \
(--pairs-file FILE | --sma-numbers A,B --connect-numbers X,Y)";

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    let list = |v: String| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--create-tables" => args.create_tables = true,
            "--pairs-table" => args.pairs_table = Some(value()?),
            "--calls-table" => args.calls_table = Some(value()?),
            "--pairs-file" => args.files.push(value()?),
            "--sma-numbers" => args.sma_numbers.extend(list(value()?)),
            "--connect-numbers" => args.connect_numbers.extend(list(value()?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn table_name(arg: Option<String>, def: &tables::TableDef) -> Result<String, String> {
    arg.or_else(|| process_env().optional(def.env_var))
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
        return Err(format!("no pairs given\n{USAGE}"));
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
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
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

    fn args(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_lists_and_flags() {
        let a = args(&[
            "--create-tables",
            "--sma-numbers",
            "+18005557777, +18005558888",
            "--connect-numbers",
            "+18005551111",
            "--pairs-table",
            "p",
        ])
        .unwrap_or_default();
        assert!(a.create_tables);
        assert_eq!(a.sma_numbers.len(), 2);
        assert_eq!(a.pairs_table.as_deref(), Some("p"));
        assert!(args(&["--pairs-file"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }
}
