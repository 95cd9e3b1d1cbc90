//! The relay core against an in-memory publisher: which messages are sent where, with which trace
//! header, and what Lambda is told when entries or calls fail (CONTRACT §4–6). The wire itself is
//! checked against moto in `relay_moto.rs`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use s3_trace_relay::config::{Destination, RelayConfig};
use s3_trace_relay::failure::{CallError, Reason};
use s3_trace_relay::message::Batch;
use s3_trace_relay::publish::{CallReport, EntryOutcome, Publisher};
use s3_trace_relay::response::{RelayError, RelayResponse};
use s3_trace_relay::{InvocationInfo, Relay};
use support::fake_publisher::{FakePublisher, assert_undelivered, failed_ids, relay};
use support::payloads::{FIFO_QUEUE, INVOCATION_TRACE, QUEUE, invocation, s3_record, sqs};

fn info() -> InvocationInfo {
    invocation("req-1", Some(INVOCATION_TRACE))
}

fn direct(keys: &[&str]) -> String {
    let records: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| s3_record(k, &format!("{i:018}")))
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

fn entry_failure(sender_fault: bool) -> EntryOutcome {
    EntryOutcome::Failed(Reason::Rejected {
        code: if sender_fault {
            "InvalidParameterValue"
        } else {
            "InternalError"
        }
        .into(),
        message: "injected".into(),
        sender_fault,
    })
}

fn call_error(transient: bool) -> CallError {
    CallError {
        operation: "SendMessageBatch",
        code: if transient {
            "ServiceUnavailable"
        } else {
            "AWS.SimpleQueueService.NonExistentQueue"
        }
        .into(),
        message: "injected".into(),
        transient,
        status: Some(if transient { 503 } else { 400 }),
        request_id: None,
    }
}

#[tokio::test]
async fn direct_event_goes_out_with_the_invocation_trace_header() {
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&direct(&["a"]), &info())
        .await
        .unwrap();
    assert!(matches!(response, RelayResponse::Done(ref s) if s.published == 1 && s.publish_calls == 1));
    let sent = publisher.sent();
    assert_eq!(
        sent[0].1.messages[0].trace.as_ref().unwrap().to_string(),
        INVOCATION_TRACE
    );
    assert_eq!(
        sent[0].1.messages[0].traceparent().as_deref(),
        Some("00-6745a1b2aaaaaaaaaaaaaaaaaaaaaaaa-1111111111111111-01")
    );
}

#[tokio::test]
async fn an_owned_payload_is_relayed_as_the_borrowed_one_is() {
    let payload = sqs(
        "arn:aws:sqs:us-east-1:123456789012:in",
        &[("m-1", "a", None, None), ("m-2", "b", None, Some("not a header"))],
    );
    let borrowed = FakePublisher::default();
    let expected = relay(QUEUE, borrowed.clone()).handle(&payload, &info()).await.unwrap();
    let owned = FakePublisher::default();
    let raw = bytes::Bytes::from(payload);
    let response = relay(QUEUE, owned.clone()).handle_payload(raw, &info()).await.unwrap();
    assert_eq!(format!("{response:?}"), format!("{expected:?}"));
    assert_eq!(owned.sent(), borrowed.sent());
}

#[tokio::test]
async fn each_record_goes_to_every_matching_target() {
    let publisher = FakePublisher::default();
    let targets = format!("{QUEUE}?prefix=img/,arn:aws:sns:us-east-1:123456789012:t?suffix=.txt");
    let response = relay(&targets, publisher.clone())
        .handle(&direct(&["img/a.txt", "img/b.png", "doc/c.txt", "doc/d.md"]), &info())
        .await
        .unwrap();
    let RelayResponse::Done(summary) = response else {
        panic!()
    };
    assert_eq!((summary.received, summary.published, summary.filtered_out), (4, 4, 1));
    let mut by_target: Vec<(String, Vec<String>)> = publisher
        .sent()
        .into_iter()
        .map(|(d, b)| (d, b.messages.iter().map(|m| m.notification.key.clone()).collect()))
        .collect();
    by_target.sort();
    assert_eq!(
        by_target,
        vec![
            (
                "arn:aws:sns:us-east-1:123456789012:t".into(),
                vec!["img/a.txt".into(), "doc/c.txt".into()]
            ),
            (QUEUE.into(), vec!["img/a.txt".into(), "img/b.png".into()]),
        ]
    );
}

