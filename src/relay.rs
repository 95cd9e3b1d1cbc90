//! The relay core: decode → choose trace contexts → route and batch → publish → account for every
//! record (CONTRACT §6).
//!
//! At least once, nothing lost: a retry unit counts as delivered only when every message it routes to
//! was accepted by its target; anything else is reported failed so Lambda delivers it again.
//! Entries that failed transiently (`SenderFault=false`, `MissingFromResponse`) are resent alone with
//! jittered exponential backoff; whole-call retries are left to the SDK's own retry policy. The
//! relay watches the invocation deadline: it starts no call after `deadline - margin` and bounds
//! every call by that instant, so it can still answer Lambda before being killed.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::{Destination, RelayConfig, Target};
use crate::context::{Fallback, InvocationTrace, resolve};
use crate::inbound::{Carrier, Content, DecodeError, Inbound, Notification, Source, decode};
use crate::logs;
use crate::metrics::{TargetCounts, emf_lines};
use crate::plan::{Batch, Message, Outgoing, Plan, plan};
use crate::publish::{CallError, CallReport, EntryOutcome, Failure, Publisher};
use crate::response::{RelayError, RelayResponse, Summary, UnitFailure, respond};
use crate::trace::TraceHeader;
use crate::xray::{CallFacts, CallRecording, InvocationRecording, Recorder};

/// How many times a transiently failed entry is sent again within one invocation.
pub const MAX_ENTRY_RETRIES: u32 = 3;
/// First backoff before resending failed entries; doubles per attempt, with full jitter.
pub const RETRY_BASE_DELAY: Duration = Duration::from_millis(50);
/// A call is not started with less than this left before the cutoff: it could not complete.
pub const MIN_CALL_BUDGET: Duration = Duration::from_millis(100);

/// What the relay needs to know about one invocation, taken from its `Context`.
#[derive(Debug, Clone, Default)]
pub struct InvocationInfo {
    /// Lambda's request id, for logs.
    pub request_id: String,
    /// The invocation's `Lambda-Runtime-Trace-Id` (`Context::xray_trace_id`).
    pub trace_id: Option<String>,
    /// The invocation deadline, in milliseconds since the Unix epoch; 0 means none.
    pub deadline_ms: u64,
}

impl From<&lambda_runtime::Context> for InvocationInfo {
    fn from(ctx: &lambda_runtime::Context) -> Self {
        InvocationInfo {
            request_id: ctx.request_id.clone(),
            trace_id: ctx.xray_trace_id.clone(),
            deadline_ms: ctx.deadline,
        }
    }
}

/// Deadlines below this (September 2001 in epoch milliseconds) cannot be epoch times: cargo lambda's
/// local emulator sends the function timeout itself (e.g. `600000`), so such a value is read as the
/// time left from now.
pub const RELATIVE_DEADLINE_BELOW_MS: u64 = 1_000_000_000_000;

impl InvocationInfo {
    /// The instant after which no call may start: the deadline less the safety margin.
    pub fn cutoff(&self, margin: Duration) -> Option<Instant> {
        let left = match self.deadline_ms {
            0 => return None,
            ms if ms < RELATIVE_DEADLINE_BELOW_MS => Duration::from_millis(ms),
            ms => (UNIX_EPOCH + Duration::from_millis(ms))
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        };
        Some(Instant::now() + left.saturating_sub(margin))
    }
}

/// The relay: configuration and publisher, built once at init and shared by concurrent invocations.
#[derive(Debug)]
pub struct Relay<P> {
    config: Arc<RelayConfig>,
    publisher: P,
    recorder: Option<Recorder>,
    metrics: Option<MetricsOutput>,
}

/// Where and under which names EMF metric lines are written.
#[derive(Debug, Clone)]
pub struct MetricsOutput {
    /// CloudWatch namespace.
    pub namespace: String,
    /// Value of the `FunctionName` dimension.
    pub function_name: String,
}

/// Where one retry unit stands.
#[derive(Debug, Default)]
struct UnitState {
    /// The first reason the unit failed, if it did.
    failure: Option<String>,
}

impl<P: Publisher> Relay<P> {
    /// Builds the relay.
    pub fn new(config: Arc<RelayConfig>, publisher: P) -> Self {
        Relay {
            config,
            publisher,
            recorder: None,
            metrics: None,
        }
    }

