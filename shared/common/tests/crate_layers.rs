//! The crate graph states the layers (docs/architecture.md), and this test keeps it: the pure
//! protocol and decision crates build without any AWS SDK, HTTP stack, async runtime or adapter
//! crate, and each function pulls in only the adapters it uses. It asks `cargo tree` for each
//! package's normal dependencies resolved as a build of that package alone, so features that
//! other packages enable (the dynamo crate's `alexa` store) do not blur the picture.
//!
//! Every crate depends on this one, so the workspace's layer rule lives here.

use std::collections::BTreeSet;
use std::process::Command;

/// Crates that decide and model, and nothing else.
const PURE: &[&str] = &[
    "takeback-common",
    "takeback-pairs",
    "takeback-sma",
    "takeback-connect",
    "takeback-alexa",
];

/// The adapter crates of this workspace.
const ADAPTERS: &[&str] = &[
    "takeback-sdk",
    "takeback-dynamo",
    "takeback-http",
    "takeback-chime",
    "takeback-secrets",
];

/// Package-name prefixes of what a pure crate must never reach, even transitively.
const IO_STACKS: &[&str] = &[
    "aws-", "aws_", "hyper", "h2", "http", "reqwest", "tokio", "mio", "rustls", "lambda_",
];

fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != package)
        .map(str::to_owned)
        .collect()
}

#[test]
fn pure_crates_reach_no_sdk_http_stack_runtime_or_adapter() {
    for package in PURE {
        let deps = normal_dependencies(package);
        let offending: Vec<&String> = deps
            .iter()
            .filter(|d| {
                IO_STACKS.iter().any(|p| d.starts_with(p)) || ADAPTERS.contains(&d.as_str())
            })
            .collect();
        assert!(
            offending.is_empty(),
            "{package} must stay pure, but depends on {offending:?}"
        );
    }
}

#[test]
fn functions_pull_in_only_the_adapters_they_use() {
    let expectations: &[(&str, &[&str], &[&str])] = &[
        (
            "sma-handler",
            &["takeback-sma", "takeback-dynamo"],
            &[
                "takeback-alexa",
                "takeback-http",
                "takeback-chime",
                "aws-sdk-chimesdkvoice",
                "takeback-secrets",
            ],
        ),
        (
            "connect-lookup",
            &["takeback-connect", "takeback-dynamo"],
            &[
                "takeback-alexa",
                "takeback-http",
                "takeback-chime",
                "aws-sdk-chimesdkvoice",
                "takeback-secrets",
            ],
        ),
        (
            "connect-transfer",
            &["takeback-connect", "takeback-dynamo", "takeback-chime"],
            &["takeback-alexa", "takeback-http", "takeback-secrets"],
        ),
        (
            "call-signaling",
            &[
                "takeback-alexa",
                "takeback-dynamo",
                "takeback-http",
                "takeback-secrets",
            ],
            &["takeback-sma", "takeback-connect", "takeback-chime"],
        ),
        (
            "signaling-api",
            &[
                "takeback-alexa",
                "takeback-dynamo",
                "takeback-http",
                "takeback-secrets",
            ],
            &["takeback-sma", "takeback-connect", "takeback-chime"],
        ),
    ];
    for (function, needs, never) in expectations {
        let deps = normal_dependencies(function);
        for need in *needs {
            assert!(deps.contains(*need), "{function} should use {need}");
        }
        for not in *never {
            assert!(!deps.contains(*not), "{function} must not pull in {not}");
        }
    }
}
