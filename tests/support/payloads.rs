//! Invocation payloads and context for the relay tests (`relay_core.rs`, `hostile_inputs.rs`,
//! `relay_moto.rs`).

use s3_trace_relay::InvocationInfo;
use serde_json::{Value, json};

/// A valid invocation trace header, with every field.
pub const INVOCATION_TRACE: &str =
    "Root=1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=1;Lineage=a87bd80c:1|68fd508a:5";
pub const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/out";
pub const FIFO_QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/out.fifo";

/// The invocation context, with no deadline.
pub fn invocation(request_id: &str, trace_id: Option<&str>) -> InvocationInfo {
    InvocationInfo {
        request_id: request_id.into(),
        trace_id: trace_id.map(str::to_owned),
        deadline_ms: 0,
    }
}

/// An `ObjectCreated:Put` S3 record for `key` in the bucket `bucket`.
pub fn s3_record(key: &str, sequencer: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": {"name": "bucket", "arn": "arn:aws:s3:::bucket"},
            "object": {"key": key, "size": 1, "sequencer": sequencer}}
    })
}
