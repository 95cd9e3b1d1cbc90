//! A latency stand-in for SQS and SNS: every `SendMessageBatch` and `PublishBatch` call is checked,
//! counted, held for a fixed delay (default 15 ms, about what a call to SQS or SNS takes from
//! Lambda in the same region) and answered as the service would. `bench/latency/run.py` points the
//! relay and its Python and Node.js peers at it (`AWS_ENDPOINT_URL`), so that what it measures is
//! how a function overlaps its calls, not how fast a local emulator is (moto is one Python process:
//! concurrent calls queue on its interpreter lock; the benchmark uses moto only to check that each
//! function's messages are right).
//!
//! ```sh
//! cargo build --release --example latency_standin
//! target/release/examples/latency_standin --delay-ms 15    # --port 0 (default): any free port
//! ```
//!
//! Prints `READY http://127.0.0.1:<port>` on stdout, then serves (HTTP/1.1, keep-alive, any number
//! of concurrent connections) until stdin reaches end of file. Served:
//!
//! - `POST /` with `X-Amz-Target: AmazonSQS.SendMessageBatch` (AWS JSON 1.0): 1–10 entries with
//!   distinct `Id`s, a non-empty `MessageBody`, the `AWSTraceHeader` system attribute (`String`),
//!   at most 1 MiB together. Answer: every entry `Successful`, with the real MD5 of its body (the
//!   JavaScript SDK checks it), of its message attributes and of its system attributes.
//! - `POST /` with the form `Action=PublishBatch` (AWS query protocol): 1–10 entries with distinct
//!   `Id`s and a non-empty `Message`, at most 256 KiB, an `X-Amzn-Trace-Id` header, and every
//!   entry's `traceparent` attribute (when present) the W3C form of that header's trace (SNS takes
//!   the trace only from the header, so a call must not mix contexts). Answer: every entry
//!   `Successful`, in moto's XML.
//! - `GET /_stats`: the counters below as JSON; `POST /_reset`: the same, then zeroes them.
//!
//! A call that fails a check is answered `400` (a non-retryable validation error) and counted in
//! `invalid`, its reason kept in `errors` (the first 20). Counters: `calls` and `entries` per
//! operation, `targets` (entries per queue URL / topic ARN), `sqs_trace_headers` and
//! `sns_trace_headers` (distinct trace contexts seen), `connections_opened` (accepted TCP
//! connections), `connections_open`, `in_flight` and `max_in_flight` (calls between their request
//! head arriving and their answer being handed to the connection), `first_call_at` and
//! `last_answer_at` (seconds on CLOCK_MONOTONIC, the clock of Python's `time.perf_counter()` and of
//! `examples/runtime_api.rs`' stamps, so the driver subtracts them directly), other requests in
//! `unexpected`.
//!
//! The delay runs from the request head's arrival: a call that arrives while others are held is
//! held as long, so `n` calls made `k` at a time take at least ⌈n/k⌉ × delay. It ends within tens
//! of microseconds ([`Alarm`]), not at tokio's next whole millisecond, and `held_ms_mean` and
//! `held_ms_max` report how long calls were actually held, so the floor can be checked.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustix::time::{ClockId, clock_gettime};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SQS_MAX_BYTES: usize = 1024 * 1024;
const SNS_MAX_BYTES: usize = 256 * 1024;
const MAX_ENTRIES: usize = 10;
const KEPT_ERRORS: usize = 20;

fn monotonic() -> f64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[derive(Default)]
struct Stats {
    calls: BTreeMap<&'static str, u64>,
    entries: BTreeMap<&'static str, u64>,
    targets: BTreeMap<String, u64>,
    sqs_trace_headers: HashSet<String>,
    sns_trace_headers: HashSet<String>,
    connections_opened: u64,
    in_flight: u64,
    max_in_flight: u64,
    first_call_at: Option<f64>,
    last_answer_at: Option<f64>,
    held: Duration,
    held_calls: u32,
    held_max: Duration,
    invalid: u64,
    unexpected: u64,
    errors: Vec<String>,
}