#[tokio::test]
async fn test_event_publishes_nothing_and_succeeds() {
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(include_str!("../events/s3-test-event.json"), &info())
        .await
        .unwrap();
    assert!(matches!(response, RelayResponse::Done(ref s) if s.test_events == 1));
    assert!(publisher.sent().is_empty());
}

#[tokio::test]
async fn sqs_records_keep_their_own_trace_and_fall_back_to_the_invocation() {
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(include_str!("../events/sqs-batch-mixed-trace.json"), &info())
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    let headers: Vec<String> = publisher.sent()[0]
        .1
        .messages
        .iter()
        .map(|m| m.trace.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(
        headers,
        vec![
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
            INVOCATION_TRACE.to_owned(),
            INVOCATION_TRACE.to_owned(),
        ]
    );
}

#[tokio::test]
async fn no_valid_trace_anywhere_still_relays_without_a_header() {
    let publisher = FakePublisher::default();
    let mut info = info();
    info.trace_id = Some("Root=1-bad\r\nX-Injected: yes".into());
    relay(QUEUE, publisher.clone())
        .handle(&direct(&["a"]), &info)
        .await
        .unwrap();
    let m = &publisher.sent()[0].1.messages[0];
    assert_eq!((m.trace.clone(), m.traceparent()), (None, None));
}

#[tokio::test]
async fn sender_fault_entry_is_reported_without_retry() {
    let publisher = FakePublisher::answering(vec![Ok(vec![EntryOutcome::Delivered, entry_failure(true)])]);
    let event = sqs(
        "arn:aws:sqs:us-east-1:123456789012:src",
        &[
            ("m1", "a", None, None),
            ("m2", "b", None, None),
            ("m3", "c", None, None),
        ],
    );
    let response = relay(QUEUE, publisher.clone()).handle(&event, &info()).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m2"]);
    assert_eq!(publisher.sent().len(), 1);
}

#[tokio::test]
async fn transient_entry_failure_is_resent_alone_and_succeeds() {
    let publisher = FakePublisher::answering(vec![Ok(vec![EntryOutcome::Delivered, entry_failure(false)])]);
    let event = sqs(
        "arn:aws:sqs:us-east-1:123456789012:src",
        &[("m1", "a", None, None), ("m2", "b", None, None)],
    );
    let response = relay(QUEUE, publisher.clone()).handle(&event, &info()).await.unwrap();
    assert!(failed_ids(&response).is_empty());
    assert_eq!(publisher.sent_keys(), vec![vec!["a", "b"], vec!["b"]]);
}

#[tokio::test]
async fn failed_call_reports_every_record_in_it() {
    let publisher = FakePublisher::answering(vec![Err(call_error(false))]);
    let event = sqs(
        "arn:aws:sqs:us-east-1:123456789012:src",
        &[("m1", "a", None, None), ("m2", "b", None, None)],
    );
    let response = relay(QUEUE, publisher).handle(&event, &info()).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m1", "m2"]);
}

#[tokio::test]
async fn direct_event_with_a_failed_record_is_an_invocation_error() {
    let publisher = FakePublisher::answering(vec![Err(call_error(false))]);
    let err = relay(QUEUE, publisher)
        .handle(&direct(&["a"]), &info())
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 1);
    assert!(err.to_string().contains("bucket/a"), "{err}");
}

#[tokio::test]
async fn undecodable_sqs_record_fails_only_itself() {
    let mut event: serde_json::Value = serde_json::from_str(&sqs(
        "arn:aws:sqs:us-east-1:123456789012:src",
        &[("m1", "a", None, None), ("m2", "b", None, None)],
    ))
    .unwrap();
    event["Records"][0]["body"] = "{not json".into();
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&event.to_string(), &info())
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["b"]]);
}

