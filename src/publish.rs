//! Publishing: the only module that touches the network (CONTRACT §4).
//!
//! [`Publisher`] is the port the relay core calls; [`AwsPublisher`] is the adapter over
//! `aws-sdk-sqs`, `aws-sdk-sns`, `aws-sdk-eventbridge` (`publish/eventbridge.rs`) and `aws-sdk-sfn`
//! (`publish/stepfunctions.rs`). Every entry's outcome is read from the response, because an
//! HTTP 200 can still carry failed entries.
//!
//! Trace carriers on the wire:
//! - SQS: each entry carries the `AWSTraceHeader` message system attribute (its own context), so
//!   the request's `X-Amzn-Trace-Id` header is removed: the SDK's recursion-detection interceptor
//!   would otherwise copy the process-wide `_X_AMZN_TRACE_ID` verbatim onto every message lacking
//!   the attribute.
//! - SNS: the only carrier is the request's `X-Amzn-Trace-Id` header, so each `PublishBatch` call
//!   sets (replaces) it to its group's canonical header, or removes it when the group has none.
//! - EventBridge: each `PutEvents` entry carries its own `TraceHeader`; Step Functions: each
//!   `StartExecution` its `traceHeader`. The request header is removed for both (for Step Functions it
//!   would win over the parameter).
//!
//! One interceptor on every client ([`CallTraceHeader`]) does all of this, reading the header an
//! SNS call is made with from its scope ([`CALL_TRACE_HEADER`]).

use std::future::Future;
use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue as SnsAttribute, PublishBatchRequestEntry};
use aws_sdk_sqs::config::ConfigBag;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::RequestId;
use aws_sdk_sqs::types::{
    MessageAttributeValue as SqsAttribute, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use aws_sdk_sns::operation::publish_batch::PublishBatchError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::config::Destination;
use crate::failure::{CallError, Reason};
use crate::message::{Batch, STRING_DATA_TYPE, TRACE_HTTP_HEADER, TRACEPARENT};
use crate::retry::{RetryClassifier, classify};

mod eventbridge;
mod stepfunctions;

/// What happened to one entry of a batch call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// The service accepted the entry.
    Delivered,
    /// The service failed the entry ([`Reason::Rejected`]) or did not mention it
    /// ([`Reason::MissingFromResponse`]).
    Failed(Reason),
}

/// The answer to a batch call that got a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReport {
    /// One outcome per message, in order.
    pub entries: Vec<EntryOutcome>,
    /// The AWS request id of the call.
    pub request_id: Option<String>,
}

impl CallReport {
    /// A report without a request id (tests, fakes).
    pub fn new(entries: Vec<EntryOutcome>) -> Self {
        CallReport {
            entries,
            request_id: None,
        }
    }
}

/// The port the relay publishes through: one batch call, returning one outcome per message, in order.
pub trait Publisher: Send + Sync {
    /// Sends `batch` to `destination`.
    fn send(
        &self,
        destination: &Destination,
        batch: &Batch,
    ) -> impl Future<Output = Result<CallReport, CallError>> + Send;
}

/// First backoff of the SDK's whole-request retries. The SDK default (1 s) is long next to a
/// relay's invocation budget; throttling clears at this scale, and the deadline bounds the total.
pub const SDK_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest backoff between two attempts of one request.
pub const SDK_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Loads the SDK configuration once at init. Region, credentials and endpoints
/// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SNS`) come from the environment
/// exactly as the SDK reads them; so do `AWS_RETRY_MODE` and `AWS_MAX_ATTEMPTS`, with a backoff
/// scaled to a Lambda invocation and a per-attempt timeout, so that a hung connection is retried
/// instead of eating the whole deadline.
pub async fn load_sdk_config(attempt_timeout: Duration) -> aws_config::SdkConfig {
    sdk_config_loader(attempt_timeout).await.load().await
}

