//! The pure half of an invocation: decode → choose each record's trace context → route → batch,
//! and account for what fails before anything is sent. No network.
//!
//! [`prepare`] does it for the whole payload at once. `stream` does it while the payload is read
//! — each unit planned as soon as it is decoded and each batch handed out as soon as it can take
//! no more ([`crate::plan::Planner`]) — so the first call of a 10,000-record batch leaves while the
//! rest is still being decoded, with the same batches and so the same call counts. Only a plain
//! SQS event from a standard queue streams: a FIFO source is relayed in rounds ([`crate::order`]),
//! which need the whole batch first, and every other input is small.

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::Target;
use crate::context::{Fallback, InvocationTrace, Resolved, resolve};
use crate::failure::{Reason, Undelivered};
use crate::inbound::{Carrier, Content, Inbound, Source, Unit, decode, decode_sqs_each};
use crate::logs;
use crate::message::{Batch, Notification};
use crate::order::Order;
use crate::plan::{Outgoing, Plan, Planner, plan};
use crate::response::{RelayError, Summary, UnitFailure, Units};
use crate::trace::TraceHeader;

/// Everything decided before the network: decoded units, trace contexts, routes and batches.
#[derive(Debug)]
pub struct Prepared {
    /// The decoded invocation.
    pub inbound: Inbound,
    /// The invocation's own trace context.
    pub invocation_trace: InvocationTrace,
    /// The batches to send, one plan per round ([`Order::round_of`]): one round, except for a FIFO
    /// source, where a message goes after the earlier ones of its group and object.
    pub rounds: Vec<Plan>,
    /// Counts so far.
    pub summary: Summary,
    pub(crate) outcomes: Outcomes,
}

/// One decoded record ready to plan: its unit, the notification and its outbound trace header.
type Record<'a> = (usize, &'a Arc<Notification>, Option<TraceHeader>);

/// Decode → choose each record's trace context → route → batch, for the whole payload. Units that
/// cannot be decoded or whose message exceeds a target's size limit are marked failed here.
pub fn prepare(targets: &[Target], payload: &str, trace_id: Option<&str>) -> Result<Prepared, RelayError> {
    let invocation = InvocationTrace::parse(trace_id);
    let summary = invocation_summary(&invocation);
    prepare_payload(targets, payload, invocation, summary)
}

fn prepare_payload(
    targets: &[Target],
    payload: &str,
    invocation_trace: InvocationTrace,
    summary: Summary,
) -> Result<Prepared, RelayError> {
    let inbound = decode(payload).map_err(|e| {
        tracing::error!(error = logs::text(&e).as_str(), "invocation payload rejected");
        RelayError::BadPayload(e)
    })?;
    Ok(prepare_decoded(targets, inbound, invocation_trace, summary))
}

/// The counts an invocation starts with: its own trace header, counted (and logged) if invalid.
fn invocation_summary(invocation: &InvocationTrace) -> Summary {
    let mut summary = Summary::default();
    if let InvocationTrace::Invalid(reason) = invocation {
        summary.invalid_trace_headers += 1;
        tracing::warn!(reason = logs::input(reason), "invocation trace header is invalid");
    }
    summary
}

fn prepare_decoded(
    targets: &[Target],
    inbound: Inbound,
    invocation_trace: InvocationTrace,
    mut summary: Summary,
) -> Prepared {
    let mut outcomes = Outcomes::default();
    let records = records(&inbound, &invocation_trace, &mut summary, &mut outcomes);
    let order = Order::of(&inbound);
    let rounds = (0..order.round_count())
        .map(|round| {
            let outgoing = records
                .iter()
                .filter(|(unit, _, _)| order.round_of(*unit) == round)
                .map(|(unit, n, trace)| Outgoing {
                    unit: *unit,
                    notification: n,
                    trace: trace.as_ref(),
                });
            let plan = plan(targets, outgoing);
            account_plan(targets, &plan, &mut summary, &mut outcomes);
            plan
        })
        .collect();
    drop(records);
    drop(order);
    Prepared {
        inbound,
        invocation_trace,
        rounds,
        summary,
        outcomes,
    }
}

