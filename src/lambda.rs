//! The Lambda function: configuration, logging and AWS clients set up once at init, then
//! invocations served — concurrently when `AWS_LAMBDA_MAX_CONCURRENCY` > 1, each taking its trace
//! from its own context, never from the process-wide `_X_AMZN_TRACE_ID`. `main.rs` only calls [`run`].

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

use crate::config::{AWS_LAMBDA_RUNTIME_API, RelayConfig};
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
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let relay = Arc::clone(&relay);
        async move {
            let info = InvocationInfo::from(&event.context);
            relay.handle_payload(event.payload, &info).await
        }
    }))
    .await
    .map_err(RunError::Runtime)
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
