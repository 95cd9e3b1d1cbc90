//! A stand-in for the AWS Lambda Runtime API (the `2018-06-01` interface `lambda_runtime` talks to),
//! and a wrapper that runs the real relay binary against it.
//!
//! Served routes (everything else answers 404 and is recorded):
//! - `GET  /2018-06-01/runtime/invocation/next` — long-poll; hands out queued invocations in order.
//!   Any number of polls may be pending at once (`AWS_LAMBDA_MAX_CONCURRENCY` > 1).
//! - `POST /2018-06-01/runtime/invocation/{id}/response` — 202, recorded as [`Outcome::Response`].
//! - `POST /2018-06-01/runtime/invocation/{id}/error` — 202, recorded as [`Outcome::Error`] with the
//!   `Lambda-Runtime-Function-Error-Type` header.
//! - `POST /2018-06-01/runtime/init/error` — 202, recorded (see [`RuntimeApi::init_error`]).
//!
//! Every request is also kept verbatim (see [`RuntimeApi::requests`]), e.g. to look at
//! `Lambda-Runtime-Function-XRay-Error-Cause` or to spot duplicate responses.
//!
//! Times ([`std::time::Instant`]): [`RuntimeApi::first_next_at`] is when the connection carrying
//! the first `/next` was accepted (for a fresh process, the moment it first reached out, before
//! this server parsed anything), [`RuntimeApi::served_at`] when an invocation was handed out, and
//! [`RuntimeApi::answered_at`] when its response or error had arrived in full.
//!
//! `examples/runtime_api.rs` includes this file to serve the same stand-in to other processes (the
//! benchmark, `bench/run.py`), so it must not depend on the rest of `tests/support`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::watched::Watched;

/// Function ARN served by default in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:relay";
/// `AWS_LAMBDA_FUNCTION_NAME` given to the spawned relay.
pub const FUNCTION_NAME: &str = "relay";

const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// One invocation to hand out on `/next`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Vec<u8>,
    /// Served as `Lambda-Runtime-Trace-Id` when `Some` (verbatim, not validated).
    pub trace_id: Option<String>,
    /// Epoch milliseconds, served as `Lambda-Runtime-Deadline-Ms`.
    pub deadline_ms: u64,
    pub function_arn: String,
}

impl Invocation {
    /// A fresh request id (UUID v4 form), deadline now + 30 s, [`FUNCTION_ARN`], no trace header.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        Invocation {
            request_id: new_request_id(),
            payload: payload.into(),
            trace_id: None,
            deadline_ms: epoch_ms() + 30_000,
            function_arn: FUNCTION_ARN.to_owned(),
        }
    }

    /// `Invocation::new(serde_json::to_vec(value))`.
    pub fn json(value: &Value) -> Self {
        Self::new(serde_json::to_vec(value).expect("serializing a serde_json::Value cannot fail"))
    }

    /// Sets `Lambda-Runtime-Trace-Id`.
    pub fn with_trace(mut self, header: impl Into<String>) -> Self {
        self.trace_id = Some(header.into());
        self
    }

    /// Deadline = now + `d` (computed when this is called, not when `/next` serves it).
    pub fn with_deadline_in(mut self, d: Duration) -> Self {
        self.deadline_ms = epoch_ms() + d.as_millis() as u64;
        self
    }

    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = id.into();
        self
    }

    pub fn with_function_arn(mut self, arn: impl Into<String>) -> Self {
        self.function_arn = arn.into();
        self
    }
}

/// What the function reported for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Body of `POST …/{id}/response`, parsed as JSON (a body that is not JSON becomes a JSON string).
    Response(Value),
    /// `POST …/{id}/error`: `Lambda-Runtime-Function-Error-Type` header (empty if absent) and the body
    /// (`lambda_runtime` sends `{"errorType": …, "errorMessage": …}`).
    Error { error_type: String, body: Value },
}

impl Outcome {
    /// The response body; panics (showing the error) if the invocation failed.
    #[track_caller]
    pub fn expect_response(self) -> Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error { error_type, body } => {
                panic!("expected a response, got error {error_type:?}: {body}")
            }
        }
    }

    /// The error body; panics if the invocation succeeded.
    #[track_caller]
    pub fn expect_error(self) -> Value {
        match self {
            Outcome::Error { body, .. } => body,
            Outcome::Response(v) => panic!("expected an error, got response {v}"),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::Error { .. })
    }
}