/// What [`stream`] leaves once the payload is read.
#[derive(Debug)]
pub(crate) enum Streamed {
    /// Every batch was handed out; what failed before sending is in `outcomes`. Each unit's
    /// records were dropped once planned: its batches hold what is still to be sent.
    Sent {
        units: Units,
        summary: Summary,
        outcomes: Outcomes,
        /// The distinct trace contexts of the messages handed out (when asked for).
        upstream: Vec<TraceHeader>,
    },
    /// Not a plain SQS event from a standard queue: to be sent by rounds. If the one-pass decoder
    /// gave up part way (a malformed envelope, which Lambda's event source mapping does not
    /// produce), the batches handed out before go too: at least once, as always.
    Rounds(Prepared),
}

/// [`prepare`] while decoding: `send(target, batch)` gets each batch as soon as it is complete
/// (each target's in the order they must be sent), then the rest once the payload is read.
/// `links`: also collect the distinct upstream contexts (the process span's links).
pub(crate) fn stream(
    targets: &[Target],
    payload: &str,
    invocation: InvocationTrace,
    links: bool,
    mut send: impl FnMut(usize, Batch),
) -> Result<Streamed, RelayError> {
    let start = invocation_summary(&invocation);
    let mut summary = start.clone();
    let mut outcomes = Outcomes::default();
    let mut planner = Planner::new(targets);
    let mut upstream = Upstream::new(links);
    let mut fifo = false;
    let mut message_ids = Vec::new();
    let decoded = decode_sqs_each(payload, |source, index, unit| {
        if source == (Source::Sqs { fifo: true }) {
            fifo = true;
            return Some(unit);
        }
        if let Some((list, header)) = unit_records(index, &unit, &invocation, true, &mut summary, &mut outcomes) {
            for notification in list {
                let trace = header.as_ref();
                planner.add(&Outgoing {
                    unit: index,
                    notification,
                    trace,
                });
            }
        }
        for (target, batch) in planner.take_complete() {
            upstream.note(&batch);
            send(target, batch);
        }
        message_ids.push(unit.message_id);
        None
    });
    let source = match decoded {
        Some(inbound) if !fifo => inbound.source,
        Some(inbound) => return Ok(Streamed::Rounds(prepare_decoded(targets, inbound, invocation, start))),
        None => return prepare_payload(targets, payload, invocation, start).map(Streamed::Rounds),
    };
    let rest = planner.finish();
    account_plan(targets, &rest, &mut summary, &mut outcomes);
    for (target, batches) in rest.batches.into_iter().enumerate() {
        for batch in batches {
            upstream.note(&batch);
            send(target, batch);
        }
    }
    Ok(Streamed::Sent {
        units: Units { source, message_ids },
        summary,
        outcomes,
        upstream: upstream.list,
    })
}

/// Every decoded record with its trace context; undecodable units are failed, test events counted.
fn records<'a>(
    inbound: &'a Inbound,
    invocation: &InvocationTrace,
    summary: &mut Summary,
    outcomes: &mut Outcomes,
) -> Vec<Record<'a>> {
    let record_level = matches!(inbound.source, Source::Sqs { .. });
    let mut records = Vec::new();
    for (index, unit) in inbound.units.iter().enumerate() {
        if let Some((list, header)) = unit_records(index, unit, invocation, record_level, summary, outcomes) {
            records.extend(list.iter().map(|n| (index, n, header.clone())));
        }
    }
    records
}

/// One unit's notifications and their outbound trace header, counted and logged; an undecodable
/// unit is failed, a test event counted.
fn unit_records<'u>(
    index: usize,
    unit: &'u Unit,
    invocation: &InvocationTrace,
    record_level: bool,
    summary: &mut Summary,
    outcomes: &mut Outcomes,
) -> Option<(&'u [Arc<Notification>], Option<TraceHeader>)> {
    match &unit.content {
        Err(e) => {
            summary.received += 1;
            tracing::error!(
                message_id = unit.message_id.as_deref().map(logs::input),
                error = logs::text(e).as_str(),
                "record rejected"
            );
            outcomes.fail(index, Undelivered::unit(Reason::BadInput(e.clone())));
            None
        }
        Ok(Content::TestEvent) => {
            summary.test_events += 1;
            None
        }
        Ok(Content::Notifications(list)) => {
            let resolved = resolve(&unit.carrier, invocation, record_level);
            count_fallback(unit, &resolved, summary);
            summary.received += list.len();
            log_received(unit, list, &resolved);
            Some((list, resolved.header))
        }
    }
}