/// The loader [`load_sdk_config`] loads, for a caller that overrides more (a test's endpoint).
pub async fn sdk_config_loader(attempt_timeout: Duration) -> aws_config::ConfigLoader {
    let retry = aws_config::default_provider::retry_config::default_provider()
        .retry_config()
        .await
        .with_initial_backoff(SDK_INITIAL_BACKOFF)
        .with_max_backoff(SDK_MAX_BACKOFF);
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt_timeout)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shared_http_client())
        .retry_config(retry)
        .timeout_config(timeouts)
}

/// One HTTP client, so one connection pool, for every SDK client (SQS, SNS, EventBridge, Step
/// Functions, each region). Without it each service client builds its own default client and pool:
/// a batch to a queue and a topic behind one endpoint opened 31–33 connections for 16 calls in
/// flight. This is the SDK's own default client built the same way (hyper 1 with rustls over
/// aws-lc, trust roots from the system or `SSL_CERT_FILE`, a proxy from the environment as
/// `HTTPS_PROXY`/`NO_PROXY` say), only shared, and built at the first call ([`AtFirstCall`]).
fn shared_http_client() -> SharedHttpClient {
    SharedHttpClient::new(AtFirstCall(sdk_default_http_client()))
}

/// An HTTP client whose connector is built when the first call needs it. The SDK's default client
/// builds a throwaway connector whenever a service client is built (`validate_base_client_config`),
/// so that the trust roots load during init: a rustls configuration with every root parsed, once
/// per client (STS for the credentials chain, SQS, SNS, EventBridge, Step Functions). Init is
/// billed and delays the first `/next`; here one connector is built, by the first call.
#[derive(Debug)]
struct AtFirstCall(SharedHttpClient);

impl HttpClient for AtFirstCall {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

fn sdk_default_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// The adapter over the AWS SDK clients, built once at init and shared by every invocation.
#[derive(Debug, Clone)]
pub struct AwsPublisher {
    home: Clients,
    /// Clients for targets outside the function's region, one set per region (few; searched).
    regional: Vec<(String, Clients)>,
    /// Event buses known to exist (`PutEvents` to a missing bus succeeds and loses the events).
    known_buses: eventbridge::KnownBuses,
}

/// One region's clients.
#[derive(Debug, Clone)]
struct Clients {
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
    sfn: aws_sdk_sfn::Client,
}

impl Clients {
    /// Clients from the shared configuration, in `region` when given, classifying errors with
    /// [`crate::retry`] so every transient code is retried.
    fn new(sdk_config: &aws_config::SdkConfig, region: Option<aws_config::Region>) -> Self {
        let region = region.or_else(|| sdk_config.region().cloned());
        let sqs = aws_sdk_sqs::config::Builder::from(sdk_config)
            .region(region.clone())
            .retry_classifier(RetryClassifier::<SendMessageBatchError>::new())
            .interceptor(CallTraceHeader)
            .build();
        let sns = aws_sdk_sns::config::Builder::from(sdk_config)
            .region(region.clone())
            .retry_classifier(RetryClassifier::<PublishBatchError>::new())
            .interceptor(CallTraceHeader)
            .build();
        let events = aws_sdk_eventbridge::config::Builder::from(sdk_config)
            .region(region.clone())
            .retry_classifier(RetryClassifier::<
                aws_sdk_eventbridge::operation::put_events::PutEventsError,
            >::new())
            .retry_classifier(RetryClassifier::<
                aws_sdk_eventbridge::operation::describe_event_bus::DescribeEventBusError,
            >::new())
            .interceptor(CallTraceHeader)
            .build();
        let sfn = aws_sdk_sfn::config::Builder::from(sdk_config)
            .region(region)
            .retry_classifier(RetryClassifier::<
                aws_sdk_sfn::operation::start_execution::StartExecutionError,
            >::new())
            .interceptor(CallTraceHeader)
            .build();
        Clients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            sns: aws_sdk_sns::Client::from_conf(sns),
            events: aws_sdk_eventbridge::Client::from_conf(events),
            sfn: aws_sdk_sfn::Client::from_conf(sfn),
        }
    }
}