    /// Records X-Ray segments for sampled traces through `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Writes EMF metric lines to standard output after every invocation.
    pub fn with_metrics(mut self, metrics: MetricsOutput) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Handles one invocation payload.
    pub async fn handle(&self, payload: &str, info: &InvocationInfo) -> Result<RelayResponse, RelayError> {
        let Prepared {
            inbound,
            invocation_trace,
            rounds,
            mut summary,
            mut states,
        } = prepare(&self.config.targets, payload, info.trace_id.as_deref())?;

        let cutoff = info.cutoff(self.config.deadline_margin);
        let semaphore = Semaphore::new(self.config.max_in_flight);
        let recording = self.recorder.as_ref().map(|r| r.invocation(invocation_trace.header()));
        let mut target_counts: Vec<TargetCounts> = self
            .config
            .targets
            .iter()
            .map(|t| TargetCounts {
                target: t.destination.to_string(),
                ..TargetCounts::default()
            })
            .collect();
        for mut round in rounds {
            // FIFO source: a message must not overtake an earlier message of its group that failed.
            let mut first_failure: HashMap<&str, usize> = HashMap::new();
            for (index, (unit, state)) in inbound.units.iter().zip(&states).enumerate() {
                if let (Some(group), Some(_)) = (unit.group_id.as_deref(), &state.failure) {
                    first_failure.entry(group).or_insert(index);
                }
            }
            let held_back = round.drop_units(|unit| {
                inbound
                    .units
                    .get(unit)
                    .and_then(|u| u.group_id.as_deref())
                    .and_then(|g| first_failure.get(g))
                    .is_some_and(|&failed| failed < unit)
            });
            for unit in held_back {
                fail(
                    &mut states,
                    unit,
                    "an earlier message of its FIFO group failed".to_owned(),
                );
            }
            let runs = round.batches.iter().enumerate().map(|(target, batches)| {
                let call = CallContext {
                    destination: self.config.targets.get(target).map(|t| &t.destination),
                    cutoff,
                    semaphore: &semaphore,
                    recording: recording.as_ref(),
                };
                self.deliver_target(call, batches)
            });
            for (run, counts) in futures_util::future::join_all(runs)
                .await
                .into_iter()
                .zip(&mut target_counts)
            {
                summary.relayed += run.counts.relayed;
                summary.publish_calls += run.counts.publish_calls;
                summary.retries += run.counts.retries;
                counts.add(&run.counts);
                for (message, failure) in run.failures {
                    let n = &message.notification;
                    let target = &run.counts.target;
                    tracing::error!(
                        bucket = logs::input(&n.bucket),
                        key = logs::input(&n.key),
                        target = target.as_str(),
                        code = logs::input(&failure.code),
                        error = logs::input(&failure.message),
                        "message not delivered"
                    );
                    fail(
                        &mut states,
                        message.unit,
                        format!(
                            "{}/{} to {target}: {}: {}",
                            n.bucket,
                            short_key(&n.key),
                            failure.code,
                            failure.message
                        ),
                    );
                }
            }
        }
        if let Some(recording) = recording {
            recording.finish();
        }
        target_counts.retain(|c| c.publish_calls > 0 || c.failed > 0);

        let failures: Vec<UnitFailure> = states
            .into_iter()
            .zip(&inbound.units)
            .filter_map(|(state, unit)| {
                state.failure.map(|reason| UnitFailure {
                    message_id: unit.message_id.clone(),
                    group_id: unit.group_id.clone(),
                    reason,
                })
            })
            .collect();
        summary.failed = failures.len();
        tracing::info!(
            request_id = info.request_id.as_str(),
            received = summary.received,
            relayed = summary.relayed,
            failed = summary.failed,
            filtered_out = summary.filtered_out,
            test_events = summary.test_events,
            invalid_trace_headers = summary.invalid_trace_headers,
            fallbacks = summary.fallbacks,
            publish_calls = summary.publish_calls,
            retries = summary.retries,
            "invocation done"
        );
        self.write_metrics(&summary, &target_counts);
        respond(&inbound, failures, summary)
    }

