//! Inbound decoding and the pure relay pipeline (CONTRACT §3–5): arbitrary bytes, read as UTF-8
//! (lossily), through `inbound::decode` and `relay::prepare` (decode → trace → route → batch) for
//! four targets: a filtered SQS queue, an SNS topic, a FIFO SQS queue and a filtered FIFO SNS topic.
//!
//! Each input is tried twice: as the whole invocation payload, and as the body of one SQS message
//! of an otherwise valid SQS event (so mutations explore body decoding without first having to
//! rebuild the SQS envelope). The invocation trace header is picked by the input's length: valid,
//! absent, or a header-injection attempt.
//!
//! The input is also read as bytes as received, as the streaming relay reads an SQS event.
//!
//! Never panics, `decode` (with its one-pass SQS path) answers as the general record-by-record
//! decoder does, the look ahead for where trace contexts end (`sqs_carriers`) reads each SQS
//! message's carrier as decoding does, and whatever plan comes out keeps CONTRACT §4–5: at most 10 entries and the
//! byte limit per batch, SNS batches share one trace context, FIFO targets get valid ids and keep
//! the record order, filters hold, outbound trace headers are canonical (nothing from the input is
//! copied into them), and every body is JSON.
#![no_main]

use std::collections::HashMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use s3_trace_relay::config::{Destination, Target, parse_targets};
use s3_trace_relay::failure::Reason;
use s3_trace_relay::inbound::{decode, decode_record_by_record, decode_sqs_each, sqs_carriers};
use s3_trace_relay::message::Batch;
use s3_trace_relay::plan::max_batch_bytes;
use s3_trace_relay::relay::prepare;
use serde::de::IgnoredAny;

const TARGETS: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/out?prefix=uploads/&suffix=.txt&events=ObjectCreated:*,ObjectRemoved:Delete,\
arn:aws:sns:us-east-1:123456789012:topic,\
arn:aws:sqs:us-east-1:123456789012:ordered.fifo,\
arn:aws:sns:us-east-1:123456789012:ordered.fifo?events=ObjectRemoved:*";

static PARSED: LazyLock<Vec<Target>> = LazyLock::new(|| parse_targets(TARGETS).expect("fuzz targets parse"));

const INVOCATION_TRACES: [Option<&str>; 3] = [
    Some("Root=1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa;Parent=1111111111111111;Sampled=1;Lineage=a87bd80c:1|68fd508a:5"),
    None,
    Some("Root=1-6745a1b2-aaaaaaaaaaaaaaaaaaaaaaaa\r\nX-Injected: 1"),
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let trace = INVOCATION_TRACES[data.len() % INVOCATION_TRACES.len()];
    check_bytes(data, &text);
    check(&text, trace);
    check(&as_sqs_body(&text, data.first().copied()), trace);
});

/// The bytes as received, as the streaming relay reads them: never panics, and where the one-pass
/// SQS decoder answers, it answers as for the same bytes read lossily (bytes that are not UTF-8 can
/// only sit in values it skips).
fn check_bytes(data: &[u8], text: &str) {
    let _ = sqs_carriers(data).map(Iterator::count);
    if let Some(raw) = decode_sqs_each(data, |_, _, unit| Some(unit)) {
        let lossy = decode_sqs_each(text.as_bytes(), |_, _, unit| Some(unit));
        assert_eq!(Some(raw), lossy, "bytes and lossy text decode differently");
    }
}

/// One SQS event carrying `body`; the first input byte picks the record's trace carrier.
fn as_sqs_body(body: &str, selector: Option<u8>) -> String {
    let mut attributes = serde_json::json!({"ApproximateReceiveCount": "1", "MessageGroupId": "g"});
    let mut message_attributes = serde_json::json!({});
    match selector.map(|b| b % 4) {
        Some(0) => {
            attributes["AWSTraceHeader"] =
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into()
        }
        Some(1) => attributes["AWSTraceHeader"] = "Root=1-5759e988-bd862e3fe1be46a994272793\nX: y".into(),
        Some(2) => {
            message_attributes["traceparent"] = serde_json::json!({
                "stringValue": "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
                "dataType": "String"
            })
        }
        _ => {}
    }
    serde_json::json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "r", "body": body,
        "attributes": attributes, "messageAttributes": message_attributes, "md5OfBody": "0",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:in.fifo",
        "awsRegion": "us-east-1"
    }]})
    .to_string()
}

fn is_canonical_header(s: &str) -> bool {
    s.starts_with("Root=1-")
        && s.len() <= 1024
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b';' | b'-' | b'?' | b':' | b'|' | b','))
}

fn is_fifo_id(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
}

