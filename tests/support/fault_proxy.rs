//! A fault-injecting HTTP/1.1 reverse proxy in front of moto, used as the relay's `AWS_ENDPOINT_URL`.
//!
//! Only the two calls the relay publishes with are faulted: SQS `SendMessageBatch` (JSON protocol,
//! `X-Amz-Target: AmazonSQS.SendMessageBatch`) and SNS `PublishBatch` (query protocol,
//! `Action=PublishBatch`). Everything else is forwarded untouched.
//!
//! For each batch call a schedule decides what happens (see [`FaultKind`]). The random schedule is
//! seeded and keyed by the request content and how many times that exact content was seen, so the
//! same seed faults the same calls whatever order concurrent invocations reach the proxy in.
//! Scripted [`Rule`]s, matched against entry bodies, take precedence over the random schedule.
//!
//! Every entry moto accepted is logged as a [`Delivery`], marked `acknowledged` when the relay was
//! told so in time, or with the fault that hid it (a delivered message the relay believes failed:
//! resending it makes a legitimate at-least-once duplicate). A response that took longer than
//! [`FaultConfig::late_after`] without an injected delay counts as `late`: the client may have timed
//! out, so its deliveries are not counted as acknowledged either.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// What the proxy does to one batch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// HTTP 400 throttling error (SQS `ThrottlingException`/`RequestThrottled`, SNS `Throttling`); not forwarded.
    Throttle,
    /// HTTP 500 `InternalError` or 503 `ServiceUnavailable`; not forwarded.
    ServerError,
    /// Held for [`FaultConfig::delay`] (past the client's attempt timeout), then answered 503; not forwarded.
    TimeoutDropped,
    /// Held for [`FaultConfig::delay`], then forwarded: moto delivers, the client has timed out.
    TimeoutForwarded,
    /// Connection closed without a response; not forwarded.
    ResetBeforeForward,
    /// Forwarded (delivered), then the connection is closed without a response.
    ResetAfterForward,
    /// Forwarded whole; chosen entries are moved from `Successful` to `Failed` in the response
    /// (delivered, but reported failed).
    EntryFailedDelivered {
        /// The `SenderFault` the response claims.
        sender_fault: bool,
    },
    /// Chosen entries are removed from the request before forwarding and reported `Failed`
    /// (genuinely not delivered).
    EntryFailedStripped {
        /// The `SenderFault` the response claims.
        sender_fault: bool,
    },
    /// Forwarded whole; chosen entries are left out of the response altogether (delivered).
    EntryOmitted,
    /// An error response with this HTTP status and code, as the service writes it: SQS (JSON
    /// protocol) `__type` = `code` plus, when `query_code` is set, the `x-amzn-query-error` header
    /// real SQS adds (which the SDK reports as the code); SNS (query protocol) `<Code>` = `code`.
    /// Not forwarded.
    ErrorCode {
        status: u16,
        code: &'static str,
        query_code: Option<&'static str>,
    },
}

