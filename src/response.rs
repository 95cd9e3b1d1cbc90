//! The Lambda response (CONTRACT §6).
//!
//! SQS-sourced invocations answer `{"batchItemFailures":[{"itemIdentifier":"<messageId>"}]}` naming
//! exactly the messages not fully delivered (the event source mapping enables
//! `ReportBatchItemFailures`); for a FIFO source, every message after a failed one in the same
//! message group is reported too, so none overtakes it. S3, SNS and EventBridge invocations return
//! an error when any record failed, so Lambda retries them and finally sends the event to the
//! function's on-failure destination. Errors reach Lambda through one [`Diagnostic`] conversion.

use std::collections::HashSet;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use lambda_runtime::Diagnostic;
use serde::Serialize;

use crate::inbound::{DecodeError, Inbound, Source};

/// Per-invocation counts; also the success response of non-SQS invocations.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// S3 records received (test events excluded).
    pub received: usize,
    /// Messages accepted by a target.
    pub relayed: usize,
    /// Retry units reported failed.
    pub failed: usize,
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
    /// The SQS FIFO message group, when the source queue is FIFO.
    pub group_id: Option<String>,
    /// Why.
    pub reason: String,
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
        first: String,
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

/// Builds the response from the failed units.
pub fn respond(inbound: &Inbound, failures: Vec<UnitFailure>, summary: Summary) -> Result<RelayResponse, RelayError> {
    let units = inbound.units.len();
    let undelivered = |failures: &[UnitFailure]| RelayError::Undelivered {
        failed: failures.len(),
        units,
        first: failures.first().map(|f| f.reason.clone()).unwrap_or_default(),
    };
    match inbound.source {
        Source::Sqs { fifo } => {
            // A failed record that cannot be named must fail the whole batch.
            if failures.iter().any(|f| f.message_id.is_none()) {
                return Err(undelivered(&failures));
            }
            let mut failed_ids: HashSet<&str> = failures.iter().filter_map(|f| f.message_id.as_deref()).collect();
            if fifo {
                let mut failed_groups: HashSet<&str> = HashSet::new();
                for unit in &inbound.units {
                    let (Some(id), Some(group)) = (unit.message_id.as_deref(), unit.group_id.as_deref()) else {
                        continue;
                    };
                    if failed_groups.contains(group) {
                        failed_ids.insert(id);
                    } else if failed_ids.contains(id) {
                        failed_groups.insert(group);
                    }
                }
            }
            let mut response = SqsBatchResponse::default();
            // In event order, so the answer reads like the batch.
            for unit in &inbound.units {
                if let Some(id) = unit.message_id.as_deref().filter(|id| failed_ids.contains(id)) {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id.to_owned();
                    response.batch_item_failures.push(failure);
                }
            }
            Ok(RelayResponse::Sqs(response))
        }
        _ if failures.is_empty() => Ok(RelayResponse::Done(summary)),
        _ => Err(undelivered(&failures)),
    }
}
