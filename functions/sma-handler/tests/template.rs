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
        "ROOM_EXTENSIONS",
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

fn str_of(y: &Yaml) -> &str {
    y.as_str().unwrap_or_default()
}

const FUNCTIONS: [&str; 5] = [
    "SmaHandlerFunction",
    "ConnectLookupFunction",
    "ConnectTransferFunction",
    "CallSignalingFunction",
    "SignalingApiFunction",
];

/// A function URL with AWS_IAM auth created since October 2025 needs both actions from its
/// caller; the shipped example policy grants both on the alias the URL belongs to, and the
/// output the backend's operator reads names both.
#[test]
fn the_function_url_example_policy_grants_both_invoke_actions() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/signaling-api-invoke-policy.json");
    let text = std::fs::read_to_string(&path).expect("the example policy exists");
    let policy: serde_json::Value = serde_json::from_str(&text).expect("the policy is JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    let mut granted: Vec<String> = Vec::new();
    for statement in statements {
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(
            statement["Resource"], "${SignalingApiFunctionArn}",
            "every grant is on the output's alias ARN, nothing wider"
        );
        match &statement["Action"] {
            serde_json::Value::String(a) => granted.push(a.clone()),
            serde_json::Value::Array(a) => {
                granted.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned)))
            }
            other => panic!("unexpected Action {other}"),
        }
    }
    granted.sort();
    assert_eq!(
        granted,
        ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    );

    let t = template();
    let url = &t["Resources"]["SignalingApiFunction"]["Properties"]["FunctionUrlConfig"];
    assert_eq!(str_of(&url["AuthType"]), "AWS_IAM");
    for output in ["SignalingApiFunctionArn", "SignalingApiUrl"] {
        let description = str_of(&t["Outputs"][output]["Description"]);
        assert!(
            description.contains("lambda:InvokeFunctionUrl")
                && description.matches("lambda:InvokeFunction").count() >= 2,
            "{output} must name both actions: {description}"
        );
    }
    assert_eq!(
        str_of(&t["Outputs"]["SignalingApiFunctionArn"]["Value"]),
        "SignalingApiFunction.Alias"
    );
}

/// Every function publishes versions behind `live`, and everything that calls a function (the
/// SMA, Connect, the outputs the operator wires Alexa and the SMA with) names the alias.
#[test]
fn callers_are_wired_to_the_live_alias() {
    let t = template();
    assert_eq!(
        str_of(&t["Globals"]["Function"]["AutoPublishAlias"]),
        "live"
    );
    for function in FUNCTIONS {
        let props = &t["Resources"][function]["Properties"];
        assert_eq!(
            props["AutoPublishAliasAllProperties"].as_bool(),
            Some(true),
            "{function}: a changed setting must publish a version too"
        );
    }
    for (permission, function) in [
        ("SmaHandlerInvokePermission", "SmaHandlerFunction"),
        ("ConnectLookupInvokePermission", "ConnectLookupFunction"),
        ("ConnectTransferInvokePermission", "ConnectTransferFunction"),
    ] {
        assert_eq!(
            str_of(&t["Resources"][permission]["Properties"]["FunctionName"]),
            format!("{function}.Alias"),
            "{permission}"
        );
    }
    for (integration, function) in [
        ("ConnectLookupIntegration", "ConnectLookupFunction"),
        ("ConnectTransferIntegration", "ConnectTransferFunction"),
    ] {
        assert_eq!(
            str_of(&t["Resources"][integration]["Properties"]["IntegrationArn"]),
            format!("{function}.Alias"),
            "{integration}"
        );
    }
    for (output, function) in [
        ("SmaHandlerFunctionArn", "SmaHandlerFunction"),
        ("ConnectLookupFunctionArn", "ConnectLookupFunction"),
        ("ConnectTransferFunctionArn", "ConnectTransferFunction"),
        ("CallSignalingFunctionArn", "CallSignalingFunction"),
        ("SignalingApiFunctionArn", "SignalingApiFunction"),
    ] {
        let out = &t["Outputs"][output];
        assert_eq!(
            str_of(&out["Value"]),
            format!("{function}.Alias"),
            "{output}"
        );
        assert!(
            str_of(&out["Description"]).contains("`live` alias"),
            "{output} must say it is the alias"
        );
    }
}