fn check(payload: &str, invocation_trace: Option<&str>) {
    let decoded = decode(payload);
    // The one-pass SQS decoder is only a faster route to the general decoder's answer.
    assert_eq!(
        decoded,
        decode_record_by_record(payload),
        "one-pass and general decoders disagree"
    );
    if let Err(e) = &decoded {
        let _ = e.to_string();
    }
    // The look ahead for where trace contexts end reads each message's carrier as decoding does.
    let carriers = sqs_carriers(payload.as_bytes());
    if let (Some(fast), Some(carriers)) = (decode_sqs_each(payload.as_bytes(), |_, _, unit| Some(unit)), carriers) {
        let decoded: Vec<_> = fast.units.into_iter().map(|u| u.carrier).collect();
        assert_eq!(carriers.collect::<Vec<_>>(), decoded, "look ahead and decoder disagree on a carrier");
    }
    let targets: &[Target] = &PARSED;
    let prepared = match prepare(targets, payload, invocation_trace) {
        Ok(p) => p,
        Err(e) => {
            assert!(decoded.is_err(), "prepare failed but decode succeeded: {e}");
            return;
        }
    };
    let decoded = decoded.expect("prepare succeeded, so decode must");
    assert_eq!(decoded.units.len(), prepared.inbound.units.len());

    // Per FIFO target: the last unit sent for each MessageGroupId (one group per object), across
    // every round and batch in sending order.
    let mut last_unit_of_group: Vec<HashMap<String, usize>> = vec![HashMap::new(); targets.len()];
    assert!(!prepared.rounds.is_empty());
    for plan in &prepared.rounds {
        assert_eq!(plan.batches.len(), targets.len());
        for (index, (target, batches)) in targets.iter().zip(&plan.batches).enumerate() {
            let limit = max_batch_bytes(&target.destination);
            for batch in batches {
                check_batch(target, index, limit, batch, &mut last_unit_of_group[index]);
            }
        }
        for r in &plan.refused {
            if let Reason::TooLarge { size, limit } = r.reason {
                let target_limit = targets.get(r.target).map(|t| max_batch_bytes(&t.destination));
                assert_eq!(Some(limit), target_limit);
                assert!(size > limit && r.message.size == size);
            }
        }
    }
}

fn check_batch(target: &Target, index: usize, limit: usize, batch: &Batch, last_unit: &mut HashMap<String, usize>) {
    assert_eq!(batch.target, index);
    assert!(
        !batch.messages.is_empty() && batch.messages.len() <= 10,
        "batch of {}",
        batch.messages.len()
    );
    let bytes: usize = batch.messages.iter().map(|m| m.size).sum();
    assert!(bytes <= limit, "batch of {bytes} bytes for a {limit} byte limit");
    match &target.destination {
        Destination::Sqs { .. } | Destination::EventBus { .. } | Destination::StateMachine { .. } => {
            assert_eq!(batch.request_trace, None)
        }
        Destination::Sns { .. } => {
            for m in &batch.messages {
                assert_eq!(m.trace, batch.request_trace, "SNS batch mixes trace contexts");
            }
        }
    }
    if let Some(h) = &batch.request_trace {
        assert!(is_canonical_header(&h.to_string()));
    }
    for m in &batch.messages {
        let n = &m.notification;
        assert!(m.size >= n.body.len() && m.size <= limit);
        assert!(s3_trace_relay::route::passes_any(&target.filters, &n.key, &n.event_name), "filter bypassed");
        assert!(
            serde_json::from_str::<IgnoredAny>(&n.body).is_ok(),
            "body is not JSON: {:?}",
            n.body
        );
        if let Some(h) = &m.trace {
            let text = h.to_string();
            assert!(is_canonical_header(&text), "outbound header {text:?}");
        }
        if let Some(tp) = m.traceparent() {
            // The W3C form of the outbound header: canonical, and the same trace and parent.
            let back = s3_trace_relay::trace::TraceHeader::from_traceparent(&tp);
            let back = back.unwrap_or_else(|e| panic!("traceparent {tp:?} does not parse: {e}"));
            let sent = m.trace.as_ref().map(|h| (h.root(), h.parent()));
            assert_eq!(Some((back.root(), back.parent())), sent, "traceparent {tp:?}");
        }
        match (&m.fifo, target.destination.is_fifo()) {
            (Some(ids), true) => {
                assert!(is_fifo_id(&ids.group_id), "group id {:?}", ids.group_id);
                assert!(is_fifo_id(&ids.deduplication_id), "dedup id {:?}", ids.deduplication_id);
                let last = last_unit.entry(ids.group_id.clone()).or_insert(m.unit);
                assert!(
                    m.unit >= *last,
                    "FIFO target gets unit {} after unit {last} of its object",
                    m.unit
                );
                *last = m.unit;
            }
            (None, false) => {}
            (ids, fifo) => panic!("fifo ids {ids:?} on a target with fifo={fifo}"),
        }
    }
}
