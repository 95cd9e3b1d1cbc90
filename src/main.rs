//! The Lambda function: load configuration and AWS clients once at init, then serve invocations,
//! concurrently when `AWS_LAMBDA_MAX_CONCURRENCY` > 1 (each takes its trace from its own context).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use s3_trace_relay::publish::load_sdk_config;
use s3_trace_relay::relay::MetricsOutput;
use s3_trace_relay::xray::{AWS_XRAY_DAEMON_ADDRESS, Recorder, UdpSink};
use s3_trace_relay::{AwsPublisher, InvocationInfo, Relay, RelayConfig, init};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> Result<(), Error> {
    s3_trace_relay::logs::init_subscriber(|name| std::env::var(name).ok());
    let config = match RelayConfig::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => Arc::new(config),
        Err(e) => return Err(init::fail_init(e).await),
    };
    let sdk_config = load_sdk_config(config.attempt_timeout).await;
    let function_name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default();
    let metrics = MetricsOutput {
        namespace: config.metrics_namespace.clone(),
        function_name: function_name.clone(),
    };
    let publisher = AwsPublisher::new(&sdk_config, config.targets.iter().map(|t| &t.destination));
    let mut relay = Relay::new(config, publisher).with_metrics(metrics);
    if let Ok(address) = std::env::var(AWS_XRAY_DAEMON_ADDRESS) {
        match UdpSink::new(&address) {
            Ok(sink) => {
                let region = sdk_config.region().map(ToString::to_string).unwrap_or_default();
                relay = relay.with_recorder(Recorder::new(Arc::new(sink), function_name, region));
            }
            Err(e) => tracing::warn!(error = %e, address, "X-Ray daemon unreachable, not recording segments"),
        }
    }
    let relay = Arc::new(relay);
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let relay = Arc::clone(&relay);
        async move {
            let info = InvocationInfo::from(&event.context);
            relay.handle(event.payload.get(), &info).await
        }
    }))
    .await
}
