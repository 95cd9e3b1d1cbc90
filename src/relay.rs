//! The relay core: decode → choose trace contexts → route and batch → publish → account for every
//! record (CONTRACT §6). This module orchestrates; each rule lives in the module named after it:
//! [`crate::inbound`] decodes, [`crate::context`] picks trace contexts, [`crate::plan`] routes and
//! batches, [`crate::order`] keeps FIFO order, [`crate::publish`] sends, [`crate::response`] answers.
//!
//! At least once, nothing lost: a retry unit counts as delivered only when every message it routes
//! to was accepted by its target; anything else is reported failed, with a typed
//! [`Undelivered`] reason, so Lambda delivers it again. Entries the service failed without it being
//! the sender's fault (or did not mention) are resent alone with jittered exponential backoff;
//! whole-call retries are the SDK's (see [`crate::retry`]). The relay watches the invocation
//! deadline: it starts no call after `deadline - margin` and bounds every call by that instant, so
//! it can still answer Lambda before being killed.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::concurrency::{Learned, Limiter, Signal};
use crate::config::{Destination, RelayConfig, Target};
use crate::context::{Fallback, InvocationTrace, Resolved, resolve};
use crate::failure::{HoldBack, Reason, Undelivered};
use crate::inbound::{Carrier, Content, Inbound, Source, Unit, decode};
use crate::logs;
use crate::message::{Batch, Message, Notification};
use crate::metrics::{TargetCounts, emf_lines};
use crate::order::{Order, TargetGate};
use crate::plan::{Outgoing, Plan, plan};
use crate::publish::{CallReport, EntryOutcome, Publisher};
use crate::recording::{CallRecording, InvocationRecording, Recorder};
use crate::response::{RelayError, RelayResponse, Summary, UnitFailure, respond};
use crate::retry::{ErrorClass, classify};
use crate::span::CallFacts;
use crate::trace::TraceHeader;

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
    /// The in-flight limit the last invocation ended with ([`crate::concurrency`]).
    learned: Learned,
}

/// Where and under which names EMF metric lines are written.
#[derive(Debug, Clone)]
pub struct MetricsOutput {
    /// CloudWatch namespace.
    pub namespace: String,
    /// Value of the `FunctionName` dimension.
    pub function_name: String,
}

impl<P: Publisher> Relay<P> {
    /// Builds the relay.
    pub fn new(config: Arc<RelayConfig>, publisher: P) -> Self {
        Relay {
            learned: Learned::new(config.max_in_flight),
            config,
            publisher,
            recorder: None,
            metrics: None,
        }
    }

    /// Records the relay's spans for sampled traces (X-Ray, OpenTelemetry) through `recorder`.
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

    /// Handles one invocation payload: what Lambda is answered, or why the invocation failed.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use s3_trace_relay::{InvocationInfo, Relay, RelayConfig};
    /// # use s3_trace_relay::message::Batch;
    /// # use s3_trace_relay::config::Destination;
    /// # use s3_trace_relay::failure::CallError;
    /// # use s3_trace_relay::publish::{CallReport, EntryOutcome, Publisher};
    /// # use s3_trace_relay::response::RelayResponse;
    /// /// A publisher that accepts everything (tests use one like it; Lambda uses `AwsPublisher`).
    /// struct AcceptAll;
    /// impl Publisher for AcceptAll {
    ///     async fn send(&self, _: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
    ///         Ok(CallReport::new(vec![EntryOutcome::Delivered; batch.messages.len()]))
    ///     }
    /// }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let targets = "https://sqs.us-east-1.amazonaws.com/123456789012/uploads";
    /// let config = RelayConfig::from_lookup(|name| (name == "RELAY_TARGETS").then(|| targets.to_owned())).unwrap();
    /// let relay = Relay::new(Arc::new(config), AcceptAll);
    /// let event = include_str!("../events/s3-put.json");
    /// let info = InvocationInfo { request_id: "r-1".into(), ..InvocationInfo::default() };
    /// match relay.handle(event, &info).await.unwrap() {
    ///     RelayResponse::Done(summary) => assert_eq!(summary.published, 1),
    ///     other => panic!("{other:?}"),
    /// }
    /// # });
    /// ```
    pub async fn handle(&self, payload: &str, info: &InvocationInfo) -> Result<RelayResponse, RelayError> {
        let prepared = prepare(&self.config.targets, payload, info.trace_id.as_deref())?;
        self.deliver(prepared, info).await
    }

