//! Logs cannot be forged (CONTRACT §7): values from input — object keys, message ids, bucket names —
//! are escaped in both of Lambda's log formats, text lines carry no colour codes when stdout is not a
//! terminal, JSON fields are plain values, and keys in logs are length-bounded. Checked on the real
//! binary's output, with a key whose escapes decode to a newline, a carriage return and terminal
//! escape sequences.

mod support;

use serde_json::{Value, json};
use support::moto::moto;
use support::relay_process::{Relay, WAIT};

/// `evil␊level=ERROR message="forged"␍ESC[31mred ESC[0m.txt` once URL-decoded, as S3 writes it.
const HOSTILE_KEY: &str = "evil%0Alevel%3DERROR+message%3D%22forged%22%0D%1B%5B31mred%1B%5B0m.txt";
/// A message id with a line break, as a hostile or broken producer could write it.
const HOSTILE_MESSAGE_ID: &str = "m-1\nlevel=ERROR forged";

fn s3_record(key: &str) -> Value {
    json!({"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T12:00:00.000Z",
        "s3": {"bucket": {"name": "bucket"}, "object": {"key": key, "sequencer": "01"}}})
}

/// An SQS event with one message whose `AWSTraceHeader` is invalid (a warning names the message).
fn sqs_event(message_id: &str, key: &str) -> Value {
    json!({"Records": [{"messageId": message_id, "body": json!({"Records": [s3_record(key)]}).to_string(),
        "attributes": {"AWSTraceHeader": "Root=not-a-root"}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:src"}]})
}

/// A relay logging at DEBUG in `format`, with a queue that exists and one that does not (so a
/// delivery failure is logged with the key).
async fn relay_logging(format: &str) -> (Relay, support::moto::MotoGuard) {
    let moto = moto().await;
    let queue = moto.create_queue("log-safety").await;
    let missing = format!("{}/123456789012/never-created", moto.endpoint());
    let relay = Relay::start_with(
        &moto,
        &format!("{queue},{missing}"),
        &[("AWS_LAMBDA_LOG_FORMAT", format), ("AWS_LAMBDA_LOG_LEVEL", "DEBUG")],
    )
    .await;
    (relay, moto)
}

/// Relays the hostile direct event and SQS event, and returns everything the process wrote.
async fn hostile_invocations(relay: &Relay) -> String {
    let _ = relay.invoke_json(&json!({"Records": [s3_record(HOSTILE_KEY)]})).await;
    let _ = relay.invoke_json(&sqs_event(HOSTILE_MESSAGE_ID, HOSTILE_KEY)).await;
    let long_key = "k".repeat(1500);
    let _ = relay.invoke_json(&json!({"Records": [s3_record(&long_key)]})).await;
    let deadline = std::time::Instant::now() + WAIT;
    while relay.process.logs().matches("invocation done").count() < 3 {
        assert!(std::time::Instant::now() < deadline, "three invocations did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    relay.process.logs()
}

/// A line the text formatter or the EMF writer starts: a level, or a JSON object.
fn is_text_log_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "]
        .iter()
        .any(|level| trimmed.starts_with(level))
        || trimmed.starts_with('{')
}

#[tokio::test]
async fn text_logs_escape_input_and_carry_no_colour_codes() {
    let (relay, _moto) = relay_logging("Text").await;
    let logs = hostile_invocations(&relay).await;
    let raw: Vec<&str> = logs.lines().filter(|l| l.contains(['\r', '\x1b'])).collect();
    assert!(
        raw.is_empty(),
        "raw carriage returns or escape sequences (input or colour): {raw:?}"
    );
    let forged: Vec<&str> = logs.lines().filter(|l| !is_text_log_line(l)).collect();
    assert!(forged.is_empty(), "lines not written by the formatter: {forged:?}");
    assert!(logs.contains(r#"evil\nlevel=ERROR"#), "the key is logged, escaped");
    assert!(logs.contains(r#"m-1\nlevel=ERROR forged"#), "the message id too");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_plain_values() {
    let (relay, _moto) = relay_logging("JSON").await;
    let logs = hostile_invocations(&relay).await;
    let raw: Vec<&str> = logs.lines().filter(|l| l.contains(['\r', '\x1b'])).collect();
    assert!(raw.is_empty(), "raw carriage returns or escape sequences: {raw:?}");
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {l:.300?}")))
        .collect();
    let fields = |message: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .map(|l| l["fields"].clone())
            .collect()
    };
    let decoded = "evil\nlevel=ERROR message=\"forged\"\r\x1b[31mred\x1b[0m.txt";
    let received = fields("record received");
    assert_eq!(
        received[0]["key"], decoded,
        "JSON carries the key as a plain, escaped string"
    );
    let fallback = fields("trace context fallback");
    assert_eq!(
        fallback[0]["message_id"], HOSTILE_MESSAGE_ID,
        "a plain value, not Some(..)"
    );
    let failed = fields("message not delivered");
    assert_eq!(failed[0]["key"], decoded);
}

#[tokio::test]
async fn keys_in_logs_are_length_bounded() {
    let (relay, _moto) = relay_logging("JSON").await;
    let logs = hostile_invocations(&relay).await;
    let longest = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l["fields"]["key"].as_str().map(str::len))
        .max()
        .unwrap();
    assert!(longest < 1100, "a 1500-byte key logged with {longest} bytes");
}
