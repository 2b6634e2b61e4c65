//! The Alexa functions' time budgets (`takeback_alexa::budget`, checked among themselves at
//! compile time) against `template.yaml`: each function's `Timeout` is the one its deadline was
//! derived for, and their log level is a plain level.
//!
//! yaml-rust2 loads CloudFormation's short-form tags (`!Ref X`) as their plain values.

use std::time::Duration;
use takeback_alexa::budget;
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
    YamlLoader::load_from_str(&text)
        .expect("template.yaml is YAML")
        .into_iter()
        .next()
        .expect("template.yaml has a document")
}

fn timeout(doc: &Yaml, function: &str) -> Duration {
    let secs = doc["Resources"][function]["Properties"]["Timeout"]
        .as_i64()
        .unwrap_or_else(|| panic!("{function} has no Timeout"));
    Duration::from_secs(u64::try_from(secs).expect("a positive Timeout"))
}

#[test]
fn the_skill_answers_before_alexa_gives_up_and_lambda_stops_it() {
    let doc = template();
    let t = timeout(&doc, "CallSignalingFunction");
    assert_eq!(
        t,
        budget::SKILL_LAMBDA_TIMEOUT,
        "CallSignalingFunction Timeout"
    );
    assert!(
        t < budget::ALEXA_WAIT_LIMIT,
        "Amazon: below the 8 s Alexa waits"
    );
    assert!(budget::SKILL_DEADLINE + budget::MIN_LAMBDA_MARGIN <= t);
    // One DynamoDB operation (takeback-sdk's bound) fits well inside the deadline.
    assert!(takeback_sdk::OPERATION_TIMEOUT * 2 < budget::SKILL_DEADLINE);
    // No deployed webhook budget beyond the deadline.
    let env = &doc["Resources"]["CallSignalingFunction"]["Properties"]["Environment"]["Variables"];
    if let Some(ms) = env["WEBHOOK_BUDGET_MS"].as_i64() {
        assert!(Duration::from_millis(ms as u64) < budget::SKILL_DEADLINE);
    }
}

#[test]
fn the_signaling_api_answers_before_the_backend_gives_up_and_lambda_stops_it() {
    let doc = template();
    let t = timeout(&doc, "SignalingApiFunction");
    assert_eq!(
        t,
        budget::SIGNALING_API_LAMBDA_TIMEOUT,
        "SignalingApiFunction Timeout"
    );
    assert!(t <= budget::BACKEND_WAIT_LIMIT);
    assert!(budget::SIGNALING_API_DEADLINE + budget::MIN_LAMBDA_MARGIN <= t);
    assert!(takeback_sdk::OPERATION_TIMEOUT * 2 < budget::SIGNALING_API_DEADLINE);
}

#[test]
fn the_alexa_functions_log_at_a_plain_level() {
    let doc = template();
    let allowed: Vec<&str> = doc["Parameters"]["AlexaLogLevel"]["AllowedValues"]
        .as_vec()
        .expect("AlexaLogLevel has AllowedValues")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(!allowed.is_empty());
    for level in &allowed {
        assert!(
            ["error", "warn", "info", "debug", "trace"].contains(level),
            "{level} is not a plain level"
        );
    }
    for function in ["CallSignalingFunction", "SignalingApiFunction"] {
        let rust_log =
            &doc["Resources"][function]["Properties"]["Environment"]["Variables"]["RUST_LOG"];
        assert_eq!(
            rust_log.as_str(),
            Some("AlexaLogLevel"),
            "{function} RUST_LOG"
        );
    }
}