impl FaultKind {
    /// A short stable name, for counters and output.
    pub fn label(self) -> &'static str {
        match self {
            FaultKind::Throttle => "throttle",
            FaultKind::ServerError => "server_error",
            FaultKind::TimeoutDropped => "timeout_dropped",
            FaultKind::TimeoutForwarded => "timeout_forwarded",
            FaultKind::ResetBeforeForward => "reset_before_forward",
            FaultKind::ResetAfterForward => "reset_after_forward",
            FaultKind::EntryFailedDelivered { sender_fault: false } => "entry_failed_delivered_transient",
            FaultKind::EntryFailedDelivered { sender_fault: true } => "entry_failed_delivered_sender",
            FaultKind::EntryFailedStripped { sender_fault: false } => "entry_failed_stripped_transient",
            FaultKind::EntryFailedStripped { sender_fault: true } => "entry_failed_stripped_sender",
            FaultKind::EntryOmitted => "entry_omitted_delivered",
            FaultKind::ErrorCode { .. } => "error_code",
        }
    }

    /// Whether the fault concerns chosen entries rather than the whole call.
    pub fn is_entry_level(self) -> bool {
        matches!(
            self,
            FaultKind::EntryFailedDelivered { .. } | FaultKind::EntryFailedStripped { .. } | FaultKind::EntryOmitted
        )
    }

    /// Every kind, with the default weights of the random schedule.
    pub fn default_weights() -> Vec<(FaultKind, u32)> {
        vec![
            (FaultKind::Throttle, 16),
            (FaultKind::ServerError, 12),
            // Held requests cost wall time (and a worker) each: fewer of them.
            (FaultKind::TimeoutDropped, 1),
            (FaultKind::TimeoutForwarded, 1),
            (FaultKind::ResetBeforeForward, 8),
            (FaultKind::ResetAfterForward, 8),
            (FaultKind::EntryFailedDelivered { sender_fault: false }, 12),
            (FaultKind::EntryFailedDelivered { sender_fault: true }, 4),
            (FaultKind::EntryFailedStripped { sender_fault: false }, 12),
            (FaultKind::EntryFailedStripped { sender_fault: true }, 4),
            (FaultKind::EntryOmitted, 4),
        ]
    }
}

/// The random schedule and timing of a proxy.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    /// Seed of the schedule.
    pub seed: u64,
    /// Fraction of batch calls that get a fault.
    pub rate: f64,
    /// Relative weights of the kinds drawn for a faulted call.
    pub weights: Vec<(FaultKind, u32)>,
    /// How long the timeout kinds hold a request: more than the client's attempt timeout.
    pub delay: Duration,
    /// A response not ready after this long counts as late (the client may have given up).
    pub late_after: Duration,
}

impl FaultConfig {
    /// No random faults (scripted rules only).
    pub fn passthrough() -> Self {
        FaultConfig {
            seed: 0,
            rate: 0.0,
            weights: FaultKind::default_weights(),
            delay: Duration::from_millis(600),
            late_after: Duration::from_millis(150),
        }
    }

    /// Faults `rate` of the batch calls, drawn with the default weights from `seed`.
    pub fn random(seed: u64, rate: f64) -> Self {
        FaultConfig {
            seed,
            rate,
            ..FaultConfig::passthrough()
        }
    }

    /// Sets the hold time of the timeout kinds and the late threshold for a client whose
    /// per-attempt timeout is `attempt_timeout`: held 1.2 times as long, late after a quarter of it
    /// (well before the client gives up, so an answer not counted late surely reached it).
    pub fn for_attempt_timeout(mut self, attempt_timeout: Duration) -> Self {
        self.delay = attempt_timeout * 6 / 5;
        self.late_after = attempt_timeout / 4;
        self
    }
}

/// A scripted fault: applies to the next `times` batch calls with an entry whose body contains
/// `entry_contains` (entry-level kinds hit only the matching entries).
#[derive(Debug, Clone)]
pub struct Rule {
    pub entry_contains: String,
    pub fault: FaultKind,
    pub times: u32,
}

/// One entry moto accepted.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Queue URL (SQS) or topic ARN (SNS) the call addressed.
    pub target: String,
    /// The message body as sent.
    pub body: String,
    /// The relay was told, in time, that this entry was delivered.
    pub acknowledged: bool,
    /// What hid the delivery from the relay: a fault label, or `late`.
    pub hidden_by: Option<&'static str>,
}

/// Counters, by fault label.
#[derive(Debug, Default, Clone)]
pub struct FaultStats {
    /// Batch calls seen.
    pub batch_calls: u64,
    /// Batch calls forwarded and answered unchanged.
    pub passed: u64,
    /// Faulted calls by kind.
    pub calls_by_kind: BTreeMap<&'static str, u64>,
    /// Entries affected by entry-level kinds, by kind.
    pub entries_by_kind: BTreeMap<&'static str, u64>,
    /// Unfaulted calls whose answer was late (client may have timed out).
    pub late: u64,
    /// Other requests, forwarded untouched.
    pub other_requests: u64,
    /// Upstream round trips of batch calls: count, total and longest time.
    pub upstream_calls: u64,
    pub upstream_total: Duration,
    pub upstream_max: Duration,
}

