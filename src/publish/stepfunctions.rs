//! Step Functions `StartExecution`: one execution per record (the API has no batch form), with
//! `traceHeader` (its record's context, canonical), input `{"Records":[<record as received>]}` (an
//! EventBridge-sourced event: the event), and a name derived from the event
//! ([`crate::fifo::execution_name`]). On a Standard workflow a redelivered record so names an
//! existing execution: `ExecutionAlreadyExists` means it was started before, and counts as
//! delivered. Express workflows do not deduplicate names: at least once.

use aws_sdk_sfn::operation::RequestId;
use aws_sdk_sqs::error::SdkError;

use super::{CallReport, EntryOutcome, START_EXECUTION, call_error, sdk_call_error};
use crate::failure::CallError;
use crate::message::Batch;

/// Starts the execution of the batch's one message.
pub(super) async fn start_execution(
    client: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    batch: &Batch,
) -> Result<CallReport, CallError> {
    let [m] = batch.messages.as_slice() else {
        return Err(call_error(
            START_EXECUTION,
            "InvalidEntry",
            "one execution per call".into(),
        ));
    };
    let sent = client
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .input(&m.notification.body)
        .set_name(m.execution_name.clone())
        .set_trace_header(m.trace.as_ref().map(ToString::to_string))
        .send()
        .await;
    let request_id = match sent {
        Ok(output) => output.request_id().map(str::to_owned),
        Err(SdkError::ServiceError(e)) if e.err().is_execution_already_exists() => {
            e.raw().headers().get("x-amzn-requestid").map(str::to_owned)
        }
        Err(e) => return Err(sdk_call_error(START_EXECUTION, e)),
    };
    Ok(CallReport {
        entries: vec![EntryOutcome::Delivered],
        request_id,
    })
}
