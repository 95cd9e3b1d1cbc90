//! Planning: which message goes to which target, with which trace header, in which batch (CONTRACT §4).
//!
//! Pure: no network. One message per S3 record per matching target. SQS batches hold at most 10
//! entries and 1 MiB; each entry carries its own `AWSTraceHeader`, so one batch may mix trace
//! contexts. SNS takes trace context only from the request's `X-Amzn-Trace-Id` header, so SNS
//! batches are grouped by trace context (at most 10 entries and 256 KiB each). On FIFO topics,
//! grouping must not reorder the events of one object, so there a new batch starts whenever the
//! context changes instead. A message too large for its target fails alone.

use std::collections::HashMap;
use std::sync::Arc;

use crate::bus;
use crate::config::{Destination, Target};
use crate::failure::Reason;
use crate::fifo;
use crate::message::{
    Batch, EVENTBRIDGE_MAX_BATCH_BYTES, EVENTBRIDGE_TIME_BYTES, FifoIds, MAX_BATCH_ENTRIES, Message, MessageAttribute,
    Notification, SNS_MAX_BATCH_BYTES, SQS_MAX_BATCH_BYTES, STEP_FUNCTIONS_MAX_INPUT_BYTES, STRING_DATA_TYPE,
    TRACEPARENT, bucket_arn,
};
use crate::route::route;
use crate::trace::TraceHeader;

/// A message its target cannot take: too large, or not an entry the target accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The message.
    pub message: Message,
    /// Index of the target.
    pub target: usize,
    /// Why.
    pub reason: Reason,
}

/// Everything one invocation will publish.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Batches per target index, in the order they must be sent for FIFO targets.
    pub batches: Vec<Vec<Batch>>,
    /// Messages their target cannot take (too large, not a valid bus entry), failed before sending.
    pub refused: Vec<Refused>,
    /// Records that matched no target.
    pub filtered_out: usize,
}

impl Plan {
    /// Number of publish calls the plan makes.
    pub fn calls(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// Removes the messages of the units `drop` selects (batches left empty go too) and returns
    /// those units, each once.
    pub fn drop_units(&mut self, drop: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut dropped = Vec::new();
        for batches in &mut self.batches {
            for batch in batches.iter_mut() {
                batch.messages.retain(|m| {
                    let gone = drop(m.unit);
                    if gone && !dropped.contains(&m.unit) {
                        dropped.push(m.unit);
                    }
                    !gone
                });
            }
            batches.retain(|b| !b.messages.is_empty());
        }
        dropped
    }
}

/// One record to plan: its unit, notification and outbound trace header.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The retry unit.
    pub unit: usize,
    /// The notification.
    pub notification: &'a Arc<Notification>,
    /// The outbound header, already resolved.
    pub trace: Option<&'a TraceHeader>,
}

/// One target's messages while the plan is built: those it can take, and those it cannot.
#[derive(Default)]
struct Share {
    fits: Vec<Message>,
    refused: Vec<(Message, Reason)>,
}

impl Share {
    /// Keeps `m`, or sets it aside with the reason its target cannot take it.
    fn take(&mut self, m: Message, refusal: Option<Reason>, limit: usize) {
        match refusal {
            Some(reason) => self.refused.push((m, reason)),
            None if m.size > limit => {
                let size = m.size;
                self.refused.push((m, Reason::TooLarge { size, limit }));
            }
            None => self.fits.push(m),
        }
    }
}

/// Routes every record and batches the messages per target.
pub fn plan<'a>(targets: &[Target], records: impl IntoIterator<Item = Outgoing<'a>>) -> Plan {
    let mut shares: Vec<Share> = targets.iter().map(|_| Share::default()).collect();
    let mut filtered_out = 0;
    for record in records {
        let n = record.notification;
        // The W3C form is the same for every target of the record: written once.
        let traceparent = record.trace.and_then(TraceHeader::to_traceparent);
        let mut routed = false;
        for t in route(targets.iter().map(|t| t.filters.as_slice()), &n.key, &n.event_name) {
            routed = true;
            if let (Some(share), Some(target)) = (shares.get_mut(t), targets.get(t)) {
                let (m, refusal) = message(record.unit, n, record.trace, traceparent.clone(), target);
                share.take(m, refusal, max_batch_bytes(&target.destination));
            }
        }
        if !routed {
            filtered_out += 1;
        }
    }
    let mut plan = Plan {
        batches: Vec::with_capacity(targets.len()),
        filtered_out,
        ..Plan::default()
    };
    for (index, (target, share)) in targets.iter().zip(shares).enumerate() {
        plan.refused
            .extend(share.refused.into_iter().map(|(message, reason)| Refused {
                message,
                target: index,
                reason,
            }));
        plan.batches.push(batches(index, &target.destination, share.fits));
    }
    plan
}

