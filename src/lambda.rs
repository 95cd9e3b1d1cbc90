//! The Lambda function: configuration, logging and AWS clients set up once at init, then
//! invocations served — concurrently when `AWS_LAMBDA_MAX_CONCURRENCY` > 1, each taking its trace
//! from its own context, never from the process-wide `_X_AMZN_TRACE_ID`. `main.rs` only calls [`run`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{LambdaEvent, LambdaInvocation, Runtime, layers, service_fn};
use serde::de::IgnoredAny;

use crate::config::{AWS_LAMBDA_MAX_CONCURRENCY, AWS_LAMBDA_RUNTIME_API, RelayConfig, lambda_number};
use crate::otel::{Exporter, OtelError};
use crate::publish::{AwsPublisher, load_sdk_config};
use crate::recording::Recorder;
use crate::relay::{InvocationInfo, MetricsOutput, Relay};
use crate::xray::{UdpSink, XRay};
use crate::{init, logs};

/// Why the function stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration is invalid; under Lambda, it was logged and reported through
    /// `/runtime/init/error` already.
    #[error("{0}")]
    Config(crate::config::ConfigError),
    /// The OpenTelemetry variables are invalid; reported through `/runtime/init/error`.
    #[error("{0}")]
    Otel(OtelError),
    /// Started outside Lambda: there is no Runtime API to serve.
    #[error(
        "{AWS_LAMBDA_RUNTIME_API} is not set: s3-trace-relay is an AWS Lambda function and runs under Lambda's \
         Runtime API. Locally, run it under `cargo lambda watch` (see the README, \"Run it locally\") or \
         try `scripts/demo.sh`. The configuration is valid."
    )]
    OutsideLambda,
    /// The runtime stopped serving.
    #[error("the Lambda runtime stopped: {0}")]
    Runtime(lambda_runtime::Error),
}

impl RunError {
    /// Whether the error was already logged (and reported to Lambda), so printing it again would
    /// only repeat it.
    pub fn is_logged(&self) -> bool {
        matches!(self, RunError::Config(_) | RunError::Otel(_)) && std::env::var_os(AWS_LAMBDA_RUNTIME_API).is_some()
    }
}

/// The tokio runtime [`run`] runs on. Serving one invocation at a time (the usual Lambda, without
/// `AWS_LAMBDA_MAX_CONCURRENCY` > 1), one thread drives every call and its connection: the SDK's
/// work for a call was on one thread anyway, and handing each request and answer between threads
/// cost the relay a fifth to a quarter of its CPU and let a call slot free before its connection
/// went back to the pool, so a new connection was opened (README, Latency). Invocations served
/// concurrently (Lambda Managed Instances) get a worker per core. Decoding has a blocking thread
/// of its own either way.
pub fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let concurrent = serves_concurrently(std::env::var(AWS_LAMBDA_MAX_CONCURRENCY).ok().as_deref());
    let mut builder = if concurrent {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build()
}

/// glibc's own starting mmap threshold: blocks this large or larger get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Keeps glibc's mmap threshold where glibc starts it, for the life of the process; call it first
/// in `main`. glibc raises the threshold to the size of each mapped block freed (up to 32 MiB) and
/// its trim threshold to twice that, so once the process had freed a large buffer (one the runtime
/// read a body into, a 6 MB body after its invocation), blocks up to that size came from the heap,
/// and up to twice that of freed heap stayed with the process. Fixed, large buffers are mapped and
/// unmapped whole: peak RSS at 10,000 records with a trace context each and 60 calls in flight
/// 24.0-24.4 -> 22.7-23.3 MiB (README, Latency). Other C libraries (musl) have no such threshold to
/// fix: nothing is done.
pub fn fix_malloc_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; a value it refuses is ignored (0).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Whether `AWS_LAMBDA_MAX_CONCURRENCY` says invocations run concurrently; read as for the
/// in-flight cap, so a bad value counts as absent: one at a time.
fn serves_concurrently(max_concurrency: Option<&str>) -> bool {
    lambda_number(max_concurrency).is_some_and(|n| n > 1)
}

