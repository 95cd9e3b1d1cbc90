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
//! ([`serde_json::value::RawValue`]) and typed only to read what routing needs: SQS and SNS records
//! through `aws_lambda_events`, S3 records and EventBridge events through small projections of the
//! fields the relay reads (`inbound/s3.rs`, `inbound/eventbridge.rs` say why). S3 keys in
//! notifications are URL-encoded with `+` for space; filters and FIFO ids use the decoded key.
//! Well-formed SQS events, the busiest input, take a one-pass path (`src/inbound/sqs_stream.rs`)
//! that gives the same answer without capturing each message's text first.
//!
//! An SQS event is one in which any record is an SQS message: a record in it that is not (another
//! `eventSource`, not an SQS message at all) fails alone, by its `messageId`.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lambda_events::event::sns::{SnsMessage, SnsRecord};
use aws_lambda_events::event::sqs::SqsMessage;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::message::{AWS_TRACE_HEADER, Notification, TRACEPARENT};
use crate::trace::TraceHeader;

mod eventbridge;
mod s3;
mod sqs_stream;

pub use eventbridge::{eventbridge_detail_for, eventbridge_event_name};
pub use s3::{S3_EVENT_SOURCES, is_s3_source};

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
    /// A record's `eventSource` is not the one its event holds.
    #[error("record {index} has {} in {}: expected {}", source_text(.found), .within.event(), .within.expected_source())]
    UnexpectedRecordSource {
        /// Position in `Records`.
        index: usize,
        /// The `eventSource` it has, if any.
        found: Option<String>,
        /// The kind of record its event holds.
        within: RecordKind,
    },
    /// A record claims a source but does not have its shape.
    #[error("record {index} is not a valid {kind}: {reason}")]
    MalformedRecord {
        /// Position in `Records`.
        index: usize,
        /// The record kind expected.
        kind: RecordKind,
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

/// The kinds of record the relay reads, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// An SQS message of an SQS event.
    Sqs,
    /// An SNS record of an SNS event.
    Sns,
    /// An S3 record of an S3 notification.
    S3,
    /// The SNS envelope around a message delivered through SNS to SQS.
    SnsEnvelope,
    /// An EventBridge event from S3.
    EventBridge,
}

impl RecordKind {
    /// The event that holds records of this kind, as a phrase.
    pub fn event(self) -> &'static str {
        match self {
            RecordKind::Sqs => "an SQS event",
            RecordKind::Sns => "an SNS event",
            RecordKind::S3 => "an S3 notification",
            RecordKind::SnsEnvelope => "an SNS notification",
            RecordKind::EventBridge => "an EventBridge event",
        }
    }

    /// The `eventSource` records of this kind carry.
    pub fn expected_source(self) -> &'static str {
        match self {
            RecordKind::Sqs => SQS_EVENT_SOURCE,
            RecordKind::Sns => SNS_EVENT_SOURCE,
            RecordKind::S3 => "aws:s3 (or minio:s3)",
            RecordKind::SnsEnvelope => "Type Notification",
            RecordKind::EventBridge => "source aws.s3",
        }
    }
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordKind::Sqs => "SQS message",
            RecordKind::Sns => "SNS record",
            RecordKind::S3 => "S3 record",
            RecordKind::SnsEnvelope => "SNS envelope",
            RecordKind::EventBridge => "EventBridge aws.s3 event",
        })
    }
}

/// `eventSource "…"`, or `no eventSource`, for errors.
fn source_text(found: &Option<String>) -> String {
    match found {
        Some(source) => format!("eventSource {source:?}"),
        None => "no eventSource".to_owned(),
    }
}

/// The text of a scalar JSON value as the relay keeps it: a string's content, any other value's
/// JSON text; `None` for `null`. Emitters differ in types (moto writes `time` as a number).
fn scalar_text(raw: &RawValue) -> Option<String> {
    match raw.get() {
        "null" => None,
        text if text.starts_with('"') => serde_json::from_str(text).ok(),
        text => Some(text.to_owned()),
    }
}

/// A whole number written as a JSON number or a string of digits (`1024`, `"1024"`).
fn scalar_u64(raw: &RawValue) -> Option<u64> {
    raw.get().trim_matches('"').parse().ok()
}

/// Decodes a whole invocation payload.
///
/// `Err` only when the payload is not an event at all; problems with single records come back as
/// units whose `content` is `Err`.
pub fn decode(payload: &str) -> Result<Inbound, DecodeError> {
    // Payloads that are not SQS events (S3's own) mostly never mention it: skip the one-pass try.
    if mentions(payload, SQS_EVENT_SOURCE)
        && let Some(inbound) = sqs_stream::decode(payload)
    {
        return Ok(inbound);
    }
    decode_record_by_record(payload)
}

