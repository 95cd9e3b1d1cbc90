//! Streaming send ([`Relay::handle_payload`], what Lambda calls): a plain SQS event from a standard
//! queue is planned while it is decoded, on a blocking thread, and each batch is sent as soon as it
//! can take no more. It must answer exactly as decoding first does ([`Relay::handle`]), send the
//! same messages in the same batches (in the same order on FIFO targets), and never decode further
//! ahead of its senders than their channels hold.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use s3_trace_relay::config::{Destination, RelayConfig};
use s3_trace_relay::failure::{CallError, Reason};
use s3_trace_relay::inbound::DecodeError;
use s3_trace_relay::message::Batch;
use s3_trace_relay::publish::{CallReport, EntryOutcome, Publisher};
use s3_trace_relay::response::{RelayError, RelayResponse};
use s3_trace_relay::{InvocationInfo, Relay};
use serde_json::{Value, json};
use support::fake_publisher::failed_ids;
use support::payloads::{FIFO_QUEUE, INVOCATION_TRACE, QUEUE, invocation, s3_record, sqs};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t";
const FIFO_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t.fifo";
const STANDARD_SOURCE: &str = "arn:aws:sqs:us-east-1:123456789012:in";
const FIFO_SOURCE: &str = "arn:aws:sqs:us-east-1:123456789012:in.fifo";

/// Records every call; fails every entry whose key starts with `fail` (keyed by content, not by
/// call order, so runs whose calls interleave differently get the same answers). Every call takes
/// `call_delay`; the first one also takes `first_call_delay`, and sees how many records of this test had been decoded by its end.
#[derive(Clone, Default)]
struct ByKey {
    sent: Arc<Mutex<Vec<(String, Batch)>>>,
    first_call_delay: Option<Duration>,
    /// How long every call takes.
    call_delay: Option<Duration>,
    decoded_at_first_call: Arc<OnceLock<usize>>,
}

impl Publisher for ByKey {
    async fn send(&self, destination: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        let first = {
            let mut sent = self.sent.lock().unwrap();
            sent.push((destination.to_string(), batch.clone()));
            sent.len() == 1
        };
        if let (true, Some(delay)) = (first, self.first_call_delay) {
            tokio::time::sleep(delay).await;
            let _ = self.decoded_at_first_call.set(DECODED.load(Ordering::SeqCst));
        }
        if let Some(delay) = self.call_delay {
            tokio::time::sleep(delay).await;
        }
        let rejected = || {
            EntryOutcome::Failed(Reason::Rejected {
                code: "InvalidParameterValue".into(),
                message: String::new(),
                sender_fault: true,
            })
        };
        let entries = batch.messages.iter().map(|m| {
            if m.notification.key.starts_with("fail") {
                rejected()
            } else {
                EntryOutcome::Delivered
            }
        });
        Ok(CallReport::new(entries.collect()))
    }
}

fn relay(targets: &str, max_in_flight: usize, publisher: ByKey) -> Relay<ByKey> {
    let config = RelayConfig::from_lookup(|k| match k {
        "RELAY_TARGETS" => Some(targets.to_owned()),
        "RELAY_MAX_IN_FLIGHT" => Some(max_in_flight.to_string()),
        _ => None,
    })
    .unwrap();
    Relay::new(Arc::new(config), publisher)
}

fn info() -> InvocationInfo {
    invocation("r-stream", Some(INVOCATION_TRACE))
}

/// `n` SQS messages from `arn`, one trace context per 10, every 7th key failing, groups of 3.
fn sqs_batch(arn: &str, n: usize) -> String {
    sqs_batch_in_contexts(arn, n, |i| i / 10)
}

/// [`sqs_batch`] with message `i` in trace context `context(i)`.
fn sqs_batch_in_contexts(arn: &str, n: usize, context: impl Fn(usize) -> usize) -> String {
    let ids = message_ids(n);
    let keys: Vec<String> = (0..n)
        .map(|i| {
            if i % 7 == 3 {
                format!("fail-{i}")
            } else {
                format!("k-{i}")
            }
        })
        .collect();
    let groups: Vec<String> = (0..n).map(|i| format!("g{}", i % 3)).collect();
    let traces: Vec<String> = (0..n)
        .map(|i| format!("Root=1-6745a1b2-{:024x};Parent=1111111111111111;Sampled=1", context(i)))
        .collect();
    let messages: Vec<(&str, &str, Option<&str>, Option<&str>)> = (0..n)
        .map(|i| {
            (
                ids[i].as_str(),
                keys[i].as_str(),
                Some(groups[i].as_str()),
                Some(traces[i].as_str()),
            )
        })
        .collect();
    sqs(arn, &messages)
}

