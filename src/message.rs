//! What the relay publishes (CONTRACT §4), in one place for the pure planner and the network edge:
//! the S3 event behind each message, the message and batch shapes, the names the wire uses and the
//! AWS limits that shape the batches, each a named constant with the rule it encodes.

use std::sync::Arc;

use crate::trace::TraceHeader;

/// Name of the SQS message system attribute that carries an X-Ray header.
pub const AWS_TRACE_HEADER: &str = "AWSTraceHeader";
/// Name of the message attribute that carries a W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// The HTTP header that carries X-Ray trace context on AWS requests (SNS's only carrier).
pub const TRACE_HTTP_HEADER: &str = "x-amzn-trace-id";
/// `String`: the data type of the `traceparent` attribute and of the text event attributes.
pub const STRING_DATA_TYPE: &str = "String";
/// `Number`: the data type of numeric event attributes (`size`), for numeric filter policies.
pub const NUMBER_DATA_TYPE: &str = "Number";

/// `SendMessageBatch` and `PublishBatch` accept at most 10 entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// SQS: a message, and a whole `SendMessageBatch` request, may hold at most 1 MiB (1,048,576 bytes)
/// of body plus message attributes (raised from 256 KiB in August 2025). `AWSTraceHeader` does not count.
pub const SQS_MAX_BATCH_BYTES: usize = 1_048_576;

/// SNS: a message, and a whole `PublishBatch` request, may hold at most 256 KiB (262,144 bytes) of
/// message plus message attributes.
pub const SNS_MAX_BATCH_BYTES: usize = 262_144;

/// EventBridge: the entries of one `PutEvents` call may hold less than 256 KiB together, counting
/// each entry's `Time` (14 bytes), `Source`, `DetailType`, `Detail` and `Resources` ("Calculating
/// PutEvents event entry size", EventBridge user guide). `TraceHeader` does not count. AWS raised
/// EventBridge events to 1 MB on 2026-01-29 while the API reference still documents 256 KB: the
/// relay keeps the documented limit (an S3 event is a few KB).
pub const EVENTBRIDGE_MAX_BATCH_BYTES: usize = 262_143;
/// What an entry's `Time` counts towards [`EVENTBRIDGE_MAX_BATCH_BYTES`].
pub const EVENTBRIDGE_TIME_BYTES: usize = 14;

/// EventBridge: a `DetailType` longer than this is accepted by `PutEvents` and then dropped,
/// so the relay refuses such an entry itself.
pub const MAX_DETAIL_TYPE_CHARS: usize = 128;

/// Step Functions: an execution's input may hold at most 256 KiB (262,144 bytes) of UTF-8.
pub const STEP_FUNCTIONS_MAX_INPUT_BYTES: usize = 262_144;

/// Step Functions: an execution name is 1 to 80 characters.
pub const MAX_EXECUTION_NAME_CHARS: usize = 80;

/// FIFO `MessageGroupId` and `MessageDeduplicationId`: at most 128 characters of alphanumerics and
/// punctuation (``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``).
pub const MAX_FIFO_ID_CHARS: usize = 128;

/// SQS and SNS allow at most 10 message attributes per message; the relay adds one (`traceparent`).
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

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
    /// S3's per-key ordering token (PUT and DELETE events only).
    pub sequencer: Option<String>,
    /// When the event happened (`eventTime`; EventBridge: `time`), as sent.
    pub event_time: Option<String>,
    /// The S3 request id (`responseElements.x-amz-request-id`; EventBridge: `detail.request-id`).
    pub request_id: Option<String>,
    /// The object's size in bytes (`s3.object.size`; EventBridge: `detail.object.size`), when given.
    pub size: Option<u64>,
    /// The message body to publish: `{"Records":[<record as received>]}`, or the EventBridge event.
    pub body: String,
    /// What the body is.
    pub origin: Origin,
}

/// Where a notification came from, which decides what its body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An S3 record: the body is `{"Records":[<record>]}`.
    S3Record,
    /// An S3 event delivered through EventBridge: the body is the event.
    EventBridge,
}

