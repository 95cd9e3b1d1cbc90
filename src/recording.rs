//! Recording one invocation's spans ([`crate::span`]) for X-Ray and OpenTelemetry (CONTRACT §5).
//!
//! Only sampled contexts are recorded (parent-based sampling: `Sampled=1`, traceparent flag `01`);
//! `Sampled=0` or `?` records nothing and the message keeps its incoming `Parent`. X-Ray documents
//! are written as calls end (UDP, never blocking); OpenTelemetry spans are exported once, when the
//! invocation is over, within a bounded flush ([`crate::otel::Exporter::export`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::time::Instant;

use crate::config::Destination;
use crate::otel::Exporter;
use crate::span::{CallFacts, InvocationSpan, RelaySegment, SendSpan};
use crate::trace::{SpanId, TraceHeader, TraceId};
use crate::xray::XRay;

/// What the relay records its work with; shared by all invocations.
#[derive(Debug, Clone)]
pub struct Recorder {
    xray: Option<XRay>,
    otel: Option<Arc<Exporter>>,
}

impl Recorder {
    /// A recorder for X-Ray, OpenTelemetry or both; `None` when neither is on.
    pub fn new(xray: Option<XRay>, otel: Option<Arc<Exporter>>) -> Option<Self> {
        (xray.is_some() || otel.is_some()).then_some(Recorder { xray, otel })
    }

    /// Starts recording one invocation whose own trace context is `invocation`.
    pub fn invocation(&self, invocation: Option<&TraceHeader>, request_id: &str) -> InvocationRecording {
        let now = SystemTime::now();
        InvocationRecording {
            recorder: self.clone(),
            span: Mutex::new(InvocationSpan {
                header: invocation.cloned(),
                id: SpanId::random(),
                start: now,
                end: now,
                request_id: request_id.to_owned(),
                messages: 0,
                upstream: Vec::new(),
            }),
            relay_segments: Mutex::new(HashMap::new()),
            sends: Mutex::new(Vec::new()),
        }
    }
}

/// The recording state of one invocation.
#[derive(Debug)]
pub struct InvocationRecording {
    recorder: Recorder,
    span: Mutex<InvocationSpan>,
    /// X-Ray: the relay's own segment in each record-level trace.
    relay_segments: Mutex<HashMap<TraceId, RelaySegment>>,
    /// OpenTelemetry: the finished send spans, exported at the end.
    sends: Mutex<Vec<SendSpan>>,
}

/// A call being recorded: one send span per sampled trace context among its messages.
#[derive(Debug)]
pub struct CallRecording {
    start: SystemTime,
    /// (context as received by the call, span id, messages in it).
    contexts: Vec<(TraceHeader, SpanId, usize)>,
}

impl CallRecording {
    /// The span id a message of `header` must carry as `Parent` for this call, if recorded.
    pub fn parent_for(&self, header: &TraceHeader) -> Option<SpanId> {
        self.contexts.iter().find(|(h, _, _)| h == header).map(|(_, id, _)| *id)
    }
}

impl InvocationRecording {
    /// Notes what the process span says of the batch: records received and their distinct
    /// upstream contexts (the process span's links).
    pub fn received(&self, messages: usize, upstream: impl FnOnce() -> Vec<TraceHeader>) {
        if self.recorder.otel.is_none() {
            return;
        }
        let mut span = lock(&self.span);
        span.messages = messages;
        span.upstream = upstream();
    }

    /// Opens a call: picks a span id for every sampled context among `headers` (one per message,
    /// the request's own header included).
    pub fn begin_call<'h>(&self, headers: impl IntoIterator<Item = &'h TraceHeader>) -> CallRecording {
        let mut contexts: Vec<(TraceHeader, SpanId, usize)> = Vec::new();
        for header in headers.into_iter().filter(|h| h.is_sampled()) {
            match contexts.iter_mut().find(|(h, _, _)| h == header) {
                Some((_, _, n)) => *n += 1,
                None => contexts.push((header.clone(), SpanId::random(), 1)),
            }
        }
        CallRecording {
            start: SystemTime::now(),
            contexts,
        }
    }

    /// Closes a call: writes its X-Ray subsegments and keeps its send spans for OpenTelemetry.
    pub fn end_call(&self, call: CallRecording, destination: &Destination, facts: &CallFacts) {
        let end = SystemTime::now();
        let spans = call.contexts.into_iter().map(|(header, id, messages)| SendSpan {
            header,
            id,
            start: call.start,
            end,
            messages,
            destination: destination.clone(),
            facts: facts.clone(),
        });
        let spans: Vec<SendSpan> = spans.collect();
        if let Some(xray) = &self.recorder.xray {
            for span in &spans {
                xray.call(span, self.xray_parent(&span.header));
            }
        }
        if self.recorder.otel.is_some() {
            lock(&self.sends).extend(spans);
        }
    }

    /// X-Ray parent of a call subsegment: the function segment in the invocation's own trace, else
    /// the relay's segment in the record's trace.
    fn xray_parent(&self, header: &TraceHeader) -> Option<SpanId> {
        let own = lock(&self.span).header.as_ref().map(|h| *h.root());
        if own == Some(*header.root()) {
            return header.parent();
        }
        let mut segments = lock(&self.relay_segments);
        let segment = segments.entry(*header.root()).or_insert_with(|| RelaySegment {
            id: SpanId::random(),
            parent: header.parent(),
        });
        Some(segment.id)
    }

    /// Ends the invocation: writes the relay's X-Ray segments and exports the OpenTelemetry spans.
    /// `deadline` is the invocation's: the export never waits past it.
    pub async fn finish(self, deadline: Option<Instant>) {
        let mut span = self.span.into_inner().unwrap_or_else(|p| p.into_inner());
        span.end = SystemTime::now();
        if let Some(xray) = &self.recorder.xray {
            let segments = self.relay_segments.into_inner().unwrap_or_else(|p| p.into_inner());
            for (root, segment) in segments {
                xray.segment(&root, &segment, span.start, span.end);
            }
        }
        if let Some(otel) = &self.recorder.otel {
            let sends = self.sends.into_inner().unwrap_or_else(|p| p.into_inner());
            otel.export(&span, sends, deadline).await;
        }
    }
}

/// Locks `m`; a panic elsewhere while holding it leaves data that is still fine to read.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
