//! Recording the relay on the X-Ray service map: the spans of [`crate::span`] as daemon documents.
//!
//! When the X-Ray daemon is reachable (`AWS_XRAY_DAEMON_ADDRESS`, set by Lambda) and a trace is
//! sampled (`Sampled=1`), every SQS/SNS call is recorded as an independent subsegment with
//! `namespace: "aws"`, so the service map infers the queue or topic node, and the messages of that
//! call carry the subsegment's id as their `Parent`: that is what draws the relay → SQS/SNS edge
//! (CONTRACT §5). Subsegments of the invocation's own trace hang under the function segment (the
//! invocation header's `Parent`); for a record-level trace (an SQS record carrying its own upstream
//! context) the relay records a segment of its own in that trace, parented to the upstream `Parent`,
//! and hangs the call subsegments under it. `Sampled=0` or `?` records nothing but still propagates.
//!
//! The daemon protocol is one UDP datagram per document: `{"format":"json","version":1}\n` then the
//! JSON document, at most 64 kB. Sending never blocks and never fails an invocation.
//!
//! Why the documents are written here: AWS ships no X-Ray SDK for Rust. `opentelemetry-aws` (0.21)
//! has an X-Ray daemon exporter, which turns OpenTelemetry spans into segment documents; using it
//! means running the OpenTelemetry SDK's tracer pipeline in every function, traced or not, and
//! mapping span attributes so that each call still becomes a subsegment with `namespace: aws` and
//! `aws.operation`/`queue_url`/`topic_arn` (what the service map reads), parented to a segment
//! this process did not create — Lambda's function segment, known only by the `Parent` of the
//! invocation header — and so that a record-level trace gets a relay segment of its own. The relay
//! needs three small document shapes; they are written directly, and
//! `tests/fixtures/xray/mixed-batch-documents.json` pins them. (OpenTelemetry export proper is a
//! separate, opt-in path.)

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::Destination;
use crate::span::{RelaySegment, SendSpan, epoch_seconds};
use crate::trace::{SpanId, TraceId};

/// Header line that precedes every document sent to the daemon.
pub const DAEMON_HEADER: &str = "{\"format\":\"json\",\"version\":1}\n";
/// A datagram to the daemon may hold at most 64 kB.
pub const MAX_DATAGRAM_BYTES: usize = 64_000;

/// Where finished documents go: the daemon in production, a buffer in tests.
pub trait SegmentSink: Send + Sync {
    /// Hands one segment document (JSON, without the daemon header) to the sink. Must not block.
    fn emit(&self, document: &str);
}

/// Sends documents to the X-Ray daemon over UDP, non-blocking, dropping what cannot be sent.
#[derive(Debug)]
pub struct UdpSink {
    socket: UdpSocket,
    daemon: SocketAddr,
}

impl UdpSink {
    /// Connects to the daemon address in Lambda's format: `host:port`, or
    /// `tcp:host:port udp:host:port` (the UDP part is used).
    pub fn new(address: &str) -> std::io::Result<Self> {
        let udp = address
            .split_whitespace()
            .find_map(|part| part.strip_prefix("udp:"))
            .unwrap_or(address.trim());
        let daemon = udp
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
        let bind: SocketAddr = if daemon.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_nonblocking(true)?;
        Ok(UdpSink { socket, daemon })
    }
}

impl SegmentSink for UdpSink {
    fn emit(&self, document: &str) {
        let mut datagram = String::with_capacity(DAEMON_HEADER.len() + document.len());
        datagram.push_str(DAEMON_HEADER);
        datagram.push_str(document);
        if datagram.len() > MAX_DATAGRAM_BYTES {
            tracing::warn!(
                bytes = datagram.len(),
                "X-Ray document too large for one datagram, dropped"
            );
            return;
        }
        if let Err(e) = self.socket.send_to(datagram.as_bytes(), self.daemon) {
            tracing::debug!(error = %e, "X-Ray document not sent");
        }
    }
}