#[tokio::test]
async fn fifo_source_reports_the_rest_of_a_group_after_a_failure() {
    // m2 fails to decode: m3 (same group g1) must not overtake it; m4 (group g2) goes on.
    let arn = "arn:aws:sqs:us-east-1:123456789012:src.fifo";
    let mut event: serde_json::Value = serde_json::from_str(&sqs(
        arn,
        &[
            ("m1", "a", Some("g1"), None),
            ("m2", "b", Some("g1"), None),
            ("m3", "c", Some("g1"), None),
            ("m4", "d", Some("g2"), None),
        ],
    ))
    .unwrap();
    event["Records"][1]["body"] = "{not json".into();
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&event.to_string(), &info())
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m2", "m3"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["a", "d"]]);
}

#[tokio::test]
async fn fifo_source_never_sends_a_message_before_the_earlier_ones_of_its_group_succeeded() {
    // Round 1 sends the first message of each group (a from g1, c from g2); a is rejected, so b
    // (g1, second) is held back and reported failed; d (g2, second) goes in round 2.
    let arn = "arn:aws:sqs:us-east-1:123456789012:src.fifo";
    let event = sqs(
        arn,
        &[
            ("m1", "a", Some("g1"), None),
            ("m2", "b", Some("g1"), None),
            ("m3", "c", Some("g2"), None),
            ("m4", "d", Some("g2"), None),
        ],
    );
    let publisher = FakePublisher::answering(vec![Ok(vec![entry_failure(true), EntryOutcome::Delivered])]);
    let response = relay(QUEUE, publisher.clone()).handle(&event, &info()).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m1", "m2"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["a", "c"], vec!["d"]]);
}

#[tokio::test]
async fn fifo_target_does_not_send_later_events_of_an_object_after_a_failure() {
    // 12 events of one object go one per call (a FIFO batch holds one event per object); the 3rd
    // is rejected, so the 9 after it are reported failed and never sent.
    let keys = vec!["same/object"; 12];
    let publisher = FakePublisher::answering(vec![
        Ok(vec![EntryOutcome::Delivered]),
        Ok(vec![EntryOutcome::Delivered]),
        Ok(vec![entry_failure(true)]),
    ]);
    let err = relay(FIFO_QUEUE, publisher.clone())
        .handle(&direct(&keys), &info())
        .await
        .unwrap_err();
    assert_undelivered(&err, 10, 12);
    assert_eq!(publisher.sent().len(), 3, "nothing after the failed event is sent");
}

#[tokio::test]
async fn nothing_is_started_past_the_deadline_margin() {
    let publisher = FakePublisher::default();
    let mut info = info();
    info.deadline_ms = support::deadline_in(300); // less than the default 500 ms margin
    let event = sqs("arn:aws:sqs:us-east-1:123456789012:src", &[("m1", "a", None, None)]);
    let response = relay(QUEUE, publisher.clone()).handle(&event, &info).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert!(publisher.sent().is_empty());
}

#[tokio::test]
async fn a_call_still_running_at_the_margin_is_reported_failed_in_time() {
    let publisher = FakePublisher {
        delay: Some(Duration::from_secs(30)),
        ..FakePublisher::default()
    };
    let mut info = info();
    info.deadline_ms = support::deadline_in(1_500);
    let event = sqs("arn:aws:sqs:us-east-1:123456789012:src", &[("m1", "a", None, None)]);
    let started = std::time::Instant::now();
    let response = relay(QUEUE, publisher).handle(&event, &info).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "answered before the deadline"
    );
}

#[tokio::test]
async fn oversized_record_fails_alone() {
    let big = "k".repeat(200);
    let mut event: serde_json::Value = serde_json::from_str(&sqs(
        "arn:aws:sqs:us-east-1:123456789012:src",
        &[("m1", &big, None, None), ("m2", "small", None, None)],
    ))
    .unwrap();
    let mut body: serde_json::Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    body["Records"][0]["padding"] = "x".repeat(300_000).into();
    event["Records"][0]["body"] = body.to_string().into();
    let publisher = FakePublisher::default();
    let response = relay("arn:aws:sns:us-east-1:123456789012:t", publisher.clone())
        .handle(&event.to_string(), &info())
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["small"]]);
}

