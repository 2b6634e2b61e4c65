//! `main` with a broken configuration: one JSON log line naming the variable and what is wrong
//! with it, and exit status 78 (EX_CONFIG), instead of a Rust `Debug` dump on stderr.

use std::process::Command;

#[test]
fn a_missing_setting_is_one_json_line_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_call-signaling"))
        .env_clear()
        .env("RUST_LOG", "info")
        .output()
        .expect("the function binary runs");
    takeback_common::telemetry::capture::assert_one_configuration_error_line(&out);
}
