//! Fault injection, end to end: the real relay binary behind the Runtime API stand-in, publishing
//! through a fault-injecting proxy (`support::fault_proxy`) to moto. Throttling, 5xx, attempt
//! timeouts (with and without delivery), dropped connections (before and after delivery) and
//! rewritten batch answers (entries failed though delivered, failed and not delivered, omitted)
//! are injected into a quarter of the batch calls; the test re-drives what the relay reports failed
//! as Lambda would, until everything succeeds, then checks CONTRACT §6 against what the queues hold:
//! nothing lost, nothing foreign, no silent duplicate, duplicates only where a delivery was hidden
//! from the relay or a unit was re-driven.
//!
//! moto is the bottleneck (a few milliseconds of CPU per message, more the fuller a queue is), so
//! consumers drain the queues while the relay publishes and no invocation starts while they are
//! behind. `FAULT_INJECTION_PROGRESS=1` prints the proxy's counters every 10 s on stderr. The last
//! line of output is the totals of all seeds.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use s3_trace_relay::relay::MAX_ENTRY_RETRIES;
use serde_json::{Value, json};
use support::fault_proxy::{Delivery, FaultConfig, FaultKind, FaultProxy, FaultStats, Rule};
use support::moto::{Moto, moto};
use support::runtime_api::{Invocation, Outcome, RelayProcess, RuntimeApi};
use tokio::task::JoinSet;

const SEEDS: [u64; 4] = [0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0x5eed_0004];
/// S3 records generated per seed (a job may end the count a little above it).
const RECORDS_PER_SEED: usize = 2_500;
/// Fraction of batch calls the proxy faults.
const FAULT_RATE: f64 = 0.25;
/// Re-drive rounds allowed before the test gives up.
const MAX_ROUNDS: usize = 20;
/// Concurrent invocations of the relay (`AWS_LAMBDA_MAX_CONCURRENCY`).
const CONCURRENCY: usize = 3;
/// The relay's per-attempt timeout (`RELAY_ATTEMPT_TIMEOUT_MS`). moto answers a batch call in
/// 5–50 ms when it has a core to itself, but takes hundreds of milliseconds on a busy machine: a
/// shorter timeout turns load into spurious timeouts, retries and more load.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Share of the jobs that are SQS-wrapped batches (which hold about four times the records of a
/// direct event); the rest are direct S3 events.
const SQS_SHARE: f64 = 0.4;
/// Only keys under this prefix go to the FIFO target (moto's FIFO queues are slow), about
/// `FIFO_SHARE` of them.
const FIFO_PREFIX: &str = "fifo/";
const FIFO_SHARE: f64 = 0.1;
/// Visibility timeout of the target queues: a message received by a call whose answer was lost
/// comes back this soon.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(90);
/// Attempts the SDK makes per call (`AWS_MAX_ATTEMPTS`, set explicitly: the FIFO cases count them).
const SDK_MAX_ATTEMPTS: u32 = 3;
const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:fi-source";
const FIFO_SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:fi-source.fifo";

/// The relay process, its Runtime API and the proxy it publishes through.
struct Relay {
    api: RuntimeApi,
    process: RelayProcess,
    proxy: FaultProxy,
}

impl Relay {
    async fn start(moto: &Moto, targets: &str, config: FaultConfig) -> Self {
        let proxy = FaultProxy::start(moto.endpoint(), config.for_attempt_timeout(ATTEMPT_TIMEOUT)).await;
        let api = RuntimeApi::start().await;
        let endpoint = proxy.endpoint();
        let concurrency = CONCURRENCY.to_string();
        let timeout_ms = ATTEMPT_TIMEOUT.as_millis().to_string();
        let max_attempts = SDK_MAX_ATTEMPTS.to_string();
        let env = [
            ("RELAY_TARGETS", targets),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("RELAY_ATTEMPT_TIMEOUT_MS", timeout_ms.as_str()),
            ("RELAY_MAX_IN_FLIGHT", "2"),
            ("AWS_MAX_ATTEMPTS", max_attempts.as_str()),
            ("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.as_str()),
        ];
        let process = RelayProcess::spawn(&api, &env);
        assert!(
            api.wait_for_polls(CONCURRENCY, WAIT).await,
            "relay workers never polled /next:\n{}",
            process.logs()
        );
        Relay { api, process, proxy }
    }

    /// From the relay's logs: the `invocation done` lines (count, sums of `fields.retries` and
    /// `fields.publish_calls`) and the sum of `Retries` of the function-level EMF lines.
    fn logged_counts(&self) -> LoggedCounts {
        let mut counts = LoggedCounts::default();
        for line in self.process.json_logs() {
            if line["fields"]["message"] == "invocation done" {
                counts.invocations += 1;
                counts.retries += line["fields"]["retries"].as_u64().unwrap_or(0);
                counts.publish_calls += line["fields"]["publish_calls"].as_u64().unwrap_or(0);
            }
            if line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([["FunctionName"]]) {
                counts.emf_retries += line["Retries"].as_u64().unwrap_or(0);
            }
        }
        counts
    }

    fn assert_alive(&mut self) {
        let logs = self.process.logs();
        assert!(!logs.contains("panicked"), "the relay panicked:\n{logs}");
        assert_eq!(self.process.try_wait(), None, "the relay process died:\n{logs}");
    }
}

/// Counts read back from the relay's logs.
#[derive(Debug, Default)]
struct LoggedCounts {
    invocations: usize,
    retries: u64,
    publish_calls: u64,
    emf_retries: u64,
}

/// One S3 record, identified by `bucket/key#sequencer`.
fn s3_record(bucket: &str, key: &str, sequencer: &str) -> Value {
    json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key, "size": 1, "sequencer": sequencer}}
    })
}