impl AwsPublisher {
    /// Builds the clients from one loaded SDK configuration: a set for the function's region and
    /// one more set per other region a destination lives in ([`Destination::region`]), sharing
    /// the configuration's credentials, HTTP client, retry and timeout settings.
    pub fn new<'a>(
        sdk_config: &aws_config::SdkConfig,
        destinations: impl IntoIterator<Item = &'a Destination>,
    ) -> Self {
        let home = sdk_config.region().map(|r| r.as_ref());
        let mut regional: Vec<(String, Clients)> = Vec::new();
        for region in destinations.into_iter().filter_map(Destination::region) {
            if Some(region) == home || regional.iter().any(|(r, _)| r == region) {
                continue;
            }
            let pinned = aws_config::Region::new(region.to_owned());
            regional.push((region.to_owned(), Clients::new(sdk_config, Some(pinned))));
        }
        AwsPublisher {
            home: Clients::new(sdk_config, None),
            regional,
            known_buses: eventbridge::KnownBuses::default(),
        }
    }

    /// The clients of `destination`'s region.
    fn clients(&self, destination: &Destination) -> &Clients {
        if self.regional.is_empty() {
            return &self.home; // the usual single-region function: no address to read per call
        }
        destination
            .region()
            .and_then(|region| self.regional.iter().find(|(r, _)| r == region))
            .map_or(&self.home, |(_, clients)| clients)
    }

    async fn send_sqs(
        client: &aws_sdk_sqs::Client,
        queue_url: &str,
        fifo: bool,
        batch: &Batch,
    ) -> Result<CallReport, CallError> {
        let fail = |code: &str, message: String| call_error(SEND_MESSAGE_BATCH, code, message);
        let mut request = client.send_message_batch().queue_url(queue_url);
        for (i, m) in batch.messages.iter().enumerate() {
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(m.notification.body.as_str());
            if let Some(trace) = &m.trace {
                let value = MessageSystemAttributeValue::builder()
                    .data_type(STRING_DATA_TYPE)
                    .string_value(trace.to_string())
                    .build()
                    .map_err(|e| fail("InvalidEntry", e.to_string()))?;
                entry = entry.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, value);
            }
            if let Some(tp) = m.traceparent() {
                let value = SqsAttribute::builder()
                    .data_type(STRING_DATA_TYPE)
                    .string_value(tp)
                    .build()
                    .map_err(|e| fail("InvalidEntry", e.to_string()))?;
                entry = entry.message_attributes(TRACEPARENT, value);
            }
            if let (true, Some(ids)) = (fifo, &m.fifo) {
                entry = entry
                    .message_group_id(&ids.group_id)
                    .message_deduplication_id(&ids.deduplication_id);
            }
            request = request.entries(entry.build().map_err(|e| fail("InvalidEntry", e.to_string()))?);
        }
        let output = request
            .send()
            .await
            .map_err(|e| sdk_call_error(SEND_MESSAGE_BATCH, e))?;
        let failed = output
            .failed()
            .iter()
            .map(|f| (f.id(), f.sender_fault(), f.code(), f.message()));
        let succeeded = output.successful().iter().map(|s| s.id());
        Ok(CallReport {
            entries: outcomes(batch.messages.len(), succeeded, failed),
            request_id: output.request_id().map(str::to_owned),
        })
    }

    async fn send_sns(
        client: &aws_sdk_sns::Client,
        topic_arn: &str,
        fifo: bool,
        batch: &Batch,
    ) -> Result<CallReport, CallError> {
        let fail = |code: &str, message: String| call_error(PUBLISH_BATCH, code, message);
        let mut request = client.publish_batch().topic_arn(topic_arn);
        for (i, m) in batch.messages.iter().enumerate() {
            let mut entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(m.notification.body.as_str());
            let traceparent = m.traceparent();
            let traceparent = traceparent.as_deref().map(|tp| (TRACEPARENT, STRING_DATA_TYPE, tp));
            let events = m.attributes.iter().map(|a| (a.name, a.data_type, a.value.as_str()));
            for (name, data_type, text) in traceparent.into_iter().chain(events) {
                let value = SnsAttribute::builder()
                    .data_type(data_type)
                    .string_value(text)
                    .build()
                    .map_err(|e| fail("InvalidEntry", e.to_string()))?;
                entry = entry.message_attributes(name, value);
            }
            if let (true, Some(ids)) = (fifo, &m.fifo) {
                entry = entry
                    .message_group_id(&ids.group_id)
                    .message_deduplication_id(&ids.deduplication_id);
            }
            request =
                request.publish_batch_request_entries(entry.build().map_err(|e| fail("InvalidEntry", e.to_string()))?);
        }
        let header = batch.request_trace.as_ref().map(ToString::to_string);
        let output = CALL_TRACE_HEADER
            .scope(header, request.send())
            .await
            .map_err(|e| sdk_call_error(PUBLISH_BATCH, e))?;
        let failed = output
            .failed()
            .iter()
            .map(|f| (f.id(), f.sender_fault(), f.code(), f.message()));
        let succeeded = output.successful().iter().filter_map(|s| s.id());
        Ok(CallReport {
            entries: outcomes(batch.messages.len(), succeeded, failed),
            request_id: aws_sdk_sns::operation::RequestId::request_id(&output).map(str::to_owned),
        })
    }
}