impl FaultStats {
    /// Total faulted calls.
    pub fn faulted(&self) -> u64 {
        self.calls_by_kind.values().sum()
    }

    /// `kind=calls[/entries]` pairs, for output.
    pub fn summary(&self) -> String {
        self.calls_by_kind
            .iter()
            .map(|(k, n)| match self.entries_by_kind.get(k) {
                Some(e) => format!("{k}={n}/{e}e"),
                None => format!("{k}={n}"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &FaultStats) {
        self.batch_calls += other.batch_calls;
        self.passed += other.passed;
        self.late += other.late;
        self.other_requests += other.other_requests;
        self.upstream_calls += other.upstream_calls;
        self.upstream_total += other.upstream_total;
        self.upstream_max = self.upstream_max.max(other.upstream_max);
        for (k, n) in &other.calls_by_kind {
            *self.calls_by_kind.entry(k).or_default() += n;
        }
        for (k, n) in &other.entries_by_kind {
            *self.entries_by_kind.entry(k).or_default() += n;
        }
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Times each request content (hash) was seen, for the content-keyed random schedule.
    seen: HashMap<u64, u64>,
    stats: FaultStats,
    deliveries: Vec<Delivery>,
    in_flight: usize,
}

struct Shared {
    upstream: String,
    config: FaultConfig,
    state: Mutex<State>,
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Decrements the in-flight count however request processing ends.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> Self {
        shared.lock().in_flight += 1;
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
        self.0.idle.notify_waiters();
    }
}

/// The proxy: an HTTP/1.1 server on `127.0.0.1:<ephemeral>` on the current tokio runtime, opening
/// one upstream connection per request. Dropping it stops accepting.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str, config: FaultConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fault proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr of a bound listener");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_start_matches("http://").trim_end_matches('/').to_owned(),
            config,
            state: Mutex::default(),
            idle: Notify::new(),
        });
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(shared.clone(), req));
                        // An error here is a deliberately dropped connection or a client that left.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        FaultProxy {
            addr,
            shared,
            accept: accept.abort_handle(),
        }
    }

    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a scripted rule (checked before the random schedule, in order of addition).
    pub fn add_rule(&self, rule: Rule) {
        self.shared.lock().rules.push(rule);
    }

    /// The counters so far.
    pub fn stats(&self) -> FaultStats {
        self.shared.lock().stats.clone()
    }

    /// A function reading the counters, for a monitoring task that outlives a borrow of the proxy.
    pub fn stats_reader(&self) -> impl Fn() -> FaultStats + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.lock().stats.clone()
    }

    /// The deliveries logged since the last call, in the order moto answered them.
    pub fn take_deliveries(&self) -> Vec<Delivery> {
        std::mem::take(&mut self.shared.lock().deliveries)
    }

    /// Waits until no request is being processed (held, forwarded or answered), so that every
    /// delivery a late or dropped request will make has been made. False on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().in_flight == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.lock().in_flight == 0;
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for DropConnection {}

type ProxyResponse = Response<Full<Bytes>>;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<ProxyResponse, DropConnection> {
    let guard = InFlight::enter(&shared);
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    // Processed in its own task: if the client gives up (attempt timeout), hyper drops this future,
    // but a held request must still be forwarded and its deliveries logged.
    let task = tokio::spawn(async move {
        let _guard = guard;
        process(&shared, parts, body).await
    });
    match task.await {
        Ok(Some(response)) => Ok(response),
        _ => Err(DropConnection),
    }
}

/// Protocol of a batch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    SqsJson,
    SnsQuery,
}

/// One entry of a batch call.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    body: String,
}

