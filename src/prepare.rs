//! The pure half of an invocation: decode → choose each record's trace context → route → batch,
//! and account for what fails before anything is sent. No network.
//!
//! [`prepare`] does it for the whole payload at once. `stream` does it while the payload is read
//! — each unit planned as soon as it is decoded and each batch handed out as soon as it can take
//! no more ([`crate::plan::Planner`]) — so the first call of a 10,000-record batch leaves while the
//! rest is still being decoded, with the same batches and so the same call counts. An SNS batch
//! is cut by trace context, so it can only leave early once no later message carries its context:
//! when messages pile up in open batches, `stream` looks ahead at every message's trace carrier
//! (`ContextEnds`) and seals each context after its last message. Only a plain SQS event from a
//! standard queue streams: a FIFO source is relayed in rounds ([`crate::order`]),
//! which need the whole batch first, and every other input is small.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use crate::config::Target;
use crate::context::{Fallback, InvocationTrace, Resolved, resolve};
use crate::failure::{Reason, Undelivered};
use crate::inbound::{Carrier, Content, DecodeError, Inbound, Source, Unit, decode, decode_sqs_each, sqs_carriers};
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
    let inbound = decode(payload).map_err(rejected)?;
    Ok(prepare_decoded(targets, inbound, invocation_trace, summary))
}

/// `payload` as text, for the decoders that need it whole; rejected when it is not UTF-8.
fn text_of(payload: &[u8]) -> Result<&str, RelayError> {
    std::str::from_utf8(payload).map_err(|e| rejected(DecodeError::NotJson(e.to_string())))
}

