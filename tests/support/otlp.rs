//! An OTLP/HTTP trace receiver (a collector stand-in) decoding the real protobuf messages from
//! `opentelemetry-proto`, for checking what the relay exports.
//!
//! [`OtlpReceiver::start`] serves `POST /v1/traces` on `127.0.0.1:<ephemeral>`:
//! - `Content-Type: application/x-protobuf`: the body is decoded (prost) as an
//!   `ExportTraceServiceRequest` and answered 200 with an empty `ExportTraceServiceResponse`
//!   (protobuf, `Content-Type: application/x-protobuf`).
//! - `Content-Type: application/json`: the body is decoded as OTLP/JSON (hex ids, camelCase fields,
//!   enums as integers) through the proto's serde support, and answered 200 with `{}`
//!   (`application/json`). That support (`opentelemetry-proto/with-serde`) comes from the relay's
//!   own `opentelemetry-otlp/http-json` feature, unified into the test build.
//! - any other content type, or a `Content-Encoding` other than `identity`: 415; a body that does
//!   not decode, or a span kind or status code outside the proto's enums: 400; another method on
//!   `/v1/traces`: 405; any other path: 404.
//!
//! Every request is recorded, answered or not ([`OtlpReceiver::requests`]); the spans of every
//! request that decoded are recorded, flattened, in arrival order ([`OtlpReceiver::spans`]).
//!
//! [`OtlpReceiver::black_hole`] is a hung collector: it accepts connections and reads (and records)
//! whole requests, but never answers and never closes a connection.
//!
//! Connections are HTTP/1.1 with keep-alive, served concurrently. The server runs on the current
//! tokio runtime; dropping the receiver stops it and closes every connection.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::watched::Watched;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// The OTLP/HTTP traces path.
pub const TRACES_PATH: &str = "/v1/traces";
/// The OTLP/HTTP protobuf media type.
pub const PROTOBUF: &str = "application/x-protobuf";
/// The OTLP/HTTP JSON media type.
pub const JSON: &str = "application/json";

/// One HTTP request the receiver read, whatever it answered.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    /// The `Content-Type` header, verbatim.
    pub content_type: Option<String>,
    /// Every header, names lowercased, in arrival order (values lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
}

