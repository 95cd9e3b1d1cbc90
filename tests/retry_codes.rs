//! Whole-call failures, one AWS error code at a time (CONTRACT §6): the real relay binary publishes
//! through a fault proxy in front of moto that answers one call with the code, then forwards. Every
//! throttling code SQS, SNS and KMS write, any code on HTTP 429, 5xx, timeouts and connection resets
//! are retried within the invocation — the record is delivered once and nothing is reported failed;
//! a permanent error fails its record at once, after exactly one call.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fault_proxy::{FaultConfig, FaultKind, FaultProxy, Rule};
use support::moto::{Moto, moto};
use support::payloads::s3_record;
use support::relay_process::{INVOCATION_TRACE, WAIT, keys_of};
use support::runtime_api::{Invocation, Outcome, RelayProcess, RuntimeApi};

/// Short enough that the timeout cases stay quick, long enough for moto on a busy machine.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// `(HTTP status, code in the body, x-amzn-query-error code)` as SQS's JSON protocol writes them.
const SQS_TRANSIENT: &[(u16, &str, Option<&str>)] = &[
    (400, "RequestThrottled", Some("RequestThrottled")),
    (400, "ThrottlingException", Some("ThrottlingException")),
    (400, "KmsThrottled", Some("KMS.ThrottlingException")),
    (400, "KmsThrottled", None),
    (429, "SomethingNew", None),
    (429, "TooManyRequestsException", None),
    (500, "InternalError", Some("InternalError")),
    (502, "BadGateway", None),
    (503, "ServiceUnavailable", Some("ServiceUnavailable")),
    (504, "GatewayTimeout", None),
    (400, "RequestTimeout", None),
];

const SQS_PERMANENT: &[(u16, &str, Option<&str>)] = &[
    (403, "AccessDenied", Some("AccessDenied")),
    (400, "KmsAccessDenied", Some("KMS.AccessDeniedException")),
    (400, "KmsDisabled", Some("KMS.DisabledException")),
    (
        400,
        "QueueDoesNotExist",
        Some("AWS.SimpleQueueService.NonExistentQueue"),
    ),
    (400, "InvalidSecurity", Some("InvalidSecurity")),
];

/// `(HTTP status, <Code>)` as SNS's query protocol writes them.
const SNS_TRANSIENT: &[(u16, &str)] = &[
    (400, "Throttling"),
    (429, "Throttled"),
    (400, "KMSThrottling"),
    (429, "SomethingNew"),
    (500, "InternalError"),
    (503, "ServiceUnavailable"),
];

const SNS_PERMANENT: &[(u16, &str)] = &[
    (403, "AuthorizationError"),
    (404, "NotFound"),
    (400, "KMSAccessDenied"),
    (400, "KMSDisabled"),
    (403, "AccessDenied"),
];

/// The relay binary publishing through a passthrough fault proxy in front of moto.
struct Harness {
    api: RuntimeApi,
    process: RelayProcess,
    proxy: FaultProxy,
}

impl Harness {
    async fn start(moto: &Moto, target: &str) -> Self {
        let proxy = FaultProxy::start(
            moto.endpoint(),
            FaultConfig::passthrough().for_attempt_timeout(ATTEMPT_TIMEOUT),
        )
        .await;
        let api = RuntimeApi::start().await;
        let endpoint = proxy.endpoint();
        let timeout_ms = ATTEMPT_TIMEOUT.as_millis().to_string();
        let env = [
            ("RELAY_TARGETS", target),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("RELAY_ATTEMPT_TIMEOUT_MS", timeout_ms.as_str()),
        ];
        let process = RelayProcess::spawn(&api, &env);
        assert!(api.wait_for_polls(1, WAIT).await, "no /next poll:\n{}", process.logs());
        Harness { api, process, proxy }
    }

    /// Faults the next call carrying `key` with `fault`, relays one record of `key`, and returns
    /// the outcome and the number of batch calls the proxy saw.
    async fn relay_once_faulted(&self, key: &str, fault: FaultKind) -> (Outcome, u64) {
        self.proxy.add_rule(Rule {
            entry_contains: format!("\"{key}\""),
            fault,
            times: 1,
        });
        let before = self.proxy.stats().batch_calls;
        let event = json!({"Records": [s3_record(key, "0055AED6DCD90281E5")]});
        let outcome = self
            .api
            .invoke(Invocation::json(&event).with_trace(INVOCATION_TRACE))
            .outcome(WAIT)
            .await;
        assert!(self.proxy.wait_idle(WAIT).await, "the proxy never went idle");
        (outcome, self.proxy.stats().batch_calls - before)
    }
}