/// [`decode`] for a well-formed SQS event, handing each unit to `on_unit` (with the source and the
/// unit's index) as soon as it is read, so the relay can send while the rest is decoded; the units
/// it gives back make up the answer's `units`. `None` when the payload is not such an event —
/// possibly after some units were handed out: [`decode`] answers it. The payload is bytes as
/// received: each string is checked to be UTF-8 as it is read (a payload that is not gives `None`),
/// so the first unit does not wait for a check of the whole payload (0.75 ms for 6 MB).
pub fn decode_sqs_each(
    payload: &[u8],
    mut on_unit: impl FnMut(Source, usize, Unit) -> Option<Unit>,
) -> Option<Inbound> {
    sqs_stream::decode_each(payload, &mut on_unit)
}

/// The trace carrier of every message of an SQS event, in order, read without decoding any body:
/// a quick look ahead, so the relay knows which message is the last of its trace context (an SNS
/// batch of that context can then leave at once). Where both read the payload, each is the
/// carrier [`decode_sqs_each`] gives that message's unit (the fuzzer checks it); `None` when the
/// payload is not an SQS event this can read (a duplicate attribute, say, which decoding takes the
/// last of): nothing is then sealed early.
pub fn sqs_carriers(payload: &[u8]) -> Option<impl Iterator<Item = Carrier>> {
    let fields = sqs_stream::carrier_fields(payload)?;
    Some(
        fields
            .into_iter()
            .map(|(header, tp)| carrier_of(header.as_deref(), tp.as_deref())),
    )
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
    if probe.is_test_event() {
        return Ok(Inbound {
            source: Source::S3,
            units: vec![unit(Ok(Content::TestEvent))],
        });
    }
    if probe.is_eventbridge_s3() {
        return Ok(Inbound {
            source: Source::EventBridge,
            units: vec![unit(eventbridge::decode_eventbridge(payload))],
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
    // The others are read only when there is no `Records`, so any JSON type is accepted here: a
    // stray key cannot make an event with `Records` unreadable.
    #[serde(rename = "Event", default, borrow)]
    event: Option<&'a RawValue>,
    #[serde(default, borrow)]
    source: Option<&'a RawValue>,
    #[serde(rename = "Type", default, borrow)]
    sns_type: Option<&'a RawValue>,
}

impl Probe<'_> {
    /// Whether the payload is an `s3:TestEvent`.
    fn is_test_event(&self) -> bool {
        is_string(self.event, S3_TEST_EVENT)
    }

    /// Whether the payload is an EventBridge event from S3.
    fn is_eventbridge_s3(&self) -> bool {
        is_string(self.source, EVENTBRIDGE_S3_SOURCE)
    }

    /// Whether the payload is an SNS notification envelope.
    fn is_sns_notification(&self) -> bool {
        is_string(self.sns_type, "Notification")
    }
}

/// Whether `raw` is the JSON string `expected`.
fn is_string(raw: Option<&RawValue>, expected: &str) -> bool {
    raw.and_then(|r| serde_json::from_str::<Cow<str>>(r.get()).ok())
        .is_some_and(|text| text == expected)
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

/// The kind of event a `Records` array makes: SQS when any record is an SQS message (Lambda never
/// mixes sources, so a foreign record among SQS messages is bad input that fails alone), else SNS
/// when any is an SNS record, else S3.
fn event_source_of(records: &[&RawValue]) -> Source {
    let mut sns = false;
    for raw in records {
        if !mentions(raw.get(), SQS_EVENT_SOURCE) && !mentions(raw.get(), SNS_EVENT_SOURCE) {
            continue;
        }
        match record_source(raw).as_deref() {
            Some(SQS_EVENT_SOURCE) => return sqs_source(raw),
            Some(SNS_EVENT_SOURCE) => sns = true,
            Some(_) => {}
            // The probe also reads `EventSource` (SNS spells it so) and fails on a record that has
            // both spellings, which types as an SQS message all the same: decide as the one-pass
            // SQS decoder does, so both agree.
            None => {
                if let Ok(message) = serde_json::from_str::<SqsMessage>(raw.get())
                    && message.event_source.as_deref() == Some(SQS_EVENT_SOURCE)
                {
                    return Source::Sqs {
                        fifo: is_fifo(&message),
                    };
                }
            }
        }
    }
    if sns { Source::Sns } else { Source::S3 }
}

/// Whether JSON `text` may hold the string `value`: it does, or it has escapes that could spell
/// it. A quick scan that lets the decoders skip parses which could not find `value`.
fn mentions(text: &str, value: &str) -> bool {
    text.contains(value) || text.contains('\\')
}

/// The source of an SQS event whose first SQS message is `raw`: FIFO when its queue is.
fn sqs_source(raw: &RawValue) -> Source {
    Source::Sqs {
        fifo: serde_json::from_str::<SqsArnProbe>(raw.get())
            .ok()
            .and_then(|p| p.event_source_arn)
            .is_some_and(|arn| arn.ends_with(".fifo")),
    }
}

fn decode_records(records: &[&RawValue]) -> Result<Inbound, DecodeError> {
    if records.is_empty() {
        return Err(DecodeError::UnknownShape("Records is empty".into()));
    }
    let source = event_source_of(records);
    let mut units = Vec::with_capacity(records.len());
    for (index, raw) in records.iter().enumerate() {
        let unit = match source {
            Source::Sqs { .. } => decode_sqs_record(index, raw)?,
            Source::Sns => unit(decode_sns_record(index, raw)),
            Source::S3 | Source::EventBridge => {
                unit(s3::decode_s3_record(index, raw).map(|n| Content::Notifications(vec![Arc::new(n)])))
            }
        };
        units.push(unit);
    }
    Ok(Inbound { source, units })
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

/// Decodes record `index` of an SQS event. A record that is not a well-formed SQS message fails
/// alone when it has a `messageId` to report it by; without one it fails the invocation.
fn decode_sqs_record(index: usize, raw: &RawValue) -> Result<Unit, DecodeError> {
    let failure = match serde_json::from_str::<SqsMessage>(raw.get()) {
        Ok(m) if m.event_source.as_deref() == Some(SQS_EVENT_SOURCE) => return sqs_unit(index, &m),
        Ok(m) => DecodeError::UnexpectedRecordSource {
            index,
            found: m.event_source.map(bounded),
            within: RecordKind::Sqs,
        },
        Err(e) => match record_source(raw) {
            Some(found) if found != SQS_EVENT_SOURCE => DecodeError::UnexpectedRecordSource {
                index,
                found: Some(bounded(found)),
                within: RecordKind::Sqs,
            },
            _ => DecodeError::MalformedRecord {
                index,
                kind: RecordKind::Sqs,
                reason: bounded(e.to_string()),
            },
        },
    };
    let id = serde_json::from_str::<MessageIdProbe>(raw.get())
        .ok()
        .and_then(|p| p.message_id)
        .ok_or(DecodeError::MissingMessageId { index })?;
    Ok(Unit {
        message_id: Some(id),
        group_id: None,
        carrier: Carrier::Absent,
        content: Err(failure),
    })
}

/// `eventSource` of the records of an SQS event.
const SQS_EVENT_SOURCE: &str = "aws:sqs";
/// `EventSource` of the records of an SNS event.
const SNS_EVENT_SOURCE: &str = "aws:sns";

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
    let traceparent = message.message_attributes.get(TRACEPARENT);
    carrier_of(
        message.attributes.get(AWS_TRACE_HEADER).map(String::as_str),
        traceparent.and_then(|a| a.string_value.as_deref()),
    )
}

/// [`sqs_carrier`]'s rule on the two values it reads; [`sqs_carriers`] applies it too.
fn carrier_of(aws_trace_header: Option<&str>, traceparent: Option<&str>) -> Carrier {
    if let Some(header) = aws_trace_header {
        return match header.parse::<TraceHeader>() {
            Ok(h) => Carrier::Valid(h),
            Err(e) => Carrier::Invalid(format!("{AWS_TRACE_HEADER}: {e}")),
        };
    }
    match traceparent {
        Some(tp) => match TraceHeader::from_traceparent(tp) {
            Ok(h) => Carrier::Valid(h),
            Err(e) => Carrier::Invalid(format!("{TRACEPARENT}: {e}")),
        },
        None => Carrier::Absent,
    }
}

fn decode_sns_record(index: usize, raw: &RawValue) -> Result<Content, DecodeError> {
    let record = match serde_json::from_str::<SnsRecord>(raw.get()) {
        Ok(r) if r.event_source == SNS_EVENT_SOURCE => r,
        parsed => {
            return Err(match (record_source(raw), parsed) {
                (Some(found), Err(e)) if found == SNS_EVENT_SOURCE => DecodeError::MalformedRecord {
                    index,
                    kind: RecordKind::Sns,
                    reason: bounded(e.to_string()),
                },
                (found, _) => DecodeError::UnexpectedRecordSource {
                    index,
                    found: found.map(bounded),
                    within: RecordKind::Sns,
                },
            });
        }
    };
    decode_document(&record.sns.message, false)
}

/// Decodes a message body (SQS body or SNS `Message`): an S3 notification, an `s3:TestEvent`, an
/// EventBridge `aws.s3` event, or (from SQS only) an SNS envelope around one of those.
fn decode_document(text: &str, allow_sns_envelope: bool) -> Result<Content, DecodeError> {
    let probe: Probe = serde_json::from_str(text).map_err(json_error)?;
    require_object(text)?;
    if let Some(records) = probe.records {
        return s3::decode_s3_records(&records);
    }
    if probe.is_test_event() {
        return Ok(Content::TestEvent);
    }
    if probe.is_eventbridge_s3() {
        return eventbridge::decode_eventbridge(text);
    }
    if allow_sns_envelope && probe.is_sns_notification() {
        let envelope: SnsMessage = serde_json::from_str(text).map_err(|e| DecodeError::MalformedRecord {
            index: 0,
            kind: RecordKind::SnsEnvelope,
            reason: bounded(e.to_string()),
        })?;
        return decode_document(&envelope.message, false);
    }
    Err(DecodeError::UnknownShape(
        "the message holds no Records, s3:TestEvent, aws.s3 EventBridge event or SNS Notification".into(),
    ))
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
}