/// The error a payload that is no event is answered with, logged.
fn rejected(e: DecodeError) -> RelayError {
    tracing::error!(error = logs::text(&e).as_str(), "invocation payload rejected");
    RelayError::BadPayload(e)
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

/// Where [`stream`] hands out batches: each target's sender, through a channel.
pub(crate) trait Outlet {
    /// Hands `batch` to target `target`'s sender if it can take it now, or gives it back.
    fn offer(&mut self, target: usize, batch: Batch) -> Result<(), Batch>;
    /// Hands `batch` to target `target`'s sender, waiting until it can take it.
    fn hand(&mut self, target: usize, batch: Batch);
}

/// Every batch kept, per target, to be sent once the payload is read.
impl Outlet for Vec<Vec<Batch>> {
    fn offer(&mut self, target: usize, batch: Batch) -> Result<(), Batch> {
        self.hand(target, batch);
        Ok(())
    }

    fn hand(&mut self, target: usize, batch: Batch) {
        if let Some(batches) = self.get_mut(target) {
            batches.push(batch);
        }
    }
}

/// [`prepare`] while decoding: `outlet` gets each batch as soon as it is complete (each target's
/// in the order they must be sent), then the rest once the payload is read. `links`: also
/// collect the distinct upstream contexts (the process span's links). The payload is bytes as
/// received: an SQS event is checked to be UTF-8 string by string as it is decoded; anything else
/// as a whole, before the general decoder reads it.
pub(crate) fn stream(
    targets: &[Target],
    payload: &[u8],
    invocation: InvocationTrace,
    links: bool,
    outlet: &mut impl Outlet,
) -> Result<Streamed, RelayError> {
    let start = invocation_summary(&invocation);
    let mut summary = start.clone();
    let mut outcomes = Outcomes::default();
    let mut planner = Planner::new(targets);
    let mut ends = ContextEnds::default();
    let mut upstream = Upstream::new(links);
    let mut fifo = false;
    let mut message_ids = Vec::new();
    let decoded = decode_sqs_each(payload, |source, index, unit| {
        if source == (Source::Sqs { fifo: true }) {
            fifo = true;
            return Some(unit);
        }
        let planned = unit_records(index, &unit, &invocation, true, &mut summary, &mut outcomes);
        if let Some((list, header)) = &planned {
            for notification in *list {
                let trace = header.as_ref();
                planner.add(&Outgoing {
                    unit: index,
                    notification,
                    trace,
                });
            }
        }
        let trace = planned.as_ref().map(|(_, header)| header.as_ref());
        ends.seal_after(index, trace, &mut planner);
        let look = || look_ahead(payload, &invocation, index);
        if ends.due(planner.held(), false) {
            ends.learn(look(), &mut planner);
        }
        ends.hand_out(&mut planner, &mut upstream, outlet, look);
        message_ids.push(unit.message_id);
        None
    });
    let source = match decoded {
        Some(inbound) if !fifo => inbound.source,
        Some(inbound) => return Ok(Streamed::Rounds(prepare_decoded(targets, inbound, invocation, start))),
        None => return prepare_payload(targets, text_of(payload)?, invocation, start).map(Streamed::Rounds),
    };
    let rest = planner.finish();
    account_plan(targets, &rest, &mut summary, &mut outcomes);
    hand_all(rest.batches, &mut upstream, outlet);
    Ok(Streamed::Sent {
        units: Units { source, message_ids },
        summary,
        outcomes,
        upstream: upstream.list,
    })
}

/// Hands out every batch of every target, waiting for each sender as needed.
fn hand_all(batches: Vec<Vec<Batch>>, upstream: &mut Upstream, outlet: &mut impl Outlet) {
    for (target, batches) in batches.into_iter().enumerate() {
        for batch in batches {
            upstream.note(&batch);
            outlet.hand(target, batch);
        }
    }
}

/// Messages held in open batches past which the stream looks ahead for the end of each trace
/// context: as soon as a sender is busy (the look ahead then costs no time), or nothing was handed
/// out yet (no call can leave before it).
const LOOK_AHEAD_PAST_HELD: usize = 64;
/// Messages held past which it looks ahead at once.
const LOOK_AHEAD_AT_LATEST: usize = 1_024;

/// What the look ahead found: per unit, whether no later unit carries its trace context; and
/// the contexts that ended at or before the unit it was made after.
type Found = Option<(Vec<bool>, Vec<Option<TraceHeader>>)>;

/// Which unit is the last of its trace context, once looked at. An SNS batch is cut by trace
/// context, so without this every context's last batch waits for the end of the payload: with a
/// context per record, 10,000 one-message batches (over a kilobyte each with their notification)
/// held while the payload is read. The look ahead reads only the messages' trace carriers (about
/// 5 ms for 6 MB), only once messages pile up (a context per 10 records never gets there), and
/// when it can, while a sender is busy, so the first calls are not kept waiting for it.
#[derive(Default)]
struct ContextEnds {
    /// `None` until looked at; then per unit, whether it is the last of its context (empty if
    /// the look ahead could not read the payload).
    last: Option<Vec<bool>>,
    /// Whether any batch was handed out yet.
    handed: bool,
}

impl ContextEnds {
    /// Whether to look ahead now, with `held` messages held and a sender `busy` or not.
    fn due(&self, held: usize, busy: bool) -> bool {
        self.last.is_none() && held > LOOK_AHEAD_PAST_HELD && (busy || !self.handed || held > LOOK_AHEAD_AT_LATEST)
    }

    /// Takes in what the look ahead found: the contexts that ended already are sealed.
    fn learn(&mut self, found: Found, planner: &mut Planner<'_>) {
        let (last, ended) = found.unwrap_or_default();
        ended.iter().for_each(|trace| planner.seal(trace.as_ref()));
        self.last = Some(last);
    }

    /// After unit `index`, planned with outbound header `trace` (`None`: it planned nothing):
    /// seals its context if no later unit carries it.
    fn seal_after(&self, index: usize, trace: Option<Option<&TraceHeader>>, planner: &mut Planner<'_>) {
        if let (Some(last), Some(trace)) = (&self.last, trace)
            && last.get(index) == Some(&true)
        {
            planner.seal(trace);
        }
    }

    /// Hands out every complete batch; where a sender cannot take one yet, looks ahead first if
    /// due, instead of only waiting.
    fn hand_out(
        &mut self,
        planner: &mut Planner<'_>,
        upstream: &mut Upstream,
        outlet: &mut impl Outlet,
        look: impl FnOnce() -> Found,
    ) {
        let held = planner.held();
        let (mut look, mut found) = (Some(look), None);
        for (target, batch) in planner.take_complete() {
            upstream.note(&batch);
            self.handed = true;
            if let Err(batch) = outlet.offer(target, batch) {
                if let Some(look) = look.take_if(|_| self.due(held, true)) {
                    found = Some(look());
                }
                outlet.hand(target, batch);
            }
        }
        if let Some(found) = found {
            self.learn(found, planner);
        }
    }
}

/// Which unit of an SQS event is the last of its trace context — the outbound header
/// [`unit_records`] resolves for it, from its carrier alone — and the contexts that ended at or
/// before unit `through`. Contexts are compared by a 64-bit hash: two that collide count as one,
/// so one of them is only sealed at the end, never too early.
fn look_ahead(
    payload: &[u8],
    invocation: &InvocationTrace,
    through: usize,
) -> Option<(Vec<bool>, Vec<Option<TraceHeader>>)> {
    let hasher = RandomState::new();
    let mut hashes = Vec::new();
    let mut first = Vec::with_capacity(through + 1);
    for (index, carrier) in sqs_carriers(payload)?.enumerate() {
        let trace = resolve(&carrier, invocation, true).header;
        hashes.push(hasher.hash_one(&trace));
        if index <= through {
            first.push(trace);
        }
    }
    let mut seen = HashSet::with_capacity(hashes.len());
    let mut last: Vec<bool> = hashes.iter().rev().map(|h| seen.insert(*h)).collect();
    last.reverse();
    let ended = first
        .into_iter()
        .zip(&last)
        .filter(|(_, last)| **last)
        .map(|(trace, _)| trace);
    let ended = ended.collect();
    Some((last, ended))
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::parse_targets;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t";
    const TARGETS: &str = "arn:aws:sqs:us-east-1:123456789012:q,arn:aws:sns:us-east-1:123456789012:t";

    /// An SQS event of `n` messages from a standard queue, message `i` carrying trace context
    /// `context(i)`, each an S3 notification of one record (the S3 put fixture's).
    fn sqs_event(n: usize, context: impl Fn(usize) -> usize) -> String {
        let body = include_str!("../events/s3-put.json");
        let records: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "messageId": format!("m{i}"),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:in",
                    "body": body,
                    "attributes": {
                        "AWSTraceHeader": format!("Root=1-6745a1b2-{:024x};Parent=1111111111111111;Sampled=1", context(i)),
                    },
                })
            })
            .collect();
        json!({ "Records": records }).to_string()
    }

    /// Channels of `room` batches per target, whose senders take everything queued whenever the
    /// decoder waits; records what is handed out: each batch's target and units.
    struct Channels {
        room: usize,
        queued: Vec<usize>,
        sent: Vec<(usize, Vec<usize>)>,
    }

    impl Outlet for Channels {
        fn offer(&mut self, target: usize, batch: Batch) -> Result<(), Batch> {
            if self.queued[target] == self.room {
                return Err(batch);
            }
            self.queued[target] += 1;
            self.sent
                .push((target, batch.messages.iter().map(|m| m.unit).collect()));
            Ok(())
        }

        fn hand(&mut self, target: usize, batch: Batch) {
            self.queued[target] = 0;
            self.offer(target, batch).unwrap();
        }
    }

    /// Streams `payload` to `targets` through channels of 16; what was handed out, in order.
    fn streamed(targets: &str, payload: &str) -> Vec<(usize, Vec<usize>)> {
        let targets = parse_targets(targets).unwrap();
        let mut channels = Channels {
            room: 16,
            queued: vec![0; targets.len()],
            sent: Vec::new(),
        };
        let answer = stream(
            &targets,
            payload.as_bytes(),
            InvocationTrace::Absent,
            false,
            &mut channels,
        );
        assert!(matches!(answer, Ok(Streamed::Sent { .. })));
        channels.sent
    }

    #[test]
    fn with_a_trace_context_per_record_sns_batches_leave_once_a_sender_is_busy() {
        let sent = streamed(TARGETS, &sqs_event(1_000, |i| i));
        // The 17th SQS batch finds its channel full: the decoder looks ahead while it waits.
        let sqs_before_first_sns = sent.iter().take_while(|(t, _)| *t == 0).count();
        assert_eq!(sqs_before_first_sns, 17);
        // Exact call counts: 100 SQS calls, one SNS call per trace context.
        assert_eq!(sent.iter().filter(|(t, _)| *t == 0).count(), 100);
        assert_eq!(sent.iter().filter(|(t, _)| *t == 1).count(), 1_000);
    }

    #[test]
    fn with_nothing_handed_out_yet_it_looks_ahead_once_64_messages_are_held() {
        // 100 contexts of one record each, then 900 records of one context: without looking
        // ahead, the first 100 would only leave at the end, after the other 90 batches.
        let sent = streamed(TOPIC, &sqs_event(1_000, |i| i.min(100)));
        assert_eq!(sent[0], (0, vec![0]));
        assert_eq!(sent.len(), 100 + 90);
    }

    #[test]
    fn a_context_that_comes_back_waits_for_it() {
        // Each context twice, 300 records apart: still one SNS call per context.
        let sent = streamed(TARGETS, &sqs_event(600, |i| i % 300));
        let sns: Vec<&Vec<usize>> = sent.iter().filter(|(t, _)| *t == 1).map(|(_, units)| units).collect();
        assert_eq!(sns.len(), 300);
        assert!(sns.iter().all(|units| units.len() == 2 && units[1] == units[0] + 300));
    }
}
