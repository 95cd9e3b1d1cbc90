//! Throughput of the pure pipeline, `s3_trace_relay::relay::prepare` (decode → trace → route →
//! batch, `Prepared.rounds[..].batches`), in S3 records per second on one core, for the invocation
//! payloads:
//!
//! - `direct`: an S3 notification delivered by S3 itself (1 record, invocation trace header);
//! - `sqs_10`: an SQS event of 10 messages, each an S3 notification with its own `AWSTraceHeader`
//!   (3 distinct trace contexts);
//! - `sqs_6mb`: the largest SQS event Lambda hands a function (6 MiB payload), same shape;
//! - `sqs_6mb_distinct`: the same with a distinct trace context per message (one uploader each),
//!   which makes as many SNS trace groups as records.
//!
//! A second group, `look_ahead`, measures what the streaming relay adds on top of `prepare` when
//! messages pile up in SNS trace groups: reading every message's trace carrier once
//! (`inbound::sqs_carriers`) on `sqs_6mb_distinct`, to know where each context ends.
//!
//! The targets are one SQS queue and one SNS topic, unfiltered: every record becomes two messages,
//! SNS batches grouped by trace context. `Throughput::Elements` is the number of S3 records, so
//! criterion's `thrpt` is records per second.
//!
//! Time is the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: "per second
//! on one core" then holds on a shared, busy machine too (wall time counts the time the thread
//! waits for a core). The payloads have the same shape, and the same sizes, as those of
//! `bench/events.py` (the end-to-end benchmark against moto).
//!
//! Run with `cargo bench --bench pipeline`; `scripts/bench.sh` runs it pinned to one core.
//! `PIPELINE_PROFILE=<case>[:<iterations>]` runs one case in a plain loop instead (for
//! `valgrind --tool=callgrind`, which counts instructions reproducibly).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput};
use s3_trace_relay::config::{Target, parse_targets};
use s3_trace_relay::inbound::sqs_carriers;
use s3_trace_relay::relay::prepare;
use serde_json::{Value, json};

/// Lambda's limit on a (synchronous or event source mapping) invocation payload.
const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Distinct trace contexts among the SQS messages, unless each has its own.
const TRACE_CONTEXTS: usize = 3;
const TARGETS: &str =
    "https://sqs.us-east-1.amazonaws.com/123456789012/relay-out,arn:aws:sns:us-east-1:123456789012:relay-out";
const INVOCATION_TRACE: &str = "Root=1-6745a1b2-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1";
const SOURCE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:relay-source";

/// The `AWSTraceHeader` of SQS message `i`: one of `contexts` contexts.
fn record_trace(i: usize, contexts: usize) -> String {
    let c = i % contexts;
    format!("Root=1-6745a1b2-{c:024x};Parent={:016x};Sampled=1", c + 1)
}

/// One S3 record as S3 writes it; the key is URL-encoded (`+` for space).
fn s3_record(i: usize) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T12:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLEUPLOADER"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "relay",
            "bucket": {
                "name": "relay-bench-uploads",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::relay-bench-uploads"
            },
            "object": {
                "key": format!("uploads/{i:06}/holiday+photo+{i}.jpg"),
                "size": 1024,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": format!("0062E99A88DC{i:06X}")
            }
        }
    })
}

