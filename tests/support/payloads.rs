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

/// An SQS event whose messages each carry one S3 record; `(message id, key, group, AWSTraceHeader)`.
pub fn sqs(arn: &str, messages: &[(&str, &str, Option<&str>, Option<&str>)]) -> String {
    let records: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, (id, key, group, trace))| {
            let mut attributes = json!({"ApproximateReceiveCount": "1"});
            if let Some(g) = group {
                attributes["MessageGroupId"] = (*g).into();
            }
            if let Some(t) = trace {
                attributes["AWSTraceHeader"] = (*t).into();
            }
            let body = json!({"Records": [s3_record(key, &format!("{i:018}"))]});
            json!({"messageId": id, "body": body.to_string(), "attributes": attributes,
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": arn})
        })
        .collect();
    json!({ "Records": records }).to_string()
}