/// One target's messages in batches: SNS grouped by trace context (runs of one, on FIFO topics),
/// everything else in order; each batch within the destination's entry and byte limits.
fn batches(index: usize, destination: &Destination, messages: Vec<Message>) -> Vec<Batch> {
    let limits = (max_entries(destination), max_batch_bytes(destination));
    let grouped = match destination {
        Destination::Sns { fifo: false, .. } => group_by_trace(messages),
        Destination::Sns { fifo: true, .. } => consecutive_runs(messages),
        _ => vec![(None, messages)],
    };
    grouped
        .into_iter()
        .flat_map(|(trace, group)| chunk(index, trace, group, limits))
        .collect()
}

/// The byte limit of one message and one call at a destination.
pub fn max_batch_bytes(destination: &Destination) -> usize {
    match destination {
        Destination::Sqs { .. } => SQS_MAX_BATCH_BYTES,
        Destination::Sns { .. } => SNS_MAX_BATCH_BYTES,
        Destination::EventBus { .. } => EVENTBRIDGE_MAX_BATCH_BYTES,
        Destination::StateMachine { .. } => STEP_FUNCTIONS_MAX_INPUT_BYTES,
    }
}

/// How many messages one call to a destination takes: `StartExecution` has no batch form.
pub fn max_entries(destination: &Destination) -> usize {
    match destination {
        Destination::StateMachine { .. } => 1,
        _ => MAX_BATCH_ENTRIES,
    }
}

/// The message of one record for one target, and why the target cannot take it, if so. Its size
/// counts what the service counts: the body (a bus entry's source, detail-type, detail and
/// resource) and every message attribute (name, data type, value); `AWSTraceHeader` does not count.
fn message(
    unit: usize,
    n: &Arc<Notification>,
    trace: Option<&TraceHeader>,
    traceparent: Option<String>,
    target: &Target,
) -> (Message, Option<Reason>) {
    let attributes: Vec<MessageAttribute> = target.attributes.iter().filter_map(|a| a.of(n)).collect();
    let attribute_bytes = traceparent
        .as_ref()
        .map_or(0, |tp| TRACEPARENT.len() + STRING_DATA_TYPE.len() + tp.len())
        + attributes.iter().map(MessageAttribute::size).sum::<usize>();
    let mut refusal = None;
    let (bus_entry, body_bytes) = match &target.destination {
        Destination::EventBus { source, .. } => match bus::entry(n) {
            Ok(e) => {
                let time = if n.event_time.is_some() {
                    EVENTBRIDGE_TIME_BYTES
                } else {
                    0
                };
                let bytes = time + source.len() + e.detail_type.len() + e.detail.len() + bucket_arn(&n.bucket).len();
                (Some(e), bytes)
            }
            Err(e) => {
                refusal = Some(Reason::NotABusEntry(e));
                (None, n.body.len())
            }
        },
        _ => (None, n.body.len()),
    };
    let message = Message {
        unit,
        notification: Arc::clone(n),
        trace: trace.cloned(),
        traceparent,
        fifo: target.destination.is_fifo().then(|| FifoIds {
            group_id: fifo::group_id(&n.bucket, &n.key),
            deduplication_id: fifo::deduplication_id(n),
        }),
        attributes,
        bus_entry,
        execution_name: matches!(target.destination, Destination::StateMachine { .. }).then(|| fifo::execution_name(n)),
        size: body_bytes + attribute_bytes,
    };
    (message, refusal)
}

