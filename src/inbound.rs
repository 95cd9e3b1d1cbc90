//! Inbound decoding: every invocation payload of CONTRACT §3, turned into retry units and the S3
//! notifications they carry.
//!
//! Lambda retries whole units: one SQS message (reported in `batchItemFailures`) or, for S3, SNS
//! and EventBridge invocations, the whole event. Each unit carries its own record-level trace
//! carrier (SQS `AWSTraceHeader`, else a `traceparent` message attribute); other sources only have
//! the invocation's. A unit that cannot be decoded fails alone; only a payload that is not an event
//! at all fails the invocation.
//!
//! Records are forwarded as received: each record's JSON text is kept byte for byte
//! ([`serde_json::value::RawValue`]) and typed through `aws_lambda_events` only to read what routing
//! needs. S3 keys in notifications are URL-encoded with `+` for space; filters and FIFO ids use the
//! decoded key. Well-formed SQS events, the busiest input, take a one-pass path
//! (`src/inbound/sqs_stream.rs`) that gives the same answer without capturing each message's text first.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3EventRecord;
use aws_lambda_events::event::sns::{SnsMessage, SnsRecord};
use aws_lambda_events::event::sqs::SqsMessage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::trace::TraceHeader;

mod sqs_stream;

/// Name of the SQS system attribute that carries the producer's X-Ray header.
pub const AWS_TRACE_HEADER: &str = "AWSTraceHeader";
/// Name of the message attribute that carries a W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Where the invocation came from; decides how failures are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// S3 invoked the function directly.
    S3,
    /// An SQS event source mapping; `fifo` when the source queue is FIFO.
    Sqs {
        /// Whether the event source ARN names a `.fifo` queue.
        fifo: bool,
    },
    /// An SNS subscription.
    Sns,
    /// An EventBridge rule on `aws.s3` events.
    EventBridge,
}

/// A decoded invocation.
#[derive(Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The kind of invocation.
    pub source: Source,
    /// The retry units, in the order received.
    pub units: Vec<Unit>,
}

/// The smallest thing Lambda can retry: one SQS message, or one record of a direct invocation.
#[derive(Debug, PartialEq, Eq)]
pub struct Unit {
    /// The SQS `messageId`, for `batchItemFailures`; `None` for other sources.
    pub message_id: Option<String>,
    /// The SQS `MessageGroupId` of a FIFO source, for ordering.
    pub group_id: Option<String>,
    /// The record-level trace carrier, before any fallback.
    pub carrier: Carrier,
    /// What the unit holds, or why it could not be decoded.
    pub content: Result<Content, DecodeError>,
}

/// The record-level trace context found on a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    /// The source has no record-level carrier (S3, SNS, EventBridge invocations) or the record had none.
    Absent,
    /// A valid header (from `AWSTraceHeader`, or converted from `traceparent`).
    Valid(TraceHeader),
    /// A carrier was present but invalid; the text says why (never the raw value).
    Invalid(String),
}

/// The payload of a unit.
#[derive(Debug, PartialEq, Eq)]
pub enum Content {
    /// S3 notifications to relay (an S3 notification may hold several records); shared, not copied,
    /// by the messages of every target they route to.
    Notifications(Vec<Arc<Notification>>),
    /// `s3:TestEvent`, sent by S3 when notifications are configured: acknowledged, never forwarded.
    TestEvent,
}

/// One S3 event, ready to route and publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Bucket name.
    pub bucket: String,
    /// Object key, URL-decoded.
    pub key: String,
    /// Event name as S3 writes it in a record, e.g. `ObjectCreated:Put`.
    pub event_name: String,
    /// Object version id, when versioning is on.
    pub version_id: Option<String>,
    /// S3's per-key ordering token.
    pub sequencer: Option<String>,
    /// The message body to publish: `{"Records":[<record as received>]}`, or the EventBridge event.
    pub body: String,
}