/// A parsed `SendMessageBatch`/`PublishBatch` request.
#[derive(Debug, Clone)]
struct BatchCall {
    protocol: Protocol,
    target: String,
    entries: Vec<Entry>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn form_pairs(body: &str) -> Vec<(String, &str)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), v)
        })
        .collect()
}

const SNS_MEMBER: &str = "PublishBatchRequestEntries.member.";

/// `PublishBatchRequestEntries.member.<n>.<rest>` → `(n, rest)`.
fn sns_member(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix(SNS_MEMBER)?;
    let (n, field) = rest.split_once('.')?;
    Some((n.parse().ok()?, field))
}

fn parse_call(parts: &Parts, body: &[u8]) -> Option<BatchCall> {
    if header_str(&parts.headers, "x-amz-target") == Some("AmazonSQS.SendMessageBatch") {
        let v: Value = serde_json::from_slice(body).ok()?;
        let entries = v["Entries"]
            .as_array()?
            .iter()
            .map(|e| Entry {
                id: e["Id"].as_str().unwrap_or_default().to_owned(),
                body: e["MessageBody"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        return Some(BatchCall {
            protocol: Protocol::SqsJson,
            target: v["QueueUrl"].as_str().unwrap_or_default().to_owned(),
            entries,
        });
    }
    let text = std::str::from_utf8(body).ok()?;
    let pairs = form_pairs(text);
    if !pairs.iter().any(|(k, v)| k == "Action" && *v == "PublishBatch") {
        return None;
    }
    let target = pairs
        .iter()
        .find(|(k, _)| k == "TopicArn")
        .map(|(_, v)| form_decode(v))
        .unwrap_or_default();
    let mut members: BTreeMap<usize, Entry> = BTreeMap::new();
    for (k, v) in &pairs {
        if let Some((n, field)) = sns_member(k) {
            let e = members.entry(n).or_insert_with(|| Entry {
                id: String::new(),
                body: String::new(),
            });
            match field {
                "Id" => e.id = form_decode(v),
                "Message" => e.body = form_decode(v),
                _ => {}
            }
        }
    }
    Some(BatchCall {
        protocol: Protocol::SnsQuery,
        target,
        entries: members.into_values().collect(),
    })
}

/// The request body without the entries at `strip` (positions), keeping their ids.
fn strip_entries(call: &BatchCall, body: &[u8], strip: &[usize]) -> Bytes {
    match call.protocol {
        Protocol::SqsJson => {
            let mut v: Value = serde_json::from_slice(body).expect("parsed before");
            if let Some(entries) = v["Entries"].as_array_mut() {
                let mut i = 0;
                entries.retain(|_| {
                    let keep = !strip.contains(&i);
                    i += 1;
                    keep
                });
            }
            Bytes::from(v.to_string())
        }
        Protocol::SnsQuery => {
            let text = std::str::from_utf8(body).expect("parsed before");
            // Members are numbered from 1; renumber the kept ones so the list stays contiguous.
            let removed: Vec<usize> = strip.iter().map(|i| i + 1).collect();
            let renumber = |n: usize| n - removed.iter().filter(|&&r| r < n).count();
            let kept: Vec<String> = text
                .split('&')
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let key = form_decode(k);
                    match sns_member(&key) {
                        Some((n, _)) if removed.contains(&n) => None,
                        Some((n, field)) => Some(format!("{SNS_MEMBER}{}.{field}={v}", renumber(n))),
                        None => Some(pair.to_owned()),
                    }
                })
                .collect();
            Bytes::from(kept.join("&"))
        }
    }
}

struct Upstream {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

async fn forward(shared: &Shared, parts: &Parts, body: Bytes) -> Result<Upstream, String> {
    let started = Instant::now();
    let stream = TcpStream::connect(&shared.upstream)
        .await
        .map_err(|e| format!("connect {}: {e}", shared.upstream))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let mut builder = Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            builder = builder.header(name, value);
        }
    }
    let req = builder
        .header(header::HOST, shared.upstream.as_str())
        .header(header::CONTENT_LENGTH, body.len())
        .body(Full::new(body))
        .map_err(|e| format!("building the upstream request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| format!("upstream: {e}"))?;
    let (rparts, rbody) = resp.into_parts();
    let body = rbody
        .collect()
        .await
        .map_err(|e| format!("upstream body: {e}"))?
        .to_bytes();
    conn.abort();
    {
        let elapsed = started.elapsed();
        let mut state = shared.lock();
        state.stats.upstream_calls += 1;
        state.stats.upstream_total += elapsed;
        state.stats.upstream_max = state.stats.upstream_max.max(elapsed);
    }
    Ok(Upstream {
        status: rparts.status,
        headers: rparts.headers,
        body,
    })
}

fn respond(status: StatusCode, headers: &HeaderMap, body: Bytes) -> ProxyResponse {
    let mut b = Response::builder().status(status);
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            b = b.header(name, value);
        }
    }
    b.header(header::CONTENT_LENGTH, body.len())
        .body(Full::new(body))
        .expect("copied response parts are valid")
}