fn record_id(record: &Value) -> String {
    let s3 = &record["s3"];
    format!(
        "{}/{}#{}",
        s3["bucket"]["name"].as_str().unwrap_or("?"),
        s3["object"]["key"].as_str().unwrap_or("?"),
        s3["object"]["sequencer"].as_str().unwrap_or("?")
    )
}

/// The record a published message carries (`{"Records":[<record>]}`).
fn body_record_id(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("published body is not JSON ({e}): {body}"));
    let records = v["Records"].as_array().unwrap_or_else(|| panic!("no Records: {body}"));
    assert_eq!(records.len(), 1, "one record per message: {body}");
    record_id(&records[0])
}

fn trace_header(rng: &mut StdRng) -> String {
    format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=1",
        rng.random::<u32>(),
        rng.random::<u128>() >> 32,
        rng.random::<u64>()
    )
}

/// One SQS message of a source batch.
#[derive(Debug, Clone)]
struct SqsMsg {
    id: String,
    records: Vec<Value>,
    trace: Option<String>,
    group: Option<String>,
}

/// One invocation to make (and, re-driven, make again).
#[derive(Debug, Clone)]
enum Job {
    /// An SQS event from `source_arn`.
    Sqs {
        source_arn: &'static str,
        messages: Vec<SqsMsg>,
    },
    /// An S3 event delivered to Lambda directly.
    Direct { records: Vec<Value>, trace: String },
}

impl Job {
    fn invocation(&self) -> Invocation {
        let (payload, trace) = match self {
            Job::Sqs { source_arn, messages } => {
                let records: Vec<Value> = messages
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let mut attributes = json!({
                            "ApproximateReceiveCount": "1", "SentTimestamp": "1764072000000",
                            "SenderId": "AROAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1764072000001"
                        });
                        if let Some(t) = &m.trace {
                            attributes["AWSTraceHeader"] = json!(t);
                        }
                        if let Some(g) = &m.group {
                            attributes["MessageGroupId"] = json!(g);
                            attributes["SequenceNumber"] = json!(format!("{:020}", i + 1));
                            attributes["MessageDeduplicationId"] = json!(m.id);
                        }
                        json!({
                            "messageId": m.id, "receiptHandle": format!("rh-{}", m.id),
                            "body": json!({"Records": m.records}).to_string(),
                            "attributes": attributes, "messageAttributes": {}, "md5OfBody": "0",
                            "eventSource": "aws:sqs", "eventSourceARN": source_arn, "awsRegion": "us-east-1"
                        })
                    })
                    .collect();
                (json!({ "Records": records }), None)
            }
            Job::Direct { records, trace } => (json!({ "Records": records }), Some(trace.clone())),
        };
        let mut invocation = Invocation::json(&payload).with_deadline_in(Duration::from_secs(60));
        if let Some(t) = trace {
            invocation = invocation.with_trace(t);
        }
        invocation
    }

    fn records(&self) -> Vec<String> {
        match self {
            Job::Sqs { messages, .. } => messages.iter().flat_map(|m| m.records.iter().map(record_id)).collect(),
            Job::Direct { records, .. } => records.iter().map(record_id).collect(),
        }
    }
}

/// What one round of invocations came back with.
#[derive(Debug, Default)]
struct RoundResult {
    /// Records of units the relay reported delivered.
    acked: Vec<String>,
    /// Units to re-drive, as Lambda would: SQS-sourced, the failed messages; others, the whole event.
    redrive: Vec<Job>,
    /// Invocations that returned an error.
    errors: usize,
    /// SQS messages named in `batchItemFailures`.
    item_failures: usize,
    /// `batchItemFailures` per job, in the order of `jobs` (empty for direct events).
    failed_ids: Vec<Vec<String>>,
}

/// Runs `jobs` through the relay, at most `CONCURRENCY + 2` queued or running at once (so that no
/// invocation waits in the queue long enough to near its deadline), and none started while
/// `backlog` says the consumers are behind.
async fn run_round(relay: &Relay, jobs: &[Job], backlog: Option<&AtomicUsize>) -> RoundResult {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    let mut set: JoinSet<(usize, Outcome)> = JoinSet::new();
    let mut collect = |joined: Option<Result<(usize, Outcome), tokio::task::JoinError>>| {
        let (i, outcome) = joined.expect("a task is running").expect("outcome task");
        outcomes[i] = Some(outcome);
    };
    for (i, job) in jobs.iter().enumerate() {
        while set.len() >= CONCURRENCY + 2 {
            collect(set.join_next().await);
        }
        while backlog.is_some_and(|b| b.load(Ordering::Relaxed) > 0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let handle = relay.api.invoke(job.invocation());
        set.spawn(async move { (i, handle.outcome(WAIT).await) });
    }
    while !set.is_empty() {
        collect(set.join_next().await);
    }
    let mut result = RoundResult::default();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        let outcome = outcome.expect("every job has an outcome");
        match (job, outcome) {
            (Job::Sqs { source_arn, messages }, Outcome::Response(response)) => {
                let failed: Vec<String> = response["batchItemFailures"]
                    .as_array()
                    .unwrap_or_else(|| panic!("not an SQS batch response: {response}"))
                    .iter()
                    .map(|f| f["itemIdentifier"].as_str().expect("itemIdentifier").to_owned())
                    .collect();
                let known: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
                for id in &failed {
                    assert!(known.contains(id.as_str()), "batchItemFailures names a foreign id {id}");
                }
                result.item_failures += failed.len();
                let (retry, done): (Vec<SqsMsg>, Vec<SqsMsg>) =
                    messages.iter().cloned().partition(|m| failed.contains(&m.id));
                result
                    .acked
                    .extend(done.iter().flat_map(|m| m.records.iter().map(record_id)));
                if !retry.is_empty() {
                    result.redrive.push(Job::Sqs {
                        source_arn,
                        messages: retry,
                    });
                }
                result.failed_ids.push(failed);
            }
            (Job::Sqs { messages, .. }, Outcome::Error { .. }) => {
                result.errors += 1;
                result.redrive.push(job.clone());
                result.failed_ids.push(messages.iter().map(|m| m.id.clone()).collect());
            }
            (Job::Direct { .. }, Outcome::Response(_)) => {
                result.acked.extend(job.records());
                result.failed_ids.push(Vec::new());
            }
            (Job::Direct { .. }, Outcome::Error { .. }) => {
                result.errors += 1;
                result.redrive.push(job.clone());
                result.failed_ids.push(Vec::new());
            }
        }
    }
    result
}

