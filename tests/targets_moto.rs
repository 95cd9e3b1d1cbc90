//! End to end against moto's EventBridge and Step Functions backends: the real binary, driven
//! through the Runtime API protocol, putting events on a bus (whose rule delivers them to a queue)
//! and starting executions, each carrying its own record's trace context.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use support::moto::{Call, Moto, moto};
use support::payloads::s3_record;
use support::relay_process::{INVOCATION_ROOT, Relay, WAIT, failed_items, header_field, sqs_event};
use support::runtime_api::Invocation;
use tokio::net::UdpSocket;

/// The Root of `uploads/a.txt` in `sqs-batch-mixed-trace.json`; its two other records fall back
/// to the invocation's trace.
const OWN_ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
/// The Parent that record came in with: the relay's own id replaces it.
const UPSTREAM_PARENT: &str = "53995c3f42cd8ad8";

/// Every trace header the relay sent in `calls`, entry by entry, in order.
fn entry_headers(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .flat_map(|c| c.entry_trace_headers.clone().unwrap_or_default())
        .map(|h| h.unwrap_or_else(|| panic!("an entry without a trace header: {calls:?}")))
        .collect()
}

/// A stand-in X-Ray daemon: the relay records its calls as subsegments (and so becomes the
/// `Parent` of what it sends) only when one is reachable and the trace is sampled.
struct Daemon(UdpSocket);

impl Daemon {
    async fn bind() -> Self {
        Daemon(UdpSocket::bind("127.0.0.1:0").await.unwrap())
    }

    async fn relay(&self, moto: &Moto, targets: &str) -> Relay {
        let address = self.0.local_addr().unwrap().to_string();
        Relay::start_with(moto, targets, &[("AWS_XRAY_DAEMON_ADDRESS", address.as_str())]).await
    }

    /// The subsegments received until the daemon has been quiet for a moment: id → (trace id, name).
    async fn subsegments(&self) -> HashMap<String, (String, String)> {
        let mut found = HashMap::new();
        let mut buf = vec![0u8; 65_536];
        let mut wait = WAIT;
        while let Ok(Ok(len)) = tokio::time::timeout(wait, self.0.recv(&mut buf)).await {
            let datagram = std::str::from_utf8(&buf[..len]).unwrap();
            let (_, document) = datagram.split_once('\n').unwrap();
            let doc: Value = serde_json::from_str(document).unwrap();
            let field = |k: &str| doc[k].as_str().unwrap().to_owned();
            found.insert(field("id"), (field("trace_id"), field("name")));
            wait = Duration::from_millis(500);
        }
        found
    }
}

/// Each header carries one of the batch's Roots (the record's own one once), Sampled as it came,
/// and as Parent the id of a subsegment `name` the relay recorded in that trace for the call.
fn assert_record_roots_with_relay_parents(
    headers: &[String],
    subsegments: &HashMap<String, (String, String)>,
    name: &str,
) {
    assert_eq!(headers.len(), 3, "{headers:?}");
    let mut roots: Vec<&str> = headers.iter().map(|h| header_field(h, "Root").unwrap()).collect();
    roots.sort();
    assert_eq!(roots, vec![OWN_ROOT, INVOCATION_ROOT, INVOCATION_ROOT]);
    for h in headers {
        let parent = header_field(h, "Parent").unwrap();
        assert_ne!(parent, UPSTREAM_PARENT, "the relay is the parent: {h}");
        let (trace_id, sub_name) = subsegments
            .get(parent)
            .unwrap_or_else(|| panic!("Parent of {h} is none of the relay's subsegments: {subsegments:?}"));
        assert_eq!(Some(trace_id.as_str()), header_field(h, "Root"), "{h}");
        assert_eq!(sub_name, name, "{h}");
        assert_eq!(header_field(h, "Sampled"), Some("1"), "{h}");
    }
}