/// Why a payload or unit could not be decoded. Messages name what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON at all.
    #[error("payload is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but none of the accepted shapes.
    #[error(
        "payload is not an S3 notification, an SQS, SNS or EventBridge event carrying one, or an s3:TestEvent ({0})"
    )]
    UnknownShape(String),
    /// A record's `eventSource` is not one the relay handles.
    #[error("record {index} has eventSource {event_source:?}: expected aws:s3, aws:sqs or aws:sns")]
    UnknownRecordSource {
        /// Position in `Records`.
        index: usize,
        /// What it said.
        event_source: String,
    },
    /// A record claims a source but does not have its shape.
    #[error("record {index} is not a valid {kind} record: {reason}")]
    MalformedRecord {
        /// Position in `Records`.
        index: usize,
        /// The record kind expected.
        kind: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// An S3 record without a bucket name, key or event name.
    #[error("S3 record {index} has no {field}")]
    MissingField {
        /// Position in `Records`.
        index: usize,
        /// The missing field.
        field: &'static str,
    },
    /// A key whose percent-escapes do not decode to UTF-8.
    #[error("S3 record {index} in bucket {bucket:?} has a key whose %-escapes are not UTF-8")]
    KeyNotUtf8 {
        /// Position in `Records`.
        index: usize,
        /// The bucket, to find the object.
        bucket: String,
    },
    /// An SQS message without a body.
    #[error("SQS message has no body")]
    EmptyBody,
    /// An SQS message without a message id cannot be reported back; it fails the invocation.
    #[error("SQS record {index} has no messageId")]
    MissingMessageId {
        /// Position in `Records`.
        index: usize,
    },
}

/// Decodes a whole invocation payload.
///
/// `Err` only when the payload is not an event at all; problems with single records come back as
/// units whose `content` is `Err`.
pub fn decode(payload: &str) -> Result<Inbound, DecodeError> {
    if let Some(inbound) = sqs_stream::decode(payload) {
        return Ok(inbound);
    }
    decode_record_by_record(payload)
}

/// The general decoder: captures each record's text first, so that a record that cannot be read
/// fails alone. [`decode`] gives the same answer, faster, for well-formed SQS events; this entry
/// point exists so that tests and the fuzzer can check that it does.
#[doc(hidden)]
pub fn decode_record_by_record(payload: &str) -> Result<Inbound, DecodeError> {
    let probe: Probe = serde_json::from_str(payload).map_err(json_error)?;
    require_object(payload)?;
    if let Some(records) = probe.records {
        return decode_records(&records);
    }
    if probe.event.as_deref() == Some(S3_TEST_EVENT) {
        return Ok(Inbound {
            source: Source::S3,
            units: vec![unit(Ok(Content::TestEvent))],
        });
    }
    if probe.source.as_deref() == Some(EVENTBRIDGE_S3_SOURCE) {
        return Ok(Inbound {
            source: Source::EventBridge,
            units: vec![unit(decode_eventbridge(payload))],
        });
    }
    Err(DecodeError::UnknownShape(
        "no Records array, no \"Event\":\"s3:TestEvent\" and no \"source\":\"aws.s3\"".into(),
    ))
}

/// Syntax errors mean "not JSON"; type errors mean JSON of the wrong shape.
fn json_error(e: serde_json::Error) -> DecodeError {
    if e.is_data() {
        DecodeError::UnknownShape(bounded(e.to_string()))
    } else {
        DecodeError::NotJson(bounded(e.to_string()))
    }
}

/// Longest parser complaint kept in an error: serde_json quotes the offending value, which can be
/// as large as the payload, and errors travel to Lambda and the logs.
pub const MAX_REASON_BYTES: usize = 256;

/// Cuts `text` to [`MAX_REASON_BYTES`] at a character boundary, noting the full length.
fn bounded(mut text: String) -> String {
    if text.len() > MAX_REASON_BYTES {
        let total = text.len();
        let mut end = MAX_REASON_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(&format!("… ({total} bytes)"));
    }
    text
}

/// serde's derived structs also accept a JSON array of their fields; an event is always an object.
fn require_object(text: &str) -> Result<(), DecodeError> {
    if text.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err(DecodeError::UnknownShape("expected a JSON object".into()))
    }
}

const S3_TEST_EVENT: &str = "s3:TestEvent";
const EVENTBRIDGE_S3_SOURCE: &str = "aws.s3";

/// The keys that tell the shapes apart; everything else is read later, typed.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "Records", default, borrow)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(rename = "Event", default)]
    event: Option<Cow<'a, str>>,
    #[serde(default)]
    source: Option<Cow<'a, str>>,
    #[serde(rename = "Type", default)]
    sns_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RecordProbe<'a> {
    #[serde(rename = "eventSource", alias = "EventSource", default, borrow)]
    event_source: Option<Cow<'a, str>>,
}

fn unit(content: Result<Content, DecodeError>) -> Unit {
    Unit {
        message_id: None,
        group_id: None,
        carrier: Carrier::Absent,
        content,
    }
}

