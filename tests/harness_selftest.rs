//! Checks the test harness in `tests/support` itself: the Lambda Runtime API stand-in (driven by a
//! hand-written HTTP/1.1 client over a plain TCP stream, so the wire format is checked
//! independently of hyper) and the real `lambda_runtime` client against it. The moto server's own
//! checks are in `moto_selftest.rs`.

mod support;

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use support::runtime_api::{FUNCTION_ARN, Invocation, Outcome, RelayProcess, RuntimeApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECS_5: Duration = Duration::from_secs(5);

/// A response as read off the wire; header names keep their on-the-wire spelling.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes one HTTP/1.1 request with `Connection: close` and reads the response to EOF.
async fn raw_http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect to the stand-in");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write request head");
    stream.write_all(body).await.expect("write request body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("ASCII response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status = parts.next().and_then(|s| s.parse().ok()).expect("status code");
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("bad header line {l:?}"));
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    RawResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn get_next(addr: &str) -> RawResponse {
    raw_http(addr, "GET", "/2018-06-01/runtime/invocation/next", &[], b"").await
}

#[tokio::test]
async fn runtime_api_serves_invocation_with_lambda_headers_and_records_response() {
    let api = RuntimeApi::start().await;
    let addr = api.addr();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let inv = Invocation::new(br#"{"hello":"world"}"#.to_vec())
        .with_trace(trace)
        .with_deadline_in(Duration::from_secs(10));
    let (id, deadline) = (inv.request_id.clone(), inv.deadline_ms);
    let handle = api.invoke(inv);
    assert_eq!(handle.request_id(), id);

    let next = get_next(&addr).await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body, br#"{"hello":"world"}"#);
    let names: Vec<&str> = next.headers.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "Lambda-Runtime-Aws-Request-Id",
        "Lambda-Runtime-Deadline-Ms",
        "Lambda-Runtime-Invoked-Function-Arn",
        "Lambda-Runtime-Trace-Id",
        "Content-Type",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing (exact spelling) in {names:?}"
        );
    }
    assert_eq!(next.header("lambda-runtime-aws-request-id"), Some(id.as_str()));
    assert_eq!(
        next.header("lambda-runtime-deadline-ms"),
        Some(deadline.to_string().as_str())
    );
    assert_eq!(next.header("lambda-runtime-invoked-function-arn"), Some(FUNCTION_ARN));
    assert_eq!(next.header("lambda-runtime-trace-id"), Some(trace));
    assert_eq!(next.header("content-type"), Some("application/json"));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        (now_ms + 8_000..=now_ms + 10_000).contains(&deadline),
        "deadline {deadline}, now {now_ms}"
    );
    assert_eq!(api.served(), vec![id.clone()]);
    assert!(api.try_outcome(&id).is_none());

    let posted = raw_http(
        &addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[("Content-Type", "application/json")],
        br#"{"batchItemFailures":[]}"#,
    )
    .await;
    assert_eq!(posted.status, 202);
    let outcome = handle.outcome(SECS_5).await;
    assert_eq!(outcome, Outcome::Response(json!({"batchItemFailures": []})));
    assert_eq!(api.outcome(&id, SECS_5).await, outcome);
    assert_eq!(outcome.expect_response(), json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn runtime_api_records_errors_init_errors_and_omits_absent_trace() {
    let api = RuntimeApi::start().await;
    let addr = api.addr();

    let id = api.invoke(Invocation::new(b"{}".to_vec())).request_id().to_owned();
    let next = get_next(&addr).await;
    assert_eq!(next.header("lambda-runtime-aws-request-id"), Some(id.as_str()));
    assert_eq!(
        next.header("lambda-runtime-trace-id"),
        None,
        "no trace header unless set"
    );

    let error_body = json!({"errorType": "relay::Error", "errorMessage": "2 records failed"});
    let posted = raw_http(
        &addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/error"),
        &[
            ("Lambda-Runtime-Function-Error-Type", "unhandled"),
            ("Lambda-Runtime-Function-XRay-Error-Cause", r#"{"exceptions":[]}"#),
        ],
        error_body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(posted.status, 202);
    match api.outcome(&id, SECS_5).await {
        Outcome::Error { error_type, body } => {
            assert_eq!(error_type, "unhandled");
            assert_eq!(body, error_body);
        }
        other => panic!("expected an error outcome, got {other:?}"),
    }
    let recorded = api.requests();
    let error_req = recorded
        .iter()
        .find(|r| r.path.ends_with("/error"))
        .expect("error request recorded");
    assert_eq!(
        error_req.header("Lambda-Runtime-Function-XRay-Error-Cause"),
        Some(r#"{"exceptions":[]}"#)
    );

    assert_eq!(api.init_error(Duration::from_millis(50)).await, None);
    let init_body = json!({"errorType": "InitError", "errorMessage": "RELAY_TARGETS is not set"});
    let posted = raw_http(
        &addr,
        "POST",
        "/2018-06-01/runtime/init/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")],
        init_body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(posted.status, 202);
    assert_eq!(api.init_error(SECS_5).await, Some(init_body));

    let unknown = raw_http(&addr, "GET", "/2020-01-01/extension/event/next", &[], b"").await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
#[should_panic(expected = "no response/error posted for invocation")]
async fn runtime_api_outcome_times_out_with_a_clear_panic() {
    let api = RuntimeApi::start().await;
    let handle = api.invoke(Invocation::new(b"{}".to_vec()));
    handle.outcome(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn runtime_api_serves_concurrent_long_polls() {
    let api = RuntimeApi::start().await;
    let addr = api.addr();

    let first = tokio::spawn(get_next_owned(addr.clone()));
    let second = tokio::spawn(get_next_owned(addr.clone()));
    assert!(api.wait_for_polls(2, SECS_5).await, "both polls should be pending");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !first.is_finished() && !second.is_finished(),
        "/next must wait for an invocation"
    );

    let a = api.invoke(Invocation::new(br#"{"n":1}"#.to_vec()));
    let b = api.invoke(Invocation::new(br#"{"n":2}"#.to_vec()));
    let (first, second) = tokio::time::timeout(SECS_5, async { (first.await.unwrap(), second.await.unwrap()) })
        .await
        .expect("both long-polls answered");
    let mut got: Vec<String> = [&first, &second]
        .iter()
        .map(|r| r.header("lambda-runtime-aws-request-id").unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = vec![a.request_id().to_owned(), b.request_id().to_owned()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        api.served(),
        vec![a.request_id().to_owned(), b.request_id().to_owned()],
        "served in queue order"
    );
    assert_eq!(api.pending_polls(), 0);

    // Queued before anyone polls: served immediately, in order.
    let c = api.invoke(Invocation::new(b"{}".to_vec()));
    let d = api.invoke(Invocation::new(b"{}".to_vec()));
    assert_eq!(api.queued(), 2);
    assert_eq!(
        get_next(&addr).await.header("lambda-runtime-aws-request-id"),
        Some(c.request_id())
    );
    assert_eq!(
        get_next(&addr).await.header("lambda-runtime-aws-request-id"),
        Some(d.request_id())
    );
}

async fn get_next_owned(addr: String) -> RawResponse {
    get_next(&addr).await
}

#[tokio::test]
async fn runtime_api_drops_a_long_poll_whose_client_went_away() {
    let api = RuntimeApi::start().await;
    let addr = api.addr();

    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert!(api.wait_for_polls(1, SECS_5).await);
    drop(stream);
    let deadline = tokio::time::Instant::now() + SECS_5;
    while api.pending_polls() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "abandoned poll still pending");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let inv = api.invoke(Invocation::new(b"{}".to_vec()));
    let next = get_next(&addr).await;
    assert_eq!(next.header("lambda-runtime-aws-request-id"), Some(inv.request_id()));
}

// ---- the real `lambda_runtime` client against the stand-in -------------------------------------
//
// The relay binary is not needed for this: the test binary re-runs itself as a child process
// (`lambda_runtime_child` below, ignored unless HARNESS_LAMBDA_CHILD is set), which runs
// `lambda_runtime::run_concurrent` with an echo handler, exactly as a Lambda function would.

const CHILD_ENV: &str = "HARNESS_LAMBDA_CHILD";

async fn echo_handler(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let (payload, ctx) = event.into_parts();
    if let Some(ms) = payload["sleep_ms"].as_u64() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if payload["fail"] == true {
        return Err("requested failure".into());
    }
    Ok(json!({
        "echo": payload,
        "request_id": ctx.request_id,
        "deadline": ctx.deadline,
        "arn": ctx.invoked_function_arn,
        "trace": ctx.xray_trace_id,
        "env_trace": std::env::var("_X_AMZN_TRACE_ID").ok(),
    }))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "child process of the lambda_runtime_client_* tests"]
async fn lambda_runtime_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    lambda_runtime::run_concurrent(lambda_runtime::service_fn(echo_handler))
        .await
        .expect("lambda_runtime::run_concurrent");
}

fn spawn_child(api: &RuntimeApi, env: &[(&str, &str)]) -> RelayProcess {
    let exe = std::env::current_exe().expect("current_exe");
    let mut env = env.to_vec();
    env.push((CHILD_ENV, "1"));
    RelayProcess::spawn_program(
        &exe,
        &["lambda_runtime_child", "--exact", "--ignored", "--nocapture"],
        api,
        &env,
    )
}

#[tokio::test]
async fn lambda_runtime_client_sequential() {
    let api = RuntimeApi::start().await;
    let child = spawn_child(&api, &[]);
    assert!(
        api.wait_for_polls(1, Duration::from_secs(30)).await,
        "child never polled /next:\n{}",
        child.logs()
    );

    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let traced = Invocation::json(&json!({"n": 1})).with_trace(trace);
    let (traced_id, deadline) = (traced.request_id.clone(), traced.deadline_ms);
    let traced = api.invoke(traced);
    let failing = api.invoke(Invocation::json(&json!({"fail": true})));
    let untraced = api.invoke(Invocation::json(&json!({"n": 3})));

    let out = traced.outcome(Duration::from_secs(10)).await.expect_response();
    assert_eq!(out["echo"], json!({"n": 1}));
    assert_eq!(out["request_id"], traced_id.as_str());
    assert_eq!(out["deadline"], deadline);
    assert_eq!(out["arn"], FUNCTION_ARN);
    assert_eq!(out["trace"], trace);
    assert_eq!(out["env_trace"], trace, "sequential mode sets _X_AMZN_TRACE_ID");

    match failing.outcome(Duration::from_secs(10)).await {
        Outcome::Error { error_type, body } => {
            assert_eq!(error_type, "unhandled");
            assert_eq!(body["errorMessage"], "requested failure");
            assert!(body["errorType"].is_string(), "{body}");
        }
        other => panic!("expected an error, got {other:?}"),
    }

    let out = untraced.outcome(Duration::from_secs(10)).await.expect_response();
    assert_eq!(out["trace"], Value::Null);
    assert_eq!(
        out["env_trace"],
        Value::Null,
        "a missing trace header clears _X_AMZN_TRACE_ID"
    );
    assert_eq!(api.served().len(), 3);
    assert_eq!(api.init_error(Duration::ZERO).await, None);
}

#[tokio::test]
async fn lambda_runtime_client_concurrent() {
    let api = RuntimeApi::start().await;
    let child = spawn_child(&api, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
    assert!(
        api.wait_for_polls(4, Duration::from_secs(30)).await,
        "expected 4 concurrent /next polls, have {}:\n{}",
        api.pending_polls(),
        child.logs()
    );

    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    let handles: Vec<_> = (0..6)
        .map(|n| api.invoke(Invocation::json(&json!({"n": n, "sleep_ms": 300})).with_trace(trace)))
        .collect();
    for (n, h) in handles.iter().enumerate() {
        let out = h.outcome(Duration::from_secs(10)).await.expect_response();
        assert_eq!(out["echo"]["n"], n);
        assert_eq!(out["request_id"], h.request_id());
        assert_eq!(out["trace"], trace);
        assert_eq!(
            out["env_trace"],
            Value::Null,
            "concurrent mode leaves _X_AMZN_TRACE_ID unset"
        );
    }
    assert!(
        api.wait_for_polls(4, Duration::from_secs(5)).await,
        "workers poll again"
    );
}

// ---- the relay binary under the harness --------------------------------------------------------

#[tokio::test]
async fn relay_without_relay_targets_reports_init_error() {
    let api = RuntimeApi::start().await;
    let mut relay = RelayProcess::spawn(&api, &[]);
    let error = api
        .init_error(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no /runtime/init/error within 30 s; relay logs:\n{}", relay.logs()));
    let message = error["errorMessage"]
        .as_str()
        .unwrap_or_else(|| panic!("no errorMessage in {error}"));
    assert!(
        message.contains("RELAY_TARGETS"),
        "init error should name RELAY_TARGETS: {error}"
    );
    assert!(error["errorType"].as_str().is_some_and(|t| !t.is_empty()), "{error}");
    let posted = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/2018-06-01/runtime/init/error")
        .expect("init error request recorded");
    assert!(
        posted.header("lambda-runtime-function-error-type").is_some(),
        "{posted:?}"
    );

    let status = relay.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|s| !s.success()),
        "relay should exit unsuccessfully after a failed init, got {status:?}"
    );
    assert!(api.served().is_empty() && api.requests().iter().all(|r| !r.path.ends_with("/next")));
    assert!(
        relay.logs().contains("RELAY_TARGETS"),
        "the failure is logged too:\n{}",
        relay.logs()
    );
}

#[tokio::test]
async fn relay_with_valid_config_reaches_next() {
    let api = RuntimeApi::start().await;
    let relay = RelayProcess::spawn(
        &api,
        &[
            ("RELAY_TARGETS", "arn:aws:sqs:us-east-1:123456789012:harness-selftest"),
            // Nothing is invoked, so nothing is sent; a closed port keeps it that way regardless.
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
    );
    assert!(
        api.wait_for_polls(1, Duration::from_secs(30)).await,
        "relay never polled /next; init error: {:?}; logs:\n{}",
        api.init_error(Duration::ZERO).await,
        relay.logs()
    );
    assert_eq!(api.init_error(Duration::ZERO).await, None);
}