impl ReceivedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `Span.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// `Span.status`; an absent status is `Unset`. The message is kept for `Error` only (the only code
/// OTLP gives one for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    Unset,
    Ok,
    Error(String),
}

/// An attribute value. `Other` renders what has no variant of its own: arrays as `[v, …]`, key-value
/// lists as `{"k": v, …}` (strings inside both quoted, as `{:?}` does), bytes as `bytes:<hex>`, a
/// string-table index as `strindex:<i>`, and an `AnyValue` without a value as `empty`.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    Other(String),
}

impl AttrValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// `Span.Link`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedLink {
    /// Lowercase hex of the bytes received (32 digits for a valid id).
    pub trace_id: String,
    /// Lowercase hex of the bytes received (16 digits for a valid id).
    pub span_id: String,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// One span, with the resource and scope it was sent under.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// Lowercase hex of the bytes received (32 digits for a valid id).
    pub trace_id: String,
    /// Lowercase hex of the bytes received (16 digits for a valid id).
    pub span_id: String,
    /// `None` when the field is empty (a root span).
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    /// A repeated key keeps its last value.
    pub attributes: BTreeMap<String, AttrValue>,
    pub links: Vec<ReceivedLink>,
    pub dropped_links_count: u32,
    pub status: SpanStatus,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub flags: u32,
    /// The enclosing `ResourceSpans`' resource attributes (empty without a resource).
    pub resource: BTreeMap<String, AttrValue>,
    /// The enclosing `ScopeSpans`' scope name (empty without a scope).
    pub scope_name: String,
}

impl ReceivedSpan {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }
}

#[derive(Default)]
struct State {
    requests: Vec<ReceivedRequest>,
    /// Parallel to `requests`: `METHOD path content-type -> answer`, for failure messages.
    notes: Vec<String>,
    spans: Vec<ReceivedSpan>,
}

/// The receiver's state, and who waits on it.
type Shared = Watched<State>;

impl Watched<State> {
    fn record(&self, request: ReceivedRequest, note: String, spans: Vec<ReceivedSpan>) {
        {
            let mut s = self.lock();
            s.requests.push(request);
            s.notes.push(note);
            s.spans.extend(spans);
        }
        self.changed();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    BlackHole,
}

/// The collector stand-in; see the module documentation. Dropping it stops the server.
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl OtlpReceiver {
    /// Serves `POST /v1/traces` (protobuf or JSON), answering 200 with an empty export response.
    pub async fn start() -> Self {
        Self::serve(Mode::Answer).await
    }

    /// A hung collector: accepts connections, reads and records whole requests, never answers.
    pub async fn black_hole() -> Self {
        Self::serve(Mode::BlackHole).await
    }

    async fn serve(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the OTLP receiver on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr of a bound listener");
        let shared = Arc::new(Shared::default());
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let shared = shared.clone();
            let tasks = tasks.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = shared.clone();
                    let conn = tokio::spawn(async move {
                        let service = service_fn(move |req| handle(shared.clone(), mode, req));
                        // Errors here are client disconnects: nothing to report.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                    let mut tasks = tasks.lock().unwrap_or_else(|p| p.into_inner());
                    tasks.retain(|t| !t.is_finished());
                    tasks.push(conn.abort_handle());
                }
            })
        };
        tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(accept.abort_handle());
        OtlpReceiver { addr, shared, tasks }
    }

    /// `http://127.0.0.1:<port>`, the value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends
    /// `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, flattened over resource and scope spans, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.lock().spans.clone()
    }

    /// Waits up to `timeout` until at least `n` spans have arrived and returns [`OtlpReceiver::spans`];
    /// panics on timeout, showing what did arrive.
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        if let Some(spans) = self
            .shared
            .wait_for(timeout, |s| (s.spans.len() >= n).then(|| s.spans.clone()))
            .await
        {
            return spans;
        }
        panic!(
            "expected at least {n} span(s) within {timeout:?}; {}",
            self.shared.lock().describe()
        );
    }

    /// Every request read so far (answered or not), in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Waits up to `timeout` until at least `n` requests have been read; returns
    /// [`OtlpReceiver::requests`], or panics on timeout, showing what did arrive.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        if let Some(requests) = self
            .shared
            .wait_for(timeout, |s| (s.requests.len() >= n).then(|| s.requests.clone()))
            .await
        {
            return requests;
        }
        panic!(
            "expected at least {n} request(s) within {timeout:?}; {}",
            self.shared.lock().describe()
        );
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

impl State {
    /// What arrived, for failure messages.
    fn describe(&self) -> String {
        let mut out = format!("{} span(s) arrived", self.spans.len());
        for span in &self.spans {
            let _ = write!(
                out,
                "\n  span {:?} kind {:?} trace {} span {} parent {:?} status {:?}",
                span.name, span.kind, span.trace_id, span.span_id, span.parent_span_id, span.status
            );
        }
        let _ = write!(out, "\n{} request(s):", self.requests.len());
        for note in &self.notes {
            let _ = write!(out, "\n  {note}");
        }
        out
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", message)
}

async fn handle(shared: Arc<Shared>, mode: Mode, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let received = ReceivedRequest {
        path: parts.uri.path().to_owned(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let summary = format!(
        "{} {} {}",
        parts.method,
        received.path,
        received.content_type.as_deref().unwrap_or("(no content type)")
    );
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let response = text(StatusCode::BAD_REQUEST, format!("reading the body: {e}"));
            shared.record(received, format!("{summary} -> body unreadable: {e}"), Vec::new());
            return Ok(response);
        }
    };

    let outcome = export(&parts.method, &received, &parts.headers, &body);
    let (status, note) = match &outcome {
        Ok((_, spans)) => (StatusCode::OK, format!("200 ({} span(s))", spans.len())),
        Err((status, message)) => (*status, format!("{status}: {message}")),
    };
    let (response, spans) = match outcome {
        Ok(answer) => answer,
        Err((status, message)) => (text(status, message), Vec::new()),
    };
    if mode == Mode::BlackHole {
        let note = format!("{summary} -> never answered (black hole; would have been {status})");
        shared.record(received, note, spans);
        return std::future::pending().await;
    }
    shared.record(received, format!("{summary} -> {note}"), spans);
    Ok(response)
}

/// A 200 answer and the spans the request carried.
type Answer = (Response<Full<Bytes>>, Vec<ReceivedSpan>);

/// The answer to one request and the spans it carried, or the error status and message.
fn export(
    method: &Method,
    received: &ReceivedRequest,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Result<Answer, (StatusCode, String)> {
    if received.path != TRACES_PATH {
        return Err((StatusCode::NOT_FOUND, format!("{} is not served", received.path)));
    }
    if method != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{method} {TRACES_PATH}")));
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        let encoding = String::from_utf8_lossy(encoding.as_bytes());
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {encoding:?} is not supported"),
        ));
    }
    let media_type = received
        .content_type
        .as_deref()
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let decoded = match media_type.as_deref() {
        Some(PROTOBUF) => ExportTraceServiceRequest::decode(body).map_err(|e| e.to_string()),
        Some(JSON) => serde_json::from_slice::<ExportTraceServiceRequest>(body).map_err(|e| e.to_string()),
        _ => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {:?} is not supported", received.content_type),
            ));
        }
    };
    let request = decoded.map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("not an ExportTraceServiceRequest: {e}"),
        )
    })?;
    let spans = flatten(request).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let response = if media_type.as_deref() == Some(PROTOBUF) {
        reply(
            StatusCode::OK,
            PROTOBUF,
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
    } else {
        reply(StatusCode::OK, JSON, "{}")
    };
    Ok((response, spans))
}