/// One call: each message's key and outbound header.
type Call = Vec<(String, Option<String>)>;

/// Every call per destination; calls sorted where their order is free.
fn calls(publisher: &ByKey) -> Vec<(String, Vec<Call>)> {
    let mut by_destination: Vec<(String, Vec<Call>)> = Vec::new();
    for (destination, batch) in publisher.sent.lock().unwrap().iter() {
        let call = batch
            .messages
            .iter()
            .map(|m| (m.notification.key.clone(), m.trace.as_ref().map(ToString::to_string)))
            .collect();
        match by_destination.iter_mut().find(|(d, _)| d == destination) {
            Some((_, calls)) => calls.push(call),
            None => by_destination.push((destination.clone(), vec![call])),
        }
    }
    for (destination, calls) in &mut by_destination {
        if !destination.ends_with(".fifo") {
            calls.sort();
        }
    }
    by_destination.sort();
    by_destination
}

/// Relays `payload` both ways; returns both answers and both publishers.
async fn both_ways(targets: &str, payload: &str) -> [(Result<RelayResponse, RelayError>, ByKey); 2] {
    let decoded_first = ByKey::default();
    let answer = relay(targets, 16, decoded_first.clone()).handle(payload, &info()).await;
    let streamed = ByKey::default();
    let raw = bytes::Bytes::from(payload.to_owned());
    let streamed_answer = relay(targets, 16, streamed.clone()).handle_payload(raw, &info()).await;
    [(answer, decoded_first), (streamed_answer, streamed)]
}

async fn assert_streamed_as_decoded_first(targets: &str, payload: &str) {
    let [(expected, decoded_first), (answer, streamed)] = both_ways(targets, payload).await;
    assert_eq!(format!("{answer:?}"), format!("{expected:?}"));
    assert_eq!(calls(&streamed), calls(&decoded_first));
}

fn all_targets() -> String {
    format!("{QUEUE},{TOPIC},{FIFO_QUEUE},{FIFO_TOPIC}")
}

#[tokio::test]
async fn a_standard_queue_batch_streams_to_the_same_answer_and_calls() {
    assert_streamed_as_decoded_first(&all_targets(), &sqs_batch(STANDARD_SOURCE, 250)).await;
}

#[tokio::test]
async fn a_batch_with_a_trace_context_per_record_streams_to_the_same_answer_and_calls() {
    // Each context comes back once, 150 messages later, so its SNS batch must wait for it.
    let payload = sqs_batch_in_contexts(STANDARD_SOURCE, 300, |i| i % 150);
    let targets = format!("{QUEUE},{TOPIC}");
    let decoded_first = ByKey::default();
    let expected = relay(&targets, 16, decoded_first.clone())
        .handle(&payload, &info())
        .await;
    // One call in flight, each taking 1 ms: the senders are busy, so past 64 held messages the
    // decoder looks ahead for each context's last message and seals it there.
    let streamed = ByKey {
        call_delay: Some(Duration::from_millis(1)),
        ..ByKey::default()
    };
    let raw = bytes::Bytes::from(payload);
    let answer = relay(&targets, 1, streamed.clone()).handle_payload(raw, &info()).await;
    assert_eq!(format!("{answer:?}"), format!("{expected:?}"));
    assert_eq!(calls(&streamed), calls(&decoded_first));
    // Sealed contexts' SNS calls went out while the rest of the batch was read, not after it.
    let sent = streamed.sent.lock().unwrap();
    let last_sqs = sent.iter().rposition(|(d, _)| d.starts_with("https://sqs")).unwrap();
    let sns_before = sent[..last_sqs]
        .iter()
        .filter(|(d, _)| d.starts_with("arn:aws:sns"))
        .count();
    assert!(
        sns_before >= 100,
        "{sns_before} of 150 SNS calls before the last SQS call"
    );
}

#[tokio::test]
async fn a_fifo_queue_batch_goes_by_rounds_to_the_same_answer_and_calls() {
    assert_streamed_as_decoded_first(&all_targets(), &sqs_batch(FIFO_SOURCE, 60)).await;
}