/// Splits messages, in order, into batches of at most 10 entries and `limit` bytes. On FIFO
/// targets a batch holds at most one event per object (message group): if one entry failed while a
/// later event of the same object in the same call was accepted, resending it would reorder them.
fn chunk(
    target: usize,
    request_trace: Option<TraceHeader>,
    messages: Vec<Message>,
    (max_entries, limit): (usize, usize),
) -> Vec<Batch> {
    let mut batches: Vec<Batch> = Vec::with_capacity(messages.len().div_ceil(MAX_BATCH_ENTRIES));
    let mut bytes = 0;
    for m in messages {
        let full = batches
            .last()
            .is_none_or(|b| b.messages.len() >= max_entries || bytes + m.size > limit || same_group_in(b, &m));
        if full {
            batches.push(Batch {
                target,
                request_trace: request_trace.clone(),
                messages: Vec::with_capacity(MAX_BATCH_ENTRIES),
            });
            bytes = 0;
        }
        bytes += m.size;
        if let Some(b) = batches.last_mut() {
            b.messages.push(m);
        }
    }
    batches
}

/// Whether `batch` already holds a message of `m`'s FIFO message group.
fn same_group_in(batch: &Batch, m: &Message) -> bool {
    m.fifo.as_ref().is_some_and(|ids| {
        batch
            .messages
            .iter()
            .any(|other| other.fifo.as_ref().is_some_and(|o| o.group_id == ids.group_id))
    })
}

/// Up to this many trace groups, a message's group is found by comparing headers; beyond, through
/// a hash index (an SQS batch whose every message has its own trace would otherwise cost
/// messages × groups comparisons).
const LINEAR_GROUPS: usize = 16;

/// Groups messages by trace header, groups in order of first appearance, order kept within a group.
fn group_by_trace(messages: Vec<Message>) -> Vec<(Option<TraceHeader>, Vec<Message>)> {
    let mut groups: Vec<(Option<TraceHeader>, Vec<Message>)> = Vec::new();
    let mut index: HashMap<Option<TraceHeader>, usize> = HashMap::new();
    for m in messages {
        let found = if groups.len() <= LINEAR_GROUPS {
            groups.iter().position(|(t, _)| *t == m.trace)
        } else {
            if index.is_empty() {
                index.extend(groups.iter().enumerate().map(|(i, (t, _))| (t.clone(), i)));
            }
            index.get(&m.trace).copied()
        };
        match found.and_then(|i| groups.get_mut(i)) {
            Some((_, group)) => group.push(m),
            None => {
                if !index.is_empty() {
                    index.insert(m.trace.clone(), groups.len());
                }
                groups.push((m.trace.clone(), vec![m]));
            }
        }
    }
    groups
}