/// Asserts that `key` was delivered exactly once after one faulted call and one that went through.
async fn assert_retried_and_delivered_once(moto: &Moto, queue: &str, h: &Harness, key: &str, fault: FaultKind) {
    let (outcome, calls) = h.relay_once_faulted(key, fault).await;
    let response = match outcome {
        Outcome::Response(v) => v,
        Outcome::Error { body, .. } => panic!("{fault:?} was not retried: {body}\n{}", h.process.logs()),
    };
    assert_eq!(
        (response["published"].clone(), response["reportedFailures"].clone()),
        (json!(1), json!(0)),
        "{fault:?}: {response}"
    );
    assert_eq!(calls, 2, "{fault:?}: one faulted call, one retry");
    assert_eq!(keys_of(&moto.receive_all(queue).await), vec![key], "{fault:?}");
}

/// Asserts that `key` failed at once: one call, an invocation error naming `code`, nothing delivered.
async fn assert_failed_at_once(moto: &Moto, queue: &str, h: &Harness, key: &str, fault: FaultKind, code: &str) {
    let (outcome, calls) = h.relay_once_faulted(key, fault).await;
    let body: Value = outcome.expect_error();
    assert_eq!(body["errorType"], "S3TraceRelay.Undelivered", "{fault:?}: {body}");
    assert!(
        body["errorMessage"].as_str().unwrap_or_default().contains(code),
        "{fault:?}: {body}"
    );
    assert_eq!(calls, 1, "{fault:?}: a permanent error is not retried");
    assert!(moto.receive_all(queue).await.is_empty(), "{fault:?}");
}

#[tokio::test]
async fn every_transient_sqs_error_is_retried_and_the_record_delivered_once() {
    let moto = moto().await;
    let queue = moto.create_queue("codes-sqs-transient").await;
    let h = Harness::start(&moto, &queue).await;
    for (i, &(status, code, query_code)) in SQS_TRANSIENT.iter().enumerate() {
        let fault = FaultKind::ErrorCode {
            status,
            code,
            query_code,
        };
        assert_retried_and_delivered_once(&moto, &queue, &h, &format!("sqs-t{i}"), fault).await;
    }
    for (i, fault) in [FaultKind::TimeoutDropped, FaultKind::ResetBeforeForward]
        .into_iter()
        .enumerate()
    {
        assert_retried_and_delivered_once(&moto, &queue, &h, &format!("sqs-io{i}"), fault).await;
    }
}

#[tokio::test]
async fn every_permanent_sqs_error_fails_the_record_at_once() {
    let moto = moto().await;
    let queue = moto.create_queue("codes-sqs-permanent").await;
    let h = Harness::start(&moto, &queue).await;
    for (i, &(status, code, query_code)) in SQS_PERMANENT.iter().enumerate() {
        let fault = FaultKind::ErrorCode {
            status,
            code,
            query_code,
        };
        let reported = query_code.unwrap_or(code);
        assert_failed_at_once(&moto, &queue, &h, &format!("sqs-p{i}"), fault, reported).await;
    }
}

/// An SNS topic with a raw SQS subscriber to read what was published.
async fn topic_with_reader(moto: &Moto, name: &str) -> (String, String) {
    let topic = moto.create_topic(name).await;
    let reader = moto.create_queue(&format!("{name}-reader")).await;
    moto.subscribe_queue(&topic, &reader, true).await;
    (topic, reader)
}

#[tokio::test]
async fn every_transient_sns_error_is_retried_and_the_record_delivered_once() {
    let moto = moto().await;
    let (topic, reader) = topic_with_reader(&moto, "codes-sns-transient").await;
    let h = Harness::start(&moto, &topic).await;
    for (i, &(status, code)) in SNS_TRANSIENT.iter().enumerate() {
        let fault = FaultKind::ErrorCode {
            status,
            code,
            query_code: None,
        };
        assert_retried_and_delivered_once(&moto, &reader, &h, &format!("sns-t{i}"), fault).await;
    }
    for (i, fault) in [FaultKind::TimeoutDropped, FaultKind::ResetBeforeForward]
        .into_iter()
        .enumerate()
    {
        assert_retried_and_delivered_once(&moto, &reader, &h, &format!("sns-io{i}"), fault).await;
    }
}

#[tokio::test]
async fn every_permanent_sns_error_fails_the_record_at_once() {
    let moto = moto().await;
    let (topic, reader) = topic_with_reader(&moto, "codes-sns-permanent").await;
    let h = Harness::start(&moto, &topic).await;
    for (i, &(status, code)) in SNS_PERMANENT.iter().enumerate() {
        let fault = FaultKind::ErrorCode {
            status,
            code,
            query_code: None,
        };
        assert_failed_at_once(&moto, &reader, &h, &format!("sns-p{i}"), fault, code).await;
    }
}