#[tokio::test]
async fn a_direct_s3_event_goes_to_the_same_answer_and_calls() {
    let records: Vec<Value> = (0..25)
        .map(|i| s3_record(&format!("k-{i}"), &format!("{i:018}")))
        .collect();
    let payload = json!({ "Records": records }).to_string();
    assert_streamed_as_decoded_first(&all_targets(), &payload).await;
}

#[tokio::test]
async fn an_unreadable_message_body_fails_alone_when_streamed() {
    let mut event: Value = serde_json::from_str(&sqs_batch(STANDARD_SOURCE, 30)).unwrap();
    event["Records"][12]["body"] = json!("not json");
    let payload = event.to_string();
    assert_streamed_as_decoded_first(&all_targets(), &payload).await;
    let [(answer, _), _] = both_ways(QUEUE, &payload).await;
    let RelayResponse::Sqs(response) = answer.unwrap() else {
        panic!("an SQS response")
    };
    assert!(response.batch_item_failures.iter().any(|f| f.item_identifier == "m-12"));
}

#[tokio::test]
async fn a_record_the_one_pass_decoder_gives_up_on_is_answered_as_decoded_first() {
    // The last element is a bare S3 record: the one-pass decoder has handed out the batches before
    // it when it gives up, and the general decoder then answers (that element fails alone).
    let mut event: Value = serde_json::from_str(&sqs_batch(STANDARD_SOURCE, 40)).unwrap();
    event["Records"].as_array_mut().unwrap().push(s3_record("odd", "0"));
    let payload = event.to_string();
    let [(expected, decoded_first), (answer, streamed)] = both_ways(QUEUE, &payload).await;
    assert_eq!(format!("{answer:?}"), format!("{expected:?}"));
    // At least once: every message sent when decoding first is sent when streaming (the batches
    // handed out before the decoder gave up may go twice).
    let streamed_calls = calls(&streamed);
    for (destination, want) in calls(&decoded_first) {
        let got = &streamed_calls.iter().find(|(d, _)| *d == destination).unwrap().1;
        assert!(want.iter().all(|call| got.contains(call)), "{destination}");
    }
}

#[tokio::test]
async fn a_payload_that_is_no_event_is_rejected_when_streamed() {
    let raw = bytes::Bytes::from(json!({"Records": 5}).to_string());
    let publisher = ByKey::default();
    let err = relay(QUEUE, 16, publisher.clone())
        .handle_payload(raw, &info())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RelayError::BadPayload(DecodeError::NotJson(_) | DecodeError::UnknownShape(_))
        ),
        "{err}"
    );
    assert!(publisher.sent.lock().unwrap().is_empty());
}

/// Records decoded so far by the streaming test (counted from the relay's own `record received`
/// debug events for its message ids).
static DECODED: AtomicUsize = AtomicUsize::new(0);

