//! OpenTelemetry: the relay's spans ([`crate::span`]) over OTLP/HTTP.
//!
//! On only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the
//! OTLP exporter (`opentelemetry-otlp`) reads the other standard variables itself (protocol,
//! headers, timeout, compression), and the resource honours `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` over what the Lambda environment says.
//!
//! Spans follow the messaging semantic conventions: one `process` span (CONSUMER) per invocation,
//! in the invocation's trace under Lambda's function segment, linked to every distinct upstream
//! record context (at most the SDK's link limit, the rest counted as dropped); one `send` span
//! (PRODUCER) per call per trace context, whose id is the `Parent` its messages leave with. A send
//! span in the invocation's own trace is a child of the `process` span; in a record's own trace, of
//! the upstream `Parent`. Only sampled contexts are exported (parent-based sampling).
//!
//! The spans are built here rather than through the SDK's tracer, because their ids are chosen
//! before the call (they go into the outgoing headers), the same ids go to X-Ray, and export must
//! happen once per invocation within a bound the relay controls: after the last call, before
//! Lambda is answered (a frozen environment exports nothing), for at most the smaller of the OTLP
//! timeout and the deadline margin ([`Exporter::export`]). A collector that is down costs at most
//! that bound and a warning.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::{
    Link, SpanContext, SpanId as OtelSpanId, SpanKind, Status, TraceFlags, TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::EnvResourceDetector;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLimits, SpanLinks};
use tokio::time::Instant;

use crate::config::Destination;
use crate::span::{InvocationSpan, SendSpan};
use crate::trace::{SpanId, TraceHeader, TraceId};

/// The variable that names the collector for every signal.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The variable that names the collector for traces.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The OTLP timeout for traces, in milliseconds.
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// The OTLP timeout for every signal, in milliseconds.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// The OTLP protocol for traces.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// The OTLP protocol for every signal.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The service name, over `service.name` in `OTEL_RESOURCE_ATTRIBUTES`.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// The OTLP timeout when none is set (the specification's default).
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time kept back at the invocation deadline so that Lambda is still answered after an export.
const ANSWER_RESERVE: Duration = Duration::from_millis(20);

/// Why OpenTelemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The exporter refused its configuration (an endpoint that is no URL, a bad header, …).
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
    /// A protocol this build does not speak (`grpc`) or no OTLP protocol at all.
    #[error("{variable}={value:?}: the relay exports OTLP over HTTP: use http/protobuf (the default) or http/json")]
    Protocol {
        /// The variable that asked for it.
        variable: &'static str,
        /// What it said.
        value: String,
    },
    /// TLS roots for an `https` collector could not be loaded.
    #[error("OpenTelemetry exporter: TLS roots for an https endpoint: {0}")]
    Tls(String),
}

/// Exports the relay's spans; shared by all invocations.
#[derive(Debug)]
pub struct Exporter {
    exporter: opentelemetry_otlp::SpanExporter,
    scope: InstrumentationScope,
    /// The longest an export may take (the OTLP timeout, at most the deadline margin).
    bound: Duration,
    /// Whether the next invocation is this environment's first.
    cold: AtomicBool,
    max_links: usize,
}