/// The request's spans, flattened over resource and scope spans, in order.
fn flatten(request: ExportTraceServiceRequest) -> Result<Vec<ReceivedSpan>, String> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            let scope_name = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                let kind = match span::SpanKind::try_from(span.kind) {
                    Ok(span::SpanKind::Unspecified) => SpanKind::Unspecified,
                    Ok(span::SpanKind::Internal) => SpanKind::Internal,
                    Ok(span::SpanKind::Server) => SpanKind::Server,
                    Ok(span::SpanKind::Client) => SpanKind::Client,
                    Ok(span::SpanKind::Producer) => SpanKind::Producer,
                    Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
                    Err(_) => return Err(format!("span {:?} has unknown kind {}", span.name, span.kind)),
                };
                let status = match span.status {
                    None => SpanStatus::Unset,
                    Some(s) => match status::StatusCode::try_from(s.code) {
                        Ok(status::StatusCode::Unset) => SpanStatus::Unset,
                        Ok(status::StatusCode::Ok) => SpanStatus::Ok,
                        Ok(status::StatusCode::Error) => SpanStatus::Error(s.message),
                        Err(_) => {
                            return Err(format!("span {:?} has unknown status code {}", span.name, s.code));
                        }
                    },
                };
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
                    name: span.name,
                    kind,
                    attributes: attributes(&span.attributes),
                    links: span
                        .links
                        .iter()
                        .map(|l| ReceivedLink {
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            attributes: attributes(&l.attributes),
                        })
                        .collect(),
                    dropped_links_count: span.dropped_links_count,
                    status,
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    flags: span.flags,
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                });
            }
        }
    }
    Ok(out)
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, AttrValue> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), attr_value(kv.value.as_ref())))
        .collect()
}

fn attr_value(value: Option<&AnyValue>) -> AttrValue {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s.clone()),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(*d),
        _ => AttrValue::Other(render(value)),
    }
}

/// A readable rendering of any value, for [`AttrValue::Other`].
fn render(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => "empty".to_owned(),
        Some(any_value::Value::StringValue(s)) => format!("{s:?}"),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format!("{d:?}"),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| render(Some(v))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(any_value::Value::KvlistValue(kvs)) => {
            let items: Vec<String> = kvs
                .values
                .iter()
                .map(|kv| format!("{:?}: {}", kv.key, render(kv.value.as_ref())))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(any_value::Value::BytesValue(b)) => format!("bytes:{}", hex(b)),
        Some(any_value::Value::StringValueStrindex(i)) => format!("strindex:{i}"),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
