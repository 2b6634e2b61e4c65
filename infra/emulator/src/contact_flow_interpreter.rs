//! An interpreter for the Amazon Connect flow language (the JSON a flow is exported/imported
//! as: `{"Version","StartAction","Actions":[{"Identifier","Type","Parameters","Transitions"}]}`).
//!
//! Blocks are interpreted generically by `Type`, and `Transitions` are followed the way Connect
//! does: `NextAction` on success, the first matching `Conditions` entry for branching blocks,
//! and `Errors` by `ErrorType` (`NoMatchingError` as the catch-all). Values are resolved from
//! JSONPath references: a whole value like `"$.External.transaction_id"` or references embedded
//! in prompt text. Supported references: `$.External.<key>`, `$.Attributes.<key>`,
//! `$.CustomerEndpoint.Address`, `$.SystemEndpoint.Address`, `$.ContactId`,
//! `$.InitialContactId`, `$.Channel`, `$.InstanceARN`, `$.StoredCustomerInput`.
//!
//! This module is pure: it says what a block wants (play a prompt for so long, invoke a Lambda,
//! collect input, disconnect) and, given the result, which block comes next. The contact driver
//! (the `connect` module, which uses this one) supplies time, Lambda invocations and caller
//! input.
//!
//! Its names say "flow" ([`ParsedFlow`], [`FlowBlock`], [`FlowStep`], ...) to keep them apart from
//! the SMA's call state machine (`takeback_sma::call_machine`) and from the Connect event types
//! of `takeback_connect` (its `ContactData` is what a Lambda receives; [`FlowContactState`] is
//! what the interpreter keeps while the flow runs).
//!
//! Interpreted: `MessageParticipant`, `MessageParticipantIteratively`, `GetParticipantInput`,
//! `InvokeLambdaFunction`, `UpdateContactAttributes`, `Compare`, `Loop`, `Wait`,
//! `DisconnectParticipant`, `EndFlowExecution`, and the settings blocks that only change how the
//! contact is handled (`UpdateFlowLoggingBehavior`, `UpdateContactRecordingBehavior`,
//! `UpdateContactTextToSpeechVoice`, `UpdateContactData`, `UpdateContactEventHooks`,
//! `UpdateContactTargetQueue`), which continue at `NextAction`. Any other type is reported as
//! unsupported (a scenario failure), so a flow that needs more emulation says so loudly.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use crate::model::{MIN_PROMPT_MS, speech_ms};