impl Exporter {
    /// The exporter the environment asks for, or `None` when no OTLP endpoint is set (then nothing
    /// of OpenTelemetry is initialised). `margin` is the relay's deadline margin: no export waits longer.
    ///
    /// # Errors
    /// The exporter's own configuration errors.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>, margin: Duration) -> Result<Option<Self>, OtelError> {
        let endpoint = lookup(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).or_else(|| lookup(OTEL_EXPORTER_OTLP_ENDPOINT));
        let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) else {
            return Ok(None);
        };
        let timeout = lookup(OTEL_EXPORTER_OTLP_TRACES_TIMEOUT)
            .or_else(|| lookup(OTEL_EXPORTER_OTLP_TIMEOUT))
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map_or(DEFAULT_OTLP_TIMEOUT, Duration::from_millis);
        let bound = timeout.min(margin);
        let builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(protocol(&lookup)?)
            .with_timeout(bound);
        let builder = if endpoint.trim_start().starts_with("https://") {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| OtelError::Tls(e.to_string()))?
                .https_or_http()
                .enable_http1()
                .build();
            builder.with_http_client(opentelemetry_http::hyper::HyperClient::new(https, bound, None))
        } else {
            builder.with_http_client(opentelemetry_http::hyper::HyperClient::with_default_connector(
                bound, None,
            ))
        };
        let mut exporter = builder.build().map_err(|e| OtelError::Exporter(e.to_string()))?;
        exporter.set_resource(&resource(&lookup));
        Ok(Some(Exporter {
            exporter,
            scope: InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            bound,
            cold: AtomicBool::new(true),
            max_links: SpanLimits::default().max_links_per_span as usize,
        }))
    }

    /// Exports one invocation's spans, waiting at most the bound and never past `deadline` (less a
    /// moment to answer Lambda); a failure or a timeout is a warning, never an invocation error.
    pub async fn export(&self, invocation: &InvocationSpan, sends: Vec<SendSpan>, deadline: Option<Instant>) {
        let cold = self.cold.swap(false, Ordering::Relaxed);
        let spans = self.spans(invocation, sends, cold);
        if spans.is_empty() {
            return;
        }
        let mut until = Instant::now() + self.bound;
        if let Some(deadline) = deadline {
            until = until.min(deadline.checked_sub(ANSWER_RESERVE).unwrap_or(deadline));
        }
        let count = spans.len();
        match tokio::time::timeout_at(until, self.exporter.export(spans)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(spans = count, error = %e, "OpenTelemetry export failed, spans dropped"),
            Err(_) => tracing::warn!(spans = count, "OpenTelemetry export took too long, spans dropped"),
        }
    }

    /// The OTLP spans of one invocation: its `process` span (when its context is sampled) and
    /// every `send` span.
    pub fn spans(&self, invocation: &InvocationSpan, sends: Vec<SendSpan>, cold: bool) -> Vec<SpanData> {
        let mut spans = Vec::with_capacity(sends.len() + 1);
        let process = invocation.is_recorded().then(|| self.process_span(invocation, cold));
        let process_context = process.as_ref().map(|p| p.span_context.clone());
        spans.extend(process);
        for send in sends {
            // In the invocation's own trace the send hangs under the process span.
            let parent = match &process_context {
                Some(p) if p.trace_id() == otel_trace_id(send.header.root()) => Some((p.span_id(), false)),
                _ => send.header.parent().map(|id| (otel_span_id(id), true)),
            };
            spans.push(self.send_span(send, parent));
        }
        spans
    }

    fn process_span(&self, invocation: &InvocationSpan, cold: bool) -> SpanData {
        let header = invocation
            .header
            .clone()
            .unwrap_or_else(|| TraceHeader::new(TraceId::new_root()));
        let parent = header.parent().map(otel_span_id);
        let mut links = SpanLinks::default();
        for upstream in &invocation.upstream {
            let Some(parent) = upstream.parent() else { continue };
            if links.links.len() >= self.max_links {
                links.dropped_count += 1;
                continue;
            }
            links.links.push(Link::with_context(remote_context(
                upstream.root(),
                parent,
                upstream.is_sampled(),
            )));
        }
        SpanData {
            span_context: context(header.root(), invocation.id, false),
            parent_span_id: parent.unwrap_or(OtelSpanId::INVALID),
            parent_span_is_remote: parent.is_some(),
            span_kind: SpanKind::Consumer,
            name: Cow::Borrowed("process"),
            start_time: invocation.start,
            end_time: invocation.end,
            attributes: vec![
                KeyValue::new("faas.invocation_id", invocation.request_id.clone()),
                KeyValue::new("faas.coldstart", cold),
                KeyValue::new("faas.trigger", "pubsub"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "process"),
                KeyValue::new("messaging.batch.message_count", count(invocation.messages)),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links,
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        }
    }

    fn send_span(&self, send: SendSpan, parent: Option<(OtelSpanId, bool)>) -> SpanData {
        let (system, name) = messaging(&send.destination);
        let facts = send.facts;
        let mut attributes = vec![
            KeyValue::new("messaging.system", system),
            KeyValue::new("messaging.destination.name", name.to_owned()),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "send"),
            KeyValue::new("messaging.batch.message_count", count(send.messages)),
            KeyValue::new("rpc.system", "aws-api"),
            KeyValue::new("rpc.method", facts.operation),
        ];
        if let Some(id) = facts.request_id {
            attributes.push(KeyValue::new("aws.request_id", id));
        }
        if let Some(status) = facts.status {
            attributes.push(KeyValue::new("http.response.status_code", i64::from(status)));
        }
        let status = if facts.failed {
            let error_type = facts.error_type.unwrap_or_else(|| "_OTHER".to_owned());
            attributes.push(KeyValue::new("error.type", error_type.clone()));
            Status::error(error_type)
        } else {
            Status::Unset
        };
        SpanData {
            span_context: context(send.header.root(), send.id, false),
            parent_span_id: parent.map_or(OtelSpanId::INVALID, |(id, _)| id),
            parent_span_is_remote: parent.is_some_and(|(_, remote)| remote),
            span_kind: SpanKind::Producer,
            name: Cow::Borrowed("send"),
            start_time: send.start,
            end_time: send.end,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }
}

