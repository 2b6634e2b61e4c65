//! `infra/contact-flow.json` is well formed Amazon Connect flow language and agrees with the
//! two functions: the parameter names they read, the `result` values and keys they answer, and
//! the "hold, don't disconnect" rule after a transfer request.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;
use takeback_connect::request::{TRANSACTION_ID_ATTRIBUTE, param};
use takeback_connect::{LookupResponse, LookupResult, TransferResult};
use takeback_pairs::{LiveClaim, PairKey};

const LOOKUP_ARN: &str = "${ConnectLookupFunctionArn}";
const TRANSFER_ARN: &str = "${ConnectTransferFunctionArn}";

fn flow() -> Value {
    let path = format!(
        "{}/../../infra/contact-flow.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("test set-up"))
        .expect("test set-up")
}

fn actions(flow: &Value) -> BTreeMap<String, Value> {
    flow["Actions"]
        .as_array()
        .expect("test set-up")
        .iter()
        .map(|a| {
            (
                a["Identifier"].as_str().expect("test set-up").to_owned(),
                a.clone(),
            )
        })
        .collect()
}

/// Every (label, target) edge out of an action: "next", "error:<type>", "if:<operand>".
fn edges(action: &Value) -> Vec<(String, String)> {
    let t = &action["Transitions"];
    let mut out = Vec::new();
    if let Some(n) = t["NextAction"].as_str() {
        out.push(("next".to_owned(), n.to_owned()));
    }
    for c in t["Conditions"].as_array().into_iter().flatten() {
        let operand = c["Condition"]["Operands"][0].as_str().unwrap_or("?");
        out.push((
            format!("if:{operand}"),
            c["NextAction"].as_str().expect("test set-up").to_owned(),
        ));
    }
    for e in t["Errors"].as_array().into_iter().flatten() {
        let kind = e["ErrorType"].as_str().expect("test set-up");
        out.push((
            format!("error:{kind}"),
            e["NextAction"].as_str().expect("test set-up").to_owned(),
        ));
    }
    out
}

fn result_names<T: serde::Serialize>(values: &[T]) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| {
            serde_json::to_value(v)
                .expect("test set-up")
                .as_str()
                .expect("test set-up")
                .to_owned()
        })
        .collect()
}