/// Writes the relay's spans ([`crate::span`]) as X-Ray documents; shared by all invocations.
#[derive(Clone)]
pub struct XRay {
    sink: Arc<dyn SegmentSink>,
    function_name: String,
    region: String,
}

impl std::fmt::Debug for XRay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XRay")
            .field("function_name", &self.function_name)
            .finish()
    }
}

impl XRay {
    /// A writer sending to `sink`, naming the relay's own segments `function_name`.
    pub fn new(sink: Arc<dyn SegmentSink>, function_name: impl Into<String>, region: impl Into<String>) -> Self {
        XRay {
            sink,
            function_name: function_name.into(),
            region: region.into(),
        }
    }

    /// Emits a call's subsegment under `parent`: the function segment (the invocation's own trace)
    /// or the relay's segment in a record-level trace.
    pub fn call(&self, span: &SendSpan, parent: Option<SpanId>) {
        let destination = &span.destination;
        let name = match destination {
            Destination::Sqs { .. } => "SQS",
            Destination::Sns { .. } => "SNS",
            Destination::EventBus { .. } => "EventBridge",
            Destination::StateMachine { .. } => "SFN",
        };
        let resource = |wanted: fn(&Destination) -> bool| wanted(destination).then(|| destination.address());
        let facts = &span.facts;
        let status = facts.status;
        self.emit(&Subsegment {
            id: span.id.to_string(),
            trace_id: span.header.root().to_string(),
            parent_id: parent.map(|p| p.to_string()),
            name,
            namespace: "aws",
            kind: "subsegment",
            start_time: epoch_seconds(span.start),
            end_time: epoch_seconds(span.end),
            aws: AwsFacts {
                operation: facts.operation,
                region: destination.region().unwrap_or(&self.region),
                request_id: facts.request_id.as_deref(),
                queue_url: resource(|d| matches!(d, Destination::Sqs { .. })),
                topic_arn: resource(|d| matches!(d, Destination::Sns { .. })),
                event_bus_arn: resource(|d| matches!(d, Destination::EventBus { .. })),
                state_machine_arn: resource(|d| matches!(d, Destination::StateMachine { .. })),
            },
            http: status.map(|status| Http {
                response: HttpResponse { status },
            }),
            error: status.is_some_and(|s| (400..500).contains(&s)) || (facts.failed && status.is_none()),
            throttle: status == Some(429),
            fault: status.is_some_and(|s| s >= 500),
        });
    }

    /// Emits the relay's own segment in the record-level trace `root`.
    pub fn segment(&self, root: &TraceId, segment: &RelaySegment, start: SystemTime, end: SystemTime) {
        self.emit(&Segment {
            name: &self.function_name,
            id: segment.id.to_string(),
            trace_id: root.to_string(),
            parent_id: segment.parent.map(|p| p.to_string()),
            start_time: epoch_seconds(start),
            end_time: epoch_seconds(end),
            origin: "AWS::Lambda::Function",
        });
    }

    fn emit(&self, doc: &impl Serialize) {
        match serde_json::to_string(doc) {
            Ok(text) => self.sink.emit(&text),
            Err(e) => tracing::debug!(error = %e, "X-Ray document not serialized"),
        }
    }
}

#[derive(Serialize)]
struct Segment<'a> {
    name: &'a str,
    id: String,
    trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    start_time: f64,
    end_time: f64,
    origin: &'static str,
}

#[derive(Serialize)]
struct Subsegment<'a> {
    id: String,
    trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    name: &'static str,
    namespace: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    start_time: f64,
    end_time: f64,
    aws: AwsFacts<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<Http>,
    error: bool,
    throttle: bool,
    fault: bool,
}

#[derive(Serialize)]
struct AwsFacts<'a> {
    operation: &'static str,
    region: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_bus_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_machine_arn: Option<&'a str>,
}

#[derive(Serialize)]
struct Http {
    response: HttpResponse,
}

#[derive(Serialize)]
struct HttpResponse {
    status: u16,
}
