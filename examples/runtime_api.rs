//! The tests' Lambda Runtime API stand-in (`tests/support/runtime_api.rs`, included as is) served to
//! another process: the benchmark driver, `bench/run.py`, which runs the release relay and its
//! Python peer against it.
//!
//! ```sh
//! cargo build --release --example runtime_api && target/release/examples/runtime_api
//! ```
//!
//! Prints two lines on stdout, then serves until stdin reaches end of file (the driver closes it,
//! or goes away):
//!
//! ```text
//! CONTROL http://127.0.0.1:<port>   the control interface below
//! READY 127.0.0.1:<port>            the Runtime API, the value for AWS_LAMBDA_RUNTIME_API
//! ```
//!
//! One process serves one function process, as one `RuntimeApi` does in the tests. Control
//! interface (HTTP/1.1, keep-alive; answers JSON):
//!
//! - `POST /invoke`: queues an invocation whose payload is the request body, verbatim.
//!   Optional headers: `Trace-Id` (served as `Lambda-Runtime-Trace-Id`), `Deadline-Ms` (epoch
//!   milliseconds; default now + 30 s), `Function-Arn`. Answers `{"request_id": …}` at once.
//! - `GET /result/<request_id>?wait_ms=N`: waits up to N ms (default 0) for the function's answer;
//!   `200 {"request_id", "kind": "response"|"error", "body": <JSON>, "error_type": str|null,
//!   "served_at", "done_at"}`, or `204` if there is none yet. `body` is the posted body parsed as
//!   JSON (a body that is not JSON comes back as a JSON string); `error_type` is
//!   `Lambda-Runtime-Function-Error-Type`.
//! - `GET /first_next?wait_ms=N`: waits up to N ms for the first `/next` or an `/init/error`;
//!   `{"first_next_at": float|null, "init_error": <JSON>|null}`.
//! - `GET /clock`: `{"now": float}`, for a client to check that it reads the same clock.
//!
//! Times are seconds on CLOCK_MONOTONIC, the clock of Python's `time.perf_counter()` on Linux, so
//! the driver compares them directly with its own readings taken around `exec`, as it did when the
//! stand-in was a thread of its own process: `first_next_at` is when the connection carrying the
//! first `/next` was accepted, `served_at` when `/next` handed the invocation out, `done_at` when
//! its answer had arrived in full (see `tests/support/runtime_api.rs`). The stand-in stamps these
//! with `std::time::Instant` (CLOCK_MONOTONIC on Linux too); this program converts them with one
//! pair of readings of `Instant` and of CLOCK_MONOTONIC (through `rustix`, no FFI of its own) taken
//! at start, the tightest of a few, so a converted time is off by well under a microsecond.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustix::time::{ClockId, clock_gettime};
use serde_json::json;
use tokio::net::TcpListener;

#[allow(dead_code)] // the relay-process half of the module is for the tests
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;
#[path = "../tests/support/watched.rs"]
mod watched;

use runtime_api::{Invocation, Outcome, RuntimeApi, reply};

/// Maps `Instant`s to CLOCK_MONOTONIC seconds.
struct Clock {
    instant: Instant,
    monotonic_ns: i128,
}

impl Clock {
    fn calibrate() -> Self {
        let mut best: Option<(Duration, Clock)> = None;
        for _ in 0..32 {
            let before = Instant::now();
            let t = clock_gettime(ClockId::Monotonic);
            let after = Instant::now();
            let gap = after - before;
            if best.as_ref().is_none_or(|(g, _)| gap < *g) {
                let clock = Clock {
                    instant: before + gap / 2,
                    monotonic_ns: i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec),
                };
                best = Some((gap, clock));
            }
        }
        best.expect("at least one reading").1
    }

    fn seconds(&self, t: Instant) -> f64 {
        let ns = match t.checked_duration_since(self.instant) {
            Some(d) => self.monotonic_ns + d.as_nanos() as i128,
            None => self.monotonic_ns - (self.instant - t).as_nanos() as i128,
        };
        ns as f64 / 1e9
    }
}

struct Control {
    api: RuntimeApi,
    clock: Clock,
}

fn wait_ms(query: Option<&str>) -> Duration {
    let ms = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("wait_ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_millis(ms)
}

async fn control(ctl: Arc<Control>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}))),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let path = parts.uri.path();
    let response = match (&parts.method, path) {
        (&Method::POST, "/invoke") => {
            let mut inv = Invocation::new(body.to_vec());
            if let Some(trace) = header("trace-id") {
                inv = inv.with_trace(trace);
            }
            if let Some(arn) = header("function-arn") {
                inv = inv.with_function_arn(arn);
            }
            if let Some(deadline) = header("deadline-ms") {
                match deadline.parse() {
                    Ok(ms) => inv.deadline_ms = ms,
                    Err(_) => {
                        return Ok(reply(
                            StatusCode::BAD_REQUEST,
                            json!({"error": format!("Deadline-Ms {deadline:?} is not a number")}),
                        ));
                    }
                }
            }
            let handle = ctl.api.invoke(inv);
            reply(StatusCode::OK, json!({"request_id": handle.request_id()}))
        }
        (&Method::GET, "/first_next") => {
            let wait = wait_ms(parts.uri.query());
            tokio::select! {
                _ = ctl.api.wait_first_next(wait) => {}
                _ = ctl.api.init_error(wait) => {}
            }
            let init_error = ctl.api.init_error(Duration::ZERO).await;
            let first = ctl.api.first_next_at().map(|t| ctl.clock.seconds(t));
            reply(
                StatusCode::OK,
                json!({"first_next_at": first, "init_error": init_error}),
            )
        }
        (&Method::GET, "/clock") => reply(StatusCode::OK, json!({"now": ctl.clock.seconds(Instant::now())})),
        (&Method::GET, p) if p.starts_with("/result/") => {
            let id = &p["/result/".len()..];
            match ctl.api.outcome_within(id, wait_ms(parts.uri.query())).await {
                None => Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Full::new(Bytes::new()))
                    .expect("static response parts are valid"),
                Some(outcome) => {
                    let at = |t: Option<Instant>| t.map(|t| ctl.clock.seconds(t));
                    let (kind, body, error_type) = match outcome {
                        Outcome::Response(body) => ("response", body, None),
                        Outcome::Error { error_type, body } => ("error", body, Some(error_type)),
                    };
                    reply(
                        StatusCode::OK,
                        json!({
                            "request_id": id,
                            "kind": kind,
                            "body": body,
                            "error_type": error_type,
                            "served_at": at(ctl.api.served_at(id)),
                            "done_at": at(ctl.api.answered_at(id)),
                        }),
                    )
                }
            }
        }
        (method, p) => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("{method} {p} is not served")}),
        ),
    };
    Ok(response)
}

#[tokio::main]
async fn main() {
    let clock = Clock::calibrate();
    let api = RuntimeApi::start().await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the control interface on 127.0.0.1:0");
    let control_addr = listener.local_addr().expect("local_addr of a bound listener");
    let runtime_addr = api.addr();
    let ctl = Arc::new(Control { api, clock });

    // Stop when the driver closes stdin or goes away.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "CONTROL http://{control_addr}").expect("writing to stdout");
        writeln!(out, "READY {runtime_addr}").expect("writing to stdout");
        out.flush().expect("flushing stdout");
    }

    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctl = ctl.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| control(ctl.clone(), req));
            // Errors here are the driver disconnecting: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
