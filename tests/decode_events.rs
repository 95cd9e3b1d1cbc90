//! Every sample payload under `events/` decodes to the units, notifications and trace carriers
//! CONTRACT §3 says it holds.

use s3_trace_relay::inbound::{Carrier, Content, DecodeError, Inbound, Source, decode};
use s3_trace_relay::message::Notification;

fn decode_fixture(text: &str) -> Inbound {
    decode(text).expect("fixture decodes")
}

fn notifications(inbound: &Inbound) -> Vec<&Notification> {
    inbound
        .units
        .iter()
        .flat_map(|u| match &u.content {
            Ok(Content::Notifications(list)) => list.iter().map(AsRef::as_ref).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn direct_put_is_one_s3_unit_with_the_record_as_received() {
    let text = include_str!("../events/s3-put.json");
    let inbound = decode_fixture(text);
    assert_eq!(inbound.source, Source::S3);
    assert_eq!(inbound.units.len(), 1);
    assert_eq!(inbound.units[0].carrier, Carrier::Absent);
    let n = notifications(&inbound)[0];
    assert_eq!(
        (n.bucket.as_str(), n.key.as_str()),
        ("relay-demo-uploads", "images/cat.jpg")
    );
    assert_eq!(n.event_name, "ObjectCreated:Put");
    let body: serde_json::Value = serde_json::from_str(&n.body).unwrap();
    let input: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        body, input,
        "body is {{\"Records\":[record]}} with the record unchanged"
    );
}

#[test]
fn forwarded_record_keeps_its_bytes() {
    let text = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2026-11-25T12:00:00.000Z","userIdentity":{"principalId":"x"},"requestParameters":{"sourceIPAddress":"1.2.3.4"},"responseElements":{},"s3":{"bucket":{"name":"b"},"object":{"key":"k","size":1500 ,"x-extra":  "kept\u00e9"}}}]}"#;
    let inbound = decode_fixture(text);
    let n = notifications(&inbound)[0];
    assert_eq!(n.body, text, "the record's own text, spacing and escapes included");
}

#[test]
fn direct_delete_keeps_its_event_name() {
    let inbound = decode_fixture(include_str!("../events/s3-delete.json"));
    assert_eq!(notifications(&inbound)[0].event_name, "ObjectRemoved:Delete");
}

#[test]
fn keys_are_url_decoded_for_routing_only() {
    let inbound = decode_fixture(include_str!("../events/s3-key-escapes.json"));
    let n = notifications(&inbound)[0];
    assert_eq!(n.key, "my photos/café & bar+1%.jpg");
    assert!(n.body.contains("my+photos/caf%C3%A9+%26+bar%2B1%25.jpg"));
}

#[test]
fn test_event_is_acknowledged() {
    let inbound = decode_fixture(include_str!("../events/s3-test-event.json"));
    assert!(matches!(inbound.units[0].content, Ok(Content::TestEvent)));
}

#[test]
fn sqs_batch_carries_each_record_trace_header() {
    let inbound = decode_fixture(include_str!("../events/sqs-batch-mixed-trace.json"));
    assert_eq!(inbound.source, Source::Sqs { fifo: false });
    let carriers: Vec<&Carrier> = inbound.units.iter().map(|u| &u.carrier).collect();
    match carriers[0] {
        Carrier::Valid(h) => assert_eq!(
            h.to_string(),
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        ),
        other => panic!("expected a valid header, got {other:?}"),
    }
    assert!(matches!(carriers[1], Carrier::Invalid(_)));
    assert_eq!(carriers[2], &Carrier::Absent);
    assert_eq!(
        inbound.units[0].message_id.as_deref(),
        Some("059f36b4-87a3-44ab-83d2-661975830a7d")
    );
    assert_eq!(notifications(&inbound).len(), 3);
}

#[test]
fn sns_envelope_inside_sqs_is_unwrapped() {
    let inbound = decode_fixture(include_str!("../events/sqs-sns-envelope.json"));
    let n = notifications(&inbound)[0];
    assert_eq!(n.key, "reports/q4 summary.pdf");
    assert!(n.body.starts_with("{\"Records\":[{"));
    assert!(matches!(inbound.units[0].carrier, Carrier::Valid(_)));
}

#[test]
fn sns_invocation_unwraps_the_message() {
    let inbound = decode_fixture(include_str!("../events/sns-wrapped.json"));
    assert_eq!(inbound.source, Source::Sns);
    assert_eq!(notifications(&inbound)[0].key, "videos/clip.mp4");
}

#[test]
fn eventbridge_event_is_forwarded_unchanged() {
    let text = include_str!("../events/eventbridge-object-created.json");
    let inbound = decode_fixture(text);
    assert_eq!(inbound.source, Source::EventBridge);
    let n = notifications(&inbound)[0];
    assert_eq!(n.body, text);
    assert_eq!(
        (n.key.as_str(), n.event_name.as_str()),
        ("images/dog.png", "ObjectCreated:Put")
    );
}

#[test]
fn traceparent_attribute_is_used_when_aws_trace_header_is_absent() {
    let text = r#"{"Records":[{"messageId":"m1","body":"{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}","attributes":{},"messageAttributes":{"traceparent":{"stringValue":"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01","dataType":"String"}},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:123456789012:q.fifo"}]}"#;
    let inbound = decode_fixture(text);
    assert_eq!(inbound.source, Source::Sqs { fifo: true });
    match &inbound.units[0].carrier {
        Carrier::Valid(h) => assert_eq!(h.root().to_string(), "1-5759e988-bd862e3fe1be46a994272793"),
        other => panic!("expected traceparent to be used, got {other:?}"),
    }
}

#[test]
fn malformed_json_is_rejected_as_not_json() {
    assert!(matches!(decode("{\"Records\": ["), Err(DecodeError::NotJson(_))));
}

#[test]
fn unknown_payload_is_rejected_with_the_accepted_shapes() {
    let err = decode(r#"{"hello":"world"}"#).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownShape(_)));
    assert!(err.to_string().contains("s3:TestEvent"), "{err}");
}

#[test]
fn sqs_record_with_a_bad_body_fails_only_itself() {
    let text = r#"{"Records":[
        {"messageId":"good","body":"{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}","attributes":{},"messageAttributes":{},"eventSource":"aws:sqs"},
        {"messageId":"bad","body":"not json","attributes":{},"messageAttributes":{},"eventSource":"aws:sqs"}]}"#;
    let inbound = decode_fixture(text);
    assert!(inbound.units[0].content.is_ok());
    assert!(matches!(inbound.units[1].content, Err(DecodeError::NotJson(_))));
}

#[test]
fn s3_record_without_a_key_fails_only_itself() {
    let text = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2026-11-25T12:00:00.000Z","userIdentity":{},"requestParameters":{},"s3":{"bucket":{"name":"b"},"object":{}}}]}"#;
    let inbound = decode_fixture(text);
    let err = inbound.units[0].content.as_ref().unwrap_err();
    assert_eq!(err.to_string(), "S3 record 0 has no s3.object.key");
}