struct State {
    delay: Duration,
    alarm: Alarm,
    stats: Mutex<Stats>,
    connections_open: AtomicU64,
    ids: AtomicU64,
}

impl State {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot(&self, s: &Stats) -> Value {
        json!({
            "delay_ms": self.delay.as_secs_f64() * 1e3,
            "calls": s.calls,
            "entries": s.entries,
            "targets": s.targets,
            "sqs_trace_headers": s.sqs_trace_headers.len(),
            "sns_trace_headers": s.sns_trace_headers.len(),
            "connections_opened": s.connections_opened,
            "connections_open": self.connections_open.load(Ordering::Relaxed),
            "in_flight": s.in_flight,
            "max_in_flight": s.max_in_flight,
            "first_call_at": s.first_call_at,
            "last_answer_at": s.last_answer_at,
            "held_ms_mean": (s.held_calls > 0).then(|| (s.held / s.held_calls).as_secs_f64() * 1e3),
            "held_ms_max": s.held_max.as_secs_f64() * 1e3,
            "invalid": s.invalid,
            "unexpected": s.unexpected,
            "errors": s.errors,
            "now": monotonic(),
        })
    }

    fn message_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}

/// What a valid call adds to the counters.
struct Accepted {
    operation: &'static str,
    target: String,
    entries: u64,
    trace_headers: Vec<String>,
    body: Response<Full<Bytes>>,
}

fn response(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "00000000-0000-4000-8000-000000000000")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn json_reply(status: StatusCode, value: Value) -> Response<Full<Bytes>> {
    response(status, "application/json", value.to_string())
}

// --------------------------------------------------------------------------- SQS (AWS JSON 1.0)

fn sqs_error(message: &str) -> Response<Full<Bytes>> {
    let mut r = response(
        StatusCode::BAD_REQUEST,
        "application/x-amz-json-1.0",
        json!({"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": message}).to_string(),
    );
    r.headers_mut().insert(
        "x-amzn-query-error",
        "InvalidParameterValue;Sender".parse().expect("valid header value"),
    );
    r
}

/// Length-prefixed MD5 of SQS message (system) attributes, as SQS computes it.
fn attributes_md5(attributes: &serde_json::Map<String, Value>) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut names: Vec<&String> = attributes.keys().collect();
    names.sort();
    let mut buf = Vec::new();
    let put = |b: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for name in names {
        let v = &attributes[name];
        let data_type = v.get("DataType").and_then(Value::as_str).unwrap_or("String");
        put(name.as_bytes(), &mut buf);
        put(data_type.as_bytes(), &mut buf);
        if let Some(s) = v.get("StringValue").and_then(Value::as_str) {
            buf.push(1);
            put(s.as_bytes(), &mut buf);
        } else if let Some(b) = v.get("BinaryValue").and_then(Value::as_str) {
            buf.push(2);
            put(b.as_bytes(), &mut buf);
        }
    }
    Some(md5_hex(&buf))
}