struct CountDecoded;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountDecoded {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Ours(bool);
        impl tracing::field::Visit for Ours {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0 |= field.name() == "message_id" && value.starts_with("stream-");
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut ours = Ours(false);
        event.record(&mut ours);
        if ours.0 && event.metadata().level() == &tracing::Level::DEBUG {
            DECODED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn the_first_call_leaves_before_the_batch_is_decoded_and_decoding_waits_for_the_senders() {
    use tracing_subscriber::layer::SubscriberExt as _;
    // Global: the decoder runs on a blocking thread.
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountDecoded)).unwrap();
    let n = 1_000;
    let ids: Vec<String> = (0..n).map(|i| format!("stream-{i}")).collect();
    let keys: Vec<String> = (0..n).map(|i| format!("k-{i}")).collect();
    let messages: Vec<(&str, &str, Option<&str>, Option<&str>)> = (0..n)
        .map(|i| (ids[i].as_str(), keys[i].as_str(), None, None))
        .collect();
    let raw = bytes::Bytes::from(sqs(STANDARD_SOURCE, &messages));
    let publisher = ByKey {
        first_call_delay: Some(Duration::from_millis(200)),
        ..ByKey::default()
    };
    // One call in flight: while the first call is out, the decoder may only fill its channel.
    let response = relay(QUEUE, 1, publisher.clone())
        .handle_payload(raw, &info())
        .await
        .unwrap();
    assert_eq!(
        format!("{response:?}"),
        "Sqs(SqsBatchResponse { batch_item_failures: [] })"
    );
    assert_eq!(publisher.sent.lock().unwrap().len(), n / 10);
    let decoded = *publisher.decoded_at_first_call.get().unwrap();
    // The call in flight, one batch waiting in the channel, one being handed over, the one being filled.
    assert!(
        decoded <= 40,
        "{decoded} of {n} records decoded while the first call was out"
    );
    assert_eq!(DECODED.load(Ordering::SeqCst), n);
}

#[tokio::test]
async fn a_payload_that_is_not_utf8_is_rejected_as_not_json() {
    let mut bytes = sqs_batch(STANDARD_SOURCE, 3).into_bytes();
    bytes[40] = 0xff;
    let publisher = rejected_as_not_json(bytes).await;
    assert!(publisher.sent.lock().unwrap().is_empty());
}

/// Relays `bytes` to [`QUEUE`], 16 in flight; checks the invocation fails as not JSON and returns
/// the publisher with what was sent before it did.
async fn rejected_as_not_json(bytes: Vec<u8>) -> ByKey {
    let publisher = ByKey::default();
    let err = relay(QUEUE, 16, publisher.clone())
        .handle_payload(bytes::Bytes::from(bytes), &info())
        .await
        .unwrap_err();
    assert!(matches!(err, RelayError::BadPayload(DecodeError::NotJson(_))), "{err}");
    publisher
}

#[tokio::test]
async fn a_payload_that_stops_being_utf8_is_rejected_as_not_json_after_what_came_before() {
    // The bytes are checked string by string as they are decoded, not all before the first
    // record: the batches complete before the bad byte may have gone (at least once, as for any
    // payload the one-pass decoder gives up on), none after it, and the invocation fails whole.
    let payload = sqs_batch(STANDARD_SOURCE, 100);
    let at = payload.find("k-90").unwrap();
    let mut bytes = payload.into_bytes();
    bytes[at] = 0xff;
    let publisher = rejected_as_not_json(bytes).await;
    let sent = publisher.sent.lock().unwrap();
    let keys = sent
        .iter()
        .flat_map(|(_, b)| b.messages.iter().map(|m| m.notification.key.clone()));
    for key in keys {
        let n: usize = key
            .trim_start_matches("k-")
            .trim_start_matches("fail-")
            .parse()
            .unwrap();
        assert!(n < 90, "{key} was sent");
    }
}

/// The failed message ids of an SQS answer, in message order.
fn failed_in_order(response: &RelayResponse) -> Vec<String> {
    let mut ids = failed_ids(response);
    ids.sort_by_key(|id| id.trim_start_matches("m-").parse::<usize>().unwrap());
    ids
}

/// The ids of `sqs_batch`'s first `n` messages.
fn message_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m-{i}")).collect()
}

/// `info()` with `ms_left` until the deadline.
fn info_with_time_left(ms_left: u64) -> InvocationInfo {
    InvocationInfo {
        deadline_ms: support::deadline_in(ms_left),
        ..info()
    }
}

#[tokio::test]
async fn nothing_streamed_is_sent_past_the_deadline_margin() {
    let publisher = ByKey::default();
    let raw = bytes::Bytes::from(sqs_batch(STANDARD_SOURCE, 50));
    // Less than the default 500 ms margin.
    let response = relay(QUEUE, 16, publisher.clone())
        .handle_payload(raw, &info_with_time_left(300))
        .await
        .unwrap();
    assert_eq!(failed_in_order(&response), message_ids(50));
    assert!(publisher.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn streamed_calls_still_running_at_the_margin_are_reported_failed_in_time() {
    let publisher = ByKey {
        call_delay: Some(Duration::from_secs(30)),
        ..ByKey::default()
    };
    let raw = bytes::Bytes::from(sqs_batch(STANDARD_SOURCE, 200));
    let started = std::time::Instant::now();
    // Two calls in flight: most batches are still being decoded or waiting when the margin comes.
    let response = relay(QUEUE, 2, publisher.clone())
        .handle_payload(raw, &info_with_time_left(1_500))
        .await
        .unwrap();
    assert_eq!(failed_in_order(&response), message_ids(200));
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "answered before the deadline"
    );
    assert_eq!(
        publisher.sent.lock().unwrap().len(),
        2,
        "no call starts after the first two"
    );
}
