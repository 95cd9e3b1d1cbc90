//! The relay over the whole space of real S3 events, handler level (in-memory publisher): every
//! event type S3 documents (and names it adds later) in filters, records from S3-compatible emitters
//! that omit most fields, FIFO deduplication ids that never merge two distinct events, and an SQS
//! batch in which one foreign record fails only itself (CONTRACT §2–4, §6).

mod support;

use s3_trace_relay::InvocationInfo;
use s3_trace_relay::config::RelayConfig;
use s3_trace_relay::inbound::{Content, decode};
use serde_json::{Value, json};
use support::fake_publisher::{FakePublisher, failed_ids, relay};
use support::payloads::{FIFO_QUEUE, INVOCATION_TRACE, QUEUE, invocation};

fn info() -> InvocationInfo {
    invocation("req-real", Some(INVOCATION_TRACE))
}

/// An S3 record as S3 writes it for an event without a sequencer or version id (tagging, ACL,
/// restore, lifecycle, …) on an unversioned bucket.
fn record(event_name: &str, key: &str, time: &str, request_id: &str) -> Value {
    json!({
        "eventVersion": "2.3", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": time, "eventName": event_name,
        "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": "id2"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": {"name": "bucket", "arn": "arn:aws:s3:::bucket"},
            "object": {"key": key, "size": 1, "eTag": "e"}}
    })
}

fn direct(records: &[Value]) -> String {
    json!({ "Records": records }).to_string()
}

/// The deduplication ids of every message sent to `destination`, in order.
fn dedup_ids(publisher: &FakePublisher, destination: &str) -> Vec<String> {
    publisher
        .sent_to(destination)
        .iter()
        .flat_map(|b| &b.messages)
        .map(|m| m.fifo.as_ref().expect("FIFO ids").deduplication_id.clone())
        .collect()
}

async fn relay_to_fifo(payload: &str) -> Vec<String> {
    let publisher = FakePublisher::default();
    relay(FIFO_QUEUE, publisher.clone())
        .handle(payload, &info())
        .await
        .expect("relayed");
    dedup_ids(&publisher, FIFO_QUEUE)
}

// --- 1. FIFO deduplication ids -------------------------------------------------------------------

