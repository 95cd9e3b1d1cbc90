//! The real relay binary against moto, for the end-to-end test files (`relay_moto.rs`,
//! `emitters_moto.rs`): start it under a Runtime API stand-in, invoke it, and read what consumers
//! receive; plus the Lambda events that wrap what moto delivered.

use std::time::Duration;

use serde_json::{Value, json};

use super::fixture;
use super::moto::{Moto, Received};
use super::runtime_api::{Invocation, Outcome, RelayProcess, RuntimeApi};

/// How long a test waits for the relay to poll or answer.
pub const WAIT: Duration = Duration::from_secs(30);
/// What Lambda sends for a sampled invocation of a function behind an uploader with lineage.
pub const INVOCATION_TRACE: &str =
    "Root=1-6745a1b2-0123456789abcdef01234567;Parent=a1b2c3d4e5f60718;Sampled=1;Lineage=a87bd80c:1|68fd508a:5";
/// The `Root` of [`INVOCATION_TRACE`].
pub const INVOCATION_ROOT: &str = "1-6745a1b2-0123456789abcdef01234567";

/// A relay process and its Runtime API, started with `targets`.
pub struct Relay {
    pub api: RuntimeApi,
    pub process: RelayProcess,
}

impl Relay {
    pub async fn start(moto: &Moto, targets: &str) -> Self {
        Self::start_with(moto, targets, &[]).await
    }

    pub async fn start_with(moto: &Moto, targets: &str, extra: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start().await;
        let mut env = vec![("RELAY_TARGETS", targets), ("AWS_ENDPOINT_URL", moto.endpoint())];
        env.extend_from_slice(extra);
        let process = RelayProcess::spawn(&api, &env);
        assert!(
            api.wait_for_polls(1, WAIT).await,
            "relay never polled /next:\n{}",
            process.logs()
        );
        Relay { api, process }
    }

    pub async fn invoke(&self, invocation: Invocation) -> Outcome {
        let handle = self.api.invoke(invocation);
        handle.outcome(WAIT).await
    }

    /// Invokes the relay with a fixture file as the payload, under [`INVOCATION_TRACE`].
    pub async fn invoke_fixture(&self, name: &str) -> Outcome {
        self.invoke(Invocation::new(fixture(name)).with_trace(INVOCATION_TRACE))
            .await
    }

    /// Invokes the relay with a JSON payload, under [`INVOCATION_TRACE`].
    pub async fn invoke_json(&self, payload: &Value) -> Outcome {
        self.invoke(Invocation::json(payload).with_trace(INVOCATION_TRACE))
            .await
    }
}

/// The value of `key` in an X-Ray trace header.
pub fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    header
        .split(';')
        .find_map(|part| part.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// A Lambda SQS event of `(message id, body)` pairs from a standard source queue.
pub fn sqs_event(messages: &[(&str, Value)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "body": body.to_string(), "attributes": {}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:source"})
        })
        .collect();
    json!({ "Records": records })
}

/// The Lambda SQS event an event source mapping on `queue_arn` makes of messages received from it:
/// bodies and system attributes exactly as the queue delivered them.
pub fn sqs_event_of(queue_arn: &str, messages: &[Received]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({"messageId": m.message_id, "receiptHandle": "r", "body": m.body,
                "attributes": m.attributes, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

/// The Lambda SNS event for one SNS notification envelope (as an SQS subscriber without raw
/// delivery receives it): Lambda spells two of its keys differently.
pub fn sns_event_of(envelope: &Value, subscription_arn: &str) -> Value {
    let mut sns = envelope.clone();
    if let Some(fields) = sns.as_object_mut() {
        for (from, to) in [
            ("SigningCertURL", "SigningCertUrl"),
            ("UnsubscribeURL", "UnsubscribeUrl"),
        ] {
            if let Some(value) = fields.remove(from) {
                fields.insert(to.to_owned(), value);
            }
        }
    }
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn, "Sns": sns}]})
}

/// The `batchItemFailures` ids of an SQS batch response.
pub fn failed_items(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not an SQS batch response: {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

/// The object keys of relayed messages, sorted.
pub fn keys_of(messages: &[Received]) -> Vec<String> {
    let mut keys: Vec<String> = messages
        .iter()
        .map(|m| {
            m.json()["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    keys.sort();
    keys
}