#[derive(Debug, thiserror::Error)]
pub enum FlowParseError {
    #[error("the flow is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the flow has no {0}")]
    Missing(&'static str),
    #[error("action #{0} has no Identifier or Type")]
    BadAction(usize),
    #[error("StartAction {0:?} is not an action of the flow")]
    BadStart(String),
    #[error("action {from:?} transitions to {to:?}, which is not an action of the flow")]
    DanglingTransition { from: String, to: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlowCondition {
    pub operator: String,
    pub operands: Vec<String>,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FlowBlock {
    pub id: String,
    pub kind: String,
    pub params: Value,
    pub next: Option<String>,
    /// `(ErrorType, NextAction)`.
    pub errors: Vec<(String, String)>,
    pub conditions: Vec<FlowCondition>,
}

#[derive(Debug, Clone)]
pub struct ParsedFlow {
    pub start: String,
    pub blocks: HashMap<String, FlowBlock>,
}

impl ParsedFlow {
    pub fn parse(text: &str) -> Result<Self, FlowParseError> {
        Self::from_value(serde_json::from_str(text)?)
    }

    pub fn from_value(v: Value) -> Result<Self, FlowParseError> {
        let start = v
            .get("StartAction")
            .and_then(Value::as_str)
            .ok_or(FlowParseError::Missing("StartAction"))?
            .to_owned();
        let actions = v
            .get("Actions")
            .and_then(Value::as_array)
            .ok_or(FlowParseError::Missing("Actions"))?;
        let mut blocks = HashMap::new();
        for (i, a) in actions.iter().enumerate() {
            let id = a
                .get("Identifier")
                .and_then(Value::as_str)
                .ok_or(FlowParseError::BadAction(i))?;
            let kind = a
                .get("Type")
                .and_then(Value::as_str)
                .ok_or(FlowParseError::BadAction(i))?;
            let t = a.get("Transitions").cloned().unwrap_or(Value::Null);
            let next = t
                .get("NextAction")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let errors = t
                .get("Errors")
                .and_then(Value::as_array)
                .map(|errs| {
                    errs.iter()
                        .filter_map(|e| {
                            Some((
                                e.get("ErrorType")?.as_str()?.to_owned(),
                                e.get("NextAction")?.as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let conditions = t
                .get("Conditions")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| {
                            let cond = c.get("Condition")?;
                            Some(FlowCondition {
                                operator: cond.get("Operator")?.as_str()?.to_owned(),
                                operands: cond
                                    .get("Operands")
                                    .and_then(Value::as_array)
                                    .map(|o| o.iter().map(value_text).collect())
                                    .unwrap_or_default(),
                                next: c.get("NextAction")?.as_str()?.to_owned(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            blocks.insert(
                id.to_owned(),
                FlowBlock {
                    id: id.to_owned(),
                    kind: kind.to_owned(),
                    params: a.get("Parameters").cloned().unwrap_or_else(|| json!({})),
                    next,
                    errors,
                    conditions,
                },
            );
        }
        if !blocks.contains_key(&start) {
            return Err(FlowParseError::BadStart(start));
        }
        for b in blocks.values() {
            let targets = b
                .next
                .iter()
                .chain(b.errors.iter().map(|(_, n)| n))
                .chain(b.conditions.iter().map(|c| &c.next));
            for to in targets {
                if !blocks.contains_key(to) {
                    return Err(FlowParseError::DanglingTransition {
                        from: b.id.clone(),
                        to: to.clone(),
                    });
                }
            }
        }
        Ok(Self { start, blocks })
    }

    pub fn block(&self, id: &str) -> Option<&FlowBlock> {
        self.blocks.get(id)
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What Connect knows about the contact while the flow runs.
#[derive(Debug, Clone, Default)]
pub struct FlowContactState {
    pub contact_id: String,
    pub customer_address: String,
    pub system_address: String,
    pub instance_arn: String,
    pub attributes: BTreeMap<String, String>,
    /// The last Lambda response (`$.External`).
    pub external: Map<String, Value>,
    pub stored_input: Option<String>,
    /// Per `Loop` block: how many times it said `ContinueLooping`.
    pub loops: HashMap<String, u64>,
}

impl FlowContactState {
    /// Resolves one reference (`$.External.x`, ...); `None` when it names nothing known.
    pub fn lookup(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix("$.")?;
        let (head, tail) = match rest.split_once('.') {
            Some((h, t)) => (h, Some(t)),
            None => (rest, None),
        };
        match (head, tail) {
            ("External", Some(key)) => self.external.get(key).map(value_text),
            ("Attributes", Some(key)) => self.attributes.get(key).cloned(),
            ("CustomerEndpoint", Some("Address")) => Some(self.customer_address.clone()),
            ("SystemEndpoint", Some("Address")) => Some(self.system_address.clone()),
            ("CustomerEndpoint" | "SystemEndpoint", Some("Type")) => {
                Some("TELEPHONE_NUMBER".into())
            }
            ("ContactId" | "InitialContactId", None) => Some(self.contact_id.clone()),
            ("Channel", None) => Some("VOICE".into()),
            ("InstanceARN", None) => Some(self.instance_arn.clone()),
            ("StoredCustomerInput", None) => self.stored_input.clone(),
            _ => None,
        }
    }

    /// A whole-value reference resolves to its value (empty when unknown, as in Connect);
    /// references embedded in text are replaced in place.
    pub fn resolve(&self, text: &str) -> String {
        if !text.contains("$.") {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find("$.") {
            out.push_str(&rest[..pos]);
            let candidate = &rest[pos..];
            let len = 2 + candidate[2..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
                .unwrap_or(candidate.len() - 2);
            let reference = candidate[..len].trim_end_matches('.');
            out.push_str(&self.lookup(reference).unwrap_or_default());
            rest = &candidate[reference.len()..];
        }
        out.push_str(rest);
        out
    }

    /// The `ContactFlowEvent` a Lambda receives (the shape `takeback_connect::ConnectEvent` reads).
    pub fn lambda_event(&self, parameters: &BTreeMap<String, String>) -> Value {
        let endpoint = |a: &str| json!({"Address": a, "Type": "TELEPHONE_NUMBER"});
        json!({
            "Name": "ContactFlowEvent",
            "Details": {
                "ContactData": {
                    "Attributes": self.attributes,
                    "Channel": "VOICE",
                    "ContactId": self.contact_id,
                    "CustomerEndpoint": endpoint(&self.customer_address),
                    "SystemEndpoint": endpoint(&self.system_address),
                    "InitialContactId": self.contact_id,
                    "InitiationMethod": "INBOUND",
                    "InstanceARN": self.instance_arn,
                    "PreviousContactId": self.contact_id,
                    "Queue": null,
                    "MediaStreams": {"Customer": {"Audio": null}},
                    "LanguageCode": "en-US"
                },
                "Parameters": parameters
            }
        })
    }
}

/// How Connect validates a Lambda response (`ResponseValidation.ResponseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseValidation {
    StringMap,
    Json,
}

/// What a block asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowStep {
    /// Go on at `next` after `cost_ms` (a prompt being spoken, a wait); `next: None` means the
    /// flow ran off its end.
    Next {
        next: Option<String>,
        cost_ms: u64,
        note: String,
    },
    Invoke {
        function_arn: String,
        parameters: BTreeMap<String, String>,
        time_limit_ms: u64,
        validation: ResponseValidation,
    },
    Input {
        prompt: String,
        prompt_ms: u64,
        timeout_ms: u64,
        store: bool,
        max_digits: usize,
    },
    Disconnect {
        note: String,
    },
    Unsupported {
        kind: String,
    },
}

fn param_str(params: &Value, key: &str) -> Option<String> {
    params.get(key).map(value_text)
}

fn param_u64(params: &Value, key: &str) -> Option<u64> {
    params.get(key).and_then(|v| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// What a prompt says (SSML tags removed) and how long it takes: the words at the speech rate
/// plus any SSML `<break time="…"/>`.
fn prompt(params: &Value, data: &FlowContactState) -> (String, u64) {
    if let Some(text) = param_str(params, "Text") {
        let text = data.resolve(&text);
        let ms = speech_ms(&text);
        return (text, ms);
    }
    if let Some(ssml) = param_str(params, "SSML") {
        let ssml = data.resolve(&ssml);
        let text = strip_tags(&ssml);
        let breaks = ssml_breaks_ms(&ssml);
        let ms = if text.trim().is_empty() {
            breaks.max(100)
        } else {
            speech_ms(&text) + breaks
        };
        return (text, ms);
    }
    if let Some(prompt) = param_str(params, "PromptId") {
        return (format!("[prompt {}]", data.resolve(&prompt)), 3000);
    }
    (String::new(), MIN_PROMPT_MS)
}

/// Total of the `<break time="2s"/>` / `time="500ms"` pauses in an SSML text.
pub fn ssml_breaks_ms(ssml: &str) -> u64 {
    let mut total = 0;
    for part in ssml.split("<break").skip(1) {
        let tag = part.split('>').next().unwrap_or_default();
        let Some(time) = tag.split("time=").nth(1) else {
            continue;
        };
        let value = time
            .trim_start_matches(['"', '\''])
            .split(['"', '\''])
            .next()
            .unwrap_or_default();
        let (number, unit) = value.split_at(
            value
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(value.len()),
        );
        let n: f64 = number.parse().unwrap_or(0.0);
        total += match unit {
            "ms" => n as u64,
            "s" => (n * 1000.0) as u64,
            _ => 0,
        };
    }
    total
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Ids cut to 8 characters, ARNs to their last part: timeline lines stay readable.
pub fn shorten(v: &str) -> String {
    if v.starts_with("arn:") {
        return v.rsplit(':').next().unwrap_or(v).to_owned();
    }
    let is_id = v.len() == 36 && v.bytes().filter(|b| *b == b'-').count() == 4;
    if is_id {
        format!("{}…", &v[..8])
    } else {
        v.to_owned()
    }
}

fn quoted(text: &str) -> String {
    let short: String = text.chars().take(70).collect();
    if short.len() < text.len() {
        format!("\"{short}…\"")
    } else {
        format!("\"{short}\"")
    }
}

/// Blocks that only change settings of the contact and continue at `NextAction`.
const SETTINGS_BLOCKS: &[&str] = &[
    "UpdateFlowLoggingBehavior",
    "UpdateContactRecordingBehavior",
    "UpdateContactTextToSpeechVoice",
    "UpdateContactData",
    "UpdateContactEventHooks",
    "UpdateContactTargetQueue",
    "UpdateContactRoutingBehavior",
    "UpdateContactMediaProcessing",
];

/// What `block` asks for; blocks without side effects (attributes, compare, loop) are applied
/// to `data` here and answer [`FlowStep::Next`] at no cost.
pub fn step(block: &FlowBlock, data: &mut FlowContactState) -> FlowStep {
    let p = &block.params;
    match block.kind.as_str() {
        "MessageParticipant" | "MessageParticipantIteratively" => {
            let (text, ms) = prompt(p, data);
            let shown = if text.trim().is_empty() {
                format!("{:.1} s of silence", ms as f64 / 1000.0)
            } else {
                quoted(&text)
            };
            FlowStep::Next {
                next: block.next.clone(),
                cost_ms: ms,
                note: format!("plays {shown}"),
            }
        }
        "GetParticipantInput" => {
            let (text, prompt_ms) = prompt(p, data);
            let store = param_str(p, "StoreInput").is_some_and(|s| s.eq_ignore_ascii_case("true"));
            let max_digits = p
                .get("InputValidation")
                .and_then(|v| v.get("CustomValidation"))
                .and_then(|v| param_u64(v, "MaximumLength"))
                .map(|n| n as usize)
                .unwrap_or(if store { 20 } else { 1 });
            FlowStep::Input {
                prompt_ms,
                prompt: text,
                timeout_ms: param_u64(p, "InputTimeLimitSeconds").unwrap_or(5) * 1000,
                store,
                max_digits,
            }
        }
        "InvokeLambdaFunction" => {
            let parameters = p
                .get("LambdaInvocationAttributes")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), data.resolve(&value_text(v))))
                        .collect()
                })
                .unwrap_or_default();
            let validation = match p
                .get("ResponseValidation")
                .and_then(|v| v.get("ResponseType"))
                .and_then(Value::as_str)
            {
                Some("JSON") => ResponseValidation::Json,
                _ => ResponseValidation::StringMap,
            };
            FlowStep::Invoke {
                function_arn: data.resolve(&param_str(p, "LambdaFunctionARN").unwrap_or_default()),
                parameters,
                time_limit_ms: param_u64(p, "InvocationTimeLimitSeconds")
                    .unwrap_or(3)
                    .clamp(1, 8)
                    * 1000,
                validation,
            }
        }
        "UpdateContactAttributes" => {
            let mut set = Vec::new();
            if let Some(attrs) = p.get("Attributes").and_then(Value::as_object) {
                for (k, v) in attrs {
                    let value = data.resolve(&value_text(v));
                    set.push(format!("{k}={}", shorten(&value)));
                    data.attributes.insert(k.clone(), value);
                }
            }
            FlowStep::Next {
                next: block.next.clone(),
                cost_ms: 0,
                note: format!("sets {}", set.join(", ")),
            }
        }
        "Compare" => {
            let value = data.resolve(&param_str(p, "ComparisonValue").unwrap_or_default());
            let next = block
                .conditions
                .iter()
                .find(|c| condition_holds(c, &value))
                .map(|c| c.next.clone())
                .or_else(|| error_branch(block, "NoMatchingCondition"));
            FlowStep::Next {
                next,
                cost_ms: 0,
                note: format!("compares {value:?}"),
            }
        }
        "Loop" => {
            let count = param_u64(p, "LoopCount").unwrap_or(0);
            let done = data.loops.get(&block.id).copied().unwrap_or(0);
            let result = if done < count {
                data.loops.insert(block.id.clone(), done + 1);
                "ContinueLooping"
            } else {
                data.loops.remove(&block.id);
                "DoneLooping"
            };
            let next = block
                .conditions
                .iter()
                .find(|c| condition_holds(c, result))
                .map(|c| c.next.clone())
                .or_else(|| block.next.clone());
            FlowStep::Next {
                next,
                cost_ms: 0,
                note: format!("{result} ({done}/{count})"),
            }
        }
        "Wait" => {
            let seconds = param_u64(p, "TimeoutSeconds")
                .or_else(|| param_u64(p, "TimeLimitSeconds"))
                .unwrap_or(0);
            // Nothing in this emulation ends a wait early: it runs out.
            let next = block
                .conditions
                .iter()
                .find(|c| {
                    c.operands
                        .iter()
                        .any(|o| o == "WaitCompleted" || o == "TimeLimitExceeded")
                })
                .map(|c| c.next.clone())
                .or_else(|| error_branch(block, "TimeLimitExceeded"))
                .or_else(|| block.next.clone());
            FlowStep::Next {
                next,
                cost_ms: seconds * 1000,
                note: format!("waits {seconds} s"),
            }
        }
        "DisconnectParticipant" => FlowStep::Disconnect {
            note: "DisconnectParticipant".into(),
        },
        "EndFlowExecution" => FlowStep::Disconnect {
            note: "EndFlowExecution (an inbound voice contact is disconnected)".into(),
        },
        kind if SETTINGS_BLOCKS.contains(&kind) => FlowStep::Next {
            next: block.next.clone(),
            cost_ms: 0,
            note: String::new(),
        },
        other => FlowStep::Unsupported {
            kind: other.to_owned(),
        },
    }
}

/// The `Errors` entry for `error_type`, else the `NoMatchingError` catch-all.
pub fn error_branch(block: &FlowBlock, error_type: &str) -> Option<String> {
    let find = |t: &str| {
        block
            .errors
            .iter()
            .find(|(e, _)| e == t)
            .map(|(_, n)| n.clone())
    };
    find(error_type).or_else(|| find("NoMatchingError"))
}

pub fn condition_holds(c: &FlowCondition, value: &str) -> bool {
    let num = |s: &str| s.trim().parse::<f64>().ok();
    let operand = c.operands.first().map(String::as_str).unwrap_or("");
    match c.operator.as_str() {
        "Equals" => c.operands.iter().any(|o| o == value),
        "TextStartsWith" => value.starts_with(operand),
        "TextEndsWith" => value.ends_with(operand),
        "TextContains" => value.contains(operand),
        "NumberGreaterThan" => matches!((num(value), num(operand)), (Some(a), Some(b)) if a > b),
        "NumberGreaterOrEqualTo" => {
            matches!((num(value), num(operand)), (Some(a), Some(b)) if a >= b)
        }
        "NumberLessThan" => matches!((num(value), num(operand)), (Some(a), Some(b)) if a < b),
        "NumberLessOrEqualTo" => matches!((num(value), num(operand)), (Some(a), Some(b)) if a <= b),
        _ => false,
    }
}

/// The outcome of an `InvokeLambdaFunction` block.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowInvokeResult {
    Answered(Value),
    /// A function error, a timeout, or a response the validation refuses.
    Failed(String),
}

/// Applies a Lambda result: `$.External` becomes the response, the flow goes on at
/// `NextAction`; a failure or a response the validation refuses takes the error branch.
/// Returns the next block and a note on what happened.
pub fn after_invoke(
    block: &FlowBlock,
    data: &mut FlowContactState,
    result: FlowInvokeResult,
    validation: ResponseValidation,
) -> (Option<String>, String) {
    let failed = |data: &mut FlowContactState, why: String| {
        data.external.clear();
        (error_branch(block, "NoMatchingError"), why)
    };
    match result {
        FlowInvokeResult::Failed(why) => failed(data, why),
        FlowInvokeResult::Answered(Value::Object(map)) => {
            let size = Value::Object(map.clone()).to_string().len();
            if size >= 32 * 1024 {
                return failed(data, format!("response is {size} bytes (limit 32 KB)"));
            }
            if validation == ResponseValidation::StringMap
                && let Some((k, _)) = map.iter().find(|(_, v)| !v.is_string())
            {
                return failed(
                    data,
                    format!("STRING_MAP validation refuses the non-string value of {k:?}"),
                );
            }
            data.external = map;
            (block.next.clone(), String::new())
        }
        FlowInvokeResult::Answered(other) => {
            failed(data, format!("response is not an object: {other}"))
        }
    }
}

/// Applies caller input to a `GetParticipantInput` block. `None`: nothing was entered in time.
pub fn after_input(
    block: &FlowBlock,
    data: &mut FlowContactState,
    input: Option<&str>,
    store: bool,
) -> (Option<String>, String) {
    if store {
        // Stored input: the success branch, with "Timeout" as the value when nothing came.
        let value = input.unwrap_or("Timeout").to_owned();
        let note = format!("stored input {value:?}");
        data.stored_input = Some(value);
        return (block.next.clone(), note);
    }
    match input {
        None => (
            error_branch(block, "InputTimeLimitExceeded"),
            "no input (timeout)".into(),
        ),
        Some(digits) => {
            let next = block
                .conditions
                .iter()
                .find(|c| condition_holds(c, digits))
                .map(|c| c.next.clone());
            match next {
                Some(n) => (Some(n), format!("input {digits:?}")),
                None => (
                    error_branch(block, "NoMatchingCondition"),
                    format!("input {digits:?} matches no option"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> ParsedFlow {
        ParsedFlow::from_value(json!({
            "Version": "2019-10-30",
            "StartAction": "welcome",
            "Actions": [
                {"Identifier": "welcome", "Type": "MessageParticipant",
                 "Parameters": {"Text": "Welcome."}, "Transitions": {"NextAction": "lookup", "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "bye"}]}},
                {"Identifier": "lookup", "Type": "InvokeLambdaFunction",
                 "Parameters": {"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:connect-lookup",
                                "InvocationTimeLimitSeconds": "8",
                                "LambdaInvocationAttributes": {"CallingNumber": "$.CustomerEndpoint.Address", "CalledNumber": "$.SystemEndpoint.Address"},
                                "ResponseValidation": {"ResponseType": "STRING_MAP"}},
                 "Transitions": {"NextAction": "found?", "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "bye"}]}},
                {"Identifier": "found?", "Type": "Compare", "Parameters": {"ComparisonValue": "$.External.result"},
                 "Transitions": {"NextAction": "bye", "Conditions": [{"NextAction": "remember", "Condition": {"Operator": "Equals", "Operands": ["found"]}}],
                                 "Errors": [{"ErrorType": "NoMatchingCondition", "NextAction": "bye"}]}},
                {"Identifier": "remember", "Type": "UpdateContactAttributes",
                 "Parameters": {"Attributes": {"transaction_id": "$.External.transaction_id"}, "TargetContact": "Current"},
                 "Transitions": {"NextAction": "room", "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "bye"}]}},
                {"Identifier": "room", "Type": "GetParticipantInput",
                 "Parameters": {"Text": "Enter the room number.", "StoreInput": "True", "InputTimeLimitSeconds": "5"},
                 "Transitions": {"NextAction": "again", "Errors": [{"ErrorType": "NoMatchingError", "NextAction": "bye"}]}},
                {"Identifier": "again", "Type": "Loop", "Parameters": {"LoopCount": "2"},
                 "Transitions": {"Conditions": [
                     {"NextAction": "room", "Condition": {"Operator": "Equals", "Operands": ["ContinueLooping"]}},
                     {"NextAction": "bye", "Condition": {"Operator": "Equals", "Operands": ["DoneLooping"]}}]}},
                {"Identifier": "bye", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
            ]
        }))
        .unwrap()
    }

    fn data() -> FlowContactState {
        FlowContactState {
            contact_id: "c-1".into(),
            customer_address: "+18005557777".into(),
            system_address: "+18005551111".into(),
            ..FlowContactState::default()
        }
    }

    #[test]
    fn parses_and_rejects_dangling_transitions() {
        assert_eq!(flow().blocks.len(), 7);
        let bad = json!({"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "MessageParticipant", "Transitions": {"NextAction": "nowhere"}}]});
        assert!(matches!(
            ParsedFlow::from_value(bad),
            Err(FlowParseError::DanglingTransition { .. })
        ));
        assert!(matches!(
            ParsedFlow::from_value(json!({"StartAction": "x", "Actions": []})),
            Err(FlowParseError::BadStart(_))
        ));
    }

    #[test]
    fn references_resolve_whole_and_embedded() {
        let mut d = data();
        d.external.insert("transaction_id".into(), json!("txn-9"));
        d.attributes.insert("room".into(), "12".into());
        assert_eq!(d.resolve("$.External.transaction_id"), "txn-9");
        assert_eq!(d.resolve("$.CustomerEndpoint.Address"), "+18005557777");
        assert_eq!(
            d.resolve("Room $.Attributes.room, call $.External.transaction_id."),
            "Room 12, call txn-9."
        );
        assert_eq!(d.resolve("$.External.missing"), "");
        assert_eq!(d.resolve("no refs"), "no refs");
    }

    #[test]
    fn invoke_block_resolves_its_invocation_attributes() {
        let f = flow();
        let mut d = data();
        match step(f.block("lookup").unwrap(), &mut d) {
            FlowStep::Invoke {
                parameters,
                time_limit_ms,
                validation,
                function_arn,
            } => {
                assert_eq!(parameters["CallingNumber"], "+18005557777");
                assert_eq!(parameters["CalledNumber"], "+18005551111");
                assert_eq!(time_limit_ms, 8000);
                assert_eq!(validation, ResponseValidation::StringMap);
                assert!(function_arn.ends_with("connect-lookup"));
            }
            other => panic!("{other:?}"),
        }
        let event = d.lambda_event(&BTreeMap::from([(
            "CallingNumber".to_owned(),
            "+1".to_owned(),
        )]));
        assert_eq!(event["Details"]["ContactData"]["ContactId"], "c-1");
        assert_eq!(event["Details"]["Parameters"]["CallingNumber"], "+1");
    }

    #[test]
    fn lambda_results_branch_and_set_external() {
        let f = flow();
        let b = f.block("lookup").unwrap();
        let mut d = data();
        let ok = FlowInvokeResult::Answered(json!({"result": "found", "transaction_id": "t"}));
        assert_eq!(
            after_invoke(b, &mut d, ok, ResponseValidation::StringMap)
                .0
                .as_deref(),
            Some("found?")
        );
        assert_eq!(d.lookup("$.External.result").as_deref(), Some("found"));
        // Compare on the result, then set the attribute from $.External.
        let FlowStep::Next { next, .. } = step(f.block("found?").unwrap(), &mut d) else {
            panic!()
        };
        assert_eq!(next.as_deref(), Some("remember"));
        step(f.block("remember").unwrap(), &mut d);
        assert_eq!(d.attributes["transaction_id"], "t");
        // Nested values fail STRING_MAP validation; errors take the error branch and clear $.External.
        let nested = FlowInvokeResult::Answered(json!({"result": {"x": 1}}));
        assert_eq!(
            after_invoke(b, &mut d, nested, ResponseValidation::StringMap)
                .0
                .as_deref(),
            Some("bye")
        );
        assert!(d.external.is_empty());
        let err = FlowInvokeResult::Failed("Unhandled".into());
        assert_eq!(
            after_invoke(b, &mut d, err, ResponseValidation::Json)
                .0
                .as_deref(),
            Some("bye")
        );
    }

    #[test]
    fn compare_without_a_match_takes_no_matching_condition() {
        let f = flow();
        let mut d = data();
        d.external.insert("result".into(), json!("not_found"));
        let FlowStep::Next { next, .. } = step(f.block("found?").unwrap(), &mut d) else {
            panic!()
        };
        assert_eq!(next.as_deref(), Some("bye"));
    }

    #[test]
    fn stored_input_and_loops() {
        let f = flow();
        let room = f.block("room").unwrap();
        let mut d = data();
        let FlowStep::Input {
            store, timeout_ms, ..
        } = step(room, &mut d)
        else {
            panic!()
        };
        assert!(store);
        assert_eq!(timeout_ms, 5000);
        assert_eq!(
            after_input(room, &mut d, Some("2042"), true).0.as_deref(),
            Some("again")
        );
        assert_eq!(d.lookup("$.StoredCustomerInput").as_deref(), Some("2042"));
        after_input(room, &mut d, None, true);
        assert_eq!(d.stored_input.as_deref(), Some("Timeout"));
        let lp = f.block("again").unwrap();
        let nexts: Vec<_> = (0..4)
            .map(|_| match step(lp, &mut d) {
                FlowStep::Next { next, .. } => next.unwrap(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            nexts,
            ["room", "room", "bye", "room"],
            "two loops, done, then reset"
        );
    }

    #[test]
    fn menu_input_matches_conditions_or_errors() {
        let block = FlowBlock {
            id: "menu".into(),
            kind: "GetParticipantInput".into(),
            params: json!({"Text": "Press 1", "InputTimeLimitSeconds": 3}),
            next: None,
            errors: vec![
                ("InputTimeLimitExceeded".into(), "t".into()),
                ("NoMatchingCondition".into(), "n".into()),
            ],
            conditions: vec![FlowCondition {
                operator: "Equals".into(),
                operands: vec!["1".into()],
                next: "one".into(),
            }],
        };
        let mut d = data();
        assert_eq!(
            after_input(&block, &mut d, Some("1"), false).0.as_deref(),
            Some("one")
        );
        assert_eq!(
            after_input(&block, &mut d, Some("2"), false).0.as_deref(),
            Some("n")
        );
        assert_eq!(
            after_input(&block, &mut d, None, false).0.as_deref(),
            Some("t")
        );
    }

    #[test]
    fn unknown_blocks_are_reported() {
        let mut b = flow().block("bye").unwrap().clone();
        b.kind = "TransferContactToQueue".into();
        assert_eq!(
            step(&b, &mut data()),
            FlowStep::Unsupported {
                kind: "TransferContactToQueue".into()
            }
        );
    }

    #[test]
    fn ssml_breaks_take_their_time() {
        assert_eq!(
            ssml_breaks_ms(r#"<speak><break time="10s"/></speak>"#),
            10_000
        );
        assert_eq!(
            ssml_breaks_ms(r#"<speak>a<break time='250ms'/>b<break time="1.5s"/></speak>"#),
            1750
        );
        let block = FlowBlock {
            id: "hold".into(),
            kind: "MessageParticipant".into(),
            params: json!({"SSML": "<speak><break time=\"10s\"/></speak>"}),
            next: Some("x".into()),
            errors: vec![],
            conditions: vec![],
        };
        let FlowStep::Next { cost_ms, .. } = step(&block, &mut data()) else {
            panic!()
        };
        assert_eq!(cost_ms, 10_000);
    }
}