/// One SQS message (as in an SQS event) whose body is an S3 notification holding record `i`.
fn sqs_record(i: usize, contexts: usize) -> Value {
    json!({
        "messageId": format!("00000000-0000-4000-8000-{i:012}"),
        "receiptHandle": format!("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a{i:08}"),
        "body": json!({"Records": [s3_record(i)]}).to_string(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764072000000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1764072000010",
            "AWSTraceHeader": record_trace(i, contexts)
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": SOURCE_ARN,
        "awsRegion": "us-east-1"
    })
}

fn direct_event() -> String {
    json!({"Records": [s3_record(0)]}).to_string()
}

/// An SQS event of `n` messages.
fn sqs_event(n: usize) -> String {
    json!({"Records": (0..n).map(|i| sqs_record(i, TRACE_CONTEXTS)).collect::<Vec<_>>()}).to_string()
}

/// The largest SQS event that fits in [`MAX_PAYLOAD_BYTES`], and its number of records.
/// `contexts: None` gives every message its own trace context.
fn max_sqs_event(contexts: Option<usize>) -> (String, usize) {
    let mut payload = String::with_capacity(MAX_PAYLOAD_BYTES);
    payload.push_str("{\"Records\":[");
    let mut n = 0;
    loop {
        let record = sqs_record(n, contexts.unwrap_or(usize::MAX)).to_string();
        // Room for this record, a separating comma and the closing "]}".
        if payload.len() + record.len() + 1 + 2 > MAX_PAYLOAD_BYTES {
            break;
        }
        if n > 0 {
            payload.push(',');
        }
        payload.push_str(&record);
        n += 1;
    }
    payload.push_str("]}");
    (payload, n)
}

fn targets() -> Vec<Target> {
    match parse_targets(TARGETS) {
        Ok(t) => t,
        Err(e) => panic!("bench targets do not parse: {e}"),
    }
}

/// Runs `prepare` once and checks it did what the benchmark claims to measure.
fn check(targets: &[Target], payload: &str, records: usize) {
    let prepared = match prepare(targets, payload, Some(INVOCATION_TRACE)) {
        Ok(p) => p,
        Err(e) => panic!("bench payload rejected: {e}"),
    };
    assert_eq!(prepared.summary.received, records, "records decoded");
    let messages: usize = prepared
        .rounds
        .iter()
        .flat_map(|plan| plan.batches.iter().flatten())
        .map(|b| b.messages.len())
        .sum();
    assert_eq!(messages, 2 * records, "one message per record per target");
}

/// The benchmark cases and their criterion sample counts.
const CASES: [(&str, usize); 4] = [
    ("direct", 100),
    ("sqs_10", 100),
    ("sqs_6mb", 10),
    ("sqs_6mb_distinct", 10),
];

/// The payload of a case and its number of records.
fn case(name: &str) -> Option<(String, usize)> {
    Some(match name {
        "direct" => (direct_event(), 1),
        "sqs_10" => (sqs_event(10), 10),
        "sqs_6mb" => max_sqs_event(Some(TRACE_CONTEXTS)),
        "sqs_6mb_distinct" => max_sqs_event(None),
        _ => return None,
    })
}

/// CPU time of the calling thread, as criterion's measurement.
struct ThreadCpuTime;

/// CPU time the calling thread has used (Linux `CLOCK_THREAD_CPUTIME_ID`, through `cpu-time`).
fn thread_cpu_time() -> Duration {
    cpu_time::ThreadTime::now().as_duration()
}

/// Wall time's formatter (durations, and elements per second), shared.
static WALL_TIME: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

fn bench_prepare(c: &mut Criterion<ThreadCpuTime>) {
    let targets = targets();
    let mut group = c.benchmark_group("prepare");
    for (name, samples) in CASES {
        let Some((payload, records)) = case(name) else { continue };
        check(&targets, &payload, records);
        eprintln!("prepare/{name}: {records} records, {} payload bytes", payload.len());
        group.throughput(Throughput::Elements(records as u64));
        group.sample_size(samples);
        group.bench_with_input(BenchmarkId::from_parameter(name), &payload, |b, payload| {
            b.iter(|| black_box(prepare(&targets, black_box(payload), Some(INVOCATION_TRACE))))
        });
    }
    group.finish();
}

/// The streaming relay's look ahead for where each trace context ends (`inbound::sqs_carriers`),
/// which it makes once messages pile up in SNS trace groups: on the 6 MiB payload with a context
/// per message, the case where it does.
fn bench_look_ahead(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("look_ahead");
    let (payload, records) = max_sqs_event(None);
    assert_eq!(
        sqs_carriers(payload.as_bytes()).map(Iterator::count),
        Some(records),
        "a carrier per message"
    );
    group.throughput(Throughput::Elements(records as u64));
    group.sample_size(10);
    group.bench_with_input(
        BenchmarkId::from_parameter("sqs_6mb_distinct"),
        &payload,
        |b, payload| b.iter(|| black_box(sqs_carriers(black_box(payload.as_bytes())).map(Iterator::count))),
    );
    group.finish();
}

/// `PIPELINE_PROFILE=<case>[:<iterations>]` runs `prepare` on one case that many times (default 1)
/// and exits: a plain loop to run under `valgrind --tool=callgrind`.
fn profile(spec: &str) {
    let (name, iterations) = spec.split_once(':').unwrap_or((spec, "1"));
    let iterations: usize = iterations.parse().unwrap_or(1);
    let Some((payload, records)) = case(name) else {
        panic!("PIPELINE_PROFILE: unknown case {name:?}: expected direct, sqs_10, sqs_6mb or sqs_6mb_distinct");
    };
    let targets = targets();
    check(&targets, &payload, records);
    for _ in 0..iterations {
        black_box(prepare(&targets, black_box(&payload), Some(INVOCATION_TRACE)).is_ok());
    }
}

fn main() {
    if let Ok(spec) = std::env::var("PIPELINE_PROFILE") {
        return profile(&spec);
    }
    let mut criterion = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench_prepare(&mut criterion);
    bench_look_ahead(&mut criterion);
    criterion.final_summary();
}
