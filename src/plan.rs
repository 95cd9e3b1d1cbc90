//! Planning: which message goes to which target, with which trace header, in which batch (CONTRACT §4).
//!
//! Pure: no network. One message per S3 record per matching target. SQS batches hold at most 10
//! entries and 1 MiB; each entry carries its own `AWSTraceHeader`, so one batch may mix trace
//! contexts. SNS takes trace context only from the request's `X-Amzn-Trace-Id` header, so SNS
//! batches are grouped by trace context (at most 10 entries and 256 KiB each). On FIFO topics,
//! grouping must not reorder the events of one object, so there a new batch starts whenever the
//! context changes instead. A message too large for its target fails alone.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;

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

/// Routes every record and batches the messages per target.
pub fn plan<'a>(targets: &[Target], records: impl IntoIterator<Item = Outgoing<'a>>) -> Plan {
    let mut planner = Planner::new(targets);
    for record in records {
        planner.add(&record);
    }
    planner.finish()
}

/// Routes records and batches their messages one record at a time: [`plan`] for a whole
/// invocation, or streaming, where the relay sends each batch as soon as it can take no more
/// ([`Planner::take_complete`]) while later records are still being decoded. Either way the cut is
/// the same, so call counts stay exact.
pub struct Planner<'t> {
    targets: &'t [Target],
    batchers: Vec<Batcher>,
    filtered_out: usize,
}

impl<'t> Planner<'t> {
    /// A planner for `targets`, nothing planned yet.
    pub fn new(targets: &'t [Target]) -> Self {
        let batchers = targets
            .iter()
            .enumerate()
            .map(|(index, t)| Batcher::new(index, &t.destination))
            .collect();
        Planner {
            targets,
            batchers,
            filtered_out: 0,
        }
    }

    /// Routes one record and batches its messages.
    pub fn add(&mut self, record: &Outgoing<'_>) {
        let n = record.notification;
        // The W3C form counts toward each message's size; it is written only when a call is built.
        let traceparent_len = record.trace.and_then(TraceHeader::traceparent_len);
        let mut routed = false;
        let filters = self.targets.iter().map(|t| t.filters.as_slice());
        for t in route(filters, &n.key, &n.event_name) {
            routed = true;
            if let (Some(batcher), Some(target)) = (self.batchers.get_mut(t), self.targets.get(t)) {
                let (m, refusal) = message(record.unit, n, record.trace, traceparent_len, target);
                batcher.take(m, refusal);
            }
        }
        if !routed {
            self.filtered_out += 1;
        }
    }

    /// Messages in batches still open: held until their batch can take no more, or the payload ends.
    pub fn held(&self) -> usize {
        self.batchers.iter().map(|b| b.held).sum()
    }

    /// No later record carries `trace`: every SNS batch of that trace context is complete now,
    /// instead of waiting for the end of the payload. The cut is the one [`Planner::finish`] would
    /// make, so call counts stay exact; a record of that context that still came would start a
    /// batch of its own (one call more, nothing lost).
    pub fn seal(&mut self, trace: Option<&TraceHeader>) {
        for batcher in &mut self.batchers {
            if batcher.grouping == Grouping::ByTrace
                && let Some(at) = batcher.find_group(trace)
            {
                batcher.seal_group(at);
            }
        }
    }

    /// The batches that can take no more messages since the last call, with their target index;
    /// each target's in the order they must be sent.
    pub fn take_complete(&mut self) -> impl Iterator<Item = (usize, Batch)> + '_ {
        self.batchers.iter_mut().flat_map(|b| {
            let target = b.target;
            b.complete.drain(..).map(move |(_, batch)| (target, batch))
        })
    }

    /// Everything not taken yet: each target's batches (group after group), refusals, filtered.
    pub fn finish(self) -> Plan {
        let mut plan = Plan {
            batches: Vec::with_capacity(self.batchers.len()),
            filtered_out: self.filtered_out,
            ..Plan::default()
        };
        for batcher in self.batchers {
            let (batches, refused) = batcher.finish();
            plan.refused.extend(refused);
            plan.batches.push(batches);
        }
        plan
    }
}

/// How one target's messages are grouped before they are cut into batches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// In order, one group (SQS, event buses, state machines: each entry carries its own trace).
    None,
    /// By trace context, groups in order of first appearance (SNS: one trace header per call).
    ByTrace,
    /// Maximal runs of equal trace context (FIFO SNS: grouping must not reorder).
    Runs,
}