fn decode_records(records: &[&RawValue]) -> Result<Inbound, DecodeError> {
    let Some(first) = records.first() else {
        return Err(DecodeError::UnknownShape("Records is empty".into()));
    };
    let source = match record_source(first).as_deref() {
        Some(SQS_EVENT_SOURCE) => Source::Sqs {
            fifo: serde_json::from_str::<SqsArnProbe>(first.get())
                .ok()
                .and_then(|p| p.event_source_arn)
                .is_some_and(|arn| arn.ends_with(".fifo")),
        },
        Some("aws:sns") => Source::Sns,
        Some(_) => Source::S3,
        // The probe also reads `EventSource` (SNS spells it so) and fails on a record that has
        // both spellings, which types as an SQS message all the same: decide as the one-pass SQS
        // decoder does, so both agree.
        None => match serde_json::from_str::<SqsMessage>(first.get()) {
            Ok(message) if message.event_source.as_deref() == Some(SQS_EVENT_SOURCE) => Source::Sqs {
                fifo: is_fifo(&message),
            },
            _ => Source::S3,
        },
    };
    let mut units = Vec::with_capacity(records.len());
    for (index, raw) in records.iter().enumerate() {
        let unit = match source {
            Source::Sqs { .. } => decode_sqs_record(index, raw)?,
            Source::Sns => unit(decode_sns_record(index, raw)),
            Source::S3 | Source::EventBridge => {
                unit(decode_s3_record(index, raw).map(|n| Content::Notifications(vec![Arc::new(n)])))
            }
        };
        units.push(unit);
    }
    Ok(Inbound { source, units })
}

/// Parses one record of `Records` as `T`, the type its `eventSource` must name (`expected`).
///
/// The typed parse comes first and is the only pass over a well-formed record. Only when it fails,
/// or the record does not name `expected` in `eventSource`, is the record read again for its
/// source alone, to tell a record of another source (`UnknownRecordSource`) from a malformed one.
fn typed_record<'a, T: Deserialize<'a>>(
    index: usize,
    raw: &'a RawValue,
    expected: &str,
    kind: &'static str,
    source_of: impl Fn(&T) -> Option<&str>,
) -> Result<T, DecodeError> {
    let parsed = match serde_json::from_str::<T>(raw.get()) {
        Ok(record) if source_of(&record) == Some(expected) => return Ok(record),
        other => other,
    };
    match record_source(raw).as_deref() {
        Some(found) if found == expected => parsed.map_err(|e| DecodeError::MalformedRecord {
            index,
            kind,
            reason: bounded(e.to_string()),
        }),
        other => Err(DecodeError::UnknownRecordSource {
            index,
            event_source: bounded(other.unwrap_or("<none>").to_owned()),
        }),
    }
}

#[derive(Deserialize)]
struct SqsArnProbe {
    #[serde(rename = "eventSourceARN", default)]
    event_source_arn: Option<String>,
}

fn record_source(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<RecordProbe>(raw.get())
        .ok()
        .and_then(|p| p.event_source)
        .map(Cow::into_owned)
}

fn decode_sqs_record(index: usize, raw: &RawValue) -> Result<Unit, DecodeError> {
    let message = match typed_record(index, raw, SQS_EVENT_SOURCE, "SQS", |m: &SqsMessage| {
        m.event_source.as_deref()
    }) {
        Ok(m) => m,
        Err(malformed @ DecodeError::MalformedRecord { .. }) => {
            // Without a messageId the failure cannot be reported per item: fail the invocation.
            let id = serde_json::from_str::<MessageIdProbe>(raw.get())
                .ok()
                .and_then(|p| p.message_id)
                .ok_or(DecodeError::MissingMessageId { index })?;
            return Ok(Unit {
                message_id: Some(id),
                group_id: None,
                carrier: Carrier::Absent,
                content: Err(malformed),
            });
        }
        Err(other) => return Ok(unit(Err(other))),
    };
    sqs_unit(index, &message)
}

/// `eventSource` of the records of an SQS event.
const SQS_EVENT_SOURCE: &str = "aws:sqs";

/// Whether an SQS message comes from a FIFO queue (its `eventSourceARN` names a `.fifo` queue).
fn is_fifo(message: &SqsMessage) -> bool {
    message
        .event_source_arn
        .as_deref()
        .is_some_and(|arn| arn.ends_with(".fifo"))
}