    fn write_metrics(&self, summary: &Summary, targets: &[TargetCounts]) {
        let Some(metrics) = &self.metrics else { return };
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let lines = emf_lines(
            &metrics.namespace,
            &metrics.function_name,
            summary,
            targets,
            timestamp_ms,
        );
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A lost metrics line must not fail the invocation.
            let _ = writeln!(out, "{line}");
        }
    }

    /// Sends one target's batches: in order, one at a time, for FIFO targets (skipping the later
    /// events of an object once one failed); concurrently otherwise.
    async fn deliver_target<'b>(&self, call: CallContext<'_>, batches: &'b [Batch]) -> TargetRun<'b> {
        let mut run = TargetRun {
            counts: TargetCounts {
                target: call.destination.map(ToString::to_string).unwrap_or_default(),
                ..TargetCounts::default()
            },
            failures: Vec::new(),
        };
        if call.destination.is_none() {
            return run;
        }
        if call.destination.is_some_and(Destination::is_fifo) {
            let mut failed_groups: HashSet<&str> = HashSet::new();
            for batch in batches {
                let (send, skip): (Vec<&Message>, Vec<&Message>) = batch.messages.iter().partition(|m| {
                    m.fifo
                        .as_ref()
                        .is_none_or(|ids| !failed_groups.contains(ids.group_id.as_str()))
                });
                run.failures.extend(skip.into_iter().map(|m| (m, earlier_failed())));
                let outcome = self.deliver_batch(&call, batch, send).await;
                for (m, _) in &outcome.failed {
                    if let Some(ids) = &m.fifo {
                        failed_groups.insert(ids.group_id.as_str());
                    }
                }
                run.add(outcome);
            }
        } else {
            // In-flight calls are bounded by the semaphore, shared by all targets.
            let outcomes = futures_util::future::join_all(
                batches
                    .iter()
                    .map(|batch| self.deliver_batch(&call, batch, batch.messages.iter().collect())),
            )
            .await;
            for outcome in outcomes {
                run.add(outcome);
            }
        }
        run.counts.failed = run.failures.len();
        run
    }

    /// Sends the given messages of one planned batch, resending transient entry failures alone.
    async fn deliver_batch<'b>(
        &self,
        call: &CallContext<'_>,
        template: &Batch,
        mut pending: Vec<&'b Message>,
    ) -> BatchOutcome<'b> {
        let mut outcome = BatchOutcome::default();
        let Some(destination) = call.destination else {
            return outcome;
        };
        let cutoff = call.cutoff;
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt > 0 {
                let delay = backoff(attempt);
                if cutoff.is_some_and(|c| Instant::now() + delay + MIN_CALL_BUDGET >= c) {
                    outcome.fail_all(pending, deadline_failure());
                    break;
                }
                tokio::time::sleep(delay).await;
                outcome.retries += pending.len();
            }
            let result = {
                let Ok(_permit) = call.semaphore.acquire().await else {
                    outcome.fail_all(pending, deadline_failure());
                    break;
                };
                if cutoff.is_some_and(|c| Instant::now() + MIN_CALL_BUDGET >= c) {
                    outcome.fail_all(pending, deadline_failure());
                    break;
                }
                // Built only once a call slot is held, so batches waiting for one hold no copy.
                let mut batch = Batch {
                    target: template.target,
                    request_trace: template.request_trace.clone(),
                    messages: pending.iter().map(|m| (*m).clone()).collect(),
                };
                outcome.calls += 1;
                let recorded = call.recording.map(|r| (r, begin_recorded_call(r, &mut batch)));
                let result = match cutoff {
                    Some(c) => tokio::time::timeout_at(c, self.publisher.send(destination, &batch))
                        .await
                        .unwrap_or_else(|_| Err(deadline_call_error(destination))),
                    None => self.publisher.send(destination, &batch).await,
                };
                if let Some((recording, segment)) = recorded {
                    recording.end_call(segment, destination, &call_facts(destination, &result));
                }
                result
            };
            attempt += 1;
            match result {
                Err(e) => {
                    // The SDK has already retried the whole call per its retry configuration.
                    outcome.fail_all(pending, e.to_failure());
                    break;
                }
                Ok(report) => {
                    let mut again = Vec::new();
                    let entries = report.entries.into_iter().chain(std::iter::repeat_with(missing));
                    for (m, entry) in pending.into_iter().zip(entries) {
                        match entry {
                            EntryOutcome::Delivered => outcome.delivered += 1,
                            EntryOutcome::Failed(f) if f.transient && attempt <= MAX_ENTRY_RETRIES => again.push(m),
                            EntryOutcome::Failed(f) => outcome.failed.push((m, f)),
                        }
                    }
                    pending = again;
                }
            }
        }
        outcome
    }
}

/// What every call of one target shares.
struct CallContext<'a> {
    destination: Option<&'a Destination>,
    cutoff: Option<Instant>,
    semaphore: &'a Semaphore,
    recording: Option<&'a InvocationRecording>,
}

/// The result of one target's deliveries.
struct TargetRun<'b> {
    counts: TargetCounts,
    failures: Vec<(&'b Message, Failure)>,
}

impl<'b> TargetRun<'b> {
    fn add(&mut self, outcome: BatchOutcome<'b>) {
        self.counts.relayed += outcome.delivered;
        self.counts.publish_calls += outcome.calls;
        self.counts.retries += outcome.retries;
        self.failures.extend(outcome.failed);
    }
}

