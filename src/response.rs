//! The Lambda response (CONTRACT §6).
//!
//! SQS-sourced invocations answer `{"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}` naming
//! exactly the messages not fully delivered (the event source mapping enables
//! `ReportBatchItemFailures`); which messages those are — including, on a FIFO source, the later
//! ones held back behind a failure — the relay and [`crate::order`] decide. S3, SNS and EventBridge
//! invocations return an error when any record failed, so Lambda retries them and finally sends the
//! event to the function's on-failure destination. Errors reach Lambda through one [`Diagnostic`]
//! conversion.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use lambda_runtime::Diagnostic;
use serde::Serialize;

use crate::failure::Undelivered;
use crate::inbound::{DecodeError, Inbound, Source};

/// Per-invocation counts; also the success response of S3, SNS and EventBridge invocations.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// S3 records received (test events excluded).
    pub received: usize,
    /// Messages accepted by a target: a record counts once per target it was published to.
    pub published: usize,
    /// Messages a target did not accept (rejected, too large, held back, out of time).
    pub messages_failed: usize,
    /// Retry units reported failed to Lambda: SQS messages in `batchItemFailures`, or records of
    /// another invocation (which then fails as a whole).
    pub reported_failures: usize,
    /// Records that matched no target.
    pub filtered_out: usize,
    /// `s3:TestEvent`s acknowledged.
    pub test_events: usize,
    /// Trace headers rejected as invalid.
    pub invalid_trace_headers: usize,
    /// Records that fell back from their own trace context.
    pub fallbacks: usize,
    /// Batch calls made.
    pub publish_calls: usize,
    /// Entries resent after a transient failure.
    pub retries: usize,
}

/// What a successful invocation returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RelayResponse {
    /// For SQS sources: the partial batch response.
    Sqs(SqsBatchResponse),
    /// For other sources: the counts.
    Done(Summary),
}

/// A retry unit that was not fully delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFailure {
    /// The SQS message id, when the unit is an SQS message.
    pub message_id: Option<String>,
    /// The first reason one of its messages was not delivered.
    pub failure: Undelivered,
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The payload is not an event the relay accepts; nothing was published.
    #[error("bad invocation payload: {0}")]
    BadPayload(DecodeError),
    /// Some records of a non-SQS invocation were not delivered; Lambda should retry the event.
    #[error("{failed} of {units} records not delivered, first: {first}")]
    Undelivered {
        /// Units that failed.
        failed: usize,
        /// Units in the invocation.
        units: usize,
        /// The first failure, for the error message.
        first: Box<Undelivered>,
    },
}

impl From<RelayError> for Diagnostic {
    fn from(e: RelayError) -> Self {
        let error_type = match &e {
            RelayError::BadPayload(_) => "S3TraceRelay.BadPayload",
            RelayError::Undelivered { .. } => "S3TraceRelay.Undelivered",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

impl From<DecodeError> for RelayError {
    fn from(e: DecodeError) -> Self {
        RelayError::BadPayload(e)
    }
}

/// What answering Lambda needs of a decoded invocation: where it came from and each retry unit's
/// SQS message id. Kept apart from [`Inbound`] so that a streamed invocation drops each unit's
/// records once they are planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Units {
    /// The invocation's source.
    pub source: Source,
    /// Each unit's SQS `messageId` (`None` for other sources), in event order.
    pub message_ids: Vec<Option<String>>,
}

impl From<&Inbound> for Units {
    fn from(inbound: &Inbound) -> Self {
        Units {
            source: inbound.source,
            message_ids: inbound.units.iter().map(|u| u.message_id.clone()).collect(),
        }
    }
}

/// Builds the response from the failed units (in event order).
pub fn respond(units: &Units, failures: Vec<UnitFailure>, summary: Summary) -> Result<RelayResponse, RelayError> {
    // A failed SQS record that cannot be named must fail the whole batch.
    if matches!(units.source, Source::Sqs { .. }) && failures.iter().all(|f| f.message_id.is_some()) {
        return Ok(RelayResponse::Sqs(batch_response(&failures)));
    }
    let failed = failures.len();
    match failures.into_iter().next() {
        None => Ok(RelayResponse::Done(summary)),
        Some(first) => Err(RelayError::Undelivered {
            failed,
            units: units.message_ids.len(),
            first: Box::new(first.failure),
        }),
    }
}

/// `{"batchItemFailures":[…]}` naming each failed message.
fn batch_response(failures: &[UnitFailure]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in failures.iter().filter_map(|f| f.message_id.as_deref()) {
        let mut item = BatchItemFailure::default();
        item.item_identifier = id.to_owned();
        response.batch_item_failures.push(item);
    }
    response
}
