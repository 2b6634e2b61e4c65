//! `make flow` against a loopback fake of CloudFormation (`DescribeStacks`, query protocol, XML)
//! and Amazon Connect (`ListContactFlows`, `CreateContactFlow`, `UpdateContactFlowContent`,
//! REST/JSON): the real SDK clients with their endpoint set to the fake and dummy credentials.

use flow::{FlowError, FlowOutcome, FlowRequest, Upserted, make_flow};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use takeback_http::testing::{FakeResponse, LoopbackServer, RecordedRequest};

const INSTANCE: &str = "11111111-2222-3333-4444-555555555555";
const LOOKUP: &str = "arn:aws:lambda:us-east-1:123456789012:function:takeback-ConnectLookup-A:live";
const TRANSFER: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:takeback-ConnectTransfer-B:live";
const FLOW_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

#[derive(Default)]
struct Script {
    /// Output keys the stack reports.
    outputs: Vec<(&'static str, &'static str)>,
    /// Flows already in the instance, listed over two pages.
    existing: Vec<&'static str>,
    /// Connect answers 403 to everything.
    connect_denied: bool,
    /// `ListContactFlows` requests so far: odd ones get page 1, even ones page 2.
    list_requests: usize,
}

fn xml_members(items: &[(&str, &str)], key: &str, value: &str) -> String {
    items
        .iter()
        .map(|(k, v)| format!("<member><{key}>{k}</{key}><{value}>{v}</{value}></member>"))
        .collect()
}

fn answer(script: &mut Script, req: &RecordedRequest) -> FakeResponse {
    if req.path == "/" {
        let form = req.form();
        if form.get("Action").map(String::as_str) != Some("DescribeStacks")
            || form.get("StackName").map(String::as_str) != Some("takeback")
        {
            return xml(400, "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id other does not exist</Message></Error></ErrorResponse>".into());
        }
        let parameters = [(
            "ConnectInstanceArn",
            &*format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}"),
        )];
        return xml(
            200,
            format!(
                "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\">\
                 <DescribeStacksResult><Stacks><member>\
                 <StackName>takeback</StackName><StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/takeback/x</StackId>\
                 <CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>UPDATE_COMPLETE</StackStatus>\
                 <Outputs>{}</Outputs><Parameters>{}</Parameters>\
                 </member></Stacks></DescribeStacksResult>\
                 <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DescribeStacksResponse>",
                xml_members(&script.outputs, "OutputKey", "OutputValue"),
                xml_members(&parameters, "ParameterKey", "ParameterValue"),
            ),
        );
    }
    if script.connect_denied {
        return FakeResponse::json(403, json!({"message": "User is not authorized"}))
            .with_header("x-amzn-errortype", "AccessDeniedException");
    }
    let summary = |name: &str, id: &str| {
        json!({"Id": id, "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}/contact-flow/{id}"),
               "Name": name, "ContactFlowType": "CONTACT_FLOW"})
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", p) if p == format!("/contact-flows-summary/{INSTANCE}") => {
            // Page 1: an unrelated flow and a token; page 2: the scripted flows.
            script.list_requests += 1;
            if script.list_requests.is_multiple_of(2) {
                let list: Vec<Value> = script
                    .existing
                    .iter()
                    .map(|name| summary(name, FLOW_ID))
                    .collect();
                FakeResponse::json(200, json!({"ContactFlowSummaryList": list}))
            } else {
                FakeResponse::json(
                    200,
                    json!({"ContactFlowSummaryList": [summary("Default inbound", "other-id")], "NextToken": "page-2"}),
                )
            }
        }
        ("PUT", p) if p == format!("/contact-flows/{INSTANCE}") => FakeResponse::json(
            200,
            json!({"ContactFlowId": "new-flow-id", "ContactFlowArn": "arn:aws:connect:us-east-1:123456789012:instance/x/contact-flow/new-flow-id"}),
        ),
        ("POST", p) if p == format!("/contact-flows/{INSTANCE}/{FLOW_ID}/content") => {
            FakeResponse::json(200, json!({}))
        }
        _ => FakeResponse::json(404, json!({"message": "no such route"}))
            .with_header("x-amzn-errortype", "ResourceNotFoundException"),
    }
}

fn xml(status: u16, body: String) -> FakeResponse {
    FakeResponse {
        status,
        headers: vec![("content-type", "text/xml".into())],
        body,
        delay: None,
        gate: None,
    }
}

struct Fake {
    server: LoopbackServer,
}

impl Fake {
    async fn start(script: Script) -> Self {
        let script = Arc::new(Mutex::new(script));
        let server =
            LoopbackServer::start(move |req| answer(&mut script.lock().expect("script"), req))
                .await;
        Self { server }
    }

