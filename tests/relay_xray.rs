//! X-Ray recording at the handler level (the UDP path to a daemon is checked through the binary in
//! `relay_moto.rs`): sampled calls become subsegments whose ids are the messages' `Parent`.

use std::sync::{Arc, Mutex};

use s3_trace_relay::config::{Destination, RelayConfig};
use s3_trace_relay::failure::CallError;
use s3_trace_relay::message::Batch;
use s3_trace_relay::publish::{CallReport, EntryOutcome, Publisher};
use s3_trace_relay::recording::Recorder;
use s3_trace_relay::xray::{SegmentSink, XRay};
use s3_trace_relay::{InvocationInfo, Relay};
use serde_json::Value;

const SAMPLED: &str = "Root=1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=1";
const UNSAMPLED: &str = "Root=1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=0";
const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/out";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:topic";

#[derive(Default)]
struct Documents(Mutex<Vec<String>>);

impl SegmentSink for Documents {
    fn emit(&self, document: &str) {
        self.0.lock().unwrap().push(document.to_owned());
    }
}

impl Documents {
    fn parsed(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }
}

#[derive(Clone, Default)]
struct Accepting(Arc<Mutex<Vec<Batch>>>);

impl Publisher for Accepting {
    async fn send(&self, _: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        self.0.lock().unwrap().push(batch.clone());
        Ok(CallReport {
            entries: vec![EntryOutcome::Delivered; batch.messages.len()],
            request_id: Some("req-abc".into()),
        })
    }
}