/// One request the stand-in received, as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Invocation>,
    served: Vec<String>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<Value>,
    requests: Vec<RecordedRequest>,
    pending_polls: usize,
    first_next_at: Option<Instant>,
    served_at: HashMap<String, Instant>,
    answered_at: HashMap<String, Instant>,
}

/// The stand-in's state, and who waits on it.
#[derive(Default)]
struct Shared {
    /// The state; waiters are woken on every recorded request and on poll count changes.
    watched: Watched<State>,
    /// Signalled (notify_waiters) when an invocation is queued.
    queued: Notify,
}

impl std::ops::Deref for Shared {
    type Target = Watched<State>;

    fn deref(&self) -> &Watched<State> {
        &self.watched
    }
}

/// Handle returned by [`RuntimeApi::invoke`].
#[derive(Clone)]
pub struct InvocationHandle {
    request_id: String,
    shared: Arc<Shared>,
}

impl InvocationHandle {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Same as [`RuntimeApi::outcome`] for this invocation.
    pub async fn outcome(&self, timeout: Duration) -> Outcome {
        wait_outcome(&self.shared, &self.request_id, timeout).await
    }
}

/// The Runtime API stand-in: an HTTP/1.1 server on `127.0.0.1:<ephemeral>` running on the current
/// tokio runtime. Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the Runtime API stand-in on 127.0.0.1:0");
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
                    // Taken by the first `/next` on this connection (see `RuntimeApi::first_next_at`).
                    let accepted = Arc::new(Mutex::new(Some(Instant::now())));
                    let shared = shared.clone();
                    let conn = tokio::spawn(async move {
                        let service = service_fn(move |req| handle(shared.clone(), accepted.clone(), req));
                        // Errors here are client disconnects: nothing to report.
                        let _ = hyper::server::conn::http1::Builder::new()
                            .title_case_headers(true)
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
        RuntimeApi { addr, shared, tasks }
    }

    /// `127.0.0.1:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation; a pending or later `/next` serves it (FIFO).
    pub fn invoke(&self, inv: Invocation) -> InvocationHandle {
        let request_id = inv.request_id.clone();
        self.shared.lock().queue.push_back(inv);
        self.shared.queued.notify_waiters();
        InvocationHandle {
            request_id,
            shared: self.shared.clone(),
        }
    }

    /// Waits for the response or error posted for `request_id`; panics after `timeout`.
    pub async fn outcome(&self, request_id: &str, timeout: Duration) -> Outcome {
        wait_outcome(&self.shared, request_id, timeout).await
    }

    /// The outcome for `request_id` if already posted.
    pub fn try_outcome(&self, request_id: &str) -> Option<Outcome> {
        self.shared.lock().outcomes.get(request_id).cloned()
    }

    /// Waits up to `timeout` for `POST /runtime/init/error`; returns its JSON body
    /// (`{"errorType": …, "errorMessage": …}` from `lambda_runtime`), or `None`.
    pub async fn init_error(&self, timeout: Duration) -> Option<Value> {
        self.shared.wait_for(timeout, |s| s.init_error.clone()).await
    }

    /// Request ids handed out by `/next` so far, in order.
    pub fn served(&self) -> Vec<String> {
        self.shared.lock().served.clone()
    }

    /// Invocations queued but not yet handed out.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// `/next` long-polls currently waiting.
    pub fn pending_polls(&self) -> usize {
        self.shared.lock().pending_polls
    }

    /// Waits until at least `n` `/next` polls are waiting at once (e.g. the relay finished init, or
    /// all concurrent workers are up). Returns false on timeout.
    pub async fn wait_for_polls(&self, n: usize, timeout: Duration) -> bool {
        self.shared
            .wait_for(timeout, |s| (s.pending_polls >= n).then_some(()))
            .await
            .is_some()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// When the first `/next` arrived: the time its connection was accepted (a later `/next` on a
    /// kept-alive connection counts from when its request arrived). `None` before any `/next`.
    pub fn first_next_at(&self) -> Option<Instant> {
        self.shared.lock().first_next_at
    }

    /// Waits up to `timeout` for the first `/next`; see [`RuntimeApi::first_next_at`].
    pub async fn wait_first_next(&self, timeout: Duration) -> Option<Instant> {
        self.shared.wait_for(timeout, |s| s.first_next_at).await
    }

    /// When `/next` handed out `request_id`.
    pub fn served_at(&self, request_id: &str) -> Option<Instant> {
        self.shared.lock().served_at.get(request_id).copied()
    }

    /// When the (first) response or error for `request_id` had arrived in full.
    pub fn answered_at(&self, request_id: &str) -> Option<Instant> {
        self.shared.lock().answered_at.get(request_id).copied()
    }

    /// Like [`RuntimeApi::outcome`], but `None` after `timeout` instead of a panic.
    pub async fn outcome_within(&self, request_id: &str, timeout: Duration) -> Option<Outcome> {
        self.shared
            .wait_for(timeout, |s| s.outcomes.get(request_id).cloned())
            .await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

async fn wait_outcome(shared: &Shared, request_id: &str, timeout: Duration) -> Outcome {
    if let Some(o) = shared.wait_for(timeout, |s| s.outcomes.get(request_id).cloned()).await {
        return o;
    }
    let s = shared.lock();
    let served = s.served.contains(&request_id.to_owned());
    let recent: Vec<String> = s
        .requests
        .iter()
        .rev()
        .take(10)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    panic!(
        "no response/error posted for invocation {request_id} within {timeout:?} (served by /next: {served}; \
         still queued: {}; /next polls pending: {}; latest requests, newest first: {recent:?})",
        s.queue.len(),
        s.pending_polls
    );
}

/// Decrements the pending-poll count however the `/next` handler ends (including cancellation when
/// the client goes away).
struct PollGuard<'a>(&'a Shared);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().pending_polls -= 1;
        self.0.changed();
    }
}