impl Publisher for AwsPublisher {
    async fn send(&self, destination: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        let clients = self.clients(destination);
        match destination {
            Destination::Sqs { queue_url, fifo } => Self::send_sqs(&clients.sqs, queue_url, *fifo, batch).await,
            Destination::Sns { topic_arn, fifo } => Self::send_sns(&clients.sns, topic_arn, *fifo, batch).await,
            Destination::EventBus { bus_arn, source } => {
                let bus = eventbridge::Bus {
                    arn: bus_arn,
                    source,
                    known: &self.known_buses,
                };
                eventbridge::put_events(&clients.events, bus, batch).await
            }
            Destination::StateMachine { state_machine_arn } => {
                stepfunctions::start_execution(&clients.sfn, state_machine_arn, batch).await
            }
        }
    }
}

/// The SQS operation the relay publishes with.
pub const SEND_MESSAGE_BATCH: &str = "SendMessageBatch";
/// The SNS operation the relay publishes with.
pub const PUBLISH_BATCH: &str = "PublishBatch";
/// The EventBridge operation the relay publishes with.
pub const PUT_EVENTS: &str = "PutEvents";
/// The Step Functions operation the relay starts executions with.
pub const START_EXECUTION: &str = "StartExecution";

tokio::task_local! {
    /// The `X-Amzn-Trace-Id` of the SNS call made in this scope (`None`: the call goes without).
    /// Every other call is made outside any scope and goes without the header too.
    static CALL_TRACE_HEADER: Option<String>;
}

/// Makes each request's `X-Amzn-Trace-Id` the relay's: the scope's header ([`CALL_TRACE_HEADER`])
/// or none, never the SDK's copy of the process-wide one. Registered once on each client rather
/// than per call through `customize()`, which boxed every call's future and merged a configuration
/// layer into it. It runs after signing, which leaves this header out (SigV4 does not sign it).
#[derive(Debug)]
struct CallTraceHeader;

impl Intercept for CallTraceHeader {
    fn name(&self) -> &'static str {
        "CallTraceHeader"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        headers.remove(TRACE_HTTP_HEADER);
        let _ = CALL_TRACE_HEADER.try_with(|header| {
            if let Some(h) = header {
                // Canonical headers are ASCII without control characters, so this cannot fail.
                let _ = headers.try_insert(TRACE_HTTP_HEADER, h.clone());
            }
        });
        Ok(())
    }
}

