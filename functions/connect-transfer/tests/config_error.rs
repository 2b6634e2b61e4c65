//! `main` with a broken configuration: one JSON log line naming the variable and what is wrong
//! with it, and exit status 78 (EX_CONFIG), instead of a Rust `Debug` dump on stderr.

use std::process::Command;

#[test]
fn a_missing_setting_is_one_json_line_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_connect-transfer"))
        .env_clear()
        .env("RUST_LOG", "info")
        .output()
        .expect("the function binary runs");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
    assert_eq!(line["level"], "ERROR", "{line}");
    assert_eq!(line["fields"]["message"], "configuration error", "{line}");
    let variable = line["fields"]["variable"].as_str().unwrap_or_default();
    assert!(
        !variable.is_empty()
            && variable
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
        "names an environment variable: {line}"
    );
    assert_eq!(line["fields"]["problem"], "is not set", "{line}");
}