/// The retry unit of one typed SQS message: its body decoded, its trace carrier read.
fn sqs_unit(index: usize, message: &SqsMessage) -> Result<Unit, DecodeError> {
    let message_id = message
        .message_id
        .clone()
        .ok_or(DecodeError::MissingMessageId { index })?;
    let content = match message.body.as_deref() {
        None => Err(DecodeError::EmptyBody),
        Some(body) => decode_document(body, true),
    };
    Ok(Unit {
        message_id: Some(message_id),
        group_id: message.attributes.get("MessageGroupId").cloned(),
        carrier: sqs_carrier(message),
        content,
    })
}

#[derive(Deserialize)]
struct MessageIdProbe {
    #[serde(rename = "messageId", default)]
    message_id: Option<String>,
}

/// The record-level trace context of an SQS message: `AWSTraceHeader`, or when that is absent a
/// `traceparent` string message attribute (CONTRACT §5).
fn sqs_carrier(message: &SqsMessage) -> Carrier {
    if let Some(header) = message.attributes.get(AWS_TRACE_HEADER) {
        return match header.parse::<TraceHeader>() {
            Ok(h) => Carrier::Valid(h),
            Err(e) => Carrier::Invalid(format!("{AWS_TRACE_HEADER}: {e}")),
        };
    }
    match message
        .message_attributes
        .get(TRACEPARENT)
        .and_then(|a| a.string_value.as_deref())
    {
        Some(tp) => match TraceHeader::from_traceparent(tp) {
            Ok(h) => Carrier::Valid(h),
            Err(e) => Carrier::Invalid(format!("{TRACEPARENT}: {e}")),
        },
        None => Carrier::Absent,
    }
}

fn decode_sns_record(index: usize, raw: &RawValue) -> Result<Content, DecodeError> {
    let record = typed_record(index, raw, "aws:sns", "SNS", |r: &SnsRecord| {
        Some(r.event_source.as_str())
    })?;
    decode_document(&record.sns.message, false)
}

/// Decodes a message body (SQS body or SNS `Message`): an S3 notification, an `s3:TestEvent`, an
/// EventBridge `aws.s3` event, or (from SQS only) an SNS envelope around one of those.
fn decode_document(text: &str, allow_sns_envelope: bool) -> Result<Content, DecodeError> {
    let probe: Probe = serde_json::from_str(text).map_err(json_error)?;
    require_object(text)?;
    if let Some(records) = probe.records {
        let mut notifications = Vec::with_capacity(records.len());
        for (index, raw) in records.iter().enumerate() {
            notifications.push(Arc::new(decode_s3_record(index, raw)?));
        }
        return Ok(Content::Notifications(notifications));
    }
    if probe.event.as_deref() == Some(S3_TEST_EVENT) {
        return Ok(Content::TestEvent);
    }
    if probe.source.as_deref() == Some(EVENTBRIDGE_S3_SOURCE) {
        return decode_eventbridge(text);
    }
    if allow_sns_envelope && probe.sns_type.as_deref() == Some("Notification") {
        let envelope: SnsMessage = serde_json::from_str(text).map_err(|e| DecodeError::MalformedRecord {
            index: 0,
            kind: "SNS envelope",
            reason: bounded(e.to_string()),
        })?;
        return decode_document(&envelope.message, false);
    }
    Err(DecodeError::UnknownShape(
        "the message holds no Records, s3:TestEvent, aws.s3 EventBridge event or SNS Notification".into(),
    ))
}

fn decode_s3_record(index: usize, raw: &RawValue) -> Result<Notification, DecodeError> {
    let record = typed_record(index, raw, "aws:s3", "S3", |r: &S3EventRecord| {
        r.event_source.as_deref()
    })?;
    let missing = |field| DecodeError::MissingField { index, field };
    let bucket = record.s3.bucket.name.ok_or(missing("s3.bucket.name"))?;
    let raw_key = record.s3.object.key.ok_or(missing("s3.object.key"))?;
    let event_name = record.event_name.ok_or(missing("eventName"))?;
    let key = decode_key(&raw_key).ok_or_else(|| DecodeError::KeyNotUtf8 {
        index,
        bucket: bucket.clone(),
    })?;
    let mut body = String::with_capacity(raw.get().len() + 14);
    body.push_str("{\"Records\":[");
    body.push_str(raw.get());
    body.push_str("]}");
    Ok(Notification {
        bucket,
        key,
        event_name,
        version_id: record.s3.object.version_id,
        sequencer: record.s3.object.sequencer,
        body,
    })
}