fn sqs_call(state: &State, body: &[u8]) -> Result<Accepted, String> {
    let request: Value = serde_json::from_slice(body).map_err(|e| format!("SQS body is not JSON: {e}"))?;
    let queue = request
        .get("QueueUrl")
        .and_then(Value::as_str)
        .ok_or("SQS: no QueueUrl")?
        .to_owned();
    let entries = request
        .get("Entries")
        .and_then(Value::as_array)
        .ok_or("SQS: no Entries")?;
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(format!("SQS: {} entries (1-10 allowed)", entries.len()));
    }
    let mut ids = HashSet::new();
    let mut bytes = 0;
    let mut successful = Vec::with_capacity(entries.len());
    let mut trace_headers = Vec::new();
    let empty = serde_json::Map::new();
    for entry in entries {
        let id = entry.get("Id").and_then(Value::as_str).unwrap_or_default();
        if id.is_empty() || !ids.insert(id) {
            return Err(format!("SQS: missing or repeated entry Id {id:?}"));
        }
        let message = entry.get("MessageBody").and_then(Value::as_str).unwrap_or_default();
        if message.is_empty() {
            return Err(format!("SQS: entry {id}: empty MessageBody"));
        }
        let attributes = entry
            .get("MessageAttributes")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let system = entry
            .get("MessageSystemAttributes")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let trace = system
            .get("AWSTraceHeader")
            .filter(|v| v.get("DataType").and_then(Value::as_str) == Some("String"))
            .and_then(|v| v.get("StringValue"))
            .and_then(Value::as_str)
            .filter(|t| t.starts_with("Root=1-"))
            .ok_or_else(|| format!("SQS: entry {id}: no AWSTraceHeader system attribute"))?;
        trace_headers.push(trace.to_owned());
        bytes += message.len();
        for (name, v) in attributes {
            let value = v.get("StringValue").and_then(Value::as_str).unwrap_or_default();
            let data_type = v.get("DataType").and_then(Value::as_str).unwrap_or_default();
            bytes += name.len() + value.len() + data_type.len();
        }
        let mut ok = json!({
            "Id": id,
            "MessageId": state.message_id(),
            "MD5OfMessageBody": md5_hex(message.as_bytes()),
        });
        if let Some(md5) = attributes_md5(attributes) {
            ok["MD5OfMessageAttributes"] = json!(md5);
        }
        if let Some(md5) = attributes_md5(system) {
            ok["MD5OfMessageSystemAttributes"] = json!(md5);
        }
        successful.push(ok);
    }
    if bytes > SQS_MAX_BYTES {
        return Err(format!("SQS: batch of {bytes} bytes (at most {SQS_MAX_BYTES})"));
    }
    let body = response(
        StatusCode::OK,
        "application/x-amz-json-1.0",
        json!({"Successful": successful, "Failed": []}).to_string(),
    );
    Ok(Accepted {
        operation: "SendMessageBatch",
        target: queue,
        entries: entries.len() as u64,
        trace_headers,
        body,
    })
}

// --------------------------------------------------------------------------- SNS (AWS query)