/// Splits messages into maximal runs of equal trace header, keeping the overall order.
fn consecutive_runs(messages: Vec<Message>) -> Vec<(Option<TraceHeader>, Vec<Message>)> {
    let mut runs: Vec<(Option<TraceHeader>, Vec<Message>)> = Vec::new();
    for m in messages {
        match runs.last_mut() {
            Some((t, run)) if *t == m.trace => run.push(m),
            _ => runs.push((m.trace.clone(), vec![m])),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_targets;

    const T1: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const T2: &str = "Root=1-67891233-abcdef012345678912345678;Parent=0123456789abcdef;Sampled=0";

    fn notification(key: &str, body_len: usize) -> Arc<Notification> {
        Arc::new(Notification {
            bucket: "b".into(),
            key: key.into(),
            event_name: "ObjectCreated:Put".into(),
            version_id: None,
            sequencer: Some("00".into()),
            event_time: None,
            request_id: None,
            size: Some(body_len as u64),
            body: "x".repeat(body_len),
            origin: crate::message::Origin::S3Record,
        })
    }

    fn run(targets: &str, records: &[(Arc<Notification>, Option<TraceHeader>)]) -> Plan {
        let targets = parse_targets(targets).unwrap();
        plan(
            &targets,
            records.iter().enumerate().map(|(unit, (n, t))| Outgoing {
                unit,
                notification: n,
                trace: t.as_ref(),
            }),
        )
    }

    fn sizes(batches: &[Batch]) -> Vec<usize> {
        batches.iter().map(|b| b.messages.len()).collect()
    }

    #[test]
    fn twenty_five_records_make_three_sqs_batches() {
        let records: Vec<_> = (0..25).map(|i| (notification(&format!("k{i}"), 100), None)).collect();
        let p = run("arn:aws:sqs:us-east-1:123456789012:q", &records);
        assert_eq!(sizes(&p.batches[0]), vec![10, 10, 5]);
        assert_eq!(p.calls(), 3);
    }

    #[test]
    fn sqs_batches_mix_trace_contexts_and_keep_each_header() {
        let t1: TraceHeader = T1.parse().unwrap();
        let t2: TraceHeader = T2.parse().unwrap();
        let records = vec![
            (notification("a", 10), Some(t1.clone())),
            (notification("b", 10), Some(t2.clone())),
        ];
        let p = run("arn:aws:sqs:us-east-1:123456789012:q", &records);
        assert_eq!(p.batches[0].len(), 1);
        let b = &p.batches[0][0];
        assert_eq!(b.request_trace, None);
        assert_eq!(b.messages[0].trace, Some(t1));
        assert_eq!(b.messages[1].trace, Some(t2));
        assert!(b.messages[0].traceparent.as_deref().unwrap().ends_with("-01"));
    }

    #[test]
    fn sns_batches_are_grouped_by_trace_context() {
        let t1: TraceHeader = T1.parse().unwrap();
        let t2: TraceHeader = T2.parse().unwrap();
        let records = vec![
            (notification("a", 10), Some(t1.clone())),
            (notification("b", 10), Some(t2.clone())),
            (notification("c", 10), Some(t1.clone())),
            (notification("d", 10), None),
        ];
        let p = run("arn:aws:sns:us-east-1:123456789012:t", &records);
        let b = &p.batches[0];
        assert_eq!(b.len(), 3);
        assert_eq!((b[0].request_trace.clone(), b[0].messages.len()), (Some(t1), 2));
        assert_eq!((b[1].request_trace.clone(), b[1].messages.len()), (Some(t2), 1));
        assert_eq!((b[2].request_trace.clone(), b[2].messages.len()), (None, 1));
    }

    #[test]
    fn fifo_sns_batches_never_reorder_records() {
        let t1: TraceHeader = T1.parse().unwrap();
        let t2: TraceHeader = T2.parse().unwrap();
        let records = vec![
            (notification("a", 10), Some(t1.clone())),
            (notification("a", 10), Some(t2.clone())),
            (notification("a", 10), Some(t1.clone())),
        ];
        let p = run("arn:aws:sns:us-east-1:123456789012:t.fifo", &records);
        let units: Vec<Vec<usize>> = p.batches[0]
            .iter()
            .map(|b| b.messages.iter().map(|m| m.unit).collect())
            .collect();
        assert_eq!(units, vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn byte_limit_splits_batches_before_ten_entries() {
        // Five 300,000-byte messages: three fit in 1 MiB, and SNS can take none together.
        let records: Vec<_> = (0..5)
            .map(|i| (notification(&format!("k{i}"), 300_000), None))
            .collect();
        let p = run("arn:aws:sqs:us-east-1:123456789012:q", &records);
        assert_eq!(sizes(&p.batches[0]), vec![3, 2]);
    }

    #[test]
    fn oversized_message_fails_alone() {
        let records = vec![(notification("big", 300_000), None), (notification("small", 10), None)];
        let p = run(
            "arn:aws:sns:us-east-1:123456789012:t,arn:aws:sqs:us-east-1:123456789012:q",
            &records,
        );
        assert_eq!(p.refused.len(), 1);
        assert_eq!((p.refused[0].target, p.refused[0].message.unit), (0, 0));
        assert!(matches!(
            p.refused[0].reason,
            Reason::TooLarge {
                size: 300_000,
                limit: 262_144
            }
        ));
        assert_eq!(sizes(&p.batches[0]), vec![1]);
        assert_eq!(sizes(&p.batches[1]), vec![2]);
    }

    #[test]
    fn dropped_units_leave_their_batches_and_empty_batches_go() {
        let records: Vec<_> = (0..12).map(|i| (notification(&format!("k{i}"), 1), None)).collect();
        let mut p = run("arn:aws:sqs:us-east-1:123456789012:q", &records);
        let dropped = p.drop_units(|unit| unit >= 3);
        assert_eq!(dropped, (3..12).collect::<Vec<_>>());
        assert_eq!(sizes(&p.batches[0]), vec![3]);
    }

    #[test]
    fn fifo_batches_hold_one_event_per_object() {
        let records = vec![
            (notification("a", 1), None),
            (notification("b", 1), None),
            (notification("a", 1), None),
            (notification("c", 1), None),
        ];
        let p = run("arn:aws:sqs:us-east-1:123456789012:q.fifo", &records);
        let units: Vec<Vec<usize>> = p.batches[0]
            .iter()
            .map(|b| b.messages.iter().map(|m| m.unit).collect())
            .collect();
        assert_eq!(units, vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn fifo_targets_get_group_and_deduplication_ids() {
        let p = run(
            "arn:aws:sqs:us-east-1:123456789012:q.fifo",
            &[(notification("k", 1), None)],
        );
        let ids = p.batches[0][0].messages[0].fifo.clone().unwrap();
        assert_eq!(ids.group_id, "b/k");
        assert_eq!(ids.deduplication_id.len(), 64);
    }

    #[test]
    fn records_matching_no_target_are_counted() {
        let p = run(
            "arn:aws:sqs:us-east-1:123456789012:q?prefix=images/",
            &[(notification("docs/a", 1), None)],
        );
        assert_eq!(p.filtered_out, 1);
        assert_eq!(p.calls(), 0);
    }

    #[test]
    fn many_trace_groups_keep_first_appearance_order() {
        // 40 contexts (past the linear search), interleaved, plus records without a header.
        let headers: Vec<TraceHeader> = (0..40)
            .map(|c| {
                format!("Root=1-5759e988-{c:024x};Parent=53995c3f42cd8ad8;Sampled=1")
                    .parse()
                    .unwrap()
            })
            .collect();
        let records: Vec<_> = (0..400)
            .map(|i| {
                let trace = (i % 7 != 3).then(|| headers[(i * 13) % 40].clone());
                (notification(&format!("k{i}"), 10), trace)
            })
            .collect();
        let p = run("arn:aws:sns:us-east-1:123456789012:t", &records);
        let mut expected: Vec<(Option<TraceHeader>, Vec<usize>)> = Vec::new();
        for (unit, (_, trace)) in records.iter().enumerate() {
            match expected.iter_mut().find(|(t, _)| t == trace) {
                Some((_, units)) => units.push(unit),
                None => expected.push((trace.clone(), vec![unit])),
            }
        }
        let expected: Vec<(Option<TraceHeader>, Vec<usize>)> = expected
            .into_iter()
            .flat_map(|(t, units)| units.chunks(10).map(|c| (t.clone(), c.to_vec())).collect::<Vec<_>>())
            .collect();
        let got: Vec<(Option<TraceHeader>, Vec<usize>)> = p.batches[0]
            .iter()
            .map(|b| (b.request_trace.clone(), b.messages.iter().map(|m| m.unit).collect()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn sns_messages_carry_the_event_fields_asked_for_and_count_them() {
        let p = run(
            "arn:aws:sns:us-east-1:123456789012:t?attributes=bucket,size",
            &[(notification("k", 100), None)],
        );
        let m = &p.batches[0][0].messages[0];
        let attributes: Vec<(&str, &str, &str)> = m
            .attributes
            .iter()
            .map(|a| (a.name, a.data_type, a.value.as_str()))
            .collect();
        assert_eq!(attributes, vec![("bucket", "String", "b"), ("size", "Number", "100")]);
        assert_eq!(m.size, 100 + (6 + 6 + 1) + (4 + 6 + 3));
    }

    #[test]
    fn an_event_without_a_size_carries_no_size_attribute() {
        let mut n = (*notification("k", 10)).clone();
        n.size = None;
        let p = run(
            "arn:aws:sns:us-east-1:123456789012:t?attributes=size",
            &[(Arc::new(n), None)],
        );
        assert!(p.batches[0][0].messages[0].attributes.is_empty());
    }

    #[test]
    fn size_counts_the_traceparent_attribute() {
        let t1: TraceHeader = T1.parse().unwrap();
        let p = run(
            "arn:aws:sqs:us-east-1:123456789012:q",
            &[(notification("k", 100), Some(t1))],
        );
        assert_eq!(p.batches[0][0].messages[0].size, 100 + 11 + 6 + 55);
    }
}
