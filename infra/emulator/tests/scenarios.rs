//! The binary over the scenario files (in-memory store, so it needs nothing running): every
//! scenario in `events/scenarios` passes, and a scenario whose expectation is wrong makes the
//! emulator exit non-zero. `make scenarios` runs the same files against DynamoDB Local too.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn emulator(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_emulator"))
        .current_dir(root())
        .args(["--store", "memory", "--json"])
        .args(args)
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .output()
        .expect("run the emulator binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), doc, stderr)
}

#[test]
fn every_scenario_passes_in_memory() {
    let (code, doc, stderr) = emulator(&["events/scenarios"]);
    let failed: Vec<String> = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["passed"] != true)
        .map(|s| {
            let checks: Vec<&str> = s["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["ok"] != true)
                .filter_map(|c| c["what"].as_str())
                .collect();
            format!("{}: {}", s["name"], checks.join("; "))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}\n{stderr}");
    assert_eq!(code, 0);
    assert!(doc["scenarios"].as_array().unwrap().len() >= 8);
}

#[test]
fn json_output_carries_a_timeline_per_call() {
    let (_, doc, _) = emulator(&["events/scenarios/happy-path.json"]);
    let call = &doc["scenarios"][0]["calls"][0];
    let events: Vec<&str> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events.first(), Some(&"NEW_INBOUND_CALL"));
    assert!(events.contains(&"CALL_UPDATE_REQUESTED"), "{events:?}");
    assert_eq!(call["outcome"], "transferred");
    // Each invocation line has the event sent and the response received.
    let first = &call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"].is_string())
        .unwrap()["detail"];
    assert_eq!(first["event"]["InvocationEventType"], "NEW_INBOUND_CALL");
    assert_eq!(first["response"]["Actions"][0]["Type"], "CallAndBridge");
}

#[test]
fn a_wrong_expectation_fails_the_run() {
    let dir = std::env::temp_dir().join(format!("emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut scenario: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events/scenarios/happy-path.json")).unwrap(),
    )
    .unwrap();
    scenario["expect"]["all"]["target"] = Value::from("9999");
    let file = dir.join("wrong.json");
    std::fs::write(&file, scenario.to_string()).unwrap();
    let (code, doc, _) = emulator(&[file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 1);
    assert_eq!(doc["passed"], false);
    let failed: Vec<&str> = doc["scenarios"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["what"].as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("guest: reached target ") && failed[0].ends_with("(expected 9999)"),
        "{failed:?}"
    );
}

#[test]
fn the_shipped_contact_flow_uses_only_interpreted_blocks() {
    let text = std::fs::read_to_string(root().join("infra/contact-flow.json")).unwrap();
    let flow = emulator::contact_flow_interpreter::ParsedFlow::parse(&text).unwrap();
    let mut data = emulator::contact_flow_interpreter::FlowContactState::default();
    for block in flow.blocks.values() {
        let step = emulator::contact_flow_interpreter::step(block, &mut data);
        assert!(
            !matches!(
                step,
                emulator::contact_flow_interpreter::FlowStep::Unsupported { .. }
            ),
            "block {} ({}) is not interpreted by the emulator",
            block.id,
            block.kind
        );
    }
}
