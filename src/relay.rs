//! The relay core: decode → choose trace contexts → route and batch → publish → account for every
//! record (CONTRACT §6). This module orchestrates the sending half; [`crate::prepare`] is the pure
//! half, and each rule lives in the module named after it: [`crate::inbound`] decodes,
//! [`crate::context`] picks trace contexts, [`crate::plan`] routes and batches, [`crate::order`]
//! keeps FIFO order, [`crate::publish`] sends, [`crate::response`] answers.
//!
//! Each target has one sender, fed through a channel: a plain SQS event from a standard queue is
//! decoded on a blocking thread that hands each batch over as soon as it is complete, so calls start
//! while the rest of the batch is read; everything else is prepared whole and handed over after.
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

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Receiver, Sender};
use tokio::time::Instant;

use crate::concurrency::{Learned, Limiter, Signal};
use crate::config::{Destination, RelayConfig, Target};
use crate::context::InvocationTrace;
use crate::failure::{HoldBack, Reason, Undelivered};
use crate::message::{Batch, Message};
use crate::metrics::{TargetCounts, emf_lines};
use crate::order::{Order, TargetGate};
use crate::prepare::{Outcomes, Outlet, Streamed, log_undelivered, stream, undelivered, upstream_contexts};
pub use crate::prepare::{Prepared, prepare};
use crate::publish::{CallReport, EntryOutcome, Publisher};
use crate::recording::{CallRecording, InvocationRecording, Recorder};
use crate::response::{RelayError, RelayResponse, Summary, Units, respond};
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
        self.relay(Payload::Text(payload), info).await
    }

    /// [`Relay::handle`] for the payload as the Lambda runtime reads it (the body's bytes):
    /// decoded on a blocking thread while the first batches are already being sent (`handle`
    /// decodes first, then sends).
    pub async fn handle_payload(&self, payload: Bytes, info: &InvocationInfo) -> Result<RelayResponse, RelayError> {
        self.relay(Payload::Body(payload), info).await
    }

    /// Prepares and sends the payload ([`Relay::send_all`]), then answers Lambda.
    async fn relay(&self, payload: Payload<'_>, info: &InvocationInfo) -> Result<RelayResponse, RelayError> {
        let invocation_trace = InvocationTrace::parse(info.trace_id.as_deref());
        let limiter = self.learned.limiter(self.config.max_in_flight);
        let recording = self
            .recorder
            .as_ref()
            .map(|r| r.invocation(invocation_trace.header(), &info.request_id));
        let call = CallContext {
            cutoff: info.cutoff(self.config.deadline_margin),
            limiter: &limiter,
            recording: recording.as_ref(),
        };
        let mut tally = Tally::new(&self.config.targets);
        let sent = self.send_all(&call, payload, invocation_trace, &mut tally).await;
        self.learned.keep(&limiter);
        let (units, mut summary, outcomes) = sent?;
        if let Some(recording) = recording {
            recording.finish(info.cutoff(Duration::ZERO)).await;
        }
        let failures = outcomes.into_failures(&units);
        tally.add_to(&mut summary);
        summary.reported_failures = failures.len();
        log_summary(info, &summary);
        self.write_metrics(&summary, &tally.targets);
        respond(&units, failures, summary)
    }

    /// Streams the payload into the targets' senders ([`stream`]); what cannot stream is sent by
    /// rounds once decoded. Returns the units' ids, the counts and every unit's outcome.
    async fn send_all(
        &self,
        call: &CallContext<'_>,
        payload: Payload<'_>,
        invocation_trace: InvocationTrace,
        tally: &mut Tally,
    ) -> Result<(Units, Summary, Outcomes), RelayError> {
        let links = call.recording.is_some();
        let (produced, runs) = match payload {
            Payload::Body(body) => self.stream_while_sending(call, body, invocation_trace).await,
            Payload::Text(text) => {
                let mut planned: Vec<Vec<Batch>> = vec![Vec::new(); self.config.targets.len()];
                let produced = stream(
                    &self.config.targets,
                    text.as_bytes(),
                    invocation_trace,
                    links,
                    &mut planned,
                );
                (produced, self.deliver_planned(call, planned).await)
            }
        };
        match produced? {
            Streamed::Sent {
                units,
                summary,
                mut outcomes,
                upstream,
            } => {
                if let Some(recording) = call.recording {
                    recording.received(summary.received, || upstream);
                }
                account(runs, tally, &mut outcomes);
                Ok((units, summary, outcomes))
            }
            Streamed::Rounds(prepared) => Ok(self.send_rounds(call, prepared, runs, tally).await),
        }
    }

    /// Decodes and plans `payload` on a blocking thread ([`stream`]), each target's sender taking
    /// every batch as soon as it is complete.
    async fn stream_while_sending(
        &self,
        call: &CallContext<'_>,
        payload: Bytes,
        invocation_trace: InvocationTrace,
    ) -> (Result<Streamed, RelayError>, Vec<TargetRun>) {
        let targets = self.config.targets.len();
        let (senders, receivers) = channels(std::iter::repeat_n(queue_depth(self.config.max_in_flight), targets));
        let config = Arc::clone(&self.config);
        let links = call.recording.is_some();
        let producer = tokio::task::spawn_blocking(move || {
            stream(
                &config.targets,
                &payload,
                invocation_trace,
                links,
                &mut Channels(senders),
            )
        });
        let (produced, runs) = futures_util::future::join(producer, self.deliver_batches(call, receivers)).await;
        let produced = produced.unwrap_or_else(|e| {
            // The producer is pure code; a panic there is the handler's own, raised again here.
            std::panic::resume_unwind(e.try_into_panic().unwrap_or_else(|e| Box::new(e.to_string())))
        });
        (produced, runs)
    }

    /// Sends a FIFO source batch round after round, holding back what follows a failure
    /// ([`Order`]); `early` are the runs of batches streamed before the decoder gave up, if any.
    async fn send_rounds(
        &self,
        call: &CallContext<'_>,
        prepared: Prepared,
        early: Vec<TargetRun>,
        tally: &mut Tally,
    ) -> (Units, Summary, Outcomes) {
        let Prepared {
            inbound,
            rounds,
            summary,
            mut outcomes,
            ..
        } = prepared;
        account(early, tally, &mut outcomes);
        if let Some(recording) = call.recording {
            recording.received(summary.received, || upstream_contexts(&rounds));
        }
        let order = Order::of(&inbound);
        let mut held = HashSet::new();
        for mut round in rounds {
            held.extend(hold_back(&order, &mut outcomes));
            round.drop_units(|unit| held.contains(&unit));
            let runs = self.deliver_planned(call, round.batches).await;
            account(runs, tally, &mut outcomes);
        }
        // A failure in the last round still holds back the later members of its group or object.
        hold_back(&order, &mut outcomes);
        drop(order);
        (Units::from(&inbound), summary, outcomes)
    }

    /// Sends batches planned before: every target at once.
    async fn deliver_planned(&self, call: &CallContext<'_>, planned: Vec<Vec<Batch>>) -> Vec<TargetRun> {
        let (senders, receivers) = channels(planned.iter().map(Vec::len));
        for (sender, batches) in senders.iter().zip(planned) {
            for batch in batches {
                // Never full: each channel holds all of its target's batches.
                let _ = sender.try_send(batch);
            }
        }
        drop(senders);
        self.deliver_batches(call, receivers).await
    }

    /// Every target's sender at once, each taking its batches from its channel.
    async fn deliver_batches(&self, call: &CallContext<'_>, receivers: Vec<Receiver<Batch>>) -> Vec<TargetRun> {
        let runs = receivers
            .into_iter()
            .zip(&self.config.targets)
            .map(|(batches, target)| self.deliver_target(call, &target.destination, batches));
        futures_util::future::join_all(runs).await
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

    /// Sends one target's batches as they come: in order, one at a time, for FIFO targets
    /// (skipping the later events of an object once one failed, see [`TargetGate`]); concurrently
    /// otherwise.
    async fn deliver_target(
        &self,
        call: &CallContext<'_>,
        destination: &Destination,
        mut batches: Receiver<Batch>,
    ) -> TargetRun {
        let mut run = TargetRun::new(destination);
        if destination.is_fifo() {
            let mut gate = TargetGate::default();
            while let Some(mut batch) = batches.recv().await {
                let (send, skip): (Vec<Message>, Vec<Message>) = std::mem::take(&mut batch.messages)
                    .into_iter()
                    .partition(|m| gate.admits(m));
                let held = Reason::HeldBack(HoldBack::TargetObject);
                run.failures.extend(skip.into_iter().map(|m| (m, held.clone())));
                batch.messages = send;
                let outcome = self.deliver_batch(call, destination, batch).await;
                for (m, _) in &outcome.failed {
                    gate.failed(m);
                }
                run.add(outcome);
            }
        } else {
            self.deliver_concurrently(call, destination, batches, &mut run).await;
        }
        run.counts.failed = run.failures.len();
        run
    }

    /// Sends a non-FIFO target's batches, up to the in-flight cap at once (calls are also bounded
    /// by the limiter, shared by all targets): a batch is taken from the channel only when a call
    /// slot of this target is free, so waiting batches hold no future.
    async fn deliver_concurrently(
        &self,
        call: &CallContext<'_>,
        destination: &Destination,
        mut batches: Receiver<Batch>,
        run: &mut TargetRun,
    ) {
        let mut started = FuturesUnordered::new();
        let mut open = true;
        while open || !started.is_empty() {
            // Started calls first, so a call just taken builds its request at once; then a yield,
            // so that on one thread its connection writes it before the next call is built.
            tokio::select! {
                biased;
                Some(outcome) = started.next(), if !started.is_empty() => run.add(outcome),
                batch = batches.recv(), if open && started.len() < self.config.max_in_flight => match batch {
                    Some(batch) => {
                        started.push(self.deliver_batch(call, destination, batch));
                        tokio::task::yield_now().await;
                    }
                    None => open = false,
                },
            }
        }
    }

    /// Sends the messages of one planned batch, resending transient entry failures alone.
    async fn deliver_batch(&self, call: &CallContext<'_>, destination: &Destination, batch: Batch) -> BatchOutcome {
        let Batch {
            target,
            request_trace,
            messages: mut pending,
        } = batch;
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
            let sent = Batch {
                target,
                request_trace: request_trace.clone(),
                messages: Vec::new(),
            };
            let report = match self
                .send_once(call, destination, sent, &pending, &mut outcome.calls)
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
        mut batch: Batch,
        pending: &[Message],
        calls: &mut usize,
    ) -> Result<CallReport, Reason> {
        let permit = call.limiter.acquire().await;
        if call.too_late(Duration::ZERO) {
            return Err(Reason::Deadline);
        }
        *calls += 1;
        // Copied only once a call slot is held, so batches waiting for one hold no copy.
        batch.messages = pending.to_vec();
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

/// The invocation payload.
enum Payload<'p> {
    /// As the Lambda runtime read it: owned, so it can be decoded on a blocking thread.
    Body(Bytes),
    /// Given as text ([`Relay::handle`]): decoded first, then sent.
    Text(&'p str),
}

/// Each target's channel, as the decoder hands batches out.
struct Channels(Vec<Sender<Batch>>);

impl Outlet for Channels {
    fn offer(&mut self, target: usize, batch: Batch) -> Result<(), Batch> {
        match self.0.get(target).map(|s| s.try_send(batch)) {
            Some(Err(TrySendError::Full(batch))) => Err(batch),
            // Closed only when the invocation is gone, and with it every receiver.
            _ => Ok(()),
        }
    }

    fn hand(&mut self, target: usize, batch: Batch) {
        // Fails only when the invocation is gone, and with it every receiver.
        let _ = self.0.get(target).map(|s| s.blocking_send(batch));
    }
}

/// Batches a target's channel holds for its sender: a quarter of the in-flight cap, at least 2.
/// The decoder refills the channel faster than a burst of answers empties it, so a deeper queue
/// only holds batches (about 10 KB each for 10 records) in memory sooner: with the whole cap, up to
/// 60 per target at 60 in flight. Measured a quarter against the whole cap, 10,000 records at 60
/// in flight: peak RSS 23.2-23.6 -> 22.6-22.7 MiB with a trace context per record, the same within
/// noise with one per 10 records, durations the same (README, Latency: peak RSS).
fn queue_depth(max_in_flight: usize) -> usize {
    (max_in_flight / 4).max(2)
}

/// One channel of batches per target, each holding up to its capacity.
fn channels(capacities: impl Iterator<Item = usize>) -> (Vec<Sender<Batch>>, Vec<Receiver<Batch>>) {
    capacities.map(|c| tokio::sync::mpsc::channel(c.max(1))).unzip()
}

/// Accounts for every target's run: its counts, and each failed message against its unit.
fn account(runs: Vec<TargetRun>, tally: &mut Tally, outcomes: &mut Outcomes) {
    for (target, run) in runs.into_iter().enumerate() {
        for (message, reason) in run.failures {
            let failure = undelivered(&message.notification, &run.counts.target, reason);
            log_undelivered(&failure);
            outcomes.fail(message.unit, failure);
        }
        tally.add(target, &run.counts);
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
struct TargetRun {
    counts: TargetCounts,
    failures: Vec<(Message, Reason)>,
}

impl TargetRun {
    fn new(destination: &Destination) -> Self {
        TargetRun {
            counts: TargetCounts {
                target: destination.to_string(),
                ..TargetCounts::default()
            },
            failures: Vec::new(),
        }
    }

    fn add(&mut self, outcome: BatchOutcome) {
        self.counts.published += outcome.delivered;
        self.counts.publish_calls += outcome.calls;
        self.counts.retries += outcome.retries;
        self.failures.extend(outcome.failed);
    }
}

/// What became of the messages of one planned batch.
#[derive(Default)]
struct BatchOutcome {
    delivered: usize,
    calls: usize,
    retries: usize,
    failed: Vec<(Message, Reason)>,
}

impl BatchOutcome {
    fn fail_all(&mut self, messages: Vec<Message>, reason: &Reason) {
        self.failed.extend(messages.into_iter().map(|m| (m, reason.clone())));
    }

    /// Accounts for one call's answer and returns the entries to resend alone (when `resend`).
    fn settle(&mut self, sent: Vec<Message>, report: CallReport, resend: bool) -> Vec<Message> {
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

/// Fails every unit [`Order::held_back`] names, and returns them.
fn hold_back(order: &Order<'_>, outcomes: &mut Outcomes) -> Vec<usize> {
    let held = order.held_back(|unit| outcomes.failed(unit));
    for &(unit, why) in &held {
        outcomes.fail(unit, Undelivered::unit(Reason::HeldBack(why)));
    }
    held.into_iter().map(|(unit, _)| unit).collect()
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

/// Full-jitter exponential backoff: a random delay up to `base * 2^(attempt-1)`.
fn backoff(attempt: u32) -> Duration {
    let ceiling = RETRY_BASE_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::random_range(millis / 2..=millis))
}

#[cfg(test)]
mod tests {
    use super::queue_depth;

    #[test]
    fn a_targets_queue_holds_a_quarter_of_the_in_flight_cap_and_at_least_two_batches() {
        assert_eq!(queue_depth(60), 15);
        assert_eq!(queue_depth(16), 4);
        assert_eq!(queue_depth(1), 2);
        assert_eq!(queue_depth(0), 2);
    }
}