#[tokio::test]
async fn unknown_payload_is_a_clear_invocation_error() {
    let err = relay(QUEUE, FakePublisher::default())
        .handle(r#"{"detail":"nope"}"#, &info())
        .await
        .unwrap_err();
    assert!(matches!(err, RelayError::BadPayload(_)));
    assert!(err.to_string().starts_with("bad invocation payload"), "{err}");
}

#[test]
fn emulator_style_deadline_is_time_left_not_an_epoch() {
    let info = InvocationInfo {
        deadline_ms: 600_000,
        ..InvocationInfo::default()
    };
    let cutoff = info.cutoff(Duration::from_millis(500)).unwrap();
    let left = cutoff - tokio::time::Instant::now();
    assert!(
        left > Duration::from_secs(590) && left <= Duration::from_millis(599_500),
        "{left:?}"
    );
}

#[derive(Clone, Default)]
struct CountingPublisher {
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl Publisher for CountingPublisher {
    async fn send(&self, _: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight.fetch_sub(1, SeqCst);
        Ok(CallReport::new(vec![EntryOutcome::Delivered; batch.messages.len()]))
    }
}

#[tokio::test]
async fn publish_calls_in_flight_never_exceed_the_configured_bound() {
    let targets = format!("{QUEUE},arn:aws:sns:us-east-1:123456789012:t");
    let config = RelayConfig::from_lookup(|k| match k {
        "RELAY_TARGETS" => Some(targets.clone()),
        "RELAY_MAX_IN_FLIGHT" => Some("3".into()),
        _ => None,
    })
    .unwrap();
    let publisher = CountingPublisher::default();
    let relay = Relay::new(Arc::new(config), publisher.clone());
    let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let response = relay.handle(&direct(&keys), &info()).await.unwrap();
    assert!(
        matches!(response, RelayResponse::Done(ref s) if s.publish_calls == 100),
        "{response:?}"
    );
    assert_eq!(publisher.peak.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn fifo_source_keeps_an_objects_events_in_order_across_groups() {
    // x's event in g1 (second of its group) comes before x's event in g2 (first of its group):
    // the g2 message must wait for the round after it.
    let arn = "arn:aws:sqs:us-east-1:123456789012:src.fifo";
    let event = sqs(
        arn,
        &[
            ("m1", "a", Some("g1"), None),
            ("m2", "x", Some("g1"), None),
            ("m3", "x", Some("g2"), None),
        ],
    );
    let publisher = FakePublisher::default();
    let response = relay(FIFO_QUEUE, publisher.clone())
        .handle(&event, &info())
        .await
        .unwrap();
    assert!(failed_ids(&response).is_empty());
    let order: Vec<usize> = publisher
        .sent()
        .iter()
        .flat_map(|(_, b)| b.messages.iter().map(|m| m.unit))
        .collect();
    assert_eq!(order, vec![0, 1, 2]);
}

#[tokio::test]
async fn fifo_source_holds_back_a_later_event_of_a_failed_object_whatever_its_group() {
    // m1 (g1, object x) is rejected; m2 (g2, same object x) comes later: sending it would put it
    // ahead of m1's redelivery on the FIFO target, so it is held back and reported too.
    let arn = "arn:aws:sqs:us-east-1:123456789012:src.fifo";
    let event = sqs(arn, &[("m1", "x", Some("g1"), None), ("m2", "x", Some("g2"), None)]);
    let publisher = FakePublisher::answering(vec![Ok(vec![entry_failure(true)])]);
    let response = relay(FIFO_QUEUE, publisher.clone())
        .handle(&event, &info())
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["m1", "m2"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["x"]], "m2 is never sent");
}

#[tokio::test]
async fn fifo_source_hold_back_follows_groups_and_objects_across_rounds() {
    // m1 (g1, x) fails in round 0. m2 (g2, y) goes in round 0 too and succeeds; m3 (g2, x) must
    // wait for x, and m4 (g2, z) for its group: both are held back, two rounds after the failure.
    let arn = "arn:aws:sqs:us-east-1:123456789012:src.fifo";
    let event = sqs(
        arn,
        &[
            ("m1", "x", Some("g1"), None),
            ("m2", "y", Some("g2"), None),
            ("m3", "x", Some("g2"), None),
            ("m4", "z", Some("g2"), None),
            ("m5", "w", Some("g3"), None),
        ],
    );
    let publisher = FakePublisher::answering(vec![Ok(vec![entry_failure(true)])]);
    let response = relay(QUEUE, publisher.clone()).handle(&event, &info()).await.unwrap();
    assert_eq!(failed_ids(&response), vec!["m1", "m3", "m4"]);
    assert_eq!(publisher.sent_keys(), vec![vec!["x", "y", "w"]]);
}

#[tokio::test]
async fn a_destination_listed_twice_receives_a_record_once() {
    // Both entries' filters match images/cat.jpg: one message, not one per entry.
    let publisher = FakePublisher::default();
    let targets = format!("{QUEUE}?prefix=images/,{QUEUE}?suffix=.jpg");
    let response = relay(&targets, publisher.clone())
        .handle(&direct(&["images/cat.jpg", "docs/a.jpg", "docs/b.txt"]), &info())
        .await
        .unwrap();
    assert_eq!(publisher.sent_keys(), vec![vec!["images/cat.jpg", "docs/a.jpg"]]);
    assert!(matches!(response, RelayResponse::Done(ref s) if s.published == 2 && s.filtered_out == 1));
}

#[tokio::test]
async fn top_level_json_array_is_not_an_event() {
    let record = serde_json::from_str::<serde_json::Value>(&direct(&["a"])).unwrap()["Records"].clone();
    let err = relay(QUEUE, FakePublisher::default())
        .handle(&serde_json::json!([record]).to_string(), &info())
        .await
        .unwrap_err();
    assert!(matches!(err, RelayError::BadPayload(_)), "{err}");
}

#[tokio::test]
async fn parser_complaints_are_bounded_in_errors() {
    let huge = format!("\"{}\"", "x".repeat(1_000_000));
    let err = relay(QUEUE, FakePublisher::default())
        .handle(&huge, &info())
        .await
        .unwrap_err();
    assert!(err.to_string().len() < 1_000, "{} bytes", err.to_string().len());
}

/// Counts calls in flight; its first call answers one entry throttled (resent alone).
#[derive(Clone, Default)]
struct ThrottleOncePublisher {
    counting: CountingPublisher,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl Publisher for ThrottleOncePublisher {
    async fn send(&self, destination: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        let first = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let mut report = self.counting.send(destination, batch).await?;
        if first {
            report.entries[0] = EntryOutcome::Failed(Reason::Rejected {
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into(),
                sender_fault: false,
            });
        }
        Ok(report)
    }
}

#[tokio::test]
async fn a_throttled_call_halves_the_calls_in_flight_for_the_next_invocation() {
    use std::sync::atomic::Ordering::SeqCst;
    let config = RelayConfig::from_lookup(|k| (k == "RELAY_TARGETS").then(|| QUEUE.to_owned())).unwrap();
    let publisher = ThrottleOncePublisher::default();
    let relay = Relay::new(Arc::new(config), publisher.clone());
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    relay.handle(&direct(&keys), &info()).await.unwrap();
    assert_eq!(
        publisher.counting.peak.load(SeqCst),
        10,
        "all ten calls at once before the throttle"
    );

    publisher.counting.peak.store(0, SeqCst);
    relay.handle(&direct(&keys), &info()).await.unwrap();
    let peak = publisher.counting.peak.load(SeqCst);
    assert!(
        (8..=9).contains(&peak),
        "starts at 16 / 2 and grows by about one per window: {peak}"
    );
}