    /// [`Relay::handle`] for a payload it may drop once decoded: every record is copied out of it
    /// by then, so the invocation does not hold the batch twice while it sends (6 MB at most).
    pub async fn handle_payload(
        &self,
        payload: Box<serde_json::value::RawValue>,
        info: &InvocationInfo,
    ) -> Result<RelayResponse, RelayError> {
        let prepared = prepare(&self.config.targets, payload.get(), info.trace_id.as_deref())?;
        drop(payload);
        self.deliver(prepared, info).await
    }

    /// Sends what [`prepare`] planned and answers Lambda.
    async fn deliver(&self, prepared: Prepared, info: &InvocationInfo) -> Result<RelayResponse, RelayError> {
        let Prepared {
            inbound,
            invocation_trace,
            rounds,
            mut summary,
            mut outcomes,
        } = prepared;
        let order = Order::of(&inbound);
        let limiter = self.learned.limiter(self.config.max_in_flight);
        let recording = self
            .recorder
            .as_ref()
            .map(|r| r.invocation(invocation_trace.header(), &info.request_id));
        if let Some(recording) = &recording {
            recording.received(summary.received, || upstream_contexts(&rounds));
        }
        let call = CallContext {
            cutoff: info.cutoff(self.config.deadline_margin),
            limiter: &limiter,
            recording: recording.as_ref(),
        };
        let mut tally = Tally::new(&self.config.targets);
        let mut held = HashSet::new();
        for mut round in rounds {
            held.extend(hold_back(&order, &mut outcomes));
            round.drop_units(|unit| held.contains(&unit));
            self.deliver_round(&call, &round, &mut tally, &mut outcomes).await;
        }
        self.learned.keep(&limiter);
        if let Some(recording) = recording {
            recording.finish(info.cutoff(Duration::ZERO)).await;
        }
        // A failure in the last round still holds back the later members of its group or object.
        hold_back(&order, &mut outcomes);
        let failures = outcomes.into_failures(&inbound);
        tally.add_to(&mut summary);
        summary.reported_failures = failures.len();
        log_summary(info, &summary);
        self.write_metrics(&summary, &tally.targets);
        respond(&inbound, failures, summary)
    }

    /// Sends one round's batches, every target at once, and accounts for each message.
    async fn deliver_round(&self, call: &CallContext<'_>, round: &Plan, tally: &mut Tally, outcomes: &mut Outcomes) {
        let runs = round.batches.iter().enumerate().filter_map(|(target, batches)| {
            let destination = &self.config.targets.get(target)?.destination;
            Some(async move { (target, self.deliver_target(call, destination, batches).await) })
        });
        for (target, run) in futures_util::future::join_all(runs).await {
            for (message, reason) in run.failures {
                let failure = undelivered(&message.notification, &run.counts.target, reason);
                log_undelivered(&failure);
                outcomes.fail(message.unit, failure);
            }
            tally.add(target, &run.counts);
        }
    }