/// Opens the X-Ray subsegments of a call and points its messages' `Parent` at them.
fn begin_recorded_call(recording: &InvocationRecording, batch: &mut Batch) -> CallRecording {
    let segment = recording.begin_call(
        batch
            .messages
            .iter()
            .filter_map(|m| m.trace.as_ref())
            .chain(batch.request_trace.as_ref()),
    );
    let reparent = |header: &mut Option<TraceHeader>| {
        if let Some(h) = header.as_ref()
            && let Some(id) = InvocationRecording::parent_for(&segment, h)
        {
            *header = Some(h.with_parent(id));
        }
    };
    for m in &mut batch.messages {
        reparent(&mut m.trace);
        m.traceparent = m.trace.as_ref().and_then(TraceHeader::to_traceparent);
    }
    reparent(&mut batch.request_trace);
    segment
}

fn call_facts(destination: &Destination, result: &Result<CallReport, CallError>) -> CallFacts {
    let operation = match destination {
        Destination::Sqs { .. } => "SendMessageBatch",
        Destination::Sns { .. } => "PublishBatch",
    };
    match result {
        Ok(report) => CallFacts {
            operation,
            request_id: report.request_id.clone(),
            status: Some(200),
            failed: false,
        },
        Err(e) => CallFacts {
            operation,
            request_id: e.request_id.clone(),
            status: e.status,
            failed: true,
        },
    }
}

fn deadline_call_error(destination: &Destination) -> CallError {
    CallError {
        operation: "publish",
        destination: destination.to_string(),
        code: "DeadlineExceeded".into(),
        message: "the call did not finish before the invocation deadline margin".into(),
        transient: true,
        status: None,
        request_id: None,
    }
}

/// Everything decided before the network: decoded units, trace contexts, routes and batches.
#[derive(Debug)]
pub struct Prepared {
    /// The decoded invocation.
    pub inbound: Inbound,
    /// The invocation's own trace context.
    pub invocation_trace: InvocationTrace,
    /// The batches to send, in rounds: one round, except for a FIFO source, where round `r` holds
    /// the `r`-th message of every message group, so no message is sent before the earlier ones of
    /// its group succeeded.
    pub rounds: Vec<Plan>,
    /// Counts so far.
    pub summary: Summary,
    states: Vec<UnitState>,
}