/// One target's batches while the plan is built: each message goes straight into its batch, so no
/// list of all of a target's messages is held beside the batches (at 10,000 records, that list was
/// the invocation's peak memory).
struct Batcher {
    target: usize,
    grouping: Grouping,
    limits: (usize, usize),
    groups: Vec<Group>,
    /// Groups sealed ([`Planner::seal`]): their places are taken by the next groups opened, so
    /// with a trace context per record only the groups still open are held, not 10,000.
    sealed: Vec<usize>,
    /// Messages in the groups' open batches.
    held: usize,
    /// Trace context → open group, built once there are more than [`LINEAR_GROUPS`] groups. It
    /// holds only group indexes, hashed and compared through the groups' own headers: keyed by a
    /// copy of each header it took 96 bytes a group.
    index: HashTable<usize>,
    indexed: bool,
    hasher: RandomState,
    /// Batches that can take no more messages, with their group, in the order they closed.
    complete: Vec<(usize, Batch)>,
    refused: Vec<Refused>,
}

/// A group of messages sharing a request trace header, and its open batch (empty when none is
/// open), which holds the group's header: with a trace context per record, 10,000 groups, so the
/// header is kept once, not beside the batch as well.
struct Group {
    open: Batch,
    open_bytes: usize,
    /// Sealed: no message goes in any more, and the place is free for a new group.
    sealed: bool,
}