fn request_id(rng_value: u64) -> String {
    format!("fault-proxy-{rng_value:016x}")
}

fn error_response(
    protocol: Protocol,
    status: StatusCode,
    code: &str,
    fault_type: &str,
    message: &str,
) -> ProxyResponse {
    coded_error_response(protocol, status, code, Some(code), fault_type, message)
}

/// An error response; for SQS, `query_code` goes in `x-amzn-query-error` (absent when `None`).
fn coded_error_response(
    protocol: Protocol,
    status: StatusCode,
    code: &str,
    query_code: Option<&str>,
    fault_type: &str,
    message: &str,
) -> ProxyResponse {
    let rid = request_id(rand::random());
    let mut b = Response::builder()
        .status(status)
        .header("x-amzn-requestid", rid.as_str());
    let body = match protocol {
        Protocol::SqsJson => {
            b = b.header(header::CONTENT_TYPE, "application/x-amz-json-1.0");
            if let Some(query_code) = query_code {
                b = b.header("x-amzn-query-error", format!("{query_code};{fault_type}"));
            }
            json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message}).to_string()
        }
        Protocol::SnsQuery => {
            b = b.header(header::CONTENT_TYPE, "text/xml");
            format!(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{fault_type}</Type>\
                 <Code>{code}</Code><Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
            )
        }
    };
    b.header(header::CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

/// An entry to report failed in a rewritten response.
struct FailedEntry {
    id: String,
    sender_fault: bool,
    code: &'static str,
    message: &'static str,
}

fn failed_entry(id: &str, sender_fault: bool) -> FailedEntry {
    if sender_fault {
        FailedEntry {
            id: id.to_owned(),
            sender_fault,
            code: "InvalidParameterValue",
            message: "Injected sender fault",
        }
    } else {
        FailedEntry {
            id: id.to_owned(),
            sender_fault,
            code: "InternalError",
            message: "Injected internal error",
        }
    }
}

/// The ids moto reported successful.
fn successful_ids(protocol: Protocol, body: &[u8]) -> Vec<String> {
    match protocol {
        Protocol::SqsJson => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v["Successful"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s["Id"].as_str().map(str::to_owned)).collect())
            })
            .unwrap_or_default(),
        Protocol::SnsQuery => {
            let text = String::from_utf8_lossy(body);
            xml_section(&text, "Successful")
                .map(|(_, inner)| xml_members(inner).iter().filter_map(|m| xml_text(m, "Id")).collect())
                .unwrap_or_default()
        }
    }
}

/// `<tag>inner</tag>` or `<tag/>`: the byte range of the whole element and its inner text.
fn xml_section<'a>(text: &'a str, tag: &str) -> Option<(std::ops::Range<usize>, &'a str)> {
    let empty = format!("<{tag}/>");
    if let Some(start) = text.find(&empty) {
        return Some((start..start + empty.len(), ""));
    }
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = text.find(&open)?;
    let end = start + text[start..].find(&close)? + close.len();
    Some((start..end, &text[start + open.len()..end - close.len()]))
}

