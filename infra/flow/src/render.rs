//! The flow file with the stack's values filled in: pure, no I/O.
//!
//! `infra/contact-flow.json` names the function ARNs as `${OutputName}` (CloudFormation `Fn::Sub`
//! syntax), where `OutputName` is an output of the stack. Every placeholder must have a value;
//! what comes out must be JSON with no placeholder left.

use std::collections::BTreeMap;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("the stack has no output {0:?} (the flow needs it; deploy the stack first?)")]
    MissingOutput(String),
    #[error("the flow file has no placeholder: nothing would point it at the stack's functions")]
    NoPlaceholder,
    #[error("the placeholder at byte {0} is not closed or its name is not an output name")]
    Malformed(usize),
    #[error("the rendered flow is not JSON: {0}")]
    NotJson(String),
}

/// The names of the `${...}` placeholders in `template`, in order of first appearance.
pub fn placeholders(template: &str) -> Result<Vec<String>, RenderError> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let malformed = RenderError::Malformed(offset + start);
        let end = after.find('}').ok_or_else(|| malformed.clone())?;
        let name = &after[..end];
        // Output names are alphanumeric; `Fn::Sub` also allows `Resource.Attribute`.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            return Err(malformed);
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        let consumed = start + 2 + end + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    Ok(names)
}

/// `template` with every `${Name}` replaced by `outputs[Name]`, escaped as a JSON string's
/// content. Refuses a template without placeholders, a missing output, and a result that is not
/// JSON.
pub fn render(template: &str, outputs: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let names = placeholders(template)?;
    if names.is_empty() {
        return Err(RenderError::NoPlaceholder);
    }
    let mut rendered = template.to_owned();
    for name in &names {
        let value = outputs
            .get(name)
            .ok_or_else(|| RenderError::MissingOutput(name.clone()))?;
        // The placeholders sit inside JSON strings: insert the value as string content.
        let quoted = serde_json::Value::String(value.clone()).to_string();
        let escaped = &quoted[1..quoted.len() - 1];
        rendered = rendered.replace(&format!("${{{name}}}"), escaped);
    }
    serde_json::from_str::<serde_json::Value>(&rendered)
        .map_err(|e| RenderError::NotJson(e.to_string()))?;
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOKUP: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:stack-ConnectLookup-AbC:live";
    const TRANSFER: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:stack-ConnectTransfer-DeF:live";

    fn outputs() -> BTreeMap<String, String> {
        [
            ("ConnectLookupFunctionArn", LOOKUP),
            ("ConnectTransferFunctionArn", TRANSFER),
            ("PairsTableName", "stack-PairsTable"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn shipped_flow() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../contact-flow.json");
        std::fs::read_to_string(path).expect("infra/contact-flow.json")
    }

    #[test]
    fn the_shipped_flow_renders_with_every_placeholder_replaced() {
        let template = shipped_flow();
        assert_eq!(
            placeholders(&template).unwrap(),
            ["ConnectLookupFunctionArn", "ConnectTransferFunctionArn"]
        );
        let rendered = render(&template, &outputs()).unwrap();
        assert!(!rendered.contains("${"), "a placeholder is left");
        let flow: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        let arns: Vec<&str> = flow["Actions"]
            .as_array()
            .expect("Actions")
            .iter()
            .filter_map(|a| a["Parameters"]["LambdaFunctionARN"].as_str())
            .collect();
        assert!(
            arns.contains(&LOOKUP) && arns.contains(&TRANSFER),
            "{arns:?}"
        );
        assert!(arns.iter().all(|a| *a == LOOKUP || *a == TRANSFER));
        // Only the placeholders changed: the flow's own `$.…` references are untouched.
        assert_eq!(
            rendered.matches("$.").count(),
            template.matches("$.").count()
        );
    }

    #[test]
    fn a_missing_output_is_refused_by_name() {
        let mut partial = outputs();
        partial.remove("ConnectTransferFunctionArn");
        assert_eq!(
            render(&shipped_flow(), &partial),
            Err(RenderError::MissingOutput(
                "ConnectTransferFunctionArn".into()
            ))
        );
    }

    #[test]
    fn values_are_escaped_and_broken_templates_refused() {
        let mut odd = BTreeMap::new();
        odd.insert("X".to_owned(), "a\"b\\c".to_owned());
        let rendered = render(r#"{"v":"${X}"}"#, &odd).unwrap();
        let v: serde_json::Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(v["v"], "a\"b\\c");
        assert_eq!(render("{}", &odd), Err(RenderError::NoPlaceholder));
        assert_eq!(
            render(r#"{"v":"${X"}"#, &odd),
            Err(RenderError::Malformed(6))
        );
        assert!(matches!(
            render(r#"{"v":${X}}"#, &odd),
            Err(RenderError::NotJson(_))
        ));
    }
}
