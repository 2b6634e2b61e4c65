//! `template.yaml`, the SMA side: only this SIP media application may invoke the handler, and
//! the handler gets the same transfer settings as `connect-transfer`.
//!
//! yaml-rust2 loads CloudFormation's short-form tags (`!Ref X`, `!Sub ...`) as their plain
//! values, which is all these checks need.

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

#[test]
fn the_invoke_permission_names_the_sip_media_application() {
    let t = template();
    let props = &t["Resources"]["SmaHandlerInvokePermission"]["Properties"];
    assert_eq!(
        props["Principal"].as_str(),
        Some("voiceconnector.chime.amazonaws.com")
    );
    let source_arn = props["SourceArn"].as_str().unwrap_or_default();
    assert!(
        source_arn.starts_with("arn:${AWS::Partition}:chime:${AWS::Region}:${AWS::AccountId}:")
            && source_arn.ends_with(":sma/${SipMediaApplicationId}"),
        "SourceArn must name the SIP media application, got {source_arn:?}"
    );
    assert_eq!(props["SourceAccount"].as_str(), Some("AWS::AccountId"));
}

#[test]
fn both_sides_get_the_same_transfer_policy_settings() {
    let t = template();
    let env =
        |function: &str| t["Resources"][function]["Properties"]["Environment"]["Variables"].clone();
    let sma = env("SmaHandlerFunction");
    let transfer = env("ConnectTransferFunction");
    for var in [
        "DEFAULT_TRANSFER_TARGET",
        "DEFAULT_TRANSFER_TARGET_ARN",
        "ALLOWED_VOICE_CONNECTOR_ARNS",
        "TRANSFER_TARGET_PATTERN",
    ] {
        assert!(!sma[var].is_badvalue(), "sma-handler lacks {var}");
        assert_eq!(
            sma[var], transfer[var],
            "{var} differs between the two sides"
        );
    }
    assert_eq!(
        sma["TRANSFER_UPDATE_GRACE_MS"].as_str(),
        Some("TransferUpdateGraceMs")
    );
    assert!(!t["Parameters"]["TransferUpdateGraceMs"].is_badvalue());
}