/// Settings that fail the functions at cold start fail the deploy instead: both-or-neither
/// fallback settings by rules, ARNs by patterns, log levels by allowed values.
#[test]
fn deploy_time_checks_guard_the_settings_the_functions_refuse() {
    let t = template();
    let rules = t["Rules"].as_hash().expect("Rules");
    let tying_fallback_settings = rules
        .values()
        .filter(|rule| {
            let text = format!("{rule:?}");
            text.contains("String(\"FallbackTarget\")")
                && text.contains("String(\"FallbackTargetArn\")")
        })
        .count();
    assert_eq!(
        tying_fallback_settings, 2,
        "one rule each way: FallbackTarget needs its ARN, the ARN needs its target"
    );
    let params = t["Parameters"].as_hash().expect("Parameters");
    for (name, param) in params {
        let name = str_of(name);
        if name.ends_with("Arn") || name.ends_with("Arns") {
            let pattern = str_of(&param["AllowedPattern"]);
            assert!(
                pattern.contains("arn:aws"),
                "{name} has no ARN pattern: {pattern:?}"
            );
        }
    }
    // The patterns accept what the functions accept and refuse what they refuse.
    let vc = "arn:aws:chime:us-east-1:123456789012:vc/abcdef1234";
    let vcg = "arn:aws:chime:us-east-1:123456789012:vcg/abcdef1234";
    let pattern = |name: &str| {
        regex_lite::Regex::new(str_of(&t["Parameters"][name]["AllowedPattern"]))
            .expect("a valid pattern")
    };
    assert!(pattern("FallbackTargetArn").is_match(""));
    assert!(pattern("FallbackTargetArn").is_match(vcg));
    assert!(!pattern("FallbackTargetArn").is_match("arn:aws:chime:us-east-1:1:vc/x"));
    let allowed = pattern("AllowedVoiceConnectorArns");
    assert!(allowed.is_match(&format!("{vc}, {vcg}")));
    assert!(!allowed.is_match(&format!("{vc}, bogus")));
    for level in ["LogLevel", "AlexaLogLevel"] {
        let values: Vec<&str> = t["Parameters"][level]["AllowedValues"]
            .as_vec()
            .unwrap_or_else(|| panic!("{level} has AllowedValues"))
            .iter()
            .map(str_of)
            .collect();
        assert_eq!(
            values,
            ["error", "warn", "info", "debug", "trace"],
            "{level}"
        );
    }
    // Lambda's own level follows the parameter (AWS_LAMBDA_LOG_LEVEL, which the logs honour).
    for function in FUNCTIONS {
        let logging = &t["Resources"][function]["Properties"]["LoggingConfig"];
        assert_eq!(str_of(&logging["LogFormat"]), "JSON", "{function}");
        assert_eq!(
            str_of(&logging["ApplicationLogLevel"][0]),
            "LambdaLogLevel",
            "{function}"
        );
    }
}

/// The alarms and the dashboard read the metrics the functions write (namespace, names,
/// dimension values), and notify the optional topic only when it is set.
#[test]
fn alarms_watch_the_metrics_the_functions_emit() {
    use takeback_common::metrics::{self, names};
    let t = template();
    let known = [
        names::CLAIMS,
        names::BUSY,
        names::FALLBACKS,
        names::TRANSFERS,
        names::TRANSFER_FAILURES,
        names::LOOKUPS_FOUND,
        names::LOOKUPS_NOT_FOUND,
        names::STORE_ERRORS,
        names::API_ERRORS,
        names::ALEXA_SESSIONS,
    ];
    let functions = [
        sma_handler::metrics::FUNCTION,
        "connect-lookup",
        "connect-transfer",
        "call-signaling",
        "signaling-api",
    ];
    let resources = t["Resources"].as_hash().expect("Resources");
    let mut alarms = 0;
    let mut custom = 0;
    for (id, resource) in resources {
        if str_of(&resource["Type"]) != "AWS::CloudWatch::Alarm" {
            continue;
        }
        alarms += 1;
        let props = &resource["Properties"];
        let actions = format!("{:?}", props["AlarmActions"]);
        assert!(
            actions.contains("NotifyAlarmTopic") && actions.contains("AlarmTopicArn"),
            "{id:?} must notify the optional topic: {actions}"
        );
        for query in props["Metrics"].as_vec().into_iter().flatten() {
            let metric = &query["MetricStat"]["Metric"];
            if metric.is_badvalue() {
                continue;
            }
            custom += 1;
            assert_eq!(str_of(&metric["Namespace"]), metrics::NAMESPACE, "{id:?}");
            assert!(known.contains(&str_of(&metric["MetricName"])), "{id:?}");
            let dimension = &metric["Dimensions"][0];
            assert_eq!(str_of(&dimension["Name"]), metrics::DIMENSION);
            assert!(functions.contains(&str_of(&dimension["Value"])), "{id:?}");
        }
    }
    assert!(
        alarms >= 5,
        "errors, throttles, duration, busy rate, store errors"
    );
    assert!(
        custom >= 5,
        "the busy rate and store errors read the emitted metrics"
    );
    let duration = &t["Resources"]["SmaHandlerDurationAlarm"]["Properties"];
    assert_eq!(str_of(&duration["ExtendedStatistic"]), "p99");
    assert!(duration["Threshold"].as_i64().is_some_and(|ms| ms < 5000));
    assert_eq!(
        str_of(&t["Conditions"]["NotifyAlarmTopic"][0][0]),
        "AlarmTopicArn"
    );

    let body = format!("{:?}", t["Resources"]["OperationsDashboard"]["Properties"]);
    for name in known {
        assert!(body.contains(name), "the dashboard lacks {name}");
    }
    assert!(body.contains(metrics::NAMESPACE));
}

