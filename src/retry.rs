//! Which failures get another attempt (CONTRACT §6): throttling, 5xx, timeouts and connection
//! failures are transient and retried with backoff inside the invocation; everything else is the
//! sender's fault and is reported at once.
//!
//! One classification serves both places a whole call can fail: the SDK's own retry loop, through
//! [`RetryClassifier`] (so its jittered exponential backoff, attempt bound and per-attempt timeout
//! apply, and the relay needs no second loop), and the relay's account of a call that still failed.
//! The SDK's default classifier misses codes SQS and SNS really return: KMS throttling of encrypted
//! queues and topics (`KMS.ThrottlingException`, SQS JSON `KmsThrottled`, SNS `KMSThrottling`), SNS
//! `Throttled`, and any code on HTTP 429.
//!
//! Attempts per call: `AWS_MAX_ATTEMPTS` (SDK default 3), each bounded by `RELAY_ATTEMPT_TIMEOUT_MS`,
//! all bounded by the invocation deadline less `RELAY_DEADLINE_MARGIN_MS`. The SDK's standard mode
//! also stops retrying when its retry token bucket is empty (sustained failure); the record is then
//! reported failed and Lambda delivers it again.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_sqs::config::interceptors::InterceptorContext;
use aws_sdk_sqs::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;

/// What kind of failure an error response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service (or a key service behind it, KMS) asks the caller to slow down.
    Throttling,
    /// The service failed (HTTP 5xx).
    ServerError,
    /// A request the service timed out on; sending it again may succeed.
    Transient,
    /// The request itself is wrong or not allowed: sending it again cannot help.
    Permanent,
}

impl ErrorClass {
    /// Whether another attempt may succeed.
    pub fn is_transient(self) -> bool {
        self != ErrorClass::Permanent
    }
}

/// Codes that mean "slow down" without saying `Throttl…`.
const OTHER_THROTTLING_CODES: &[&str] = &[
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
];

/// Codes of a failure on the service's side, as per-entry results carry them without an HTTP status
/// (`PutEvents` documents `InternalFailure` as retryable).
const SERVER_FAILURE_CODES: &[&str] = &["InternalFailure", "InternalError", "ServiceUnavailable"];

/// Codes of requests that timed out on the service's side.
const TIMEOUT_CODES: &[&str] = &["RequestTimeout", "RequestTimeoutException"];

/// Classifies an error response by its code and HTTP status. Throttling: HTTP 429 with any code, or
/// a code containing `Throttl` (SQS `RequestThrottled`, `ThrottlingException`, `KMS.ThrottlingException`,
/// `KmsThrottled`; SNS `Throttling`, `Throttled`, `KMSThrottling`; and the SDK's own list), or
/// another well-known throttling code. Server error: HTTP 5xx, or a server failure code. Permanent: everything else
/// (`AccessDenied`, `KMS.AccessDeniedException`, `KMS.DisabledException`, `NonExistentQueue`,
/// `NotFound`, validation errors, …).
///
/// ```
/// use s3_trace_relay::retry::{ErrorClass, classify};
/// assert_eq!(classify(Some("KMS.ThrottlingException"), Some(400)), ErrorClass::Throttling);
/// assert_eq!(classify(Some("AnythingAtAll"), Some(429)), ErrorClass::Throttling);
/// assert_eq!(classify(Some("AWS.SimpleQueueService.NonExistentQueue"), Some(400)), ErrorClass::Permanent);
/// ```
pub fn classify(code: Option<&str>, status: Option<u16>) -> ErrorClass {
    let code = code.unwrap_or_default();
    if status == Some(429) || code.contains("Throttl") || OTHER_THROTTLING_CODES.contains(&code) {
        ErrorClass::Throttling
    } else if status.is_some_and(|s| (500..600).contains(&s)) || SERVER_FAILURE_CODES.contains(&code) {
        ErrorClass::ServerError
    } else if TIMEOUT_CODES.contains(&code) {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// Throttled attempts the SDK has seen in this process, retried or not: the relay's concurrency
/// backs off when this moves during a call ([`crate::concurrency`]), since the SDK's own retries
/// hide a throttle that a later attempt overcame.
static THROTTLES_SEEN: AtomicU64 = AtomicU64::new(0);

/// How many throttled attempts the SDK has classified so far in this process.
pub fn throttles_seen() -> u64 {
    THROTTLES_SEEN.load(Ordering::Relaxed)
}

/// The SDK retry classifier for one operation's error type `E` (`SendMessageBatchError`,
/// `PublishBatchError`): classifies service error responses with [`classify`], after and over the
/// SDK's own classifiers. Errors without a service response (timeouts, connection failures) are
/// left to the SDK, which retries them.
pub struct RetryClassifier<E> {
    _error: PhantomData<fn() -> E>,
}

impl<E> RetryClassifier<E> {
    /// The classifier for errors of type `E`.
    pub fn new() -> Self {
        RetryClassifier { _error: PhantomData }
    }
}

impl<E> Default for RetryClassifier<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> std::fmt::Debug for RetryClassifier<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryClassifier")
    }
}

impl<E> ClassifyRetry for RetryClassifier<E>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(service_error) = error.as_operation_error().and_then(|e| e.downcast_ref::<E>()) else {
            return RetryAction::NoActionIndicated;
        };
        let status = ctx.response().map(|r| r.status().as_u16());
        match classify(service_error.code(), status) {
            ErrorClass::Throttling => {
                THROTTLES_SEEN.fetch_add(1, Ordering::Relaxed);
                RetryAction::throttling_error()
            }
            ErrorClass::ServerError => RetryAction::server_error(),
            ErrorClass::Transient => RetryAction::transient_error(),
            ErrorClass::Permanent => RetryAction::RetryForbidden,
        }
    }

    fn name(&self) -> &'static str {
        "s3-trace-relay error classes"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_throttling_code_sqs_sns_and_kms_write_is_throttling() {
        for code in [
            "RequestThrottled",
            "ThrottlingException",
            "KMS.ThrottlingException",
            "KmsThrottled",
            "Throttling",
            "Throttled",
            "ThrottledException",
            "KMSThrottling",
            "KMSThrottlingException",
            "SlowDown",
        ] {
            assert_eq!(classify(Some(code), Some(400)), ErrorClass::Throttling, "{code}");
        }
    }

    #[test]
    fn http_429_is_throttling_whatever_the_code() {
        assert_eq!(classify(Some("NeverSeenBefore"), Some(429)), ErrorClass::Throttling);
        assert_eq!(classify(None, Some(429)), ErrorClass::Throttling);
    }

    #[test]
    fn server_errors_are_transient() {
        for status in [500, 502, 503, 504] {
            assert!(classify(Some("Whatever"), Some(status)).is_transient(), "{status}");
        }
    }

    #[test]
    fn per_entry_server_failure_codes_are_transient_without_a_status() {
        for code in ["InternalFailure", "InternalError", "ServiceUnavailable"] {
            assert_eq!(classify(Some(code), None), ErrorClass::ServerError, "{code}");
        }
    }

    #[test]
    fn permission_and_missing_resource_errors_are_permanent() {
        for code in [
            "AccessDenied",
            "KMS.AccessDeniedException",
            "KmsAccessDenied",
            "KMS.DisabledException",
            "KMSDisabled",
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "NotFound",
            "AuthorizationError",
        ] {
            assert_eq!(classify(Some(code), Some(400)), ErrorClass::Permanent, "{code}");
        }
    }
}