fn sns_error(message: &str) -> Response<Full<Bytes>> {
    response(
        StatusCode::BAD_REQUEST,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type>\
             <Code>InvalidParameter</Code><Message>{}</Message></Error>\
             <RequestId>00000000-0000-4000-8000-000000000000</RequestId></ErrorResponse>",
            xml_escape(message)
        ),
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn form_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The W3C `trace-id` (32 hex digits) of an X-Ray header's `Root=1-<8>-<24>`.
fn w3c_trace_id(xray: &str) -> Option<String> {
    let root = xray.split(';').find_map(|p| p.trim().strip_prefix("Root="))?;
    let mut parts = root.split('-');
    let (version, epoch, unique) = (parts.next()?, parts.next()?, parts.next()?);
    (version == "1" && epoch.len() == 8 && unique.len() == 24).then(|| format!("{epoch}{unique}").to_lowercase())
}

#[derive(Default)]
struct SnsEntry {
    id: String,
    message: String,
    attributes: BTreeMap<String, (String, String)>, // index -> (name, value)
    attribute_bytes: usize,
}

fn sns_call(state: &State, trace_header: Option<&str>, body: &[u8]) -> Result<Accepted, String> {
    let text = std::str::from_utf8(body).map_err(|_| "SNS: body is not UTF-8")?;
    let mut action = None;
    let mut topic = None;
    let mut entries: BTreeMap<usize, SnsEntry> = BTreeMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (form_decode(k), form_decode(v));
        match k.as_str() {
            "Action" => action = Some(v),
            "TopicArn" => topic = Some(v),
            "Version" => {}
            _ => {
                let Some(rest) = k.strip_prefix("PublishBatchRequestEntries.member.") else {
                    return Err(format!("SNS: unexpected parameter {k}"));
                };
                let (n, field) = rest.split_once('.').ok_or_else(|| format!("SNS: parameter {k}"))?;
                let n: usize = n.parse().map_err(|_| format!("SNS: parameter {k}"))?;
                let e = entries.entry(n).or_default();
                match field {
                    "Id" => e.id = v,
                    "Message" => e.message = v,
                    f if f.starts_with("MessageAttributes.entry.") => {
                        let rest = &f["MessageAttributes.entry.".len()..];
                        let (m, what) = rest.split_once('.').unwrap_or((rest, ""));
                        e.attribute_bytes += v.len();
                        let slot = e.attributes.entry(m.to_owned()).or_default();
                        match what {
                            "Name" => slot.0 = v,
                            "Value.StringValue" => slot.1 = v,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if action.as_deref() != Some("PublishBatch") {
        return Err(format!("SNS: Action {action:?} (only PublishBatch is served)"));
    }
    let topic = topic.ok_or("SNS: no TopicArn")?;
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(format!("SNS: {} entries (1-10 allowed)", entries.len()));
    }
    let header = trace_header.ok_or("SNS: PublishBatch without an X-Amzn-Trace-Id header")?;
    let trace_id = w3c_trace_id(header).ok_or_else(|| format!("SNS: X-Amzn-Trace-Id {header:?} has no valid Root"))?;
    let mut ids = HashSet::new();
    let mut bytes = 0;
    let mut members = String::new();
    for e in entries.values() {
        if e.id.is_empty() || !ids.insert(e.id.as_str()) {
            return Err(format!("SNS: missing or repeated entry Id {:?}", e.id));
        }
        if e.message.is_empty() {
            return Err(format!("SNS: entry {}: empty Message", e.id));
        }
        bytes += e.message.len() + e.attribute_bytes;
        for (name, value) in e.attributes.values() {
            if name == "traceparent" && value.split('-').nth(1) != Some(trace_id.as_str()) {
                return Err(format!(
                    "SNS: entry {}: traceparent {value} is not the trace of the call's header {header}",
                    e.id
                ));
            }
        }
        members.push_str(&format!(
            "<member><Id>{}</Id><MessageId>{}</MessageId></member>",
            xml_escape(&e.id),
            state.message_id()
        ));
    }
    if bytes > SNS_MAX_BYTES {
        return Err(format!("SNS: batch of {bytes} bytes (at most {SNS_MAX_BYTES})"));
    }
    let body = response(
        StatusCode::OK,
        "text/xml",
        format!(
            "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
             <Successful>{members}</Successful><Failed></Failed></PublishBatchResult><ResponseMetadata>\
             <RequestId>{}</RequestId></ResponseMetadata></PublishBatchResponse>",
            state.message_id()
        ),
    );
    Ok(Accepted {
        operation: "PublishBatch",
        target: topic,
        entries: entries.len() as u64,
        trace_headers: vec![header.to_owned()],
        body,
    })
}

// --------------------------------------------------------------------------- holding

/// Wakes each held call at its instant, to within the kernel's timer slack (tens of
/// microseconds): tokio's timer counts whole milliseconds and rounds each deadline up, which held
/// a 15 ms call 16.5 ms at the median (seen on the wire), a tenth more than the floor every
/// function is measured against.
struct Alarm(mpsc::Sender<(Instant, oneshot::Sender<()>)>);

impl Alarm {
    fn start() -> Self {
        let (tx, rx) = mpsc::channel::<(Instant, oneshot::Sender<()>)>();
        std::thread::spawn(move || {
            // Ordered by instant; the counter keeps calls due at the same instant apart.
            let mut due: BTreeMap<(Instant, u64), oneshot::Sender<()>> = BTreeMap::new();
            let mut next_id = 0u64;
            loop {
                let received = match due.first_key_value() {
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    Some(((at, _), _)) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                };
                match received {
                    Ok((at, waker)) => {
                        due.insert((at, next_id), waker);
                        next_id += 1;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                while let Some(entry) = due.first_entry().filter(|e| e.key().0 <= Instant::now()) {
                    let _ = entry.remove().send(());
                }
            }
        });
        Alarm(tx)
    }

    /// Returns at `at`.
    async fn at(&self, at: Instant) {
        let (tx, rx) = oneshot::channel();
        let sent = self.0.send((at, tx));
        if sent.is_err() || rx.await.is_err() {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

// --------------------------------------------------------------------------- serving

async fn serve(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let arrived_at = monotonic();
    let (parts, body) = req.into_parts();
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/_stats") => return Ok(json_reply(StatusCode::OK, state.snapshot(&state.stats()))),
        (&Method::POST, "/_reset") => {
            let mut s = state.stats();
            let before = state.snapshot(&s);
            let (in_flight, max) = (s.in_flight, s.in_flight);
            *s = Stats {
                in_flight,
                max_in_flight: max,
                ..Stats::default()
            };
            return Ok(json_reply(StatusCode::OK, before));
        }
        _ => {}
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let target = header("x-amz-target").map(str::to_owned);
    let trace = header("x-amzn-trace-id").map(str::to_owned);
    let content_type = header("content-type").unwrap_or_default().to_owned();
    let is_sqs = target.is_some();
    let is_sns = content_type.starts_with("application/x-www-form-urlencoded");
    if parts.method != Method::POST || !(is_sqs || is_sns) {
        state.stats().unexpected += 1;
        return Ok(json_reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("{} {} is not served", parts.method, parts.uri)}),
        ));
    }
    {
        let mut s = state.stats();
        s.first_call_at.get_or_insert(arrived_at);
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
    }
    let body = body.collect().await.map(|b| b.to_bytes());
    let outcome = match (&body, target.as_deref()) {
        (Err(e), _) => Err(format!("reading the request body: {e}")),
        (Ok(_), Some(t)) if t != "AmazonSQS.SendMessageBatch" => Err(format!("SQS: X-Amz-Target {t} is not served")),
        (Ok(_), Some(_)) if !content_type.starts_with("application/x-amz-json-1.0") => {
            Err(format!("SQS: Content-Type {content_type:?}"))
        }
        (Ok(b), Some(_)) => sqs_call(&state, b),
        (Ok(b), None) => sns_call(&state, trace.as_deref(), b),
    };
    state.alarm.at(arrived + state.delay).await;
    let mut s = state.stats();
    s.in_flight -= 1;
    let held = arrived.elapsed();
    s.held += held;
    s.held_calls += 1;
    s.held_max = s.held_max.max(held);
    s.last_answer_at = Some(monotonic());
    let answer = match outcome {
        Ok(a) => {
            *s.calls.entry(a.operation).or_default() += 1;
            *s.entries.entry(a.operation).or_default() += a.entries;
            *s.targets.entry(a.target).or_default() += a.entries;
            let seen = if is_sqs {
                &mut s.sqs_trace_headers
            } else {
                &mut s.sns_trace_headers
            };
            seen.extend(a.trace_headers);
            a.body
        }
        Err(reason) => {
            s.invalid += 1;
            if s.errors.len() < KEPT_ERRORS {
                s.errors.push(reason.clone());
            }
            if is_sqs { sqs_error(&reason) } else { sns_error(&reason) }
        }
    };
    Ok(answer)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() {
    let delay_ms: f64 = arg("--delay-ms").map_or(15.0, |v| v.parse().expect("--delay-ms takes a number"));
    let port: u16 = arg("--port").map_or(0, |v| v.parse().expect("--port takes a port number"));
    let state = Arc::new(State {
        delay: Duration::from_secs_f64(delay_ms / 1e3),
        alarm: Alarm::start(),
        stats: Mutex::default(),
        connections_open: AtomicU64::new(0),
        ids: AtomicU64::new(1),
    });
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("binding 127.0.0.1");
    let addr = listener.local_addr().expect("local_addr of a bound listener");

    // Stop when the driver closes stdin or goes away.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY http://{addr}").expect("writing to stdout");
        out.flush().expect("flushing stdout");
    }

    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        state.stats().connections_opened += 1;
        state.connections_open.fetch_add(1, Ordering::Relaxed);
        let state = state.clone();
        tokio::spawn(async move {
            let s = state.clone();
            let service = service_fn(move |req| serve(s.clone(), req));
            // Errors here are a client going away: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            state.connections_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Hex MD5 of `data`: SQS's checksums, which the JavaScript SDK verifies.
fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    format!("{:x}", Md5::digest(data))
}

#[cfg(test)]
mod tests {
    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(super::md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            super::md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }
}