/// Counts and logs a unit that did not use its own trace context.
fn count_fallback(unit: &Unit, resolved: &Resolved, summary: &mut Summary) {
    let Some(fallback) = &resolved.fallback else { return };
    summary.fallbacks += 1;
    if matches!(unit.carrier, Carrier::Invalid(_)) {
        summary.invalid_trace_headers += 1;
    }
    let (to, reason) = match fallback {
        Fallback::ToInvocation { reason } => ("invocation", reason),
        Fallback::ToNone { reason } => ("none", reason),
    };
    tracing::warn!(
        message_id = unit.message_id.as_deref().map(logs::input),
        fallback = to,
        reason = logs::input(reason),
        "trace context fallback"
    );
}

fn log_received(unit: &Unit, list: &[Arc<Notification>], resolved: &Resolved) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let trace = resolved.header.as_ref().map(ToString::to_string);
    for n in list {
        tracing::debug!(
            message_id = unit.message_id.as_deref().map(logs::input),
            bucket = logs::input(&n.bucket),
            key = logs::input(&n.key),
            event = logs::input(&n.event_name),
            trace = trace.as_deref(),
            "record received"
        );
    }
}

/// Counts what a round's plan filtered out and fails the units with a message their target refuses.
fn account_plan(targets: &[Target], plan: &Plan, summary: &mut Summary, outcomes: &mut Outcomes) {
    summary.filtered_out += plan.filtered_out;
    for refused in &plan.refused {
        let target = targets
            .get(refused.target)
            .map_or_else(|| format!("target #{}", refused.target), |t| t.destination.to_string());
        let failure = undelivered(&refused.message.notification, &target, refused.reason.clone());
        log_undelivered(&failure);
        summary.messages_failed += 1;
        outcomes.fail(refused.message.unit, failure);
    }
}

/// The first reason each retry unit failed, if it did.
#[derive(Debug, Default)]
pub(crate) struct Outcomes(Vec<Option<Undelivered>>);

impl Outcomes {
    /// Whether `unit` failed.
    pub(crate) fn failed(&self, unit: usize) -> bool {
        self.0.get(unit).is_some_and(Option::is_some)
    }

    /// Marks `unit` failed; the first reason is the one reported.
    pub(crate) fn fail(&mut self, unit: usize, failure: Undelivered) {
        if self.0.len() <= unit {
            self.0.resize(unit + 1, None);
        }
        if let Some(slot) = self.0.get_mut(unit) {
            slot.get_or_insert(failure);
        }
    }

    /// The failed units, with their message ids, in unit order.
    pub(crate) fn into_failures(self, units: &Units) -> Vec<UnitFailure> {
        self.0
            .into_iter()
            .zip(&units.message_ids)
            .filter_map(|(failure, message_id)| {
                failure.map(|failure| UnitFailure {
                    message_id: message_id.clone(),
                    failure,
                })
            })
            .collect()
    }
}

/// The failure of one message: its object, its target and why.
pub(crate) fn undelivered(n: &Notification, target: &str, reason: Reason) -> Undelivered {
    Undelivered {
        object: Some((n.bucket.clone(), n.key.clone())),
        target: Some(target.to_owned()),
        reason,
    }
}

/// Logs an undelivered message, input values escaped.
pub(crate) fn log_undelivered(failure: &Undelivered) {
    let (bucket, key) = failure
        .object
        .as_ref()
        .map_or(("", ""), |(b, k)| (b.as_str(), k.as_str()));
    tracing::error!(
        bucket = logs::input(bucket),
        key = logs::input(key),
        target = failure.target.as_deref(),
        error = logs::text(&failure.reason).as_str(),
        "message not delivered"
    );
}

/// The distinct trace contexts of the messages handed out, in order of first appearance: the
/// process span's links. Kept only when asked for (recording is on).
struct Upstream {
    on: bool,
    seen: HashSet<TraceHeader>,
    list: Vec<TraceHeader>,
}

impl Upstream {
    fn new(on: bool) -> Self {
        Upstream {
            on,
            seen: HashSet::new(),
            list: Vec::new(),
        }
    }

    fn note(&mut self, batch: &Batch) {
        if !self.on {
            return;
        }
        for header in batch.messages.iter().filter_map(|m| m.trace.as_ref()) {
            if self.seen.insert(header.clone()) {
                self.list.push(header.clone());
            }
        }
    }
}

/// The distinct trace contexts the planned messages came with, in order of first appearance.
pub(crate) fn upstream_contexts(rounds: &[Plan]) -> Vec<TraceHeader> {
    let mut upstream = Upstream::new(true);
    for batch in rounds.iter().flat_map(|plan| plan.batches.iter().flatten()) {
        upstream.note(batch);
    }
    upstream.list
}