impl Batcher {
    fn new(target: usize, destination: &Destination) -> Self {
        let grouping = match destination {
            Destination::Sns { fifo: false, .. } => Grouping::ByTrace,
            Destination::Sns { fifo: true, .. } => Grouping::Runs,
            _ => Grouping::None,
        };
        Batcher {
            target,
            grouping,
            limits: (max_entries(destination), max_batch_bytes(destination)),
            groups: Vec::new(),
            sealed: Vec::new(),
            held: 0,
            index: HashTable::new(),
            indexed: false,
            hasher: RandomState::new(),
            complete: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Batches `m`, or sets it aside with the reason its target cannot take it. A batch is
    /// complete at 10 entries, or when the next message of its group exceeds the byte limit or
    /// (FIFO) carries a second event of an object: if one entry failed while a later event of the
    /// same object in the same call was accepted, resending it would reorder them.
    fn take(&mut self, m: Message, refusal: Option<Reason>) {
        let (max_entries, limit) = self.limits;
        let refusal = refusal.or_else(|| (m.size > limit).then_some(Reason::TooLarge { size: m.size, limit }));
        if let Some(reason) = refusal {
            self.refused.push(Refused {
                message: m,
                target: self.target,
                reason,
            });
            return;
        }
        let at = self.group_of(m.trace.as_ref());
        let Some(group) = self.groups.get(at) else { return };
        if group.open_bytes + m.size > limit || same_group_in(&group.open, &m) {
            self.close_group(at);
        }
        let Some(group) = self.groups.get_mut(at) else { return };
        group.open_bytes += m.size;
        let open = &mut group.open;
        grow_by_doubling(&mut open.messages, max_entries);
        open.messages.push(m);
        self.held += 1;
        if open.messages.len() >= max_entries {
            self.close_group(at);
        }
    }

    /// Group `at`'s open batch, if it holds any message, is complete.
    fn close_group(&mut self, at: usize) {
        if let Some(batch) = self.groups.get_mut(at).and_then(Group::close) {
            self.held -= batch.messages.len();
            self.complete.push((at, batch));
        }
    }

    /// Group `at`'s open batch is complete, and its place free for the next group opened.
    fn seal_group(&mut self, at: usize) {
        self.close_group(at);
        let hash = |g: &Group| self.hasher.hash_one(g.open.request_trace.as_ref());
        let Some(group) = self.groups.get_mut(at) else { return };
        if self.indexed
            && let Ok(entry) = self.index.find_entry(hash(group), |i| *i == at)
        {
            entry.remove();
        }
        group.sealed = true;
        self.sealed.push(at);
    }

    /// The index of the group `trace` goes in, opened if new.
    fn group_of(&mut self, trace: Option<&TraceHeader>) -> usize {
        self.find_group(trace).unwrap_or_else(|| self.open_group(trace))
    }

    /// The index of the group `trace` goes in, if it is open.
    fn find_group(&mut self, trace: Option<&TraceHeader>) -> Option<usize> {
        let is = |g: &Group| !g.sealed && g.open.request_trace.as_ref() == trace;
        match self.grouping {
            Grouping::None => (!self.groups.is_empty()).then_some(0),
            Grouping::Runs => self.groups.last().filter(|g| is(g)).map(|_| self.groups.len() - 1),
            Grouping::ByTrace if self.groups.len() <= LINEAR_GROUPS => self.groups.iter().position(is),
            Grouping::ByTrace => {
                if !self.indexed {
                    (0..self.groups.len()).for_each(|i| self.index_group(i));
                    self.indexed = true;
                }
                let groups = &self.groups;
                let same = |i: &usize| groups.get(*i).is_some_and(is);
                self.index.find(self.hasher.hash_one(trace), same).copied()
            }
        }
    }

    /// Opens a group for `trace`; a new run ends the previous one, whose batch is then complete.
    fn open_group(&mut self, trace: Option<&TraceHeader>) -> usize {
        if self.grouping == Grouping::Runs && !self.groups.is_empty() {
            self.close_group(self.groups.len() - 1);
        }
        let group = Group {
            open: Batch {
                target: self.target,
                request_trace: trace.filter(|_| self.grouping != Grouping::None).cloned(),
                messages: Vec::new(),
            },
            open_bytes: 0,
            sealed: false,
        };
        // A sealed group's batches were all taken when it was sealed (`complete` keeps their place).
        let free = self.sealed.pop().and_then(|at| Some(at).zip(self.groups.get_mut(at)));
        let at = match free {
            Some((at, place)) => {
                *place = group;
                at
            }
            None => {
                self.groups.push(group);
                self.groups.len() - 1
            }
        };
        if self.indexed {
            self.index_group(at);
        }
        at
    }

    /// Adds group `at` to the index, unless it is sealed.
    fn index_group(&mut self, at: usize) {
        if self.groups.get(at).is_none_or(|g| g.sealed) {
            return;
        }
        let (groups, hasher) = (&self.groups, &self.hasher);
        let hash_of = |i: &usize| {
            groups
                .get(*i)
                .map_or(0, |g| hasher.hash_one(g.open.request_trace.as_ref()))
        };
        self.index.insert_unique(hash_of(&at), at, hash_of);
    }

    /// The target's batches not taken yet, group after group, and the messages it refused.
    fn finish(self) -> (Vec<Batch>, Vec<Refused>) {
        let mut batches = self.complete;
        // Reserved at once: growing by doubling to 10,000 one-message batches held both copies.
        batches.reserve_exact(self.groups.iter().filter(|g| !g.open.messages.is_empty()).count());
        let open = self.groups.into_iter().enumerate();
        batches.extend(
            open.filter(|(_, g)| !g.open.messages.is_empty())
                .map(|(at, g)| (at, g.open)),
        );
        // Stable: within a group, batches stay in the order they were cut.
        batches.sort_by_key(|(at, _)| *at);
        (batches.into_iter().map(|(_, b)| b).collect(), self.refused)
    }
}

impl Group {
    /// Takes the open batch, if it holds any message: it is complete.
    fn close(&mut self) -> Option<Batch> {
        if self.open.messages.is_empty() {
            return None;
        }
        self.open_bytes = 0;
        let next = Batch {
            target: self.open.target,
            request_trace: self.open.request_trace.clone(),
            messages: Vec::new(),
        };
        Some(std::mem::replace(&mut self.open, next))
    }
}

/// Makes room for one more element: capacity 1, 2, 4, … but never above `cap`. A batch of one
/// message then holds one slot, not `Vec`'s first four (or ten preallocated): with a trace
/// context per record, 10,000 one-message SNS batches.
fn grow_by_doubling<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() {
        let room = cap.saturating_sub(v.len()).max(1);
        v.reserve_exact(v.len().max(1).min(room));
    }
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
    traceparent_len: Option<usize>,
    target: &Target,
) -> (Message, Option<Reason>) {
    let attributes: Vec<MessageAttribute> = target.attributes.iter().filter_map(|a| a.of(n)).collect();
    let attribute_bytes = traceparent_len.map_or(0, |len| TRACEPARENT.len() + STRING_DATA_TYPE.len() + len)
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

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

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

    /// The batching rule stated whole: group every message first (by trace context for SNS, in
    /// runs of one context for FIFO SNS, one group otherwise), then cut each group in order at 10
    /// entries, the byte limit, or (FIFO) a second event of an object.
    fn model(p: &Plan, targets: &str, records: &[(Arc<Notification>, Option<TraceHeader>)]) -> Vec<Vec<Vec<String>>> {
        let targets = parse_targets(targets).unwrap();
        let refused: HashSet<(usize, usize)> = p.refused.iter().map(|r| (r.target, r.message.unit)).collect();
        let trace_of = |u: usize| records[u].1.clone();
        // A message's size (body and attributes) is the plan's own; size rules are tested apart.
        let size: HashMap<(usize, usize), usize> = p
            .batches
            .iter()
            .flatten()
            .flat_map(|b| b.messages.iter().map(|m| ((b.target, m.unit), m.size)))
            .collect();
        targets
            .iter()
            .enumerate()
            .map(|(t, target)| {
                let d = &target.destination;
                let units = (0..records.len()).filter(|u| !refused.contains(&(t, *u)));
                let mut groups: Vec<(Option<TraceHeader>, Vec<usize>)> = Vec::new();
                for u in units {
                    let at = match d {
                        Destination::Sns { fifo: false, .. } => groups.iter().position(|g| g.0 == trace_of(u)),
                        Destination::Sns { fifo: true, .. } => {
                            groups.len().checked_sub(1).filter(|&i| groups[i].0 == trace_of(u))
                        }
                        _ => groups.len().checked_sub(1),
                    };
                    match at {
                        Some(i) => groups[i].1.push(u),
                        None => groups.push((trace_of(u), vec![u])),
                    }
                }
                let mut batches: Vec<Vec<String>> = Vec::new();
                for (_, group) in groups {
                    let (mut open, mut bytes): (Vec<String>, usize) = (Vec::new(), 0);
                    for u in group {
                        let (key, size) = (records[u].0.key.clone(), size[&(t, u)]);
                        let repeat = d.is_fifo() && open.contains(&key);
                        if open.len() == max_entries(d) || bytes + size > max_batch_bytes(d) || repeat {
                            batches.push(std::mem::take(&mut open));
                            bytes = 0;
                        }
                        open.push(key);
                        bytes += size;
                    }
                    batches.extend((!open.is_empty()).then_some(open));
                }
                batches
            })
            .collect()
    }

    /// One target of each kind: SQS, SNS, FIFO SNS, FIFO SQS, an event bus, a state machine.
    const EVERY_KIND: &str = "arn:aws:sqs:us-east-1:123456789012:q,arn:aws:sns:us-east-1:123456789012:t,\
        arn:aws:sns:us-east-1:123456789012:t.fifo,https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo,\
        arn:aws:events:us-east-1:123456789012:event-bus/b,arn:aws:states:us-east-1:123456789012:stateMachine:m";

    /// Records from generated `(trace, key, size)` picks: three trace contexts (one none), six
    /// keys, sizes from 1 KiB to beyond SNS's 256 KiB (some batches close on bytes, a few refuse).
    fn picked(picks: &[(usize, usize, usize)]) -> Vec<(Arc<Notification>, Option<TraceHeader>)> {
        let traces: Vec<Option<TraceHeader>> = vec![None, Some(T1.parse().unwrap()), Some(T2.parse().unwrap())];
        picks
            .iter()
            .map(|&(trace, key, size)| {
                let body = [1_024, 60_000, 140_000, 270_000][size % 4];
                (notification(&format!("k{key}"), body), traces[trace % 3].clone())
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn batches_are_cut_as_if_every_message_were_grouped_first(
            picks in proptest::collection::vec((0usize..4, 0usize..6, 0usize..20), 0..120),
        ) {
            let records = picked(&picks);
            let p = run(EVERY_KIND, &records);
            let keys: Vec<Vec<Vec<String>>> = p
                .batches
                .iter()
                .map(|bs| bs.iter().map(|b| b.messages.iter().map(|m| m.notification.key.clone()).collect()).collect())
                .collect();
            proptest::prop_assert_eq!(keys, model(&p, EVERY_KIND, &records));
        }

        #[test]
        fn streamed_batches_are_the_planned_ones_and_fifo_targets_keep_their_order(
            picks in proptest::collection::vec((0usize..4, 0usize..6, 0usize..20), 0..120),
            take_every in 1usize..8,
            seal_ended_contexts in proptest::bool::ANY,
        ) {
            let records = picked(&picks);
            let targets = parse_targets(EVERY_KIND).unwrap();
            let outgoing = |unit: usize| Outgoing {
                unit,
                notification: &records[unit].0,
                trace: records[unit].1.as_ref(),
            };
            let mut planner = Planner::new(&targets);
            let mut streamed: Vec<Vec<Batch>> = vec![Vec::new(); targets.len()];
            for unit in 0..records.len() {
                planner.add(&outgoing(unit));
                let trace = records[unit].1.as_ref();
                if seal_ended_contexts && records[unit + 1..].iter().all(|r| r.1.as_ref() != trace) {
                    planner.seal(trace);
                }
                if unit % take_every == 0 {
                    for (t, b) in planner.take_complete() {
                        // Equal to the whole plan's batches below: nothing taken early was cut early.
                        streamed[t].push(b);
                    }
                }
            }
            let rest = planner.finish();
            let whole = plan(&targets, (0..records.len()).map(outgoing));
            for (t, target) in targets.iter().enumerate() {
                let mut got = streamed[t].clone();
                got.extend(rest.batches[t].iter().cloned());
                let mut want = whole.batches[t].clone();
                if !target.destination.is_fifo() {
                    // Order across batches does not matter where calls go concurrently.
                    let key = |b: &Batch| b.messages.iter().map(|m| m.unit).collect::<Vec<_>>();
                    got.sort_by_key(key);
                    want.sort_by_key(key);
                }
                proptest::prop_assert_eq!(got, want);
            }
            proptest::prop_assert_eq!(rest.refused, whole.refused);
        }
    }

    #[test]
    fn sealing_a_trace_context_hands_out_its_sns_batches_at_once() {
        let targets =
            parse_targets("arn:aws:sqs:us-east-1:123456789012:q,arn:aws:sns:us-east-1:123456789012:t").unwrap();
        let (t1, t2): (TraceHeader, TraceHeader) = (T1.parse().unwrap(), T2.parse().unwrap());
        let records: Vec<_> = [&t1, &t2, &t1, &t1]
            .iter()
            .enumerate()
            .map(|(i, t)| (notification(&format!("k{i}"), 100), Some((*t).clone())))
            .collect();
        let mut planner = Planner::new(&targets);
        for (unit, (n, t)) in records.iter().enumerate() {
            planner.add(&Outgoing {
                unit,
                notification: n,
                trace: t.as_ref(),
            });
        }
        assert_eq!(planner.held(), 8);
        planner.seal(Some(&t1));
        let taken: Vec<(usize, Batch)> = planner.take_complete().collect();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0, taken[0].1.request_trace.as_ref()), (1, Some(&t1)));
        assert_eq!(sizes(&[taken[0].1.clone()]), vec![3]);
        // The SQS batch and the other context's SNS batch stay open.
        assert_eq!(planner.held(), 5);
        let rest = planner.finish();
        assert_eq!((sizes(&rest.batches[0]), sizes(&rest.batches[1])), (vec![4], vec![1]));
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
        assert!(b.messages[0].traceparent().unwrap().ends_with("-01"));
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

    proptest::proptest! {
        #[test]
        fn sealed_groups_give_their_place_to_new_ones_and_lose_nothing(
            contexts in proptest::collection::vec(0usize..60, 0..300),
            seal_at_last in proptest::bool::ANY,
            seals in proptest::collection::vec(proptest::bool::ANY, 300),
        ) {
            // Up to 60 contexts (past the linear search), context 0 without a header. Sealed either
            // after each context's last record (the look ahead's answer) or after records picked
            // at random (as if it were wrong: a context then comes back after it was sealed).
            let headers: Vec<Option<TraceHeader>> = (0..60)
                .map(|c| (c > 0).then(|| format!("Root=1-5759e988-{c:024x};Parent=53995c3f42cd8ad8;Sampled=1").parse().unwrap()))
                .collect();
            let records: Vec<_> = contexts
                .iter()
                .enumerate()
                .map(|(i, c)| (notification(&format!("k{i}"), 10), headers[*c].clone()))
                .collect();
            let targets = parse_targets("arn:aws:sns:us-east-1:123456789012:t").unwrap();
            let mut planner = Planner::new(&targets);
            let mut batches = Vec::new();
            for (unit, (n, trace)) in records.iter().enumerate() {
                planner.add(&Outgoing { unit, notification: n, trace: trace.as_ref() });
                let last = contexts[unit + 1..].iter().all(|c| *c != contexts[unit]);
                if (seal_at_last && last) || (!seal_at_last && seals[unit]) {
                    planner.seal(trace.as_ref());
                }
                batches.extend(planner.take_complete().map(|(_, b)| b));
            }
            batches.extend(planner.finish().batches.remove(0));
            // Every message once, in a batch of its own context.
            let mut units: Vec<usize> = batches.iter().flat_map(|b| b.messages.iter().map(|m| m.unit)).collect();
            units.sort_unstable();
            proptest::prop_assert_eq!(units, (0..records.len()).collect::<Vec<_>>());
            for b in &batches {
                proptest::prop_assert!(b.messages.iter().all(|m| records[m.unit].1 == b.request_trace));
            }
            if seal_at_last {
                // The same batches as planning at once: call counts stay exact.
                let mut whole = run("arn:aws:sns:us-east-1:123456789012:t", &records).batches.remove(0);
                let key = |b: &Batch| b.messages.iter().map(|m| m.unit).collect::<Vec<_>>();
                whole.sort_by_key(key);
                batches.sort_by_key(key);
                proptest::prop_assert_eq!(batches, whole);
            }
        }
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
