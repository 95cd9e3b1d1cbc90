//! The relay's own work as spans: what X-Ray (`xray`) and OpenTelemetry (`otel`) both record.
//!
//! One model feeds both, so that with both on they name the same ids: a call is one *send span* per
//! sampled trace context among its messages, and that span's id is the `Parent` of those messages'
//! outgoing `AWSTraceHeader` and the parent-id of their `traceparent` (CONTRACT §5). Pure data.

use std::time::SystemTime;

use crate::config::Destination;
use crate::trace::{SpanId, TraceHeader};

/// What the publish edge learned about a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFacts {
    /// `SendMessageBatch`, `PublishBatch`, `PutEvents` or `StartExecution`.
    pub operation: &'static str,
    /// The AWS request id, when a response came back.
    pub request_id: Option<String>,
    /// HTTP status, when a response came back.
    pub status: Option<u16>,
    /// Whether the call failed as a whole.
    pub failed: bool,
    /// Why it failed: the service's error code, or the relay's reason (`Deadline`).
    pub error_type: Option<String>,
}

/// One call in one trace context.
#[derive(Debug, Clone)]
pub struct SendSpan {
    /// The context the call's messages came with (before the relay re-parented them).
    pub header: TraceHeader,
    /// The span's id: the `Parent` its messages left with.
    pub id: SpanId,
    /// When the call started and ended.
    pub start: SystemTime,
    /// When the call ended.
    pub end: SystemTime,
    /// How many of the call's messages are in this context.
    pub messages: usize,
    /// Where the call went.
    pub destination: Destination,
    /// What came back.
    pub facts: CallFacts,
}

/// One invocation of the relay, as a whole.
#[derive(Debug, Clone)]
pub struct InvocationSpan {
    /// The invocation's own context (Lambda's function segment as `Parent`), if valid.
    pub header: Option<TraceHeader>,
    /// The id of the relay's span for the invocation.
    pub id: SpanId,
    /// When the relay began handling it.
    pub start: SystemTime,
    /// When it finished.
    pub end: SystemTime,
    /// Lambda's request id.
    pub request_id: String,
    /// Records received.
    pub messages: usize,
    /// The distinct upstream contexts of its records, in order of first appearance.
    pub upstream: Vec<TraceHeader>,
}

impl InvocationSpan {
    /// Whether the invocation's span is recorded: its context is sampled, or it has none (then the
    /// relay starts a trace of its own).
    pub fn is_recorded(&self) -> bool {
        self.header.as_ref().is_none_or(TraceHeader::is_sampled)
    }
}

/// The relay's own segment in a record-level trace (X-Ray): the parent of its call subsegments
/// there, child of the upstream `Parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySegment {
    /// Its id.
    pub id: SpanId,
    /// The upstream `Parent` of the trace's first record.
    pub parent: Option<SpanId>,
}

/// Seconds since the epoch with microsecond precision, as X-Ray documents want.
pub fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