    fn clients(&self) -> (aws_sdk_cloudformation::Client, aws_sdk_connect::Client) {
        let url = self.server.url();
        let credentials = aws_sdk_connect::config::Credentials::new(
            "AKIDLOOPBACK",
            "loopback",
            None,
            None,
            "test",
        );
        let region = aws_sdk_connect::config::Region::new("us-east-1");
        let cloudformation = aws_sdk_cloudformation::Config::builder()
            .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .endpoint_url(&url)
            .build();
        let connect = aws_sdk_connect::Config::builder()
            .behavior_version(aws_sdk_connect::config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .endpoint_url(&url)
            .build();
        (
            aws_sdk_cloudformation::Client::from_conf(cloudformation),
            aws_sdk_connect::Client::from_conf(connect),
        )
    }

    fn connect_requests(&self) -> Vec<RecordedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path != "/")
            .collect()
    }
}

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../contact-flow.json"))
        .expect("infra/contact-flow.json")
}

fn both_outputs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ConnectLookupFunctionArn", LOOKUP),
        ("ConnectTransferFunctionArn", TRANSFER),
    ]
}

fn request(template: &str, dry_run: bool) -> FlowRequest<'_> {
    FlowRequest {
        stack: "takeback",
        template,
        name: "Take back and transfer",
        instance_id: None,
        dry_run,
    }
}

#[tokio::test]
async fn a_new_flow_is_created_with_the_rendered_content_in_the_stacks_instance() {
    let fake = Fake::start(Script {
        outputs: both_outputs(),
        ..Script::default()
    })
    .await;
    let (cfn, connect) = fake.clients();
    let template = template();
    let outcome = make_flow(&cfn, &connect, &request(&template, false))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FlowOutcome::Deployed {
            instance_id: INSTANCE.into(),
            upserted: Upserted::Created {
                id: "new-flow-id".into(),
                arn: "arn:aws:connect:us-east-1:123456789012:instance/x/contact-flow/new-flow-id"
                    .into()
            }
        }
    );
    let requests = fake.connect_requests();
    let put = requests
        .iter()
        .find(|r| r.method == "PUT")
        .expect("CreateContactFlow");
    let body = put.json();
    assert_eq!(body["Name"], "Take back and transfer");
    assert_eq!(body["Type"], "CONTACT_FLOW");
    let content: Value =
        serde_json::from_str(body["Content"].as_str().expect("Content")).expect("JSON content");
    let text = content.to_string();
    assert!(text.contains(LOOKUP) && text.contains(TRANSFER) && !text.contains("${"));
    assert!(!requests.iter().any(|r| r.path.ends_with("/content")));
}

#[tokio::test]
async fn an_existing_flow_of_that_name_gets_its_content_replaced() {
    let fake = Fake::start(Script {
        outputs: both_outputs(),
        existing: vec!["Take back and transfer"],
        ..Script::default()
    })
    .await;
    let (cfn, connect) = fake.clients();
    let template = template();
    let outcome = make_flow(&cfn, &connect, &request(&template, false))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        FlowOutcome::Deployed { upserted: Upserted::Updated { ref id, .. }, .. } if id == FLOW_ID
    ));
    let requests = fake.connect_requests();
    assert!(
        !requests.iter().any(|r| r.method == "PUT"),
        "nothing created"
    );
    let update = requests
        .iter()
        .find(|r| r.path.ends_with("/content"))
        .expect("UpdateContactFlowContent");
    assert!(
        update.json()["Content"]
            .as_str()
            .unwrap()
            .contains(TRANSFER)
    );
    let lists = requests.iter().filter(|r| r.method == "GET").count();
    assert_eq!(lists, 2, "the flow was on the second page");
}

#[tokio::test]
async fn a_stack_without_an_output_the_flow_needs_changes_nothing_in_connect() {
    let fake = Fake::start(Script {
        outputs: vec![("ConnectLookupFunctionArn", LOOKUP)],
        ..Script::default()
    })
    .await;
    let (cfn, connect) = fake.clients();
    let template = template();
    let err = make_flow(&cfn, &connect, &request(&template, false))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("ConnectTransferFunctionArn"),
        "{err}"
    );
    assert!(fake.connect_requests().is_empty());
}

#[tokio::test]
async fn a_dry_run_renders_and_never_calls_connect() {
    let fake = Fake::start(Script {
        outputs: both_outputs(),
        ..Script::default()
    })
    .await;
    let (cfn, connect) = fake.clients();
    let template = template();
    let FlowOutcome::Rendered(content) = make_flow(&cfn, &connect, &request(&template, true))
        .await
        .unwrap()
    else {
        panic!("a dry run renders only");
    };
    assert!(content.contains(LOOKUP));
    assert!(fake.connect_requests().is_empty());
}

#[tokio::test]
async fn connect_and_cloudformation_refusals_are_reported_by_operation() {
    let fake = Fake::start(Script {
        outputs: both_outputs(),
        connect_denied: true,
        ..Script::default()
    })
    .await;
    let (cfn, connect) = fake.clients();
    let template = template();
    let err = make_flow(&cfn, &connect, &request(&template, false))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FlowError::Connect {
                operation: "ListContactFlows",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    let other = FlowRequest {
        stack: "other",
        ..request(&template, false)
    };
    let err = make_flow(&cfn, &connect, &other).await.unwrap_err();
    assert!(matches!(err, FlowError::Stack { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}