/// Runs the function until the runtime stops. A bad configuration is reported to Lambda's
/// `/runtime/init/error` (and returned) before anything is published.
pub async fn run() -> Result<(), RunError> {
    let env = |name: &str| std::env::var(name).ok();
    logs::init_subscriber(env);
    let setup = RelayConfig::from_lookup(env)
        .map_err(RunError::Config)
        .and_then(|config| {
            let otel = Exporter::from_env(env, config.deadline_margin).map_err(RunError::Otel)?;
            Ok((Arc::new(config), otel.map(Arc::new)))
        });
    let (config, otel) = match setup {
        Ok(setup) => setup,
        Err(e) if env(AWS_LAMBDA_RUNTIME_API).is_none() => return Err(e),
        Err(e) => {
            init::fail_init(&e).await;
            return Err(e);
        }
    };
    if env(AWS_LAMBDA_RUNTIME_API).is_none() {
        return Err(RunError::OutsideLambda);
    }
    let relay = Arc::new(build_relay(config, otel).await);
    let payloads = Payloads::default();
    let taken = payloads.clone();
    let handler = service_fn(move |event: LambdaEvent<IgnoredAny>| {
        let relay = Arc::clone(&relay);
        let payload = taken.take(&event.context.request_id);
        async move {
            let info = InvocationInfo::from(&event.context);
            relay.handle_payload(payload, &info).await
        }
    });
    Runtime::new(handler)
        .layer(PayloadLayer(payloads))
        .layer(layers::TracingLayer::new())
        .run_concurrent()
        .await
        .map_err(RunError::Runtime)
}

/// Invocation bodies taken by [`PayloadLayer`], by request id, until their handler takes them.
#[derive(Debug, Clone, Default)]
struct Payloads(Arc<Mutex<HashMap<String, Bytes>>>);

impl Payloads {
    fn put(&self, request_id: String, body: Bytes) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request_id, body);
    }

    /// The body of invocation `request_id`; empty (answered as not JSON) if it was never put.
    fn take(&self, request_id: &str) -> Bytes {
        let taken = self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(request_id);
        taken.unwrap_or_default()
    }
}

/// Takes each invocation's body before `lambda_runtime` deserializes it, leaving it `null`: typed
/// as the handler's event, up to 6 MB would be scanned and copied before the handler could start,
/// which the relay, decoding as it sends ([`Relay::handle_payload`]), does itself from the bytes
/// as read. The handler takes the body back by request id, so concurrent invocations keep theirs.
#[derive(Debug, Clone)]
struct PayloadLayer(Payloads);

impl<S> Layer<S> for PayloadLayer {
    type Service = PayloadService<S>;

    fn layer(&self, inner: S) -> PayloadService<S> {
        PayloadService {
            inner,
            payloads: self.0.clone(),
        }
    }
}

/// The service [`PayloadLayer`] wraps around the runtime's own.
#[derive(Debug, Clone)]
struct PayloadService<S> {
    inner: S,
    payloads: Payloads,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for PayloadService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        let body = std::mem::replace(&mut invocation.body, Bytes::from_static(b"null"));
        self.payloads.put(invocation.context.request_id.clone(), body);
        self.inner.call(invocation)
    }
}

/// The relay over the AWS SDK, with EMF metrics, and its spans recorded for X-Ray when Lambda runs
/// a daemon and for OpenTelemetry when an OTLP endpoint is set.
async fn build_relay(config: Arc<RelayConfig>, otel: Option<Arc<Exporter>>) -> Relay<AwsPublisher> {
    let sdk_config = load_sdk_config(config.attempt_timeout).await;
    let publisher = AwsPublisher::new(&sdk_config, config.targets.iter().map(|t| &t.destination));
    let metrics = MetricsOutput {
        namespace: config.metrics_namespace.clone(),
        function_name: config.function_name.clone(),
    };
    let region = sdk_config.region().map(ToString::to_string).unwrap_or_default();
    let xray = config
        .xray_daemon_address
        .as_deref()
        .and_then(|address| match UdpSink::new(address) {
            Ok(sink) => Some(XRay::new(Arc::new(sink), config.function_name.clone(), region)),
            Err(e) => {
                tracing::warn!(
                    error = logs::text(&e).as_str(),
                    address,
                    "X-Ray daemon unreachable, not recording segments"
                );
                None
            }
        });
    let relay = Relay::new(config, publisher).with_metrics(metrics);
    match Recorder::new(xray, otel) {
        Some(recorder) => relay.with_recorder(recorder),
        None => relay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invocation_at_a_time_runs_on_one_thread() {
        assert!(!serves_concurrently(None));
        assert!(!serves_concurrently(Some("1")));
    }

    #[test]
    fn concurrent_invocations_get_the_multi_thread_runtime() {
        assert!(serves_concurrently(Some("4")));
        assert!(serves_concurrently(Some(" 2 ")));
    }

    #[test]
    fn a_bad_max_concurrency_counts_as_one_at_a_time() {
        for value in ["", "0", "-3", "many"] {
            assert!(!serves_concurrently(Some(value)), "{value:?}");
        }
    }
}