/// The operation one call to `destination` makes.
pub fn operation(destination: &Destination) -> &'static str {
    match destination {
        Destination::Sqs { .. } => SEND_MESSAGE_BATCH,
        Destination::Sns { .. } => PUBLISH_BATCH,
        Destination::EventBus { .. } => PUT_EVENTS,
        Destination::StateMachine { .. } => START_EXECUTION,
    }
}

/// Maps a batch response to one outcome per entry (entry ids are positions). An entry the response
/// names neither as successful nor as failed is reported failed: nothing is assumed delivered.
fn outcomes<'a>(
    len: usize,
    succeeded: impl Iterator<Item = &'a str>,
    failed: impl Iterator<Item = (&'a str, bool, &'a str, Option<&'a str>)>,
) -> Vec<EntryOutcome> {
    let mut result = vec![EntryOutcome::Failed(Reason::MissingFromResponse); len];
    for id in succeeded {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| result.get_mut(i)) {
            *slot = EntryOutcome::Delivered;
        }
    }
    for (id, sender_fault, code, message) in failed {
        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| result.get_mut(i)) {
            *slot = EntryOutcome::Failed(Reason::Rejected {
                code: code.to_owned(),
                message: message.unwrap_or_default().to_owned(),
                sender_fault,
            });
        }
    }
    result
}

/// A call that could not even be built (never with the relay's own entries).
pub(crate) fn call_error(operation: &'static str, code: &str, message: String) -> CallError {
    CallError {
        operation,
        code: code.to_owned(),
        message,
        transient: false,
        status: None,
        request_id: None,
    }
}

/// Describes an SDK error (after the SDK's own retries) with the relay's classification
/// ([`classify`]): throttling, 5xx, timeouts and connection failures are transient; other service
/// errors are the sender's fault.
pub(crate) fn sdk_call_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = match &error {
        SdkError::ServiceError(_) => error.raw_response().map(|r| r.status().as_u16()),
        _ => None,
    };
    let (code, transient) = match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code();
            (
                code.unwrap_or("ServiceError").to_owned(),
                classify(code, status).is_transient(),
            )
        }
        SdkError::TimeoutError(_) => ("Timeout".to_owned(), true),
        SdkError::DispatchFailure(_) => ("DispatchFailure".to_owned(), true),
        SdkError::ResponseError(_) => ("ResponseError".to_owned(), true),
        SdkError::ConstructionFailure(_) => ("ConstructionFailure".to_owned(), false),
        _ => ("Unknown".to_owned(), true),
    };
    let message = match &error {
        SdkError::ServiceError(service) => service.err().message().unwrap_or_default().to_owned(),
        other => DisplayErrorContext(other).to_string(),
    };
    CallError {
        status: error.raw_response().map(|r| r.status().as_u16()),
        request_id: error.request_id().map(str::to_owned),
        transient,
        ..call_error(operation, &code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_missing_from_the_response_are_failed() {
        let out = outcomes(
            3,
            ["0"].into_iter(),
            [("2", true, "InvalidParameterValue", None)].into_iter(),
        );
        assert_eq!(out[0], EntryOutcome::Delivered);
        assert_eq!(out[1], EntryOutcome::Failed(Reason::MissingFromResponse));
        assert!(
            matches!(&out[2], EntryOutcome::Failed(Reason::Rejected { code, sender_fault: true, .. }) if code == "InvalidParameterValue")
        );
    }

    #[test]
    fn receiver_fault_entries_are_transient() {
        let out = outcomes(
            1,
            std::iter::empty(),
            [("0", false, "InternalError", Some("try again"))].into_iter(),
        );
        assert!(
            matches!(&out[0], EntryOutcome::Failed(r @ Reason::Rejected { message, .. }) if r.resend_alone() && message == "try again")
        );
    }
}
