//! EventBridge `PutEvents`: at most 10 entries per call, each with its own `TraceHeader` (its
//! record's context, canonical) and `EventBusName`; per-entry results from the response.
//!
//! `PutEvents` to a bus that does not exist answers `FailedEntryCount: 0` with event ids and the
//! events are gone (reported against the real service: aws/aws-cli#9186), so before its first
//! `PutEvents` to a bus the relay asks `DescribeEventBus` once per process and remembers the answer
//! when the bus exists; a missing bus fails the call (`ResourceNotFoundException`), as permanent.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_sdk_eventbridge::operation::RequestId;
use aws_sdk_eventbridge::primitives::{DateTime, DateTimeFormat as Format};
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};

use super::{CallReport, EntryOutcome, PUT_EVENTS, call_error, sdk_call_error};
use crate::failure::{CallError, Reason};
use crate::message::{Batch, bucket_arn};
use crate::retry::classify;

/// The buses this process has seen `DescribeEventBus` confirm.
#[derive(Debug, Clone, Default)]
pub(super) struct KnownBuses(Arc<Mutex<HashSet<String>>>);

impl KnownBuses {
    fn contains(&self, bus: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(bus)
    }

    fn insert(&self, bus: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(bus.to_owned());
    }
}

/// One bus target.
pub(super) struct Bus<'a> {
    pub(super) arn: &'a str,
    pub(super) source: &'a str,
    pub(super) known: &'a KnownBuses,
}

/// Puts one batch on a bus.
pub(super) async fn put_events(
    client: &aws_sdk_eventbridge::Client,
    bus: Bus<'_>,
    batch: &Batch,
) -> Result<CallReport, CallError> {
    ensure_exists(client, &bus).await?;
    let mut request = client.put_events();
    for m in &batch.messages {
        let Some(entry) = &m.bus_entry else {
            return Err(call_error(
                PUT_EVENTS,
                "InvalidEntry",
                "a message without a bus entry".into(),
            ));
        };
        let e = PutEventsRequestEntry::builder()
            .event_bus_name(bus.arn)
            .source(bus.source)
            .detail_type(&entry.detail_type)
            .detail(&entry.detail)
            .resources(bucket_arn(&m.notification.bucket))
            .set_time(event_time(m.notification.event_time.as_deref()))
            .set_trace_header(m.trace.as_ref().map(ToString::to_string));
        request = request.entries(e.build());
    }
    let output = request.send().await.map_err(|e| sdk_call_error(PUT_EVENTS, e))?;
    Ok(CallReport {
        entries: outcomes(batch.messages.len(), output.entries()),
        request_id: output.request_id().map(str::to_owned),
    })
}

/// The event's own time, as S3's EventBridge events carry it (`time`); without a readable one,
/// EventBridge stamps the time of the call.
fn event_time(time: Option<&str>) -> Option<DateTime> {
    time.and_then(|t| DateTime::from_str(t, Format::DateTime).ok())
}

/// `DescribeEventBus` once per bus per process: the call fails if the bus does not exist.
async fn ensure_exists(client: &aws_sdk_eventbridge::Client, bus: &Bus<'_>) -> Result<(), CallError> {
    if bus.known.contains(bus.arn) {
        return Ok(());
    }
    client
        .describe_event_bus()
        .name(bus.arn)
        .send()
        .await
        .map_err(|e| sdk_call_error("DescribeEventBus", e))?;
    bus.known.insert(bus.arn);
    Ok(())
}

/// One outcome per entry: results come back in request order, an `ErrorCode` failing the entry
/// (throttling and internal failures transient, resent alone; others the sender's fault).
fn outcomes(len: usize, results: &[PutEventsResultEntry]) -> Vec<EntryOutcome> {
    (0..len)
        .map(|i| match results.get(i) {
            Some(r) if r.error_code().is_some() => {
                let code = r.error_code().unwrap_or_default();
                EntryOutcome::Failed(Reason::Rejected {
                    code: code.to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                    sender_fault: !classify(Some(code), None).is_transient(),
                })
            }
            Some(r) if r.event_id().is_some() => EntryOutcome::Delivered,
            _ => EntryOutcome::Failed(Reason::MissingFromResponse),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .error_code(code)
            .error_message("m")
            .build()
    }

    #[test]
    fn the_events_time_is_kept_and_an_unreadable_one_left_to_eventbridge() {
        let t = event_time(Some("2026-11-25T12:00:00.000Z")).unwrap();
        assert_eq!(t.secs(), 1_795_608_000);
        assert_eq!(event_time(Some("yesterday")), None);
        assert_eq!(event_time(None), None);
    }

    #[test]
    fn throttled_and_internal_entries_are_resent_others_fail() {
        let results = [
            PutEventsResultEntry::builder().event_id("e-1").build(),
            failed("ThrottlingException"),
            failed("InternalFailure"),
            failed("MalformedDetail"),
        ];
        let out = outcomes(5, &results);
        assert_eq!(out[0], EntryOutcome::Delivered);
        let resent: Vec<bool> = out[1..]
            .iter()
            .map(|o| matches!(o, EntryOutcome::Failed(r) if r.resend_alone()))
            .collect();
        assert_eq!(
            resent,
            vec![true, true, false, true],
            "the last is missing from the response"
        );
    }
}