/// Every `secretsmanager:` action the function's inline policies grant, with its resources.
fn secrets_manager_grants(t: &Yaml, function: &str) -> Vec<(String, Vec<String>)> {
    let policies = t["Resources"][function]["Properties"]["Policies"]
        .as_vec()
        .cloned()
        .unwrap_or_default();
    let as_list = |y: &Yaml| -> Vec<String> {
        match y.as_vec() {
            Some(items) => items.iter().map(|i| str_of(i).to_owned()).collect(),
            None => vec![str_of(y).to_owned()],
        }
    };
    let mut grants = Vec::new();
    for policy in &policies {
        for statement in policy["Statement"].as_vec().cloned().unwrap_or_default() {
            for action in as_list(&statement["Action"]) {
                if action.to_ascii_lowercase().starts_with("secretsmanager:") {
                    grants.push((action, as_list(&statement["Resource"])));
                }
            }
        }
    }
    grants
}

/// The Alexa functions get the secret's ARN, never its values (an environment variable is
/// readable with `lambda:GetFunctionConfiguration` and changes only with a redeploy), and may
/// read that one secret and nothing else; the other functions may read no secret at all.
#[test]
fn secrets_are_read_at_run_time_from_the_one_secret_the_policy_names() {
    let t = template();
    for function in ["CallSignalingFunction", "SignalingApiFunction"] {
        assert_eq!(
            secrets_manager_grants(&t, function),
            [(
                "secretsmanager:GetSecretValue".to_owned(),
                vec!["AlexaSecretArn".to_owned()]
            )],
            "{function} must be allowed GetSecretValue on the AlexaSecretArn parameter alone"
        );
        let env = &t["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            str_of(&env["ALEXA_SECRET_ARN"]),
            "AlexaSecretArn",
            "{function}"
        );
    }
    for function in FUNCTIONS {
        if !function.starts_with("CallSignaling") && !function.starts_with("SignalingApi") {
            assert!(
                secrets_manager_grants(&t, function).is_empty(),
                "{function}"
            );
        }
        let env = t["Resources"][function]["Properties"]["Environment"]["Variables"]
            .as_hash()
            .cloned()
            .unwrap_or_default();
        for (name, value) in &env {
            let (name, value) = (str_of(name), format!("{value:?}"));
            assert!(
                !value.contains("resolve:secretsmanager") && !value.contains("resolve:ssm-secure"),
                "{function} resolves a secret into {name}"
            );
            assert!(
                !name.contains("SECRET") || name == "ALEXA_SECRET_ARN",
                "{function} has a secret-looking variable {name}"
            );
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    assert!(
        !text.contains("{{resolve:secretsmanager"),
        "no dynamic reference to a secret"
    );
    // The parameter takes the ARN the policy can grant, not a bare name.
    let pattern =
        regex_lite::Regex::new(str_of(&t["Parameters"]["AlexaSecretArn"]["AllowedPattern"]))
            .expect("a valid pattern");
    assert!(pattern.is_match(""));
    assert!(
        pattern
            .is_match("arn:aws:secretsmanager:eu-west-1:123456789012:secret:takeback/alexa-AbCdEf")
    );
    assert!(!pattern.is_match("takeback/alexa"));
    assert!(!pattern.is_match("arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"));
}