fn xml_members(inner: &str) -> Vec<&str> {
    inner
        .split("<member>")
        .filter_map(|chunk| chunk.split_once("</member>").map(|(m, _)| m))
        .collect()
}

fn xml_text(member: &str, tag: &str) -> Option<String> {
    xml_section(member, tag).map(|(_, inner)| inner.to_owned())
}

/// Moves `fail` out of `Successful` into `Failed`, and drops `omit` from `Successful`.
fn rewrite_success(protocol: Protocol, body: &[u8], fail: &[FailedEntry], omit: &[String]) -> Bytes {
    let gone = |id: &str| fail.iter().any(|f| f.id == id) || omit.iter().any(|o| o == id);
    match protocol {
        Protocol::SqsJson => {
            let mut v: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
            let successful: Vec<Value> = v["Successful"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|s| !gone(s["Id"].as_str().unwrap_or_default()))
                .collect();
            let mut failed = v["Failed"].as_array().cloned().unwrap_or_default();
            failed.extend(
                fail.iter()
                    .map(|f| json!({"Id": f.id, "SenderFault": f.sender_fault, "Code": f.code, "Message": f.message})),
            );
            v["Successful"] = Value::Array(successful);
            v["Failed"] = Value::Array(failed);
            Bytes::from(v.to_string())
        }
        Protocol::SnsQuery => {
            let mut text = String::from_utf8_lossy(body).into_owned();
            if let Some((range, inner)) = xml_section(&text, "Successful") {
                let kept: String = xml_members(inner)
                    .into_iter()
                    .filter(|m| !xml_text(m, "Id").is_some_and(|id| gone(&id)))
                    .map(|m| format!("<member>{m}</member>"))
                    .collect();
                text.replace_range(range, &format!("<Successful>{kept}</Successful>"));
            }
            let added: String = fail
                .iter()
                .map(|f| {
                    format!(
                        "<member><Id>{}</Id><Code>{}</Code><Message>{}</Message><SenderFault>{}</SenderFault></member>",
                        f.id, f.code, f.message, f.sender_fault
                    )
                })
                .collect();
            match xml_section(&text, "Failed") {
                Some((range, inner)) => {
                    let existing: String = xml_members(inner)
                        .into_iter()
                        .map(|m| format!("<member>{m}</member>"))
                        .collect();
                    text.replace_range(range, &format!("<Failed>{existing}{added}</Failed>"));
                }
                None => {
                    if let Some(at) = text.find("</PublishBatchResult>") {
                        text.insert_str(at, &format!("<Failed>{added}</Failed>"));
                    }
                }
            }
            Bytes::from(text)
        }
    }
}

/// A 200 answer that reports every entry failed (all of them were stripped: nothing forwarded).
fn all_failed_response(protocol: Protocol, fail: &[FailedEntry]) -> ProxyResponse {
    let rid = request_id(rand::random());
    let (content_type, body) = match protocol {
        Protocol::SqsJson => (
            "application/x-amz-json-1.0",
            json!({"Successful": [], "Failed": []}).to_string(),
        ),
        Protocol::SnsQuery => (
            "text/xml",
            format!(
                "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
                 <Successful/><Failed/></PublishBatchResult><ResponseMetadata><RequestId>{rid}</RequestId>\
                 </ResponseMetadata></PublishBatchResponse>"
            ),
        ),
    };
    let body = rewrite_success(protocol, body.as_bytes(), fail, &[]);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type.parse().expect("valid header"));
    headers.insert("x-amzn-requestid", rid.parse().expect("valid header"));
    respond(StatusCode::OK, &headers, body)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What identifies a call's content for the schedule: target name and entries, not the queue URL