/// Retries a call to moto a few times: a loaded moto can drop a connection now and then.
macro_rules! with_retries {
    ($what:expr, $call:expr) => {{
        let mut attempt = 0;
        loop {
            match $call.await {
                Ok(out) => break out,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    eprintln!("{} failed (attempt {attempt}, retrying): {e:?}", $what);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("{}: {e:?}", $what),
            }
        }
    }};
}

/// Receives up to 10 messages and deletes them in one batch; returns their bodies.
async fn receive_batch(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let out = with_retries!(
        format!("ReceiveMessage {queue_url}"),
        sqs.receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
    );
    let messages = out.messages();
    if messages.is_empty() {
        return Vec::new();
    }
    let entries: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
                .expect("id and receipt handle are set")
        })
        .collect();
    let out = with_retries!(
        format!("DeleteMessageBatch {queue_url}"),
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries.clone()))
            .send()
    );
    assert!(
        out.failed().is_empty(),
        "DeleteMessageBatch {queue_url}: {:?}",
        out.failed()
    );
    messages
        .iter()
        .map(|m| m.body().unwrap_or_default().to_owned())
        .collect()
}

/// Messages in the queue, visible or not (a receive whose answer was lost hides some for
/// [`VISIBILITY_TIMEOUT`]).
async fn queue_depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = with_retries!(
        format!("GetQueueAttributes {queue_url}"),
        sqs.get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
    );
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|a| {
            out.attributes()
                .and_then(|m| m.get(a))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Drains a queue until it holds no message, visible or not; returns the bodies in the order received.
async fn drain(moto: &Moto, queue_url: &str) -> Vec<String> {
    let sqs = moto.sqs();
    let mut bodies = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let batch = receive_batch(&sqs, queue_url).await;
        if batch.is_empty() {
            if queue_depth(&sqs, queue_url).await == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{queue_url} never drained");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bodies.extend(batch);
    }
    bodies
}

/// Creates a standard or FIFO queue whose received-but-not-deleted messages come back quickly.
async fn create_queue(moto: &Moto, name: &str) -> String {
    let url = moto.create_queue(name).await;
    with_retries!(
        format!("SetQueueAttributes {url}"),
        moto.sqs()
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                VISIBILITY_TIMEOUT.as_secs().to_string()
            )
            .send()
    );
    url
}