    fn write_metrics(&self, summary: &Summary, targets: &[TargetCounts]) {
        let Some(metrics) = &self.metrics else { return };
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let targets: Vec<&TargetCounts> = targets.iter().filter(|c| c.publish_calls > 0 || c.failed > 0).collect();
        let lines = emf_lines(
            &metrics.namespace,
            &metrics.function_name,
            summary,
            &targets,
            timestamp_ms,
        );
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A lost metrics line must not fail the invocation.
            let _ = writeln!(out, "{line}");
        }
    }

    /// Sends one target's batches: in order, one at a time, for FIFO targets (skipping the later
    /// events of an object once one failed, see [`TargetGate`]); concurrently otherwise.
    async fn deliver_target<'b>(
        &self,
        call: &CallContext<'_>,
        destination: &Destination,
        batches: &'b [Batch],
    ) -> TargetRun<'b> {
        let mut run = TargetRun::new(destination);
        if destination.is_fifo() {
            let mut gate = TargetGate::default();
            for batch in batches {
                let (send, skip): (Vec<&Message>, Vec<&Message>) = batch.messages.iter().partition(|m| gate.admits(m));
                let held = Reason::HeldBack(HoldBack::TargetObject);
                run.failures.extend(skip.into_iter().map(|m| (m, held.clone())));
                let outcome = self.deliver_batch(call, destination, batch, send).await;
                for (m, _) in &outcome.failed {
                    gate.failed(m);
                }
                run.add(outcome);
            }
        } else {
            // In-flight calls are bounded by the limiter, shared by all targets; at most its cap of
            // batches is started at once, so waiting batches hold no future (a 10,000-context batch
            // would otherwise hold 10,000, all woken at every freed slot). A loop rather than
            // `buffer_unordered`, whose closure over borrowed batches rustc cannot prove `Send`.
            let mut waiting = batches.iter();
            let mut started = FuturesUnordered::new();
            loop {
                while started.len() < self.config.max_in_flight {
                    let Some(batch) = waiting.next() else { break };
                    started.push(self.deliver_batch(call, destination, batch, batch.messages.iter().collect()));
                }
                let Some(outcome) = started.next().await else { break };
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
        destination: &Destination,
        template: &Batch,
        mut pending: Vec<&'b Message>,
    ) -> BatchOutcome<'b> {
        let mut outcome = BatchOutcome::default();
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt > 0 {
                let delay = backoff(attempt);
                if call.too_late(delay) {
                    outcome.fail_all(pending, &Reason::Deadline);
                    break;
                }
                tokio::time::sleep(delay).await;
                outcome.retries += pending.len();
            }
            attempt += 1;
            let report = match self
                .send_once(call, destination, template, &pending, &mut outcome.calls)
                .await
            {
                Ok(report) => report,
                Err(reason) => {
                    outcome.fail_all(pending, &reason);
                    break;
                }
            };
            pending = outcome.settle(pending, report, attempt <= MAX_ENTRY_RETRIES);
        }
        outcome
    }

    /// One call with `pending`, once a call slot is free and if there is time for it (counted in
    /// `calls` when made); `Err` when it was not made or failed as a whole (the SDK has already
    /// retried it).
    async fn send_once(
        &self,
        call: &CallContext<'_>,
        destination: &Destination,
        template: &Batch,
        pending: &[&Message],
        calls: &mut usize,
    ) -> Result<CallReport, Reason> {
        let permit = call.limiter.acquire().await;
        if call.too_late(Duration::ZERO) {
            return Err(Reason::Deadline);
        }
        *calls += 1;
        // Built only once a call slot is held, so batches waiting for one hold no copy.
        let mut batch = Batch {
            target: template.target,
            request_trace: template.request_trace.clone(),
            messages: pending.iter().map(|m| (*m).clone()).collect(),
        };
        let recorded = call.recording.map(|r| (r, begin_recorded_call(r, &mut batch)));
        let sent = self.publisher.send(destination, &batch);
        let result = match call.cutoff {
            Some(cutoff) => match tokio::time::timeout_at(cutoff, sent).await {
                Ok(result) => result.map_err(Reason::Call),
                Err(_) => Err(Reason::Deadline),
            },
            None => sent.await.map_err(Reason::Call),
        };
        permit.finish(signal(&result));
        if let Some((recording, segment)) = recorded {
            recording.end_call(segment, destination, &call_facts(destination, &result));
        }
        result
    }
}

/// What every call of one invocation shares.
struct CallContext<'a> {
    cutoff: Option<Instant>,
    limiter: &'a Limiter,
    recording: Option<&'a InvocationRecording>,
}

impl CallContext<'_> {
    /// Whether a call started after waiting `wait` could no longer finish before the cutoff.
    fn too_late(&self, wait: Duration) -> bool {
        self.cutoff
            .is_some_and(|c| Instant::now() + wait + MIN_CALL_BUDGET >= c)
    }
}

/// The result of one target's deliveries.
struct TargetRun<'b> {
    counts: TargetCounts,
    failures: Vec<(&'b Message, Reason)>,
}