#[tokio::test]
async fn two_tagging_events_on_one_unversioned_key_get_distinct_deduplication_ids() {
    let ids = relay_to_fifo(&direct(&[
        record("ObjectTagging:Put", "k", "2026-11-25T12:00:00.000Z", "REQ1"),
        record("ObjectTagging:Put", "k", "2026-11-25T12:00:05.000Z", "REQ2"),
    ]))
    .await;
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn events_differing_only_in_request_id_get_distinct_deduplication_ids() {
    let ids = relay_to_fifo(&direct(&[
        record("ObjectAcl:Put", "k", "2026-11-25T12:00:00.000Z", "REQ1"),
        record("ObjectAcl:Put", "k", "2026-11-25T12:00:00.000Z", "REQ2"),
    ]))
    .await;
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn events_differing_only_in_event_time_get_distinct_deduplication_ids() {
    // S3-compatible emitters (moto) send no request id: the time still tells two events apart.
    let mut first = record("ObjectRestore:Completed", "k", "2026-11-25T12:00:00.000Z", "");
    let mut second = record("ObjectRestore:Completed", "k", "2026-11-25T12:00:00.001Z", "");
    first.as_object_mut().unwrap().remove("responseElements");
    second.as_object_mut().unwrap().remove("responseElements");
    let ids = relay_to_fifo(&direct(&[first, second])).await;
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn a_redelivered_record_keeps_its_deduplication_id() {
    let payload = direct(&[record("ObjectTagging:Delete", "k", "2026-11-25T12:00:00.000Z", "REQ1")]);
    assert_eq!(relay_to_fifo(&payload).await, relay_to_fifo(&payload).await);
}

fn eventbridge(request_id: &str, time: &str) -> String {
    let mut event: Value = serde_json::from_str(include_str!("../events/eventbridge-object-created.json")).unwrap();
    event["detail"]["request-id"] = request_id.into();
    event["time"] = time.into();
    event["detail"]["object"].as_object_mut().unwrap().remove("sequencer");
    event.to_string()
}

#[tokio::test]
async fn eventbridge_events_are_told_apart_by_request_id_and_time() {
    let base = relay_to_fifo(&eventbridge("REQ1", "2026-11-25T12:00:00Z")).await;
    let other_request = relay_to_fifo(&eventbridge("REQ2", "2026-11-25T12:00:00Z")).await;
    let other_time = relay_to_fifo(&eventbridge("REQ1", "2026-11-25T12:00:01Z")).await;
    let again = relay_to_fifo(&eventbridge("REQ1", "2026-11-25T12:00:00Z")).await;
    assert_ne!(base, other_request);
    assert_ne!(base, other_time);
    assert_eq!(base, again, "a redelivered EventBridge event keeps its id");
}

// --- 2. Every S3 event type in filters -----------------------------------------------------------

/// Every event type S3 documents (user guide, notification-how-to-event-types-and-destinations),
/// and the ones the 2026 SDKs add.
const DOCUMENTED_EVENT_TYPES: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ReducedRedundancyLostObject",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAnnotation:*",
    "s3:ObjectAnnotation:Put",
    "s3:ObjectAnnotation:Delete",
];

/// The `eventName` of a record of this type: no `s3:`, and a concrete name for a wildcard.
fn record_event_name(event_type: &str) -> String {
    let name = event_type.strip_prefix("s3:").unwrap_or(event_type);
    match name.strip_suffix('*') {
        Some(category) => format!("{category}Example"),
        None => name.to_owned(),
    }
}

fn config_with(targets: &str) -> Result<RelayConfig, String> {
    RelayConfig::from_lookup(|k| (k == "RELAY_TARGETS").then(|| targets.to_owned())).map_err(|e| e.to_string())
}

#[test]
fn every_documented_event_type_is_accepted_with_and_without_the_s3_prefix() {
    for event_type in DOCUMENTED_EVENT_TYPES {
        for spelling in [*event_type, event_type.strip_prefix("s3:").unwrap()] {
            let config = config_with(&format!("{QUEUE}?events={spelling}"))
                .unwrap_or_else(|e| panic!("{spelling} refused: {e}"));
            let name = record_event_name(event_type);
            assert!(
                config.targets[0].filters[0].matches("k", &name),
                "{spelling} does not match a record named {name}"
            );
        }
    }
}

#[test]
fn well_formed_future_event_names_are_accepted() {
    for pattern in ["s3:ObjectLegalHold:Put", "ObjectRetention:*", "s3:SomethingNew"] {
        assert!(config_with(&format!("{QUEUE}?events={pattern}")).is_ok(), "{pattern}");
    }
}

#[test]
fn colon_less_event_types_match_only_their_own_name() {
    let config = config_with(&format!("{QUEUE}?events=s3:IntelligentTiering,LifecycleTransition")).unwrap();
    let filter = &config.targets[0].filters[0];
    assert!(filter.matches("k", "IntelligentTiering"));
    assert!(filter.matches("k", "LifecycleTransition"));
    assert!(!filter.matches("k", "LifecycleExpiration:Delete"));
    assert!(!filter.matches("k", "IntelligentTieringArchive"));
}

#[test]
fn malformed_event_patterns_are_still_refused() {
    for pattern in [
        "Object Created:*",
        ":Put",
        "ObjectCreated::Put",
        "ObjectCreated:P*t",
        "s3:",
        "9Lives",
    ] {
        let err = config_with(&format!("{QUEUE}?events={pattern}")).unwrap_err();
        assert!(err.contains("event pattern"), "{pattern}: {err}");
    }
}

#[tokio::test]
async fn eventbridge_event_without_reason_matches_its_category_wildcard() {
    let mut event: Value = serde_json::from_str(include_str!("../events/eventbridge-object-created.json")).unwrap();
    event["detail"].as_object_mut().unwrap().remove("reason");
    let publisher = FakePublisher::default();
    relay(&format!("{QUEUE}?events=ObjectCreated:*"), publisher.clone())
        .handle(&event.to_string(), &info())
        .await
        .unwrap();
    assert_eq!(publisher.sent_keys(), vec![vec!["images/dog.png"]]);
    let sent = publisher.sent();
    assert_eq!(sent[0].1.messages[0].notification.event_name, "ObjectCreated");
}

// --- 3. Records from S3-compatible emitters ------------------------------------------------------

#[tokio::test]
async fn a_record_with_only_the_fields_the_relay_reads_is_relayed_unchanged() {
    let minimal = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
    let publisher = FakePublisher::default();
    relay(QUEUE, publisher.clone()).handle(minimal, &info()).await.unwrap();
    let sent = publisher.sent();
    assert_eq!(sent[0].1.messages[0].notification.body, minimal);
}

#[tokio::test]
async fn a_moto_notification_without_user_identity_or_sequencer_is_relayed() {
    // What moto 5.2.5 puts in a queue for PutObject (captured from its S3 notification code).
    let body = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "relay",
            "bucket": {"name": "bucket", "arn": "arn:aws:s3:::bucket"},
            "object": {"key": "uploads/my+photo.jpg", "size": 3, "eTag": "e"}}
    }]});
    let publisher = FakePublisher::default();
    relay(QUEUE, publisher.clone())
        .handle(&direct(&body["Records"].as_array().unwrap().clone()), &info())
        .await
        .unwrap();
    assert_eq!(publisher.sent_keys(), vec![vec!["uploads/my photo.jpg"]]);
}