/// Background consumers that keep queues short while the relay publishes: moto's SendMessageBatch
/// and ReceiveMessage get slower with every message already in the queue, so a queue that fills up
/// slows every call, which slows the consumers, which fills the queues: a collapse. `backlog` counts
/// the queues whose last receive came back full; no invocation starts while it is above zero.
struct Drainers {
    stop: Arc<AtomicBool>,
    backlog: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Drainers {
    fn start(moto: &Moto, queue_urls: &[&str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let backlog = Arc::new(AtomicUsize::new(0));
        let tasks = queue_urls
            .iter()
            .map(|url| {
                let (sqs, url, stop) = (moto.sqs(), (*url).to_owned(), stop.clone());
                let backlog = backlog.clone();
                tokio::spawn(async move {
                    let mut bodies = Vec::new();
                    let mut behind = false;
                    while !stop.load(Ordering::Relaxed) {
                        let batch = receive_batch(&sqs, &url).await;
                        let full = batch.len() == 10;
                        if full != behind {
                            behind = full;
                            if full {
                                backlog.fetch_add(1, Ordering::Relaxed);
                            } else {
                                backlog.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                        // Polling an empty queue still costs moto time: back off unless it is busy.
                        if batch.is_empty() {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        bodies.extend(batch);
                    }
                    bodies
                })
            })
            .collect();
        Drainers { stop, backlog, tasks }
    }

    /// Stops the consumers; returns what each received, in the order of the queue URLs given.
    async fn stop(self) -> Vec<Vec<String>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for task in self.tasks {
            all.push(task.await.expect("drainer task"));
        }
        all
    }
}

/// The relay's targets for the random test, and where each one's messages end up.
struct Targets {
    queue: String,
    topic: String,
    via_sns: String,
    fifo: String,
}

impl Targets {
    const NAMES: [&'static str; 3] = ["std", "sns", "fifo"];

    async fn create(moto: &Moto, prefix: &str) -> Self {
        let queue = create_queue(moto, &format!("{prefix}-out")).await;
        let topic = moto.create_topic(&format!("{prefix}-topic")).await;
        let via_sns = create_queue(moto, &format!("{prefix}-via-sns")).await;
        moto.subscribe_queue(&topic, &via_sns, true).await;
        let fifo = create_queue(moto, &format!("{prefix}-out.fifo")).await;
        Targets {
            queue,
            topic,
            via_sns,
            fifo,
        }
    }

    fn relay_targets(&self) -> String {
        format!("{},{},{}?prefix={FIFO_PREFIX}", self.queue, self.topic, self.fifo)
    }

    /// Whether the relay routes the record (`bucket/key#sequencer`) to the named target.
    fn routes(name: &str, record: &str) -> bool {
        name != "fifo"
            || record
                .split_once('/')
                .is_some_and(|(_, key)| key.starts_with(FIFO_PREFIX))
    }

    /// Target name of a proxy delivery (queue URL or topic ARN).
    fn name_of(&self, target: &str) -> &'static str {
        if target == self.queue {
            "std"
        } else if target == self.topic {
            "sns"
        } else if target == self.fifo {
            "fifo"
        } else {
            panic!("delivery to a target the relay was not given: {target}")
        }
    }

    /// The queue that receives what was published to the named target.
    fn queue_of(&self, name: &str) -> &str {
        match name {
            "std" => &self.queue,
            "sns" => &self.via_sns,
            _ => &self.fifo,
        }
    }
}

/// Per seed: what went in, what came out, what was injected.
#[derive(Debug, Default)]
struct SeedReport {
    seed: u64,
    records: usize,
    invocations: usize,
    redriven_invocations: usize,
    /// Invocations of each re-drive round.
    redrive_rounds: Vec<usize>,
    rounds: usize,
    invocation_errors: usize,
    item_failures: usize,
    faults: FaultStats,
    retries_summary: u64,
    retries_emf: u64,
    sdk_retries: u64,
    duplicates: BTreeMap<&'static str, usize>,
    hidden_deliveries: BTreeMap<&'static str, usize>,
    /// Re-driven records that every target already had.
    redriven_delivered: usize,
    /// FIFO-source messages held back behind an earlier failed message of their group.
    fifo_held_back: usize,
    /// Objects whose events reached the FIFO target out of order (first arrivals).
    fifo_reordered: usize,
    elapsed: Duration,
}

impl SeedReport {
    fn duplicates_total(&self) -> usize {
        self.duplicates.values().sum()
    }

    fn line(&self) -> String {
        format!(
            "seed={:#x} records={} invocations={} redriven_invocations={} {:?} rounds={} invocation_errors={} \
             batch_item_failures={} batch_calls={} faulted_calls={} [{}] late={} upstream_avg={:.1?} upstream_max={:.1?} entry_retries={} (emf {}) sdk_call_retries={} \
             duplicates={} {:?} hidden_deliveries={:?} redriven_records_already_delivered={} fifo_source_held_back={} \
             fifo_target_objects_reordered={} \
             elapsed={:.1?}",
            self.seed,
            self.records,
            self.invocations,
            self.redriven_invocations,
            self.redrive_rounds,
            self.rounds,
            self.invocation_errors,
            self.item_failures,
            self.faults.batch_calls,
            self.faults.faulted(),
            self.faults.summary(),
            self.faults.late,
            self.faults.upstream_total / u32::try_from(self.faults.upstream_calls.max(1)).unwrap_or(u32::MAX),
            self.faults.upstream_max,
            self.retries_summary,
            self.retries_emf,
            self.sdk_retries,
            self.duplicates_total(),
            self.duplicates,
            self.hidden_deliveries,
            self.redriven_delivered,
            self.fifo_held_back,
            self.fifo_reordered,
            self.elapsed,
        )
    }
}

/// Generates about `RECORDS_PER_SEED` records as SQS-wrapped batches (1–10 messages of 1–3 records)
/// and direct S3 events (1–5 records); every record is a distinct event, some on the same object.
fn workload(seed: u64) -> (Vec<Job>, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let bucket = format!("fi-bucket-{seed:x}");
    let mut next = 0usize;
    let mut record = |rng: &mut StdRng, last_key: &mut Option<String>| {
        next += 1;
        // One in ten events is on the object of the previous event of the job.
        let key = match last_key.as_ref().filter(|_| rng.random_bool(0.1)) {
            Some(k) => k.clone(),
            None if rng.random_bool(FIFO_SHARE) => format!("{FIFO_PREFIX}obj-{next:05}.bin"),
            None => format!("data/obj-{next:05}.bin"),
        };
        *last_key = Some(key.clone());
        s3_record(&bucket, &key, &format!("{seed:08X}{next:010X}"))
    };
    let mut jobs = Vec::new();
    let mut total = 0;
    let mut message = 0;
    while total < RECORDS_PER_SEED {
        let mut last_key = None;
        if rng.random_bool(SQS_SHARE) {
            let n = rng.random_range(1..=10);
            // A quarter of the SQS batches come from a FIFO queue, with one to three groups.
            let groups = rng.random_bool(0.25).then(|| rng.random_range(1..=3));
            let job = jobs.len();
            let messages: Vec<SqsMsg> = (0..n)
                .map(|_| {
                    message += 1;
                    let group = groups.map(|g| format!("j{job}-g{}", rng.random_range(0..g)));
                    let k = rng.random_range(1..=3);
                    let records: Vec<Value> = (0..k).map(|_| record(&mut rng, &mut last_key)).collect();
                    total += records.len();
                    SqsMsg {
                        id: format!("{seed:x}-m{message:06}"),
                        records,
                        trace: rng.random_bool(0.3).then(|| trace_header(&mut rng)),
                        group,
                    }
                })
                .collect();
            jobs.push(Job::Sqs {
                source_arn: if groups.is_some() { FIFO_SOURCE_ARN } else { SOURCE_ARN },
                messages,
            });
        } else {
            let k = rng.random_range(1..=5);
            let records: Vec<Value> = (0..k).map(|_| record(&mut rng, &mut last_key)).collect();
            total += records.len();
            jobs.push(Job::Direct {
                records,
                trace: trace_header(&mut rng),
            });
        }
    }
    (jobs, total)
}

/// Objects whose events' first arrivals are not in sequencer order.
fn reordered_objects(arrivals: &[String]) -> usize {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut last: HashMap<&str, &str> = HashMap::new();
    let mut reordered: HashSet<&str> = HashSet::new();
    for id in arrivals {
        if !seen.insert(id) {
            continue;
        }
        let (object, sequencer) = id.split_once('#').expect("bucket/key#sequencer");
        if last.get(object).is_some_and(|prev| *prev > sequencer) {
            reordered.insert(object);
        }
        last.insert(object, sequencer);
    }
    reordered.len()
}

async fn run_seed(moto: &Moto, seed: u64) -> SeedReport {
    let started = Instant::now();
    let targets = Targets::create(moto, &format!("fi{seed:x}")).await;
    let mut relay = Relay::start(moto, &targets.relay_targets(), FaultConfig::random(seed, FAULT_RATE)).await;
    let (jobs, records) = workload(seed);
    let routed: HashSet<String> = jobs.iter().flat_map(Job::records).collect();
    assert_eq!(routed.len(), records, "every generated record is distinct");

    let mut report = SeedReport {
        seed,
        records,
        ..SeedReport::default()
    };
    // (target name, record) → messages found downstream / entries moto accepted.
    let mut downstream: HashMap<(&'static str, String), usize> = HashMap::new();
    let mut accepted: HashMap<(&'static str, String), usize> = HashMap::new();
    // Records of units the relay reported delivered: never to be sent again.
    let mut done: HashSet<String> = HashSet::new();
    // Records in the order the FIFO queue gave them out.
    let mut fifo_arrivals: Vec<String> = Vec::new();
    // FAULT_INJECTION_PROGRESS=1: a line every 10 s on stderr, to see where the time goes.
    let monitor = std::env::var_os("FAULT_INJECTION_PROGRESS").map(|_| {
        let stats = relay.proxy.stats_reader();
        tokio::spawn(async move {
            let mut last = FaultStats::default();
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let now = stats();
                let calls = now.upstream_calls - last.upstream_calls;
                let avg = (now.upstream_total - last.upstream_total) / u32::try_from(calls.max(1)).unwrap_or(1);
                eprintln!(
                    "[{seed:#x} +{:.0?}] batch calls {} (+{}), faulted {}, late {} (+{}), upstream avg {avg:.0?} over {calls}",
                    started.elapsed(),
                    now.batch_calls,
                    now.batch_calls - last.batch_calls,
                    now.faulted(),
                    now.late,
                    now.late - last.late,
                );
                last = now;
            }
        })
    });
    let mut pending = jobs;
    while !pending.is_empty() {
        assert!(
            report.rounds < MAX_ROUNDS,
            "seed {seed:#x}: {} invocations still failing after {MAX_ROUNDS} rounds",
            pending.len()
        );
        if report.rounds > 0 {
            report.redriven_invocations += pending.len();
            report.redrive_rounds.push(pending.len());
        }
        report.invocations += pending.len();
        report.rounds += 1;
        let queues: Vec<&str> = Targets::NAMES.iter().map(|n| targets.queue_of(n)).collect();
        let drainers = Drainers::start(moto, &queues);
        let result = run_round(&relay, &pending, Some(&drainers.backlog)).await;
        report.invocation_errors += result.errors;
        report.item_failures += result.item_failures;
        // Held requests may still deliver after their invocation ended: let them finish first.
        assert!(relay.proxy.wait_idle(WAIT).await, "seed {seed:#x}: proxy never idle");
        let mut received = drainers.stop().await;
        for (bodies, queue) in received.iter_mut().zip(&queues) {
            bodies.extend(drain(moto, queue).await);
        }
        let deliveries: Vec<Delivery> = relay.proxy.take_deliveries();
        let mut acknowledged: HashMap<(&'static str, String), usize> = HashMap::new();
        for d in &deliveries {
            let key = (targets.name_of(&d.target), body_record_id(&d.body));
            assert!(
                !done.contains(&key.1),
                "silent duplicate: {key:?} sent again after its unit was reported delivered"
            );
            *accepted.entry(key.clone()).or_default() += 1;
            if d.acknowledged {
                *acknowledged.entry(key).or_default() += 1;
            } else if let Some(h) = d.hidden_by {
                *report.hidden_deliveries.entry(h).or_default() += 1;
            }
        }
        // FIFO sources: from a group's first failed message on, every message is reported failed
        // and none of their records went out in this invocation.
        let sent: HashSet<String> = deliveries.iter().map(|d| body_record_id(&d.body)).collect();
        for (job, failed) in pending.iter().zip(&result.failed_ids) {
            let Job::Sqs {
                source_arn: FIFO_SOURCE_ARN,
                messages,
            } = job
            else {
                continue;
            };
            let mut blocked: HashSet<&str> = HashSet::new();
            for m in messages {
                let group = m.group.as_deref().expect("FIFO source messages have a group");
                if blocked.contains(group) {
                    report.fifo_held_back += 1;
                    assert!(
                        failed.contains(&m.id),
                        "{}: later message of a failed group not reported",
                        m.id
                    );
                    let ahead: Vec<String> = m.records.iter().map(record_id).filter(|r| sent.contains(r)).collect();
                    assert!(
                        ahead.is_empty(),
                        "{}: sent ahead of an earlier failed message of {group}: {ahead:?}",
                        m.id
                    );
                } else if failed.contains(&m.id) {
                    blocked.insert(group);
                }
            }
        }
        let resent: Vec<_> = acknowledged.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            resent.is_empty(),
            "silent duplicates: acknowledged more than once within one invocation: {resent:?}"
        );
        for (name, bodies) in Targets::NAMES.into_iter().zip(received) {
            for body in bodies {
                let id = body_record_id(&body);
                if name == "fifo" {
                    fifo_arrivals.push(id.clone());
                }
                assert!(
                    routed.contains(&id) && Targets::routes(name, &id),
                    "foreign record on {name}: {id}"
                );
                *downstream.entry((name, id)).or_default() += 1;
            }
        }
        // No silent drop: what the relay reported delivered is downstream on every target.
        let missing: Vec<(&str, &String)> = result
            .acked
            .iter()
            .flat_map(|id| Targets::NAMES.iter().map(move |n| (*n, id)))
            .filter(|(n, id)| Targets::routes(n, id) && !downstream.contains_key(&(*n, (*id).clone())))
            .collect();
        assert!(
            missing.is_empty(),
            "seed {seed:#x}: reported delivered but not downstream: {missing:?}"
        );
        // Reported failed although every target already has it: re-driving makes duplicates, which
        // at-least-once allows; counted to show how much of the duplication the re-drive causes.
        report.redriven_delivered += result
            .redrive
            .iter()
            .flat_map(Job::records)
            .filter(|id| {
                Targets::NAMES
                    .iter()
                    .all(|n| !Targets::routes(n, id) || downstream.contains_key(&(*n, id.clone())))
            })
            .count();
        done.extend(result.acked);
        pending = result.redrive;
    }

    // Nothing lost, nothing foreign: every routed record on every target, and only those.
    for name in Targets::NAMES {
        let got: HashSet<&String> = downstream
            .keys()
            .filter(|(n, _)| *n == name)
            .map(|(_, id)| id)
            .collect();
        let expected: Vec<&String> = routed.iter().filter(|id| Targets::routes(name, id)).collect();
        let lost: Vec<&&String> = expected.iter().filter(|id| !got.contains(**id)).collect();
        assert!(
            lost.is_empty(),
            "seed {seed:#x}: {} records lost on {name}: {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        assert_eq!(got.len(), expected.len(), "seed {seed:#x}: foreign records on {name}");
    }
    // Exact accounting: a standard queue holds one message per entry moto accepted (none appear
    // from nowhere, none vanish); the FIFO queue at most that many (deduplication).
    for ((name, id), n) in &downstream {
        let a = accepted.get(&(*name, id.clone())).copied().unwrap_or(0);
        if *name == "fifo" {
            assert!(*n <= a, "{name} {id}: {n} received, {a} accepted");
        } else {
            assert_eq!(*n, a, "{name} {id}: received vs accepted");
        }
        if *n > 1 {
            *report.duplicates.entry(name).or_default() += n - 1;
        }
    }
    if let Some(m) = monitor {
        m.abort();
    }
    report.fifo_reordered = reordered_objects(&fifo_arrivals);
    report.faults = relay.proxy.stats();
    assert!(report.faults.faulted() > 0, "no faults injected");
    let logged = relay.logged_counts();
    report.retries_summary = logged.retries;
    report.retries_emf = logged.emf_retries;
    // Every call the relay made reached the proxy once per SDK attempt: the difference is the SDK's
    // own whole-call retries.
    report.sdk_retries = report.faults.batch_calls.saturating_sub(logged.publish_calls);
    assert_eq!(
        logged.invocations, report.invocations,
        "one `invocation done` line per invocation"
    );
    relay.assert_alive();
    report.elapsed = started.elapsed();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_survives_injected_faults_at_least_once() {
    let moto = moto().await;
    let started = Instant::now();
    let mut totals = SeedReport::default();
    for seed in SEEDS {
        let report = run_seed(&moto, seed).await;
        println!("fault-injection {}", report.line());
        totals.records += report.records;
        totals.invocations += report.invocations;
        totals.redriven_invocations += report.redriven_invocations;
        for (i, n) in report.redrive_rounds.iter().enumerate() {
            match totals.redrive_rounds.get_mut(i) {
                Some(t) => *t += n,
                None => totals.redrive_rounds.push(*n),
            }
        }
        totals.rounds = totals.rounds.max(report.rounds);
        totals.invocation_errors += report.invocation_errors;
        totals.item_failures += report.item_failures;
        totals.faults.add(&report.faults);
        totals.retries_summary += report.retries_summary;
        totals.retries_emf += report.retries_emf;
        totals.sdk_retries += report.sdk_retries;
        totals.fifo_held_back += report.fifo_held_back;
        totals.redriven_delivered += report.redriven_delivered;
        totals.fifo_reordered += report.fifo_reordered;
        for (k, v) in &report.duplicates {
            *totals.duplicates.entry(k).or_default() += v;
        }
        for (k, v) in &report.hidden_deliveries {
            *totals.hidden_deliveries.entry(k).or_default() += v;
        }
    }
    totals.elapsed = started.elapsed();
    assert!(totals.records >= 10_000, "{} records", totals.records);
    println!(
        "fault-injection TOTAL seeds={} {}",
        SEEDS.len(),
        totals.line().split_once(' ').map_or("", |(_, rest)| rest)
    );
}

// ---------------------------------------------------------------------------------------------
// FIFO source groups (CONTRACT §6): once a record of a group fails, every later record of that
// group in the batch is reported failed and not sent ahead of it.

/// One message of a FIFO source batch: its group, object and sequencers (one record each).
struct FifoMsg {
    id: &'static str,
    group: &'static str,
    object: &'static str,
    sequencers: &'static [&'static str],
}

fn fifo_job(bucket: &str, messages: &[FifoMsg]) -> Job {
    Job::Sqs {
        source_arn: FIFO_SOURCE_ARN,
        messages: messages
            .iter()
            .map(|m| SqsMsg {
                id: format!("{bucket}-{}", m.id),
                records: m.sequencers.iter().map(|s| s3_record(bucket, m.object, s)).collect(),
                trace: None,
                group: Some(m.group.to_owned()),
            })
            .collect(),
    }
}

/// Records of `messages` from the first failed one of `group` on, other than that one.
fn later_in_group(bucket: &str, messages: &[FifoMsg], group: &str, failed: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.group == group)
        .skip_while(|m| m.id != failed)
        .skip(1)
        .flat_map(|m| m.sequencers.iter().map(move |s| format!("{bucket}/{}#{s}", m.object)))
        .collect()
}

/// What a FIFO-source scenario injects and expects after its first invocation.
struct FifoCase {
    name: &'static str,
    /// Sequencer of the record whose entry (or call) is faulted, the fault, how many times.
    fault_on: &'static str,
    fault: FaultKind,
    times: u32,
    /// Message ids expected in `batchItemFailures` of the first invocation.
    failed: &'static [&'static str],
    /// (group, first failed message): the group's later records must not go out in the first
    /// invocation.
    held_back: &'static [(&'static str, &'static str)],
}

/// Runs `cases` against one relay whose only target is a FIFO queue; re-drives each case to
/// completion and checks the queue's order per object.
async fn run_fifo_cases(messages: &[FifoMsg], cases: &[FifoCase]) {
    let moto = moto().await;
    let queue = moto.create_queue("fifo-order-out.fifo").await;
    let relay = Relay::start(&moto, &queue, FaultConfig::passthrough()).await;
    for case in cases {
        let bucket = format!("fifo-{}", case.name);
        relay.proxy.add_rule(Rule {
            entry_contains: format!("\"sequencer\":\"{}\"", case.fault_on),
            fault: case.fault,
            times: case.times,
        });
        let job = fifo_job(&bucket, messages);
        let mut result = run_round(&relay, std::slice::from_ref(&job), None).await;
        assert!(relay.proxy.wait_idle(WAIT).await);
        let first: Vec<String> = relay
            .proxy
            .take_deliveries()
            .iter()
            .map(|d| body_record_id(&d.body))
            .collect();
        let mut expected: Vec<String> = case.failed.iter().map(|id| format!("{bucket}-{id}")).collect();
        expected.sort();
        let mut failed = result.failed_ids.remove(0);
        failed.sort();
        assert_eq!(
            failed, expected,
            "{}: batchItemFailures of the first invocation",
            case.name
        );
        for &(group, failed_msg) in case.held_back {
            let ahead: Vec<String> = later_in_group(&bucket, messages, group, failed_msg)
                .into_iter()
                .filter(|r| first.contains(r))
                .collect();
            assert!(
                ahead.is_empty(),
                "{}: sent ahead of the failed record of group {group}: {ahead:?}",
                case.name
            );
        }
        let mut pending = result.redrive;
        let mut rounds = 1;
        while !pending.is_empty() {
            rounds += 1;
            assert!(rounds <= MAX_ROUNDS, "{}: never completed", case.name);
            pending = run_round(&relay, &pending, None).await.redrive;
        }
        assert!(relay.proxy.wait_idle(WAIT).await);
        relay.proxy.take_deliveries();
        // Per object (the target's message group), the queue holds each event once, in order.
        let mut per_object: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for body in drain(&moto, &queue).await {
            let id = body_record_id(&body);
            let (object, sequencer) = id.split_once('#').expect("bucket/key#sequencer");
            assert!(object.starts_with(&bucket), "{}: foreign record {id}", case.name);
            per_object
                .entry(object.to_owned())
                .or_default()
                .push(sequencer.to_owned());
        }
        for m in messages {
            let object = format!("{bucket}/{}", m.object);
            let got = per_object.get(&object).cloned().unwrap_or_default();
            let mut want: Vec<String> = messages
                .iter()
                .filter(|o| o.object == m.object)
                .flat_map(|o| o.sequencers.iter().map(|s| (*s).to_owned()))
                .collect();
            want.sort();
            assert_eq!(got, want, "{}: order of {object} on the FIFO queue", case.name);
        }
    }
}

/// Two source groups, one object each, interleaved. The relay sends a FIFO source in rounds (the
/// n-th message of every group in round n), so the message holding the faulted record `05` (m05)
/// goes out with m06 of g2, and g1's later messages m07 and m09 must be held back once it failed.
const TWO_GROUPS: &[FifoMsg] = &[
    FifoMsg {
        id: "m01",
        group: "g1",
        object: "a.txt",
        sequencers: &["01", "02"],
    },
    FifoMsg {
        id: "m02",
        group: "g2",
        object: "b.txt",
        sequencers: &["51", "52"],
    },
    FifoMsg {
        id: "m03",
        group: "g1",
        object: "a.txt",
        sequencers: &["03", "04"],
    },
    FifoMsg {
        id: "m04",
        group: "g2",
        object: "b.txt",
        sequencers: &["53", "54"],
    },
    FifoMsg {
        id: "m05",
        group: "g1",
        object: "a.txt",
        sequencers: &["05"],
    },
    FifoMsg {
        id: "m06",
        group: "g2",
        object: "b.txt",
        sequencers: &["55"],
    },
    FifoMsg {
        id: "m07",
        group: "g1",
        object: "a.txt",
        sequencers: &["06", "07"],
    },
    FifoMsg {
        id: "m08",
        group: "g2",
        object: "b.txt",
        sequencers: &["56", "57"],
    },
    FifoMsg {
        id: "m09",
        group: "g1",
        object: "a.txt",
        sequencers: &["08"],
    },
    FifoMsg {
        id: "m10",
        group: "g2",
        object: "b.txt",
        sequencers: &["58"],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_source_group_failure_holds_back_the_rest_of_the_group() {
    let permanent = FaultKind::EntryFailedStripped { sender_fault: true };
    let cases = [
        FifoCase {
            name: "stripped-sender-fault",
            fault_on: "05",
            fault: permanent,
            times: 1,
            failed: &["m05", "m07", "m09"],
            held_back: &[("g1", "m05")],
        },
        FifoCase {
            name: "delivered-sender-fault",
            fault_on: "05",
            fault: FaultKind::EntryFailedDelivered { sender_fault: true },
            times: 1,
            failed: &["m05", "m07", "m09"],
            held_back: &[("g1", "m05")],
        },
        FifoCase {
            // Retried alone within the invocation, before the next call: nothing fails.
            name: "stripped-transient",
            fault_on: "05",
            fault: FaultKind::EntryFailedStripped { sender_fault: false },
            times: MAX_ENTRY_RETRIES,
            failed: &[],
            held_back: &[],
        },
        FifoCase {
            // More transient failures than the relay retries: failed like a permanent one.
            name: "stripped-transient-exhausted",
            fault_on: "05",
            fault: FaultKind::EntryFailedStripped { sender_fault: false },
            times: MAX_ENTRY_RETRIES + 1,
            failed: &["m05", "m07", "m09"],
            held_back: &[("g1", "m05")],
        },
        FifoCase {
            // The call of m05 and m06 throttled on every SDK attempt: both groups fail from there.
            name: "call-throttled",
            fault_on: "05",
            fault: FaultKind::Throttle,
            times: SDK_MAX_ATTEMPTS,
            failed: &["m05", "m06", "m07", "m08", "m09", "m10"],
            held_back: &[("g1", "m05"), ("g2", "m06")],
        },
        FifoCase {
            // The connection dropped after moto accepted the call, on every SDK attempt.
            name: "call-reset-after-delivery",
            fault_on: "05",
            fault: FaultKind::ResetAfterForward,
            times: SDK_MAX_ATTEMPTS,
            failed: &["m05", "m06", "m07", "m08", "m09", "m10"],
            held_back: &[("g1", "m05"), ("g2", "m06")],
        },
    ];
    run_fifo_cases(TWO_GROUPS, &cases).await;
}

/// One source group spanning two objects (a and c), and a second group: a failure on object a
/// must hold back the group's later records of object c too (the source group's order, not just
/// the object's).
const GROUP_ACROSS_OBJECTS: &[FifoMsg] = &[
    FifoMsg {
        id: "m01",
        group: "g1",
        object: "a.txt",
        sequencers: &["01"],
    },
    FifoMsg {
        id: "m02",
        group: "g1",
        object: "c.txt",
        sequencers: &["02"],
    },
    FifoMsg {
        id: "m03",
        group: "g2",
        object: "b.txt",
        sequencers: &["51"],
    },
    FifoMsg {
        id: "m04",
        group: "g1",
        object: "a.txt",
        sequencers: &["03"],
    },
    FifoMsg {
        id: "m05",
        group: "g1",
        object: "c.txt",
        sequencers: &["04"],
    },
    FifoMsg {
        id: "m06",
        group: "g2",
        object: "b.txt",
        sequencers: &["52"],
    },
    FifoMsg {
        id: "m07",
        group: "g1",
        object: "a.txt",
        sequencers: &["05"],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_source_group_spanning_objects_holds_back_every_later_record() {
    let cases = [
        FifoCase {
            name: "across-objects-sender-fault",
            fault_on: "03",
            fault: FaultKind::EntryFailedStripped { sender_fault: true },
            times: 1,
            failed: &["m04", "m05", "m07"],
            held_back: &[("g1", "m04")],
        },
        FifoCase {
            name: "across-objects-timeouts",
            fault_on: "03",
            fault: FaultKind::TimeoutDropped,
            times: SDK_MAX_ATTEMPTS,
            failed: &["m04", "m05", "m07"],
            held_back: &[("g1", "m04")],
        },
    ];
    run_fifo_cases(GROUP_ACROSS_OBJECTS, &cases).await;
}

/// One SQS message may hold several S3 records (the notification format allows it); here three
/// events of one object. Failing the middle one transiently must not let the last overtake it.
const EVENTS_IN_ONE_MESSAGE: &[FifoMsg] = &[
    FifoMsg {
        id: "m01",
        group: "g1",
        object: "a.txt",
        sequencers: &["01", "02", "03"],
    },
    FifoMsg {
        id: "m02",
        group: "g1",
        object: "a.txt",
        sequencers: &["04"],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_entry_failure_inside_one_call_does_not_reorder_an_object() {
    let cases = [FifoCase {
        name: "one-message-transient",
        fault_on: "02",
        fault: FaultKind::EntryFailedStripped { sender_fault: false },
        times: 1,
        failed: &[],
        held_back: &[],
    }];
    run_fifo_cases(EVENTS_IN_ONE_MESSAGE, &cases).await;
}