#[tokio::test]
async fn mixed_trace_batch_puts_each_entry_with_its_records_root_and_a_rule_delivers_s3_shaped_detail() {
    let moto = moto().await;
    let queue = moto.create_queue("bus-out").await;
    let bus = moto.create_bus_to_queue("uploads", "s3-trace-relay", &queue).await;
    let daemon = Daemon::bind().await;
    let relay = daemon.relay(&moto, &bus).await;

    let response = relay
        .invoke_fixture("sqs-batch-mixed-trace.json")
        .await
        .expect_response();
    assert!(failed_items(&response).is_empty(), "{response}");

    let calls = moto.calls_of("PutEvents").await;
    assert_eq!(calls.len(), 1, "three entries fit one PutEvents: {calls:?}");
    assert_eq!(
        calls[0].trace_header, None,
        "entries carry their own header, the request none"
    );
    assert_record_roots_with_relay_parents(&entry_headers(&calls), &daemon.subsegments().await, "EventBridge");

    let mut received: Vec<Value> = moto.receive_all(&queue).await.iter().map(|m| m.json()).collect();
    received.sort_by_key(|e| e["detail"]["object"]["key"].as_str().map(str::to_owned));
    assert_eq!(received.len(), 3, "{received:?}");
    for (event, key) in received.iter().zip(["uploads/a.txt", "uploads/b.txt", "uploads/c.txt"]) {
        assert_eq!(event["source"], "s3-trace-relay", "{event}");
        assert_eq!(event["detail-type"], "Object Created", "{event}");
        assert_eq!(
            event["resources"],
            json!(["arn:aws:s3:::relay-demo-uploads"]),
            "{event}"
        );
        assert_eq!(event["detail"]["bucket"]["name"], "relay-demo-uploads", "{event}");
        assert_eq!(event["detail"]["object"]["key"], key, "{event}");
        assert_eq!(event["detail"]["reason"], "PutObject", "{event}");
        assert_eq!(event["time"], "2026-11-25T12:00:00Z", "the event's own time: {event}");
    }
}

#[tokio::test]
async fn mixed_trace_batch_starts_one_execution_per_record_each_with_its_records_root() {
    let moto = moto().await;
    let machine = moto.create_state_machine("thumbnails").await;
    let daemon = Daemon::bind().await;
    let relay = daemon.relay(&moto, &machine).await;

    let response = relay
        .invoke_fixture("sqs-batch-mixed-trace.json")
        .await
        .expect_response();
    assert!(failed_items(&response).is_empty(), "{response}");

    let calls = moto.calls_of("StartExecution").await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|c| c.trace_header.is_none()), "{calls:?}");
    assert_record_roots_with_relay_parents(&entry_headers(&calls), &daemon.subsegments().await, "SFN");
    assert_eq!(moto.execution_names(&machine).await.len(), 3);
}

#[tokio::test]
async fn a_bus_that_does_not_exist_fails_exactly_its_records() {
    let moto = moto().await;
    let good = moto.create_queue("beside-missing-bus").await;
    let missing = "arn:aws:events:us-east-1:123456789012:event-bus/never-created";
    let relay = Relay::start(&moto, &format!("{good},{missing}?prefix=b/")).await;

    let event = sqs_event(&[
        ("m-a", json!({"Records": [s3_record("a/1", "01")]})),
        ("m-b", json!({"Records": [s3_record("b/2", "02")]})),
        ("m-c", json!({"Records": [s3_record("b/3", "03")]})),
    ]);
    let response = relay.invoke(Invocation::json(&event)).await.expect_response();
    assert_eq!(failed_items(&response), vec!["m-b", "m-c"], "{response}");
    assert_eq!(
        moto.receive_all(&good).await.len(),
        3,
        "the queue still got every record"
    );
    assert!(
        moto.calls_of("PutEvents").await.is_empty(),
        "nothing is put on a bus that is not there"
    );
}

#[tokio::test]
async fn a_redelivered_record_starts_no_second_execution() {
    let moto = moto().await;
    let machine = moto.create_state_machine("once").await;
    let relay = Relay::start(&moto, &machine).await;
    for _ in 0..2 {
        let response = relay.invoke_fixture("s3-put.json").await.expect_response();
        assert_eq!(response["published"], 1, "{response}");
    }
    assert_eq!(moto.calls_of("StartExecution").await.len(), 2);
    let names = moto.execution_names(&machine).await;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].len() <= 80, "{names:?}");
}