async fn next_invocation(shared: &Shared) -> Invocation {
    shared.lock().pending_polls += 1;
    shared.changed();
    let _guard = PollGuard(shared);
    loop {
        let notified = shared.queued.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut s = shared.lock();
            if let Some(inv) = s.queue.pop_front() {
                s.served.push(inv.request_id.clone());
                s.served_at.insert(inv.request_id.clone(), Instant::now());
                return inv;
            }
        }
        notified.await;
    }
}

/// A JSON answer with `status`.
pub fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

/// `accepted`: when this request's connection was accepted, until a `/next` on it takes it.
async fn handle(
    shared: Arc<Shared>,
    accepted: Arc<Mutex<Option<Instant>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, json!({"errorMessage": e.to_string()}))),
    };
    let received = Instant::now();
    let path = parts.uri.path().to_owned();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
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
        body,
    };
    let error_type = recorded
        .header("lambda-runtime-function-error-type")
        .unwrap_or("")
        .to_owned();
    let json_body = || {
        serde_json::from_slice::<Value>(&recorded.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&recorded.body).into_owned()))
    };

    let rest = path.strip_prefix(RUNTIME_PREFIX).unwrap_or("");
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let response = match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => {
            let at = accepted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or(arrived);
            record(&shared, recorded, |s| {
                s.first_next_at.get_or_insert(at);
            });
            let inv = next_invocation(&shared).await;
            let mut b = Response::builder()
                .status(StatusCode::OK)
                .header("Content-Type", "application/json")
                .header("Lambda-Runtime-Aws-Request-Id", &inv.request_id)
                .header("Lambda-Runtime-Deadline-Ms", inv.deadline_ms.to_string())
                .header("Lambda-Runtime-Invoked-Function-Arn", &inv.function_arn);
            if let Some(trace) = &inv.trace_id {
                b = b.header("Lambda-Runtime-Trace-Id", trace);
            }
            match b.body(Full::new(Bytes::from(inv.payload))) {
                Ok(r) => r,
                Err(e) => panic!(
                    "invocation {} has a header value HTTP cannot carry: {e}",
                    inv.request_id
                ),
            }
        }
        (&Method::POST, ["invocation", id, "response"]) => {
            let (id, value) = ((*id).to_owned(), json_body());
            record(&shared, recorded, |s| {
                s.answered_at.entry(id.clone()).or_insert(received);
                s.outcomes.entry(id).or_insert(Outcome::Response(value));
            });
            reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
        }
        (&Method::POST, ["invocation", id, "error"]) => {
            let (id, value) = ((*id).to_owned(), json_body());
            record(&shared, recorded, |s| {
                s.answered_at.entry(id.clone()).or_insert(received);
                s.outcomes.entry(id).or_insert(Outcome::Error {
                    error_type,
                    body: value,
                });
            });
            reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
        }
        (&Method::POST, ["init", "error"]) => {
            let value = json_body();
            record(&shared, recorded, |s| {
                s.init_error.get_or_insert(value);
            });
            reply(StatusCode::ACCEPTED, json!({"status": "OK"}))
        }
        _ => {
            record(&shared, recorded, |_| {});
            reply(
                StatusCode::NOT_FOUND,
                json!({"errorType": "NotFound", "errorMessage": format!("{} {path} is not served by the stand-in", parts.method)}),
            )
        }
    };
    Ok(response)
}