impl<'b> TargetRun<'b> {
    fn new(destination: &Destination) -> Self {
        TargetRun {
            counts: TargetCounts {
                target: destination.to_string(),
                ..TargetCounts::default()
            },
            failures: Vec::new(),
        }
    }

    fn add(&mut self, outcome: BatchOutcome<'b>) {
        self.counts.published += outcome.delivered;
        self.counts.publish_calls += outcome.calls;
        self.counts.retries += outcome.retries;
        self.failures.extend(outcome.failed);
    }
}

/// What became of the messages of one planned batch.
#[derive(Default)]
struct BatchOutcome<'b> {
    delivered: usize,
    calls: usize,
    retries: usize,
    failed: Vec<(&'b Message, Reason)>,
}

impl<'b> BatchOutcome<'b> {
    fn fail_all(&mut self, messages: Vec<&'b Message>, reason: &Reason) {
        self.failed.extend(messages.into_iter().map(|m| (m, reason.clone())));
    }

    /// Accounts for one call's answer and returns the entries to resend alone (when `resend`).
    fn settle(&mut self, sent: Vec<&'b Message>, report: CallReport, resend: bool) -> Vec<&'b Message> {
        let mut again = Vec::new();
        let entries = report.entries.into_iter().chain(std::iter::repeat_with(|| {
            EntryOutcome::Failed(Reason::MissingFromResponse)
        }));
        for (m, entry) in sent.into_iter().zip(entries) {
            match entry {
                EntryOutcome::Delivered => self.delivered += 1,
                EntryOutcome::Failed(reason) if resend && reason.resend_alone() => again.push(m),
                EntryOutcome::Failed(reason) => self.failed.push((m, reason)),
            }
        }
        again
    }
}

/// Per-target and total counts of one invocation.
struct Tally {
    targets: Vec<TargetCounts>,
}

impl Tally {
    fn new(targets: &[Target]) -> Self {
        let targets = targets
            .iter()
            .map(|t| TargetCounts {
                target: t.destination.to_string(),
                ..TargetCounts::default()
            })
            .collect();
        Tally { targets }
    }

    fn add(&mut self, target: usize, run: &TargetCounts) {
        if let Some(counts) = self.targets.get_mut(target) {
            counts.add(run);
        }
    }

    fn add_to(&self, summary: &mut Summary) {
        for c in &self.targets {
            summary.published += c.published;
            summary.messages_failed += c.failed;
            summary.publish_calls += c.publish_calls;
            summary.retries += c.retries;
        }
    }
}

/// The first reason each retry unit failed, if it did.
#[derive(Debug, Default)]
struct Outcomes(Vec<Option<Undelivered>>);

impl Outcomes {
    fn new(units: usize) -> Self {
        Outcomes(vec![None; units])
    }

    fn failed(&self, unit: usize) -> bool {
        self.0.get(unit).is_some_and(Option::is_some)
    }

    /// Marks `unit` failed; the first reason is the one reported.
    fn fail(&mut self, unit: usize, failure: Undelivered) {
        if let Some(slot) = self.0.get_mut(unit) {
            slot.get_or_insert(failure);
        }
    }