#[test]
fn an_event_time_that_is_not_rfc3339_is_forwarded_as_received() {
    let text = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"1764072000","responseElements":{"x-amz-request-id":7},"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
    let inbound = decode(text).unwrap();
    assert!(matches!(&inbound.units[0].content, Ok(Content::Notifications(n)) if n[0].body == text));
}

// --- 4. One bad record fails only itself ---------------------------------------------------------

fn sqs_message(id: &str, key: &str) -> Value {
    let body = json!({"Records": [record("ObjectCreated:Put", key, "2026-11-25T12:00:00.000Z", "R")]});
    json!({"messageId": id, "body": body.to_string(), "attributes": {}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:src"})
}

async fn relay_sqs(records: Vec<Value>) -> (Vec<String>, Vec<Vec<String>>) {
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&json!({ "Records": records }).to_string(), &info())
        .await
        .expect("an SQS batch response, not an invocation error");
    (failed_ids(&response), publisher.sent_keys())
}

#[tokio::test]
async fn an_sqs_record_claiming_another_event_source_fails_alone() {
    let mut foreign = sqs_message("m2", "b");
    foreign["eventSource"] = "aws:s3".into();
    let (failed, sent) = relay_sqs(vec![sqs_message("m1", "a"), foreign, sqs_message("m3", "c")]).await;
    assert_eq!(failed, vec!["m2"]);
    assert_eq!(sent, vec![vec!["a", "c"]]);
}

#[tokio::test]
async fn a_foreign_first_record_does_not_turn_the_batch_into_another_source() {
    let mut foreign = sqs_message("m1", "a");
    foreign["eventSource"] = "aws:kinesis".into();
    let (failed, sent) = relay_sqs(vec![foreign, sqs_message("m2", "b")]).await;
    assert_eq!(failed, vec!["m1"]);
    assert_eq!(sent, vec![vec!["b"]]);
}

#[tokio::test]
async fn an_sqs_message_whose_body_is_no_s3_notification_fails_alone() {
    let mut other = sqs_message("m1", "a");
    other["body"] = json!({"orderId": 17}).to_string().into();
    let (failed, sent) = relay_sqs(vec![other, sqs_message("m2", "b")]).await;
    assert_eq!(failed, vec!["m1"]);
    assert_eq!(sent, vec![vec!["b"]]);
}

#[test]
fn a_foreign_record_in_an_sqs_batch_is_named_with_what_was_expected() {
    let mut foreign = sqs_message("m2", "b");
    foreign["eventSource"] = "aws:s3".into();
    let inbound = decode(&json!({"Records": [sqs_message("m1", "a"), foreign]}).to_string()).unwrap();
    let error = inbound.units[1].content.as_ref().unwrap_err().to_string();
    assert_eq!(
        error,
        "record 1 has eventSource \"aws:s3\" in an SQS event: expected aws:sqs"
    );
}