fn run(targets: &str, payload: &str, trace: &str) -> (Vec<Value>, Vec<Batch>) {
    let docs = Arc::new(Documents::default());
    let publisher = Accepting::default();
    let config = RelayConfig::from_lookup(|k| (k == "RELAY_TARGETS").then(|| targets.to_owned())).unwrap();
    let xray = XRay::new(docs.clone(), "relay-fn", "us-east-1");
    let recorder = Recorder::new(Some(xray), None).unwrap();
    let relay = Relay::new(Arc::new(config), publisher.clone()).with_recorder(recorder);
    let info = InvocationInfo {
        request_id: "r".into(),
        trace_id: Some(trace.into()),
        deadline_ms: 0,
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(relay.handle(payload, &info))
        .unwrap();
    let batches = publisher.0.lock().unwrap().clone();
    (docs.parsed(), batches)
}

#[test]
fn sampled_direct_call_is_a_subsegment_under_the_function_segment() {
    let (docs, batches) = run(QUEUE, include_str!("../events/s3-put.json"), SAMPLED);
    assert_eq!(docs.len(), 1);
    let sub = &docs[0];
    assert_eq!(sub["type"], "subsegment");
    assert_eq!(sub["namespace"], "aws");
    assert_eq!(sub["name"], "SQS");
    assert_eq!(sub["trace_id"], "1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(sub["parent_id"], "1111111111111111");
    assert_eq!(sub["aws"]["operation"], "SendMessageBatch");
    assert_eq!(sub["aws"]["queue_url"], QUEUE);
    assert_eq!(sub["aws"]["request_id"], "req-abc");
    assert_eq!(sub["http"]["response"]["status"], 200);
    assert_eq!(
        (&sub["error"], &sub["throttle"], &sub["fault"]),
        (&Value::Bool(false), &Value::Bool(false), &Value::Bool(false))
    );
    assert!(sub["end_time"].as_f64().unwrap() >= sub["start_time"].as_f64().unwrap());
    let sent = batches[0].messages[0].trace.as_ref().unwrap();
    assert_eq!(sent.parent().unwrap().to_string(), sub["id"].as_str().unwrap());
    assert_eq!(sent.root().to_string(), "1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa");
    let tp = batches[0].messages[0].traceparent().unwrap();
    assert!(tp.contains(sub["id"].as_str().unwrap()), "{tp}");
}

#[test]
fn sns_call_carries_the_subsegment_id_in_its_request_header() {
    let (docs, batches) = run(TOPIC, include_str!("../events/s3-put.json"), SAMPLED);
    assert_eq!(docs[0]["name"], "SNS");
    assert_eq!(docs[0]["aws"]["topic_arn"], TOPIC);
    let header = batches[0].request_trace.as_ref().unwrap();
    assert_eq!(header.parent().unwrap().to_string(), docs[0]["id"].as_str().unwrap());
}

#[test]
fn unsampled_trace_records_nothing_and_keeps_the_incoming_parent() {
    let (docs, batches) = run(QUEUE, include_str!("../events/s3-put.json"), UNSAMPLED);
    assert!(docs.is_empty());
    assert_eq!(batches[0].messages[0].trace.as_ref().unwrap().to_string(), UNSAMPLED);
}

#[test]
fn record_level_trace_gets_a_relay_segment_parented_upstream() {
    // Record 1 carries its own sampled trace; records 2 and 3 fall back to the invocation's.
    let (docs, batches) = run(QUEUE, include_str!("../events/sqs-batch-mixed-trace.json"), SAMPLED);
    let segments: Vec<&Value> = docs.iter().filter(|d| d["type"] != "subsegment").collect();
    let subsegments: Vec<&Value> = docs.iter().filter(|d| d["type"] == "subsegment").collect();
    assert_eq!(segments.len(), 1, "one relay segment for the one upstream trace");
    let relay_segment = segments[0];
    assert_eq!(relay_segment["name"], "relay-fn");
    assert_eq!(relay_segment["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(relay_segment["parent_id"], "53995c3f42cd8ad8");
    assert_eq!(subsegments.len(), 2, "one subsegment per trace context in the call");
    let upstream_sub = subsegments
        .iter()
        .find(|s| s["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793")
        .unwrap();
    assert_eq!(upstream_sub["parent_id"], relay_segment["id"]);
    let invocation_sub = subsegments
        .iter()
        .find(|s| s["trace_id"] == "1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa")
        .unwrap();
    assert_eq!(invocation_sub["parent_id"], "1111111111111111");
    let parents: Vec<String> = batches[0]
        .messages
        .iter()
        .map(|m| m.trace.as_ref().unwrap().parent().unwrap().to_string())
        .collect();
    assert_eq!(parents[0], upstream_sub["id"].as_str().unwrap());
    assert_eq!(parents[1], invocation_sub["id"].as_str().unwrap());
    assert_eq!(parents[2], invocation_sub["id"].as_str().unwrap());
}

/// The documents with what changes from run to run (generated ids, times) replaced by
/// placeholders, sorted by type, trace and name.
fn normalized(docs: &[Value]) -> Value {
    let relay_ids: Vec<Value> = docs
        .iter()
        .filter(|d| d["type"] != "subsegment")
        .map(|d| d["id"].clone())
        .collect();
    let mut docs: Vec<Value> = docs
        .iter()
        .cloned()
        .map(|mut d| {
            d["id"] = "<generated>".into();
            d["start_time"] = "<time>".into();
            d["end_time"] = "<time>".into();
            if relay_ids.contains(&d["parent_id"]) {
                d["parent_id"] = "<the relay segment's id>".into();
            }
            d
        })
        .collect();
    docs.sort_by_key(|d| (d["type"].to_string(), d["trace_id"].to_string(), d["name"].to_string()));
    Value::Array(docs)
}

#[test]
fn documents_match_the_golden_segment_documents() {
    // A mixed SQS batch to a queue and a topic: one relay segment in the record-level trace, and a
    // subsegment per trace context per call.
    let targets = format!("{QUEUE},{TOPIC}");
    let (docs, _) = run(&targets, include_str!("../events/sqs-batch-mixed-trace.json"), SAMPLED);
    let golden: Value = serde_json::from_str(include_str!("fixtures/xray/mixed-batch-documents.json")).unwrap();
    assert_eq!(normalized(&docs), golden);
}