/// The pure half of an invocation: decode → choose each record's trace context → route → batch.
/// Units that cannot be decoded, that follow a failed unit of their FIFO group, or whose message
/// exceeds a target's size limit are marked failed here, before anything is sent.
pub fn prepare(targets: &[Target], payload: &str, trace_id: Option<&str>) -> Result<Prepared, RelayError> {
    let inbound = decode(payload).map_err(|e| {
        tracing::error!(error = logs::text(&e).as_str(), "invocation payload rejected");
        RelayError::BadPayload(e)
    })?;
    let mut summary = Summary::default();
    let invocation_trace = InvocationTrace::parse(trace_id);
    if let InvocationTrace::Invalid(reason) = &invocation_trace {
        summary.invalid_trace_headers += 1;
        tracing::warn!(reason = logs::input(reason), "invocation trace header is invalid");
    }
    let record_level = matches!(inbound.source, Source::Sqs { .. });

    let mut states: Vec<UnitState> = inbound.units.iter().map(|_| UnitState::default()).collect();
    let mut blocked_groups: HashSet<&str> = HashSet::new();
    let mut records: Vec<(usize, &Arc<Notification>, Option<TraceHeader>)> = Vec::new();
    for (index, unit) in inbound.units.iter().enumerate() {
        if let Some(group) = unit.group_id.as_deref().filter(|g| blocked_groups.contains(g)) {
            fail(
                &mut states,
                index,
                format!("an earlier message of FIFO group {group:?} failed"),
            );
            continue;
        }
        match &unit.content {
            Err(e) => {
                summary.received += 1;
                tracing::error!(
                    message_id = unit.message_id.as_deref().map(logs::input),
                    error = logs::text(e).as_str(),
                    "record rejected"
                );
                fail(&mut states, index, e.to_string());
                if let Some(group) = &unit.group_id {
                    blocked_groups.insert(group);
                }
            }
            Ok(Content::TestEvent) => summary.test_events += 1,
            Ok(Content::Notifications(list)) => {
                let resolved = resolve(&unit.carrier, &invocation_trace, record_level);
                if let Some(fallback) = &resolved.fallback {
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
                summary.received += list.len();
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
                    records.push((index, n, resolved.header.clone()));
                }
            }
        }
    }

    // FIFO source: a unit goes one round after the previous unit of its message group and after the
    // previous unit carrying an event of the same object, so neither order can be overtaken.
    let mut rank_of_unit = vec![0usize; inbound.units.len()];
    if matches!(inbound.source, Source::Sqs { fifo: true }) {
        let mut next_of_group: HashMap<&str, usize> = HashMap::new();
        let mut next_of_object: HashMap<(&str, &str), usize> = HashMap::new();
        for (unit, rank) in inbound.units.iter().zip(&mut rank_of_unit) {
            let objects: Vec<(&str, &str)> = match &unit.content {
                Ok(Content::Notifications(list)) => list.iter().map(|n| (n.bucket.as_str(), n.key.as_str())).collect(),
                _ => Vec::new(),
            };
            let group = unit.group_id.as_deref();
            let after_group = group.and_then(|g| next_of_group.get(g)).copied().unwrap_or(0);
            let after_object = objects
                .iter()
                .filter_map(|o| next_of_object.get(o))
                .copied()
                .max()
                .unwrap_or(0);
            *rank = after_group.max(after_object);
            if let Some(g) = group {
                next_of_group.insert(g, *rank + 1);
            }
            for o in objects {
                next_of_object.insert(o, *rank + 1);
            }
        }
    }
    let round_count = records
        .iter()
        .map(|(unit, _, _)| rank_of_unit.get(*unit).copied().unwrap_or_default() + 1)
        .max()
        .unwrap_or(1);
    let mut rounds = Vec::with_capacity(round_count);
    for round in 0..round_count {
        let plan = plan(
            targets,
            records
                .iter()
                .filter(|(unit, _, _)| rank_of_unit.get(*unit).copied().unwrap_or_default() == round)
                .map(|(unit, n, trace)| Outgoing {
                    unit: *unit,
                    notification: n,
                    trace: trace.as_ref(),
                }),
        );
        summary.filtered_out += plan.filtered_out;
        for o in &plan.oversized {
            let n = &o.message.notification;
            let target = targets
                .get(o.target)
                .map_or_else(|| format!("target #{}", o.target), |t| t.destination.to_string());
            tracing::error!(
                bucket = logs::input(&n.bucket),
                key = logs::input(&n.key),
                size = o.message.size,
                limit = o.limit,
                target,
                "message exceeds the target's size limit"
            );
            fail(
                &mut states,
                o.message.unit,
                format!(
                    "{}/{}: {} bytes exceed the {} byte limit of {target}",
                    n.bucket,
                    short_key(&n.key),
                    o.message.size,
                    o.limit
                ),
            );
        }
        rounds.push(plan);
    }
    drop(records);
    Ok(Prepared {
        inbound,
        invocation_trace,
        rounds,
        summary,
        states,
    })
}

#[derive(Default)]
struct BatchOutcome<'b> {
    delivered: usize,
    calls: usize,
    retries: usize,
    failed: Vec<(&'b Message, Failure)>,
}

impl<'b> BatchOutcome<'b> {
    fn fail_all(&mut self, messages: Vec<&'b Message>, failure: Failure) {
        self.failed.extend(messages.into_iter().map(|m| (m, failure.clone())));
    }
}

/// S3 keys are at most 1,024 bytes; anything longer (hostile input) is cut in error texts so a
/// huge key cannot make a huge Lambda error.
const MAX_KEY_BYTES_IN_ERRORS: usize = 1024;

fn short_key(key: &str) -> &str {
    let mut end = key.len().min(MAX_KEY_BYTES_IN_ERRORS);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key.get(..end).unwrap_or_default()
}

fn fail(states: &mut [UnitState], unit: usize, reason: String) {
    if let Some(state) = states.get_mut(unit) {
        state.failure.get_or_insert(reason);
    }
}

/// Full-jitter exponential backoff: a random delay up to `base * 2^(attempt-1)`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = RETRY_BASE_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}

fn deadline_failure() -> Failure {
    Failure {
        code: "DeadlineExceeded".into(),
        message: "not sent: too close to the invocation deadline".into(),
        transient: true,
    }
}

fn earlier_failed() -> Failure {
    Failure {
        code: "EarlierEventFailed".into(),
        message: "not sent: an earlier event of the same object failed on this FIFO target".into(),
        transient: true,
    }
}

fn missing() -> EntryOutcome {
    EntryOutcome::Failed(Failure {
        code: "MissingFromResponse".into(),
        message: "the batch response did not mention this entry".into(),
        transient: true,
    })
}

impl From<DecodeError> for RelayError {
    fn from(e: DecodeError) -> Self {
        RelayError::BadPayload(e)
    }
}