    fn into_failures(self, inbound: &Inbound) -> Vec<UnitFailure> {
        self.0
            .into_iter()
            .zip(&inbound.units)
            .filter_map(|(failure, unit)| {
                failure.map(|failure| UnitFailure {
                    message_id: unit.message_id.clone(),
                    failure,
                })
            })
            .collect()
    }
}

/// Fails every unit [`Order::held_back`] names, and returns them.
fn hold_back(order: &Order<'_>, outcomes: &mut Outcomes) -> Vec<usize> {
    let held = order.held_back(|unit| outcomes.failed(unit));
    for &(unit, why) in &held {
        outcomes.fail(unit, Undelivered::unit(Reason::HeldBack(why)));
    }
    held.into_iter().map(|(unit, _)| unit).collect()
}

fn undelivered(n: &Notification, target: &str, reason: Reason) -> Undelivered {
    Undelivered {
        object: Some((n.bucket.clone(), n.key.clone())),
        target: Some(target.to_owned()),
        reason,
    }
}

fn log_undelivered(failure: &Undelivered) {
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

fn log_summary(info: &InvocationInfo, summary: &Summary) {
    tracing::info!(
        request_id = info.request_id.as_str(),
        received = summary.received,
        published = summary.published,
        messages_failed = summary.messages_failed,
        reported_failures = summary.reported_failures,
        filtered_out = summary.filtered_out,
        test_events = summary.test_events,
        invalid_trace_headers = summary.invalid_trace_headers,
        fallbacks = summary.fallbacks,
        publish_calls = summary.publish_calls,
        retries = summary.retries,
        "invocation done"
    );
}

/// What a call's answer says about the service's capacity: a throttling code on the call or on
/// any entry is a throttle.
fn signal(result: &Result<CallReport, Reason>) -> Signal {
    let throttling = |code: &str, status: Option<u16>| classify(Some(code), status) == ErrorClass::Throttling;
    match result {
        Ok(report) => {
            let throttled = report
                .entries
                .iter()
                .any(|e| matches!(e, EntryOutcome::Failed(Reason::Rejected { code, .. }) if throttling(code, None)));
            if throttled {
                Signal::Throttled
            } else {
                Signal::Succeeded
            }
        }
        Err(Reason::Call(e)) if throttling(&e.code, e.status) => Signal::Throttled,
        Err(_) => Signal::Neutral,
    }
}

/// The distinct trace contexts the planned messages came with, in order of first appearance.
fn upstream_contexts(rounds: &[Plan]) -> Vec<TraceHeader> {
    let mut seen = HashSet::new();
    rounds
        .iter()
        .flat_map(|plan| plan.batches.iter().flatten())
        .flat_map(|batch| batch.messages.iter().filter_map(|m| m.trace.as_ref()))
        .filter(|h| seen.insert(*h))
        .cloned()
        .collect()
}

/// Opens the send spans of a call and points its messages' `Parent` at them.
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
            && let Some(id) = segment.parent_for(h)
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

fn call_facts(destination: &Destination, result: &Result<CallReport, Reason>) -> CallFacts {
    let operation = crate::publish::operation(destination);
    match result {
        Ok(report) => CallFacts {
            operation,
            request_id: report.request_id.clone(),
            status: Some(200),
            ..CallFacts::default()
        },
        Err(Reason::Call(e)) => CallFacts {
            operation,
            request_id: e.request_id.clone(),
            status: e.status,
            failed: true,
            error_type: Some(e.code.clone()),
        },
        Err(reason) => CallFacts {
            operation,
            failed: true,
            error_type: Some(
                if matches!(reason, Reason::Deadline) {
                    "Deadline"
                } else {
                    "_OTHER"
                }
                .to_owned(),
            ),
            ..CallFacts::default()
        },
    }
}

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
    outcomes: Outcomes,
}

/// One decoded record ready to plan: its unit, the notification and its outbound trace header.
type Record<'a> = (usize, &'a Arc<Notification>, Option<TraceHeader>);

/// The pure half of an invocation: decode → choose each record's trace context → route → batch.
/// Units that cannot be decoded or whose message exceeds a target's size limit are marked failed
/// here, before anything is sent.
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
    let mut outcomes = Outcomes::new(inbound.units.len());
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
    Ok(Prepared {
        inbound,
        invocation_trace,
        rounds,
        summary,
        outcomes,
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
        match &unit.content {
            Err(e) => {
                summary.received += 1;
                tracing::error!(
                    message_id = unit.message_id.as_deref().map(logs::input),
                    error = logs::text(e).as_str(),
                    "record rejected"
                );
                outcomes.fail(index, Undelivered::unit(Reason::BadInput(e.clone())));
            }
            Ok(Content::TestEvent) => summary.test_events += 1,
            Ok(Content::Notifications(list)) => {
                let resolved = resolve(&unit.carrier, invocation, record_level);
                count_fallback(unit, &resolved, summary);
                summary.received += list.len();
                log_received(unit, list, &resolved);
                records.extend(list.iter().map(|n| (index, n, resolved.header.clone())));
            }
        }
    }
    records
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

/// Full-jitter exponential backoff: a random delay up to `base * 2^(attempt-1)`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = RETRY_BASE_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}
