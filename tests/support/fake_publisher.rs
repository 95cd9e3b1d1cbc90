//! An in-memory [`Publisher`] for driving the relay core without SQS or SNS: it records every
//! batch it is handed and answers from a script, so a test can read off what would be sent where
//! and make entries or whole calls fail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use s3_trace_relay::Relay;
use s3_trace_relay::config::{Destination, RelayConfig};
use s3_trace_relay::failure::CallError;
use s3_trace_relay::message::Batch;
use s3_trace_relay::publish::{CallReport, EntryOutcome, Publisher};
use s3_trace_relay::response::RelayError;
use s3_trace_relay::response::RelayResponse;

/// What the fake service answers to the next calls, in order; `Ok` entries default to delivered.
pub type Script = VecDeque<Result<Vec<EntryOutcome>, CallError>>;

/// Records `(destination, batch)` for every call; answers from `script`, then delivers everything.
/// With `delay`, each call takes that long (after being recorded).
#[derive(Clone, Default)]
pub struct FakePublisher {
    pub sent: Arc<Mutex<Vec<(String, Batch)>>>,
    pub script: Arc<Mutex<Script>>,
    pub delay: Option<Duration>,
}

impl FakePublisher {
    pub fn answering(script: Vec<Result<Vec<EntryOutcome>, CallError>>) -> Self {
        FakePublisher {
            script: Arc::new(Mutex::new(script.into())),
            ..Self::default()
        }
    }

    pub fn sent(&self) -> Vec<(String, Batch)> {
        self.sent.lock().unwrap().clone()
    }

    /// The object keys of each call's messages, call by call.
    pub fn sent_keys(&self) -> Vec<Vec<String>> {
        self.sent()
            .iter()
            .map(|(_, b)| b.messages.iter().map(|m| m.notification.key.clone()).collect())
            .collect()
    }

    pub fn sent_to(&self, destination: &str) -> Vec<Batch> {
        self.sent()
            .into_iter()
            .filter(|(d, _)| d == destination)
            .map(|(_, b)| b)
            .collect()
    }

    /// `(key, outbound trace header)` of every message sent to `destination`, in order.
    pub fn headers_to(&self, destination: &str) -> Vec<(String, Option<String>)> {
        self.sent_to(destination)
            .iter()
            .flat_map(|b| &b.messages)
            .map(|m| (m.notification.key.clone(), m.trace.as_ref().map(ToString::to_string)))
            .collect()
    }
}

impl Publisher for FakePublisher {
    async fn send(&self, destination: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        self.sent.lock().unwrap().push((destination.to_string(), batch.clone()));
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(Ok(mut outcomes)) => {
                outcomes.resize(batch.messages.len(), EntryOutcome::Delivered);
                Ok(CallReport::new(outcomes))
            }
            Some(Err(e)) => Err(e),
            None => Ok(CallReport::new(vec![EntryOutcome::Delivered; batch.messages.len()])),
        }
    }
}

/// A relay configured with `RELAY_TARGETS=targets` (everything else default) over `publisher`.
pub fn relay(targets: &str, publisher: FakePublisher) -> Relay<FakePublisher> {
    let config = RelayConfig::from_lookup(|k| (k == "RELAY_TARGETS").then(|| targets.to_owned())).unwrap();
    Relay::new(Arc::new(config), publisher)
}

/// The message ids reported in an SQS batch response; panics on any other response.
pub fn failed_ids(response: &RelayResponse) -> Vec<String> {
    match response {
        RelayResponse::Sqs(r) => r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect(),
        other => panic!("expected an SQS batch response, got {other:?}"),
    }
}

/// Asserts that an invocation failed with `failed` of its `units` retry units undelivered.
#[track_caller]
pub fn assert_undelivered(err: &RelayError, failed: usize, units: usize) {
    assert!(
        matches!(err, RelayError::Undelivered { failed: f, units: u, .. } if *f == failed && *u == units),
        "{err}"
    );
}