/// The OTLP protocol the variables ask for: `http/protobuf` when unset, as the specification says
/// (the exporter alone would default to JSON, since this build also speaks it).
fn protocol(lookup: &impl Fn(&str) -> Option<String>) -> Result<opentelemetry_otlp::Protocol, OtelError> {
    let asked = [OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL]
        .into_iter()
        .find_map(|variable| lookup(variable).filter(|v| !v.trim().is_empty()).map(|v| (variable, v)));
    match asked {
        None => Ok(opentelemetry_otlp::Protocol::HttpBinary),
        Some((variable, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(opentelemetry_otlp::Protocol::HttpBinary),
            "http/json" => Ok(opentelemetry_otlp::Protocol::HttpJson),
            _ => Err(OtelError::Protocol { variable, value }),
        },
    }
}

/// `messaging.system` and `messaging.destination.name` of a target.
fn messaging(destination: &Destination) -> (&'static str, &str) {
    let address = destination.address();
    let last = |sep: char| address.rsplit(sep).next().unwrap_or(address);
    match destination {
        Destination::Sqs { .. } => ("aws_sqs", last('/')),
        Destination::Sns { .. } => ("aws_sns", last(':')),
        Destination::EventBus { .. } => ("aws_eventbridge", last('/')),
        Destination::StateMachine { .. } => ("aws_stepfunctions", last(':')),
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn otel_trace_id(root: &TraceId) -> OtelTraceId {
    OtelTraceId::from(root.as_u128())
}

fn otel_span_id(id: SpanId) -> OtelSpanId {
    OtelSpanId::from(id.as_u64())
}

/// The context of a span the relay records: always sampled (only sampled contexts are recorded).
fn context(root: &TraceId, id: SpanId, remote: bool) -> SpanContext {
    SpanContext::new(
        otel_trace_id(root),
        otel_span_id(id),
        TraceFlags::SAMPLED,
        remote,
        TraceState::NONE,
    )
}

fn remote_context(root: &TraceId, id: SpanId, sampled: bool) -> SpanContext {
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    SpanContext::new(otel_trace_id(root), otel_span_id(id), flags, true, TraceState::NONE)
}

/// The resource: the Lambda environment's cloud and FaaS attributes, then `OTEL_RESOURCE_ATTRIBUTES`
/// over them, then `OTEL_SERVICE_NAME` (default: `service.name` from those, else the function name).
fn resource(lookup: &impl Fn(&str) -> Option<String>) -> Resource {
    let mut attributes = vec![
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_lambda"),
    ];
    for (key, variable) in [
        ("cloud.region", "AWS_REGION"),
        ("faas.name", "AWS_LAMBDA_FUNCTION_NAME"),
        ("faas.version", "AWS_LAMBDA_FUNCTION_VERSION"),
        ("faas.instance", "AWS_LAMBDA_LOG_STREAM_NAME"),
    ] {
        if let Some(value) = lookup(variable) {
            attributes.push(KeyValue::new(key, value));
        }
    }
    if let Some(mb) = lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse::<i64>().ok()) {
        attributes.push(KeyValue::new("faas.max_memory", mb.saturating_mul(1024 * 1024)));
    }
    let from_env = Resource::builder_empty()
        .with_detector(Box::new(EnvResourceDetector::new()))
        .build();
    let named = from_env
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .map(|v| v.to_string());
    let service = lookup(OTEL_SERVICE_NAME)
        .or(named)
        .or_else(|| lookup("AWS_LAMBDA_FUNCTION_NAME"))
        .unwrap_or_else(|| env!("CARGO_PKG_NAME").to_owned());
    Resource::builder_empty()
        .with_attributes(attributes)
        .with_attributes(from_env.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())))
        .with_service_name(service)
        .build()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::config::parse_targets;
    use crate::span::CallFacts;

    const INVOCATION: &str = "Root=1-6745a1b2-0123456789abcdef01234567;Parent=a1b2c3d4e5f60718;Sampled=1";
    const RECORD: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    fn exporter() -> Exporter {
        let lookup = |k: &str| (k == OTEL_EXPORTER_OTLP_ENDPOINT).then(|| "http://127.0.0.1:9".to_owned());
        Exporter::from_env(lookup, Duration::from_millis(500)).unwrap().unwrap()
    }

    fn header(text: &str) -> TraceHeader {
        text.parse().unwrap()
    }

    fn invocation(upstream: Vec<TraceHeader>) -> InvocationSpan {
        InvocationSpan {
            header: Some(header(INVOCATION)),
            id: SpanId::random(),
            start: SystemTime::now(),
            end: SystemTime::now(),
            request_id: "req-1".into(),
            messages: 3,
            upstream,
        }
    }

    fn send(trace: &str, failed: Option<&str>) -> SendSpan {
        let target = parse_targets("https://sqs.us-east-1.amazonaws.com/123456789012/out").unwrap();
        SendSpan {
            header: header(trace),
            id: SpanId::random(),
            start: SystemTime::now(),
            end: SystemTime::now(),
            messages: 2,
            destination: target[0].destination.clone(),
            facts: CallFacts {
                operation: "SendMessageBatch",
                request_id: Some("aws-req".into()),
                status: Some(if failed.is_some() { 400 } else { 200 }),
                failed: failed.is_some(),
                error_type: failed.map(str::to_owned),
            },
        }
    }

    fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn nothing_is_initialised_without_an_otlp_endpoint() {
        assert!(
            Exporter::from_env(|_| None, Duration::from_millis(500))
                .unwrap()
                .is_none()
        );
        let blank = |k: &str| (k == OTEL_EXPORTER_OTLP_ENDPOINT).then(|| " ".to_owned());
        assert!(Exporter::from_env(blank, Duration::from_millis(500)).unwrap().is_none());
    }

    #[test]
    fn the_protocol_is_protobuf_unless_json_is_asked_and_grpc_is_refused_naming_the_variable() {
        use opentelemetry_otlp::Protocol;
        let with =
            |variable: &'static str, value: &'static str| move |k: &str| (k == variable).then(|| value.to_owned());
        assert_eq!(protocol(&|_: &str| None).unwrap(), Protocol::HttpBinary);
        assert_eq!(
            protocol(&with(OTEL_EXPORTER_OTLP_PROTOCOL, "http/json")).unwrap(),
            Protocol::HttpJson
        );
        assert_eq!(
            protocol(&with(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "HTTP/protobuf")).unwrap(),
            Protocol::HttpBinary
        );
        let err = protocol(&with(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")).unwrap_err();
        assert!(
            err.to_string().starts_with("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
            "{err}"
        );
    }

    #[test]
    fn the_flush_bound_is_the_otlp_timeout_at_most_the_deadline_margin() {
        let lookup = |timeout: &'static str| {
            move |k: &str| match k {
                OTEL_EXPORTER_OTLP_ENDPOINT => Some("http://127.0.0.1:9".to_owned()),
                OTEL_EXPORTER_OTLP_TIMEOUT => Some(timeout.to_owned()),
                _ => None,
            }
        };
        let margin = Duration::from_millis(500);
        assert_eq!(
            Exporter::from_env(lookup("200"), margin).unwrap().unwrap().bound,
            Duration::from_millis(200)
        );
        assert_eq!(
            Exporter::from_env(lookup("10000"), margin).unwrap().unwrap().bound,
            margin
        );
    }

    #[test]
    fn the_process_span_is_a_consumer_under_the_function_segment_linked_upstream() {
        let spans = exporter().spans(&invocation(vec![header(RECORD), header(INVOCATION)]), vec![], true);
        let process = &spans[0];
        assert_eq!(process.name, "process");
        assert_eq!(process.span_kind, SpanKind::Consumer);
        assert_eq!(
            format!("{:032x}", process.span_context.trace_id()),
            "6745a1b20123456789abcdef01234567"
        );
        assert_eq!(format!("{:016x}", process.parent_span_id), "a1b2c3d4e5f60718");
        assert!(process.parent_span_is_remote);
        let linked: Vec<String> = process
            .links
            .links
            .iter()
            .map(|l| format!("{:016x}", l.span_context.span_id()))
            .collect();
        assert_eq!(linked, vec!["53995c3f42cd8ad8", "a1b2c3d4e5f60718"]);
        assert_eq!(
            attr(process, "faas.invocation_id").map(ToString::to_string).as_deref(),
            Some("req-1")
        );
        assert_eq!(attr(process, "faas.coldstart"), Some(&opentelemetry::Value::Bool(true)));
        assert_eq!(
            attr(process, "messaging.batch.message_count"),
            Some(&opentelemetry::Value::I64(3))
        );
    }

    #[test]
    fn links_beyond_the_sdks_limit_are_counted_as_dropped() {
        let upstream: Vec<TraceHeader> = (0..130u64)
            .map(|i| header(&format!("Root=1-5759e988-{i:024x};Parent={:016x};Sampled=1", i + 1)))
            .collect();
        let spans = exporter().spans(&invocation(upstream), vec![], false);
        assert_eq!(spans[0].links.links.len(), 128);
        assert_eq!(spans[0].links.dropped_count, 2);
    }

    #[test]
    fn a_send_in_the_invocations_trace_hangs_under_the_process_span() {
        let s = send(INVOCATION, None);
        let id = s.id;
        let spans = exporter().spans(&invocation(vec![]), vec![s], false);
        let (process, sent) = (&spans[0], &spans[1]);
        assert_eq!(sent.name, "send");
        assert_eq!(sent.span_kind, SpanKind::Producer);
        assert_eq!(sent.span_context.span_id(), otel_span_id(id));
        assert_eq!(sent.parent_span_id, process.span_context.span_id());
        assert!(!sent.parent_span_is_remote);
        assert_eq!(
            attr(sent, "messaging.system").map(ToString::to_string).as_deref(),
            Some("aws_sqs")
        );
        assert_eq!(
            attr(sent, "messaging.destination.name")
                .map(ToString::to_string)
                .as_deref(),
            Some("out")
        );
        assert_eq!(
            attr(sent, "aws.request_id").map(ToString::to_string).as_deref(),
            Some("aws-req")
        );
        assert_eq!(sent.status, Status::Unset);
    }

    #[test]
    fn a_send_in_a_records_own_trace_hangs_under_the_upstream_parent() {
        let spans = exporter().spans(&invocation(vec![]), vec![send(RECORD, None)], false);
        let sent = &spans[1];
        assert_eq!(
            format!("{:032x}", sent.span_context.trace_id()),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(format!("{:016x}", sent.parent_span_id), "53995c3f42cd8ad8");
        assert!(sent.parent_span_is_remote);
    }

    #[test]
    fn a_failed_call_is_an_error_span_with_its_error_type() {
        let spans = exporter().spans(&invocation(vec![]), vec![send(RECORD, Some("AccessDenied"))], false);
        assert_eq!(spans[1].status, Status::error("AccessDenied"));
        assert_eq!(
            attr(&spans[1], "error.type").map(ToString::to_string).as_deref(),
            Some("AccessDenied")
        );
    }

    #[test]
    fn an_unsampled_invocation_has_no_process_span_and_its_sends_keep_their_parents() {
        let mut unsampled = invocation(vec![]);
        unsampled.header = Some(header(&INVOCATION.replace("Sampled=1", "Sampled=0")));
        let spans = exporter().spans(&unsampled, vec![send(RECORD, None)], false);
        assert_eq!(spans.len(), 1);
        assert_eq!(format!("{:016x}", spans[0].parent_span_id), "53995c3f42cd8ad8");
    }
}