/// One message for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The retry unit the record came from.
    pub unit: usize,
    /// The notification (shared between targets).
    pub notification: Arc<Notification>,
    /// The outbound trace header (canonical), if any.
    pub trace: Option<TraceHeader>,
    /// Group and deduplication ids, for FIFO targets.
    pub fifo: Option<FifoIds>,
    /// Event fields the target asked for as message attributes (SNS subscription filter policies).
    pub attributes: Vec<MessageAttribute>,
    /// For event bus targets: the `DetailType` and `Detail` of the entry.
    pub bus_entry: Option<BusEntry>,
    /// For state machine targets: the execution name, derived from the event so a redelivered
    /// record starts no second execution of a Standard workflow.
    pub execution_name: Option<String>,
    /// Bytes the message counts toward the service's size limit (body plus message attributes).
    pub size: usize,
}

impl Message {
    /// The W3C form of `trace`, sent as the `traceparent` message attribute. Written when the
    /// call is built rather than held: with a trace context per record, 10,000 messages wait for
    /// their SNS batch, and each would keep its own copy.
    pub fn traceparent(&self) -> Option<String> {
        self.trace.as_ref().and_then(TraceHeader::to_traceparent)
    }
}

/// FIFO ids of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoIds {
    /// `MessageGroupId`: one per object.
    pub group_id: String,
    /// `MessageDeduplicationId`: one per S3 event.
    pub deduplication_id: String,
}

/// The ARN of a bucket: the `Resources` of its events on a bus.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// What an S3 event is on an event bus: the entry's `DetailType` and `Detail` (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEntry {
    /// `Object Created`, `Object Deleted`, … as S3 names its own EventBridge events.
    pub detail_type: String,
    /// The detail object, with the field names of S3's own EventBridge events.
    pub detail: String,
}

/// One `SendMessageBatch`, `PublishBatch` or `PutEvents` call, or one `StartExecution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Index of the target in the configuration.
    pub target: usize,
    /// For SNS: the trace header every entry shares, sent as the request's `X-Amzn-Trace-Id`.
    /// Always `None` for SQS, whose entries carry their own.
    pub request_trace: Option<TraceHeader>,
    /// The entries, at most [`MAX_BATCH_ENTRIES`].
    pub messages: Vec<Message>,
}

/// An S3 event field an SNS target can carry as a message attribute, so subscribers filter on it
/// (subscription filter policies) without parsing the body: `?attributes=bucket,key,eventName,size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAttribute {
    /// `bucket`: the bucket name.
    Bucket,
    /// `key`: the decoded object key.
    Key,
    /// `eventName`: the S3 event name (`ObjectCreated:Put`).
    EventName,
    /// `size`: the object size in bytes, a `Number` (left out when the event has none).
    Size,
}

impl EventAttribute {
    /// Every attribute, in the order their names are documented.
    pub const ALL: [EventAttribute; 4] = [
        EventAttribute::Bucket,
        EventAttribute::Key,
        EventAttribute::EventName,
        EventAttribute::Size,
    ];

    /// The attribute's name, in the configuration and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EventAttribute::Bucket => "bucket",
            EventAttribute::Key => "key",
            EventAttribute::EventName => "eventName",
            EventAttribute::Size => "size",
        }
    }

    /// The attribute of `n`, when it has a value.
    pub fn of(self, n: &Notification) -> Option<MessageAttribute> {
        let (data_type, value) = match self {
            EventAttribute::Bucket => (STRING_DATA_TYPE, n.bucket.clone()),
            EventAttribute::Key => (STRING_DATA_TYPE, n.key.clone()),
            EventAttribute::EventName => (STRING_DATA_TYPE, n.event_name.clone()),
            EventAttribute::Size => (NUMBER_DATA_TYPE, n.size?.to_string()),
        };
        Some(MessageAttribute {
            name: self.name(),
            data_type,
            value,
        })
    }
}

/// A message attribute the relay writes besides `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    /// Its name.
    pub name: &'static str,
    /// `String` or `Number`.
    pub data_type: &'static str,
    /// Its value, as text.
    pub value: String,
}

impl MessageAttribute {
    /// Bytes it counts toward the message size limit: name, data type and value.
    pub fn size(&self) -> usize {
        self.name.len() + self.data_type.len() + self.value.len()
    }
}