fn record(shared: &Shared, req: RecordedRequest, update: impl FnOnce(&mut State)) {
    {
        let mut s = shared.lock();
        s.requests.push(req);
        update(&mut s);
    }
    shared.changed();
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn new_request_id() -> String {
    let r: u128 = rand::random();
    let r = (r & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The real relay binary, running against a [`RuntimeApi`].
///
/// Started with an empty environment plus `PATH` and what `lambda_runtime` and the AWS SDK need:
/// `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME=relay`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`,
/// `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`, log group/stream names, `AWS_LAMBDA_LOG_FORMAT=JSON`,
/// `AWS_REGION`/`AWS_DEFAULT_REGION=us-east-1`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY=testing`,
/// `AWS_CONFIG_FILE`/`AWS_SHARED_CREDENTIALS_FILE=/dev/null`, `AWS_EC2_METADATA_DISABLED=true`,
/// `RUST_BACKTRACE=1`. Caller-given variables are applied last and override these; give an empty
/// value to override, there is no way to unset one of the defaults.
///
/// stdout and stderr are merged line by line into [`RelayProcess::logs`]. The process is killed on
/// drop; if the test is panicking at that point, the logs are printed to stderr.
pub struct RelayProcess {
    child: Child,
    logs: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl RelayProcess {
    /// The relay binary. Cargo sets this for integration tests (and benches) only, so it is `None`
    /// in `examples/runtime_api.rs`, which includes this file for the stand-in alone.
    pub const BINARY: Option<&'static str> = option_env!("CARGO_BIN_EXE_s3-trace-relay");

    /// Starts the relay binary against `api` with the default environment plus `env`.
    pub fn spawn(api: &RuntimeApi, env: &[(&str, &str)]) -> Self {
        let binary = Self::BINARY.expect("CARGO_BIN_EXE_s3-trace-relay is only set for integration tests");
        Self::spawn_program(Path::new(binary), &[], api, env)
    }

    /// Like [`RelayProcess::spawn`], for another program (e.g. a test binary re-running itself).
    pub fn spawn_program(program: &Path, args: &[&str], api: &RuntimeApi, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("AWS_LAMBDA_RUNTIME_API", api.addr())
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/relay")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            )
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_BACKTRACE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
        let logs: Arc<Mutex<String>> = Arc::default();
        let readers = vec![
            pump_lines(child.stdout.take().expect("stdout is piped"), logs.clone()),
            pump_lines(child.stderr.take().expect("stderr is piped"), logs.clone()),
        ];
        RelayProcess { child, logs, readers }
    }

    /// Everything the process wrote so far (stdout and stderr interleaved by line).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The log lines that parse as JSON objects (the relay's structured logs and EMF metrics).
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Waits until the logs contain `needle`; false on timeout.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on the relay process")
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (if still running) and waits for it and its log readers.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- relay logs (pid {}) -----\n{}----- end of relay logs -----",
                self.child.id(),
                self.logs()
            );
        }
    }
}

fn pump_lines(source: impl Read + Send + 'static, sink: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut text = String::from_utf8_lossy(&line).into_owned();
                    if !text.ends_with('\n') {
                        text.push('\n');
                    }
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push_str(&text);
                }
            }
        }
    })
}