/// (which holds moto's port), so a seed faults the same first attempts from one run to the next.
fn content_hash(call: &BatchCall) -> u64 {
    let name = call.target.rsplit(['/', ':']).next().unwrap_or_default();
    let mut bytes = name.as_bytes().to_vec();
    for e in &call.entries {
        bytes.push(0);
        bytes.extend_from_slice(e.id.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(e.body.as_bytes());
    }
    fnv1a(&bytes)
}

/// The fault for one call, and the entry positions it concerns (all of them for call-level kinds).
fn decide(shared: &Shared, call: &BatchCall) -> Option<(FaultKind, Vec<usize>, StdRng)> {
    let config = &shared.config;
    let mut state = shared.lock();
    let hash = content_hash(call);
    let seen = {
        let n = state.seen.entry(hash).or_default();
        *n += 1;
        *n
    };
    let mut rng = StdRng::seed_from_u64(splitmix64(
        config.seed ^ hash ^ seen.wrapping_mul(0xD1B5_4A32_D192_ED03),
    ));
    for rule in state.rules.iter_mut().filter(|r| r.times > 0) {
        let hits: Vec<usize> = call
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.body.contains(&rule.entry_contains))
            .map(|(i, _)| i)
            .collect();
        if !hits.is_empty() {
            rule.times -= 1;
            let positions = if rule.fault.is_entry_level() {
                hits
            } else {
                (0..call.entries.len()).collect()
            };
            return Some((rule.fault, positions, rng));
        }
    }
    if config.rate <= 0.0 || call.entries.is_empty() || !rng.random_bool(config.rate.min(1.0)) {
        return None;
    }
    let total: u32 = config.weights.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total.max(1));
    let kind = config
        .weights
        .iter()
        .find(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .map_or(FaultKind::Throttle, |(k, _)| *k);
    let positions = if kind.is_entry_level() {
        let n = call.entries.len();
        let k = rng.random_range(1..=n.min(3));
        let mut chosen = sample(&mut rng, n, k).into_vec();
        chosen.sort_unstable();
        chosen
    } else {
        (0..call.entries.len()).collect()
    };
    Some((kind, positions, rng))
}

fn log_deliveries(
    shared: &Shared,
    call: &BatchCall,
    accepted: &[String],
    hidden: impl Fn(&str) -> Option<&'static str>,
) {
    let mut state = shared.lock();
    for id in accepted {
        let Some(entry) = call.entries.iter().find(|e| &e.id == id) else {
            continue;
        };
        let hidden_by = hidden(id);
        state.deliveries.push(Delivery {
            target: call.target.clone(),
            body: entry.body.clone(),
            acknowledged: hidden_by.is_none(),
            hidden_by,
        });
    }
}

fn count(shared: &Shared, kind: FaultKind, entries: usize) {
    let mut state = shared.lock();
    *state.stats.calls_by_kind.entry(kind.label()).or_default() += 1;
    if kind.is_entry_level() {
        *state.stats.entries_by_kind.entry(kind.label()).or_default() += entries as u64;
    }
}