#[test]
fn the_flow_is_well_formed() {
    let flow = flow();
    assert_eq!(flow["Version"], "2019-10-30");
    let actions = actions(&flow);
    assert_eq!(
        actions.len(),
        flow["Actions"].as_array().unwrap().len(),
        "unique identifiers"
    );
    assert!(actions.len() <= 250);

    const KNOWN: &[&str] = &[
        "UpdateFlowLoggingBehavior",
        "MessageParticipant",
        "InvokeLambdaFunction",
        "UpdateContactAttributes",
        "Compare",
        "GetParticipantInput",
        "Loop",
        "DisconnectParticipant",
    ];
    for (id, action) in &actions {
        assert!(id.len() <= 50, "{id}");
        assert!(
            !id.chars().any(|c| "%:(\\/)=$,;[]{}".contains(c)),
            "{id} has a character the flow language forbids"
        );
        let kind = action["Type"].as_str().unwrap();
        assert!(KNOWN.contains(&kind), "{id}: unexpected type {kind}");
        let out = edges(action);
        if kind == "DisconnectParticipant" {
            assert!(out.is_empty(), "{id}: a disconnect ends the flow");
        } else {
            assert!(out.iter().any(|(l, _)| l == "next"), "{id}: no NextAction");
        }
        for (label, target) in out {
            assert!(
                actions.contains_key(&target),
                "{id} --{label}--> unknown {target}"
            );
        }
        if matches!(
            kind,
            "MessageParticipant"
                | "InvokeLambdaFunction"
                | "UpdateContactAttributes"
                | "GetParticipantInput"
        ) {
            assert!(
                edges(action)
                    .iter()
                    .any(|(l, _)| l == "error:NoMatchingError"),
                "{id}: must handle NoMatchingError"
            );
        }
        if kind == "Compare" {
            assert!(
                edges(action)
                    .iter()
                    .any(|(l, _)| l == "error:NoMatchingCondition"),
                "{id}"
            );
        }
        if kind == "Loop" {
            let labels: BTreeSet<_> = edges(action).into_iter().map(|(l, _)| l).collect();
            assert!(
                labels.contains("if:ContinueLooping") && labels.contains("if:DoneLooping"),
                "{id}"
            );
        }
    }

    // Everything is reachable from the start.
    let start = flow["StartAction"].as_str().unwrap();
    let mut seen = BTreeSet::from([start.to_owned()]);
    let mut queue = VecDeque::from([start.to_owned()]);
    while let Some(id) = queue.pop_front() {
        for (_, next) in edges(&actions[&id]) {
            if seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    let all: BTreeSet<_> = actions.keys().cloned().collect();
    assert_eq!(seen, all, "unreachable actions");
}

#[test]
fn lambda_blocks_match_the_functions() {
    let flow = flow();
    let actions = actions(&flow);
    let known_params = [
        param::CALLING_NUMBER,
        param::CALLED_NUMBER,
        param::TRANSACTION_ID,
        param::TRANSFER_TARGET,
        param::TRANSFER_TARGET_ARN,
    ];
    let lookup_results = result_names(&[
        LookupResult::Found,
        LookupResult::NotFound,
        LookupResult::Error,
    ]);
    let transfer_results = result_names(&[
        TransferResult::Transferring,
        TransferResult::NotFound,
        TransferResult::InvalidTarget,
        TransferResult::Error,
    ]);
    let mut lookups = 0;
    let mut transfers = 0;
    for (id, action) in actions
        .iter()
        .filter(|(_, a)| a["Type"] == "InvokeLambdaFunction")
    {
        let p = &action["Parameters"];
        let seconds: u32 = p["InvocationTimeLimitSeconds"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=8).contains(&seconds), "{id}: Connect allows 1-8 s");
        assert_eq!(
            p["ResponseValidation"]["ResponseType"], "STRING_MAP",
            "{id}"
        );
        let attrs = p["LambdaInvocationAttributes"].as_object().unwrap();
        for key in attrs.keys() {
            assert!(
                known_params.contains(&key.as_str()),
                "{id}: the functions do not read {key}"
            );
        }
        let results = match p["LambdaFunctionARN"].as_str().unwrap() {
            LOOKUP_ARN => {
                lookups += 1;
                assert_eq!(attrs[param::CALLING_NUMBER], "$.CustomerEndpoint.Address");
                assert_eq!(attrs[param::CALLED_NUMBER], "$.SystemEndpoint.Address");
                &lookup_results
            }
            TRANSFER_ARN => {
                transfers += 1;
                assert_eq!(
                    attrs[param::TRANSACTION_ID],
                    format!("$.Attributes.{TRANSACTION_ID_ATTRIBUTE}").as_str(),
                    "{id}"
                );
                &transfer_results
            }
            other => panic!("{id}: unexpected Lambda ARN {other}"),
        };
        // The answer is branched on right away, only on values the function produces.
        let next = &actions[action["Transitions"]["NextAction"].as_str().unwrap()];
        assert_eq!(
            next["Type"], "Compare",
            "{id} must be followed by a branch on result"
        );
        assert_eq!(next["Parameters"]["ComparisonValue"], "$.External.result");
        for (label, _) in edges(next) {
            if let Some(operand) = label.strip_prefix("if:") {
                assert!(
                    results.contains(operand),
                    "{id}: {operand} is not a result it returns"
                );
            }
        }
    }
    assert_eq!((lookups, transfers), (1, 2));
}

#[test]
fn stored_attributes_come_from_keys_the_lookup_returns() {
    let claim = LiveClaim {
        pair: PairKey {
            sma_number: "+1".into(),
            connect_number: "+2".into(),
        },
        transaction_id: "t".into(),
        original_calling_number: "+3".into(),
        original_called_number: "+4".into(),
        call_timestamp_ms: 1,
        contact_id: None,
        released: false,
    };
    let found = serde_json::to_value(LookupResponse::found(&claim)).unwrap();
    let flow = flow();
    let mut stores_transaction = false;
    for action in flow["Actions"].as_array().unwrap() {
        if action["Type"] != "UpdateContactAttributes" {
            continue;
        }
        for (name, value) in action["Parameters"]["Attributes"].as_object().unwrap() {
            let key = value.as_str().unwrap().strip_prefix("$.External.").unwrap();
            assert!(found.get(key).is_some(), "the lookup never returns {key}");
            stores_transaction |= name == TRANSACTION_ID_ATTRIBUTE && key == "transaction_id";
        }
    }
    assert!(
        stores_transaction,
        "the transfer blocks read $.Attributes.transaction_id"
    );
}

/// After `result=transferring` the flow must hold, so that the SMA's hangup of the Connect leg
/// ends the contact: no disconnect is reachable without first going round a hold loop.
#[test]
fn the_flow_holds_after_a_transfer_request() {
    let flow = flow();
    let actions = actions(&flow);
    let check = actions
        .values()
        .find(|a| a["Type"] == "Compare" && edges(a).iter().any(|(l, _)| l == "if:transferring"))
        .unwrap();
    let (_, start) = edges(check)
        .into_iter()
        .find(|(l, _)| l == "if:transferring")
        .unwrap();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut queue = VecDeque::from([start]);
    let mut loops = 0;
    while let Some(id) = queue.pop_front() {
        let action = &actions[&id];
        assert_ne!(
            action["Type"], "DisconnectParticipant",
            "disconnect without holding first"
        );
        if action["Type"] == "Loop" {
            loops += 1;
            // Only the loop's continue branch is followed: DoneLooping ends the hold.
            let (_, body) = edges(action)
                .into_iter()
                .find(|(l, _)| l == "if:ContinueLooping")
                .unwrap();
            if seen.insert(body.clone()) {
                queue.push_back(body);
            }
            continue;
        }
        for (_, next) in edges(action) {
            if seen.insert(next.clone()) {
                queue.push_back(next);
            }
        }
    }
    assert!(loops >= 1, "a hold loop");
}

/// A failed transfer whose intent was recorded must end the contact without an apology: the
/// SMA handler transfers the caller from the intent when Connect's leg hangs up.
#[test]
fn a_failed_transfer_with_a_recorded_intent_ends_the_contact_silently() {
    let flow: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/contact-flow.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let actions = flow["Actions"].as_array().unwrap();
    let by_id = |id: &str| actions.iter().find(|a| a["Identifier"] == id).unwrap();
    let check = by_id("CheckTransferResult");
    let on_error = check["Transitions"]["NextAction"].as_str().unwrap();
    let intent = by_id(on_error);
    assert_eq!(
        intent["Parameters"]["ComparisonValue"],
        "$.External.intent_recorded"
    );
    let when_true = intent["Transitions"]["Conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Condition"]["Operands"][0] == "true")
        .unwrap()["NextAction"]
        .as_str()
        .unwrap();
    assert_eq!(by_id(when_true)["Type"], "DisconnectParticipant");
}