/// The `detail` of an S3 event delivered through EventBridge.
#[derive(Deserialize, Serialize)]
struct S3EventBridgeDetail {
    bucket: NameField,
    object: EventBridgeObject,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct NameField {
    name: String,
}

#[derive(Deserialize, Serialize)]
struct EventBridgeObject {
    key: String,
    #[serde(rename = "version-id", default)]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// EventBridge events are forwarded unchanged; routing uses the S3 event name they correspond to.
fn decode_eventbridge(text: &str) -> Result<Content, DecodeError> {
    let event: EventBridgeEvent<S3EventBridgeDetail> =
        serde_json::from_str(text).map_err(|e| DecodeError::MalformedRecord {
            index: 0,
            kind: "EventBridge aws.s3",
            reason: bounded(e.to_string()),
        })?;
    let detail = event.detail;
    let key = decode_key(&detail.object.key).ok_or_else(|| DecodeError::KeyNotUtf8 {
        index: 0,
        bucket: detail.bucket.name.clone(),
    })?;
    Ok(Content::Notifications(vec![Arc::new(Notification {
        event_name: eventbridge_event_name(&event.detail_type, detail.reason.as_deref()),
        bucket: detail.bucket.name,
        key,
        version_id: detail.object.version_id,
        sequencer: detail.object.sequencer,
        body: text.to_owned(),
    })]))
}

/// Maps an EventBridge `detail-type` (and `reason`) to the S3 notification event name it stands for,
/// so one `events=` filter serves both deliveries: `Object Created` + `PutObject` → `ObjectCreated:Put`.
pub fn eventbridge_event_name(detail_type: &str, reason: Option<&str>) -> String {
    let category = match detail_type {
        "Object Created" => "ObjectCreated",
        "Object Deleted" => "ObjectRemoved",
        "Object Restore Initiated" | "Object Restore Completed" | "Object Restore Expired" => "ObjectRestore",
        "Object Tags Added" | "Object Tags Deleted" => "ObjectTagging",
        "Object ACL Updated" => "ObjectAcl",
        "Object Storage Class Changed" => "LifecycleTransition",
        "Object Access Tier Changed" => "IntelligentTiering",
        other => return other.replace(' ', ""),
    };
    let name = match (detail_type, reason) {
        ("Object Created", Some("PutObject")) => "Put",
        ("Object Created", Some("POST Object")) => "Post",
        ("Object Created", Some("CopyObject")) => "Copy",
        ("Object Created", Some("CompleteMultipartUpload")) => "CompleteMultipartUpload",
        ("Object Deleted", Some("DeleteObject")) => "Delete",
        ("Object Deleted", Some("Lifecycle Expiration")) => "Delete",
        ("Object Restore Initiated", _) => "Post",
        ("Object Restore Completed", _) => "Completed",
        ("Object Restore Expired", _) => "Delete",
        ("Object Tags Added", _) => "Put",
        ("Object Tags Deleted", _) => "Delete",
        ("Object ACL Updated", _) => "Put",
        _ => "",
    };
    format!("{category}:{name}")
}

/// Decodes an S3 notification key: `+` is a space, `%XX` a byte; `None` unless the bytes are UTF-8.
pub fn decode_key(raw: &str) -> Option<String> {
    if !raw.bytes().any(|b| b == b'+' || b == b'%') {
        return Some(raw.to_owned());
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_plus_is_space_and_escapes_decode() {
        assert_eq!(
            decode_key("my+photos/a%2Bb%20c.jpg").as_deref(),
            Some("my photos/a+b c.jpg")
        );
        assert_eq!(decode_key("plain/key.txt").as_deref(), Some("plain/key.txt"));
        assert_eq!(decode_key("caf%C3%A9").as_deref(), Some("café"));
    }

    #[test]
    fn key_with_invalid_utf8_escape_is_rejected() {
        assert_eq!(decode_key("bad%FF%FE"), None);
    }

    #[test]
    fn lone_percent_is_kept_literally() {
        assert_eq!(decode_key("100%").as_deref(), Some("100%"));
    }

    #[test]
    fn eventbridge_names_map_to_s3_event_names() {
        assert_eq!(
            eventbridge_event_name("Object Created", Some("PutObject")),
            "ObjectCreated:Put"
        );
        assert_eq!(
            eventbridge_event_name("Object Deleted", Some("DeleteObject")),
            "ObjectRemoved:Delete"
        );
        assert_eq!(eventbridge_event_name("Object Created", None), "ObjectCreated:");
        assert_eq!(eventbridge_event_name("Something New", None), "SomethingNew");
    }
}