/// Handles one request; `None` closes the connection without an answer.
async fn process(shared: &Shared, parts: Parts, body: Bytes) -> Option<ProxyResponse> {
    let started = Instant::now();
    let Some(call) = parse_call(&parts, &body) else {
        shared.lock().stats.other_requests += 1;
        let up = forward(shared, &parts, body).await.ok()?;
        return Some(respond(up.status, &up.headers, up.body));
    };
    shared.lock().stats.batch_calls += 1;
    let decision = decide(shared, &call);
    let Some((kind, positions, mut rng)) = decision else {
        let up = forward(shared, &parts, body).await.ok()?;
        let late = started.elapsed() > shared.config.late_after;
        {
            let mut state = shared.lock();
            if late {
                state.stats.late += 1;
            } else {
                state.stats.passed += 1;
            }
        }
        if up.status.is_success() {
            let accepted = successful_ids(call.protocol, &up.body);
            log_deliveries(shared, &call, &accepted, |_| late.then_some("late"));
        }
        return Some(respond(up.status, &up.headers, up.body));
    };
    count(shared, kind, positions.len());
    let label = kind.label();
    let chosen_ids: Vec<String> = positions.iter().map(|&i| call.entries[i].id.clone()).collect();
    match kind {
        FaultKind::Throttle => {
            let code = match call.protocol {
                Protocol::SqsJson if rng.random_bool(0.5) => "RequestThrottled",
                Protocol::SqsJson => "ThrottlingException",
                Protocol::SnsQuery => "Throttling",
            };
            Some(error_response(
                call.protocol,
                StatusCode::BAD_REQUEST,
                code,
                "Sender",
                "Rate exceeded",
            ))
        }
        FaultKind::ServerError => {
            let (status, code) = if rng.random_bool(0.5) {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            };
            Some(error_response(
                call.protocol,
                status,
                code,
                "Receiver",
                "Injected server error",
            ))
        }
        FaultKind::TimeoutDropped => {
            tokio::time::sleep(shared.config.delay).await;
            Some(error_response(
                call.protocol,
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Receiver",
                "Injected late error",
            ))
        }
        FaultKind::ErrorCode {
            status,
            code,
            query_code,
        } => {
            let status = StatusCode::from_u16(status).expect("a valid HTTP status");
            let fault_type = if status.is_server_error() { "Receiver" } else { "Sender" };
            Some(coded_error_response(
                call.protocol,
                status,
                code,
                query_code,
                fault_type,
                "Injected error",
            ))
        }
        FaultKind::ResetBeforeForward => None,
        FaultKind::TimeoutForwarded | FaultKind::ResetAfterForward => {
            if kind == FaultKind::TimeoutForwarded {
                tokio::time::sleep(shared.config.delay).await;
            }
            let up = forward(shared, &parts, body).await.ok()?;
            if up.status.is_success() {
                let accepted = successful_ids(call.protocol, &up.body);
                log_deliveries(shared, &call, &accepted, |_| Some(label));
            }
            (kind == FaultKind::TimeoutForwarded).then(|| respond(up.status, &up.headers, up.body))
        }
        FaultKind::EntryFailedDelivered { .. } | FaultKind::EntryOmitted => {
            let sender_fault = kind == FaultKind::EntryFailedDelivered { sender_fault: true };
            let up = forward(shared, &parts, body).await.ok()?;
            if !up.status.is_success() {
                return Some(respond(up.status, &up.headers, up.body));
            }
            let late = started.elapsed() > shared.config.late_after;
            let accepted = successful_ids(call.protocol, &up.body);
            log_deliveries(shared, &call, &accepted, |id| {
                if chosen_ids.iter().any(|c| c == id) {
                    Some(label)
                } else {
                    late.then_some("late")
                }
            });
            let (fail, omit): (Vec<FailedEntry>, Vec<String>) = if kind == FaultKind::EntryOmitted {
                (Vec::new(), chosen_ids)
            } else {
                (
                    chosen_ids.iter().map(|id| failed_entry(id, sender_fault)).collect(),
                    Vec::new(),
                )
            };
            let rewritten = rewrite_success(call.protocol, &up.body, &fail, &omit);
            Some(respond(up.status, &up.headers, rewritten))
        }
        FaultKind::EntryFailedStripped { sender_fault } => {
            let fail: Vec<FailedEntry> = chosen_ids.iter().map(|id| failed_entry(id, sender_fault)).collect();
            if positions.len() == call.entries.len() {
                return Some(all_failed_response(call.protocol, &fail));
            }
            let stripped = strip_entries(&call, &body, &positions);
            let up = forward(shared, &parts, stripped).await.ok()?;
            if !up.status.is_success() {
                return Some(respond(up.status, &up.headers, up.body));
            }
            let late = started.elapsed() > shared.config.late_after;
            let accepted = successful_ids(call.protocol, &up.body);
            log_deliveries(shared, &call, &accepted, |_| late.then_some("late"));
            let rewritten = rewrite_success(call.protocol, &up.body, &fail, &[]);
            Some(respond(up.status, &up.headers, rewritten))
        }
    }
}
