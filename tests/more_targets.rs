//! EventBridge bus and Step Functions state machine targets at the handler level (in-memory
//! publisher): batch shapes, the trace context and entry each message carries, per-entry failures
//! and throttling, entries a bus cannot take. The wire is checked against moto in `targets_moto.rs`.

mod support;

use s3_trace_relay::failure::{CallError, Reason};
use s3_trace_relay::publish::EntryOutcome;
use s3_trace_relay::response::RelayResponse;
use serde_json::{Value, json};
use support::fake_publisher::{FakePublisher, assert_undelivered, failed_ids, relay};
use support::payloads::{INVOCATION_TRACE, invocation, s3_record};

const BUS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/uploads";
const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:Thumbnails";

fn direct(n: usize) -> String {
    let records: Vec<Value> = (0..n)
        .map(|i| s3_record(&format!("k{i:02}"), &format!("{i:018}")))
        .collect();
    json!({ "Records": records }).to_string()
}

/// An SQS event of one S3 record per message, each with its own upstream trace.
fn sqs_with_traces(n: usize) -> String {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let trace = format!("Root=1-6745a1b2-{i:024x};Parent=53995c3f42cd8ad8;Sampled=1");
            let body = json!({"Records": [s3_record(&format!("k{i}"), &format!("{i:018}"))]});
            json!({"messageId": format!("m{i}"), "body": body.to_string(), "attributes": {"AWSTraceHeader": trace},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:src"})
        })
        .collect();
    json!({ "Records": records }).to_string()
}

#[tokio::test]
async fn a_bus_gets_put_events_of_at_most_ten_entries_each_with_its_records_trace() {
    let publisher = FakePublisher::default();
    relay(BUS, publisher.clone())
        .handle(&sqs_with_traces(12), &invocation("r", Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    let batches = publisher.sent_to(BUS);
    assert_eq!(
        batches.iter().map(|b| b.messages.len()).collect::<Vec<_>>(),
        vec![10, 2]
    );
    for (i, m) in batches.iter().flat_map(|b| &b.messages).enumerate() {
        let root = m.trace.as_ref().unwrap().root().to_string();
        assert_eq!(root, format!("1-6745a1b2-{i:024x}"), "its own record's Root");
        let entry = m.bus_entry.as_ref().unwrap();
        assert_eq!(entry.detail_type, "Object Created");
        let detail: Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["object"]["key"], format!("k{i}"));
    }
}

#[tokio::test]
async fn a_state_machine_gets_one_execution_per_record_named_for_its_event() {
    let publisher = FakePublisher::default();
    let response = relay(MACHINE, publisher.clone())
        .handle(&direct(3), &invocation("r", Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert!(matches!(response, RelayResponse::Done(ref s) if s.published == 3 && s.publish_calls == 3));
    let names: Vec<String> = publisher
        .sent_to(MACHINE)
        .iter()
        .map(|b| {
            assert_eq!(b.messages.len(), 1);
            b.messages[0].execution_name.clone().unwrap()
        })
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit())),
        "{names:?}"
    );
    assert_eq!(names.len(), 3);
    assert!(names[0] != names[1] && names[1] != names[2]);

    let again = FakePublisher::default();
    relay(MACHINE, again.clone())
        .handle(&direct(3), &invocation("r2", Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    let renamed: Vec<String> = again
        .sent_to(MACHINE)
        .iter()
        .map(|b| b.messages[0].execution_name.clone().unwrap())
        .collect();
    assert_eq!(renamed, names, "a redelivered record names the same execution");
}

#[tokio::test]
async fn a_throttled_bus_entry_is_resent_alone() {
    let throttled = EntryOutcome::Failed(Reason::Rejected {
        code: "ThrottlingException".into(),
        message: "Rate exceeded".into(),
        sender_fault: false,
    });
    let publisher = FakePublisher::answering(vec![Ok(vec![EntryOutcome::Delivered, throttled])]);
    let response = relay(BUS, publisher.clone())
        .handle(&direct(2), &invocation("r", None))
        .await
        .unwrap();
    assert!(matches!(response, RelayResponse::Done(ref s) if s.published == 2 && s.retries == 1));
    assert_eq!(publisher.sent_keys(), vec![vec!["k00", "k01"], vec!["k01"]]);
}

#[tokio::test]
async fn a_rejected_bus_entry_fails_its_record_only() {
    let malformed = EntryOutcome::Failed(Reason::Rejected {
        code: "MalformedDetail".into(),
        message: "Detail is malformed".into(),
        sender_fault: true,
    });
    let publisher = FakePublisher::answering(vec![Ok(vec![EntryOutcome::Delivered, malformed])]);
    let response = relay(BUS, publisher.clone())
        .handle(&sqs_with_traces(2), &invocation("r", None))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m1"]);
}

#[tokio::test]
async fn an_event_whose_detail_type_a_bus_would_drop_fails_without_a_call() {
    let mut event: Value = serde_json::from_str(include_str!("../events/eventbridge-object-created.json")).unwrap();
    event["detail-type"] = "Object Created ".repeat(10).into();
    let publisher = FakePublisher::default();
    let err = relay(BUS, publisher.clone())
        .handle(&event.to_string(), &invocation("r", None))
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 1);
    assert!(err.to_string().contains("detail-type has 150 characters"), "{err}");
    assert!(publisher.sent().is_empty());
}

fn start_execution_error(code: &str, transient: bool) -> CallError {
    CallError {
        operation: "StartExecution",
        code: code.into(),
        message: "injected".into(),
        transient,
        status: Some(400),
        request_id: None,
    }
}

#[tokio::test]
async fn an_execution_still_throttled_after_the_sdks_retries_fails_its_record_only() {
    let publisher = FakePublisher::answering(vec![
        Ok(vec![EntryOutcome::Delivered]),
        Err(start_execution_error("ThrottlingException", true)),
    ]);
    let response = relay(MACHINE, publisher.clone())
        .handle(&sqs_with_traces(2), &invocation("r", None))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["k0"], vec!["k1"]]);
}

#[tokio::test]
async fn a_refused_execution_fails_its_record_only() {
    let publisher = FakePublisher::answering(vec![
        Err(start_execution_error("InvalidExecutionInput", false)),
        Ok(vec![EntryOutcome::Delivered]),
    ]);
    let response = relay(MACHINE, publisher.clone())
        .handle(&sqs_with_traces(2), &invocation("r", None))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m0"]);
}

#[tokio::test]
async fn a_bus_call_that_fails_whole_fails_each_of_its_records() {
    let missing = CallError {
        operation: "DescribeEventBus",
        code: "ResourceNotFoundException".into(),
        message: "Event bus uploads does not exist.".into(),
        transient: false,
        status: Some(400),
        request_id: None,
    };
    let publisher = FakePublisher::answering(vec![Err(missing)]);
    let response = relay(BUS, publisher.clone())
        .handle(&sqs_with_traces(3), &invocation("r", None))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m0", "m1", "m2"]);
}
