//! Hostile invocation payloads (CONTRACT §3, §5, §6): huge, deeply nested, badly encoded, and
//! header-injection attempts in every trace field.
//!
//! Whatever the input: no panic, memory bounded by a small multiple of the payload, a short clear
//! error for what cannot be decoded (failing only the records it affects), and nothing from an
//! incoming trace carrier copied into the headers the relay sends. What would be sent is read off
//! the fake publisher's recorded batches: `messages[i].trace` (SQS `AWSTraceHeader`),
//! `messages[i].traceparent` (the `traceparent` attribute) and `request_trace` (SNS's
//! `X-Amzn-Trace-Id`).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use s3_trace_relay::InvocationInfo;
use s3_trace_relay::inbound::DecodeError;
use s3_trace_relay::message::Batch;
use s3_trace_relay::response::{RelayError, RelayResponse};
use serde_json::{Value, json};
use support::fake_publisher::{FakePublisher, assert_undelivered, failed_ids, relay};
use support::payloads::{FIFO_QUEUE, INVOCATION_TRACE, QUEUE, invocation};

// ------------------------------------------------------------------------------------------------
// Memory accounting: bytes allocated by the current thread, so a test can bound its own peak while
// other tests run on other threads.

struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are updated.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f` on this thread and returns its result and the most bytes it held at once beyond what
/// was live when it started.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, usize::try_from(peak - start).unwrap_or(0))
}

/// Runs one invocation on a current-thread runtime, so every allocation is counted on this thread.
fn run_on_this_thread<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

// ------------------------------------------------------------------------------------------------
// Payload builders (the fake publisher and shared builders are in support/).

const RECORD_ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
const RECORD_PARENT: &str = "53995c3f42cd8ad8";
const RECORD_LINEAGE: &str = "c512fbe3:2";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:out";
const SOURCE_QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:src";

/// What a header-injection attempt puts into a field: line breaks, NUL, tab and non-ASCII (including
/// U+0085 NEL and U+2028 LINE SEPARATOR, which some parsers treat as line breaks).
const INJECTED: [&str; 7] = ["\r\n", "\n", "\0", "\t", "é", "\u{85}", "\u{2028}"];
const CONTROL: [&str; 4] = ["\r\n", "\n", "\0", "\t"];
const NON_ASCII: [&str; 3] = ["é", "\u{85}", "\u{2028}"];

fn info(trace_id: Option<&str>) -> InvocationInfo {
    invocation("req-hostile", trace_id)
}

fn s3_record(key: &str) -> Value {
    support::payloads::s3_record(key, "0062E99A88DC4074A1")
}

fn notification(records: Vec<Value>) -> String {
    json!({ "Records": records }).to_string()
}

/// One SQS message: `body` as the message body, with the given system and message attributes.
fn sqs_message(id: &str, body: &str, attributes: Value, message_attributes: Value) -> Value {
    json!({
        "messageId": id, "receiptHandle": "r", "body": body, "attributes": attributes,
        "messageAttributes": message_attributes, "md5OfBody": "0",
        "eventSource": "aws:sqs", "eventSourceARN": SOURCE_QUEUE, "awsRegion": "us-east-1"
    })
}

/// An SQS message carrying one S3 record for `key`, with `AWSTraceHeader` when given.
fn sqs_with_header(id: &str, key: &str, header: Option<&str>) -> Value {
    let mut attributes = json!({"ApproximateReceiveCount": "1"});
    if let Some(h) = header {
        attributes["AWSTraceHeader"] = h.into();
    }
    sqs_message(id, &notification(vec![s3_record(key)]), attributes, json!({}))
}

/// An SQS message carrying one S3 record for `key`, with a `traceparent` message attribute.
fn sqs_with_traceparent(id: &str, key: &str, traceparent: &str) -> Value {
    sqs_message(
        id,
        &notification(vec![s3_record(key)]),
        json!({"ApproximateReceiveCount": "1"}),
        json!({"traceparent": {"stringValue": traceparent, "dataType": "String"}}),
    )
}

/// A byte that must never appear in a header or attribute the relay writes.
fn injected_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b >= 0x80
}

/// Every trace header, `traceparent` and FIFO id that would be sent is free of injected bytes
/// (control characters, non-ASCII), spaces and the injected text.
fn assert_no_injected_bytes(sent: &[(String, Batch)]) {
    for (destination, batch) in sent {
        let request = batch.request_trace.as_ref().map(ToString::to_string);
        let per_message = batch.messages.iter().flat_map(|m| {
            [
                m.trace.as_ref().map(ToString::to_string),
                m.traceparent(),
                m.fifo.as_ref().map(|ids| ids.group_id.clone()),
                m.fifo.as_ref().map(|ids| ids.deduplication_id.clone()),
            ]
        });
        for value in std::iter::once(request).chain(per_message).flatten() {
            assert!(
                !value.bytes().any(injected_byte),
                "{destination}: injected byte in outbound value {value:?}"
            );
            assert!(
                !value.contains(' ') && !value.contains("Injected"),
                "{destination}: {value:?}"
            );
        }
    }
}

/// One SQS message (`m<i>-<j>`, key `k<i>-<j>`) per injection attempt `injected_headers(inj[i])[j]`.
fn injected_sqs_messages(injections: &[&str]) -> Vec<Value> {
    let mut messages = Vec::new();
    for (i, inj) in injections.iter().enumerate() {
        for (j, (_, header)) in injected_headers(inj).into_iter().enumerate() {
            messages.push(sqs_with_header(
                &format!("m{i}-{j}"),
                &format!("k{i}-{j}"),
                Some(&header),
            ));
        }
    }
    messages
}

/// Header-injection attempts, one per trace field: `(field, header)` where `inj` lands inside the
/// field's key or value, followed by a would-be extra header line.
fn injected_headers(inj: &str) -> Vec<(&'static str, String)> {
    let (root, parent, lineage) = (RECORD_ROOT, RECORD_PARENT, RECORD_LINEAGE);
    vec![
        (
            "Root value",
            format!("Root={root}{inj}X-Injected: 1;Parent={parent};Sampled=1"),
        ),
        ("Root key", format!("Ro{inj}ot={root};Parent={parent};Sampled=1")),
        (
            "Parent value",
            format!("Root={root};Parent={parent}{inj}X-Injected: 1;Sampled=1"),
        ),
        ("Parent key", format!("Root={root};Par{inj}ent={parent};Sampled=1")),
        (
            "Sampled value",
            format!("Root={root};Parent={parent};Sampled=1{inj}X-Injected: 1"),
        ),
        ("Sampled key", format!("Root={root};Parent={parent};Samp{inj}led=1")),
        (
            "Lineage value",
            format!("Root={root};Parent={parent};Sampled=1;Lineage={lineage}{inj}X-Injected: 1"),
        ),
        (
            "unknown key",
            format!("Root={root};Parent={parent};Sampled=1;X-Custom{inj}X-Injected: 1=v"),
        ),
        (
            "unknown value",
            format!("Root={root};Parent={parent};Sampled=1;Foo=bar{inj}X-Injected: 1"),
        ),
        (
            "Self value",
            format!("Self=1-5759e988-{inj}X-Injected: 1;Root={root};Parent={parent};Sampled=1"),
        ),
    ]
}

/// The canonical header the relay writes for the record-level headers above once the poisoned
/// field is dropped (non-ASCII is not a control character: only the field it breaks is dropped).
fn sanitised(field: &str) -> String {
    let (root, parent) = (RECORD_ROOT, RECORD_PARENT);
    match field {
        "Parent value" | "Parent key" => format!("Root={root};Sampled=1"),
        "Sampled value" | "Sampled key" => format!("Root={root};Parent={parent}"),
        _ => format!("Root={root};Parent={parent};Sampled=1"),
    }
}

/// Runs one SQS event of `messages` to an SQS queue and an SNS topic; asserts that nothing failed.
async fn relay_sqs(messages: Vec<Value>, invocation_trace: Option<&str>) -> FakePublisher {
    let publisher = FakePublisher::default();
    let event = json!({ "Records": messages }).to_string();
    let response = relay(&format!("{QUEUE},{TOPIC}"), publisher.clone())
        .handle(&event, &info(invocation_trace))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    publisher
}

// ------------------------------------------------------------------------------------------------
// Size.

/// 30 SQS messages of one ~200 KB S3 record each: a 6 MB invocation, Lambda's payload limit.
fn six_megabyte_sqs_event() -> String {
    let messages: Vec<Value> = (0..30)
        .map(|i| {
            let mut record = s3_record(&format!("big/{i:02}.bin"));
            record["responseElements"]["padding"] = "p".repeat(199_500).into();
            sqs_message(
                &format!("m{i:02}"),
                &notification(vec![record]),
                json!({"ApproximateReceiveCount": "1"}),
                json!({}),
            )
        })
        .collect();
    let event = json!({ "Records": messages }).to_string();
    assert!((6_000_000..6_291_456).contains(&event.len()), "{} bytes", event.len());
    event
}

#[tokio::test]
async fn six_megabyte_sqs_event_is_relayed_in_full_size_limited_batches() {
    let publisher = FakePublisher::default();
    let response = relay(&format!("{QUEUE},{TOPIC}"), publisher.clone())
        .handle(&six_megabyte_sqs_event(), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), Vec::<String>::new());
    // ~200 KB each: 5 fit in SQS's 1 MiB batch, only 1 in SNS's 256 KiB.
    let sizes = |d| {
        publisher
            .sent_to(d)
            .iter()
            .map(|b| b.messages.len())
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(QUEUE), vec![5; 6]);
    assert_eq!(sizes(TOPIC), vec![1; 30]);
    let keys: Vec<String> = publisher.headers_to(QUEUE).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, (0..30).map(|i| format!("big/{i:02}.bin")).collect::<Vec<_>>());
    let first = &publisher.sent_to(QUEUE)[0].messages[0].notification.body;
    assert!(first.len() > 199_000 && first.starts_with("{\"Records\":[{"));
}

#[test]
fn six_megabyte_sqs_event_peaks_below_twice_its_size() {
    let event = six_megabyte_sqs_event();
    let publisher = FakePublisher::default();
    let relay = relay(&format!("{QUEUE},{TOPIC}"), publisher.clone());
    let (response, peak) = peak_bytes(|| run_on_this_thread(relay.handle(&event, &info(Some(INVOCATION_TRACE)))));
    assert_eq!(failed_ids(&response.unwrap()), Vec::<String>::new());
    // One copy of the records (the bodies to send), shared by the targets and the recorded batches.
    eprintln!("peak {peak} bytes for a {} byte payload", event.len());
    assert!(
        peak < 2 * event.len(),
        "peak {peak} bytes for a {} byte payload",
        event.len()
    );
}

/// 6 MB of pseudo-random bytes, read as UTF-8 (so control characters and non-ASCII included).
fn six_megabytes_of_garbage() -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..6_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    text.replace_range(..1, "\u{1}"); // whatever the generator gives, not a JSON value
    let mut end = 6_000_000;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

#[tokio::test]
async fn six_megabytes_of_garbage_is_rejected_as_not_json_in_one_short_line() {
    let publisher = FakePublisher::default();
    let err = relay(QUEUE, publisher.clone())
        .handle(&six_megabytes_of_garbage(), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap_err();
    assert!(matches!(err, RelayError::BadPayload(DecodeError::NotJson(_))), "{err}");
    let message = err.to_string();
    assert!(message.len() < 200 && !message.contains('\n'), "{message:?}");
    assert!(publisher.sent().is_empty());
}

#[test]
fn six_megabytes_of_garbage_is_rejected_without_copying_it() {
    let garbage = six_megabytes_of_garbage();
    let relay = relay(QUEUE, FakePublisher::default());
    let (result, peak) = peak_bytes(|| run_on_this_thread(relay.handle(&garbage, &info(Some(INVOCATION_TRACE)))));
    assert!(result.is_err());
    eprintln!("peak {peak} bytes for a {} byte payload", garbage.len());
    assert!(peak < 64 * 1024, "peak {peak} bytes");
}

// ------------------------------------------------------------------------------------------------
// Nesting.

/// `n` nested arrays, closed.
fn nested_arrays(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

#[tokio::test]
async fn hundred_thousand_unclosed_brackets_are_rejected_as_not_json_in_one_short_line() {
    let publisher = FakePublisher::default();
    let err = relay(QUEUE, publisher.clone())
        .handle(&"[".repeat(100_000), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap_err();
    assert!(matches!(err, RelayError::BadPayload(DecodeError::NotJson(_))), "{err}");
    let message = err.to_string();
    assert!(message.len() < 200 && !message.contains('\n'), "{message:?}");
    assert!(publisher.sent().is_empty());
}

#[tokio::test]
async fn hundred_thousand_nested_arrays_as_the_records_are_rejected_record_by_record() {
    // `Records` items are kept as raw JSON text, skipped without recursion (no stack overflow and
    // no recursion-limit error): the one item has no eventSource and fails alone.
    let publisher = FakePublisher::default();
    let payload = format!("{{\"Records\":[{}]}}", nested_arrays(100_000));
    let err = relay(QUEUE, publisher.clone())
        .handle(&payload, &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 1);
    assert!(err.to_string().contains("eventSource"), "{err}");
    assert!(publisher.sent().is_empty());
}

#[tokio::test]
async fn hundred_thousand_nested_arrays_in_a_typed_field_fail_only_that_record() {
    let mut deep_key = s3_record("k");
    deep_key["s3"]["object"]["key"] = "DEEP".into();
    let deep_key = deep_key.to_string().replace("\"DEEP\"", &nested_arrays(100_000));
    let payload = format!("{{\"Records\":[{deep_key},{}]}}", s3_record("ok"));
    let publisher = FakePublisher::default();
    let err = relay(QUEUE, publisher.clone())
        .handle(&payload, &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 2);
    assert!(err.to_string().contains("invalid type: sequence"), "{err}");
    assert_eq!(publisher.headers_to(QUEUE)[0].0, "ok");
}

#[tokio::test]
async fn hundred_thousand_nested_arrays_in_an_unknown_record_field_are_forwarded_as_received() {
    let deep = nested_arrays(100_000);
    let record = s3_record("k")
        .to_string()
        .replacen('{', &format!("{{\"deep\":{deep},"), 1);
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&format!("{{\"Records\":[{record}]}}"), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert!(
        matches!(response, RelayResponse::Done(ref s) if s.published == 1),
        "{response:?}"
    );
    let body = &publisher.sent_to(QUEUE)[0].messages[0].notification.body;
    assert_eq!(*body, format!("{{\"Records\":[{record}]}}"));
}

#[tokio::test]
async fn deeply_nested_sqs_body_fails_only_its_message() {
    let deep = sqs_message("deep", &"[".repeat(100_000), json!({}), json!({}));
    let publisher = FakePublisher::default();
    let event = json!({"Records": [deep, sqs_with_header("ok", "fine.txt", None)]}).to_string();
    let response = relay(QUEUE, publisher.clone())
        .handle(&event, &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["deep"]);
    assert_eq!(publisher.headers_to(QUEUE).len(), 1);
}

// ------------------------------------------------------------------------------------------------
// Huge names.

#[tokio::test]
async fn megabyte_member_name_in_a_record_is_forwarded_as_received() {
    let mut record = s3_record("k");
    record["x".repeat(1_000_000)] = "v".into();
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&notification(vec![record]), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert!(
        matches!(response, RelayResponse::Done(ref s) if s.published == 1),
        "{response:?}"
    );
    let body = &publisher.sent_to(QUEUE)[0].messages[0].notification.body;
    assert!(body.len() > 1_000_000);
}

#[tokio::test]
async fn megabyte_object_key_fails_as_oversized_and_is_not_sent() {
    let publisher = FakePublisher::default();
    let err = relay(&format!("{QUEUE},{TOPIC}"), publisher.clone())
        .handle(
            &notification(vec![s3_record(&"k".repeat(1 << 20)), s3_record("small")]),
            &info(Some(INVOCATION_TRACE)),
        )
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 2);
    assert!(err.to_string().contains("byte limit"), "clear reason");
    let keys: Vec<String> = publisher.headers_to(QUEUE).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec!["small"]);
}

#[tokio::test]
async fn half_megabyte_object_key_gets_a_bounded_fifo_group_id() {
    let key = format!("{}\r\n\0\té", "k".repeat(500_000));
    let encoded: String = key
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace('\0', "%00")
        .replace('\t', "%09");
    let publisher = FakePublisher::default();
    relay(FIFO_QUEUE, publisher.clone())
        .handle(&notification(vec![s3_record(&encoded)]), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    let sent = publisher.sent_to(FIFO_QUEUE);
    let message = &sent[0].messages[0];
    assert_eq!(message.notification.key, key, "filters and ids see the decoded key");
    let ids = message.fifo.as_ref().unwrap();
    assert!(
        ids.group_id.len() <= 128 && ids.deduplication_id.len() <= 128,
        "{ids:?}"
    );
    assert_no_injected_bytes(&publisher.sent());
}

// ------------------------------------------------------------------------------------------------
// Encoding.

#[tokio::test]
async fn invalid_utf8_in_key_escapes_fails_only_that_sqs_message() {
    let publisher = FakePublisher::default();
    let event = json!({"Records": [
        sqs_with_header("bad", "bad%FF%FE.txt", None),
        sqs_with_header("ok", "ok%C3%A9.txt", None),
    ]})
    .to_string();
    let response = relay(QUEUE, publisher.clone())
        .handle(&event, &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["bad"]);
    assert_eq!(publisher.headers_to(QUEUE)[0].0, "oké.txt");
}

#[tokio::test]
async fn invalid_utf8_in_key_escapes_is_named_in_the_direct_invocation_error() {
    let publisher = FakePublisher::default();
    let err = relay(QUEUE, publisher.clone())
        .handle(
            &notification(vec![s3_record("bad%FF%FE"), s3_record("ok")]),
            &info(Some(INVOCATION_TRACE)),
        )
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 2);
    assert!(err.to_string().contains("%-escapes are not UTF-8"), "{err}");
    assert_eq!(publisher.headers_to(QUEUE).len(), 1, "the good record still goes");
}

#[tokio::test]
async fn lone_surrogate_escape_in_a_key_fails_only_that_record() {
    let bad_record = s3_record("SURROGATE").to_string().replace("SURROGATE", "a\\ud800b");
    let payload = format!("{{\"Records\":[{bad_record},{}]}}", s3_record("ok"));
    let publisher = FakePublisher::default();
    let err = relay(QUEUE, publisher.clone())
        .handle(&payload, &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap_err();
    assert_undelivered(&err, 1, 2);
    assert!(
        err.to_string()
            .contains("not a valid S3 record: unexpected end of hex escape"),
        "{err}"
    );
    assert_eq!(publisher.headers_to(QUEUE)[0].0, "ok");
}

#[tokio::test]
async fn lone_surrogate_escape_in_an_unknown_field_is_forwarded_as_received() {
    // Unknown fields are skipped, not decoded: the record goes out byte for byte (CONTRACT §4).
    let record = s3_record("k").to_string().replacen('{', "{\"note\":\"\\ud800\",", 1);
    let publisher = FakePublisher::default();
    relay(QUEUE, publisher.clone())
        .handle(&format!("{{\"Records\":[{record}]}}"), &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    let body = &publisher.sent_to(QUEUE)[0].messages[0].notification.body;
    assert!(body.contains("\"note\":\"\\ud800\""), "{body}");
}

#[tokio::test]
async fn lone_surrogate_escape_in_an_sqs_body_fails_only_that_message() {
    let event = json!({"Records": [
        sqs_message("bad", "BODY", json!({}), json!({})),
        sqs_with_header("ok", "ok.txt", None),
    ]})
    .to_string()
    .replace("\"BODY\"", "\"{\\\"Records\\\":[\\ud800]}\"");
    let publisher = FakePublisher::default();
    let response = relay(QUEUE, publisher.clone())
        .handle(&event, &info(Some(INVOCATION_TRACE)))
        .await
        .unwrap();
    assert_eq!(failed_ids(&response), vec!["bad"]);
    assert_eq!(publisher.headers_to(QUEUE)[0].0, "ok.txt");
}

// ------------------------------------------------------------------------------------------------
// Header injection.

#[tokio::test]
async fn control_characters_in_any_aws_trace_header_field_fall_back_to_the_invocation_header() {
    let messages = injected_sqs_messages(&CONTROL);
    let count = messages.len();
    let publisher = relay_sqs(messages, Some(INVOCATION_TRACE)).await;
    let headers = publisher.headers_to(QUEUE);
    assert_eq!(headers.len(), count);
    for (key, header) in headers {
        assert_eq!(header.as_deref(), Some(INVOCATION_TRACE), "{key}");
    }
    assert_no_injected_bytes(&publisher.sent());
}

#[tokio::test]
async fn non_ascii_in_the_aws_trace_header_root_falls_back_to_the_invocation_header() {
    let mut messages = Vec::new();
    for (i, inj) in NON_ASCII.iter().enumerate() {
        for (field, header) in injected_headers(inj).into_iter().filter(|(f, _)| f.starts_with("Root")) {
            messages.push(sqs_with_header(
                &format!("{field} {i}"),
                &format!("{field} {i}"),
                Some(&header),
            ));
        }
    }
    let publisher = relay_sqs(messages, Some(INVOCATION_TRACE)).await;
    for (key, header) in publisher.headers_to(QUEUE) {
        assert_eq!(header.as_deref(), Some(INVOCATION_TRACE), "{key}");
    }
    assert_no_injected_bytes(&publisher.sent());
}

#[tokio::test]
async fn non_ascii_in_an_optional_aws_trace_header_field_drops_only_that_field() {
    let mut messages = Vec::new();
    let mut expected = Vec::new();
    for (i, inj) in NON_ASCII.iter().enumerate() {
        for (field, header) in injected_headers(inj)
            .into_iter()
            .filter(|(f, _)| !f.starts_with("Root"))
        {
            let key = format!("{field} {i}");
            messages.push(sqs_with_header(&key, &key, Some(&header)));
            expected.push((key, Some(sanitised(field))));
        }
    }
    let publisher = relay_sqs(messages, Some(INVOCATION_TRACE)).await;
    assert_eq!(publisher.headers_to(QUEUE), expected);
    assert_no_injected_bytes(&publisher.sent());
}

#[tokio::test]
async fn injected_traceparent_attribute_falls_back_to_the_invocation_header() {
    let good = format!("00-5759e988bd862e3fe1be46a994272793-{RECORD_PARENT}-01");
    let mut messages = Vec::new();
    for (i, inj) in INJECTED.iter().enumerate() {
        // After each of the four fields (including the end) and inside the trace-id.
        for (j, at) in [2, 35, 52, 55, 10].into_iter().enumerate() {
            let mut tp = good.clone();
            tp.insert_str(at, inj);
            messages.push(sqs_with_traceparent(&format!("m{i}-{j}"), &format!("k{i}-{j}"), &tp));
        }
    }
    let count = messages.len();
    let publisher = relay_sqs(messages, Some(INVOCATION_TRACE)).await;
    let headers = publisher.headers_to(QUEUE);
    assert_eq!(headers.len(), count);
    for (key, header) in headers {
        assert_eq!(header.as_deref(), Some(INVOCATION_TRACE), "{key}");
    }
    assert_no_injected_bytes(&publisher.sent());
}

#[tokio::test]
async fn invalid_aws_trace_header_is_not_replaced_by_a_valid_traceparent() {
    let mut message = sqs_with_traceparent(
        "m",
        "k",
        &format!("00-5759e988bd862e3fe1be46a994272793-{RECORD_PARENT}-01"),
    );
    message["attributes"]["AWSTraceHeader"] = format!("Root={RECORD_ROOT}\r\nX-Injected: 1").into();
    let publisher = relay_sqs(vec![message], Some(INVOCATION_TRACE)).await;
    assert_eq!(
        publisher.headers_to(QUEUE),
        vec![("k".to_owned(), Some(INVOCATION_TRACE.to_owned()))]
    );
}

#[tokio::test]
async fn injected_record_header_without_a_valid_invocation_header_is_relayed_with_none() {
    let invalid_invocation = format!("Root={RECORD_ROOT}\r\nX-Injected: 1");
    for invocation in [None, Some(invalid_invocation.as_str())] {
        let messages = injected_sqs_messages(&CONTROL);
        let count = messages.len();
        let publisher = relay_sqs(messages, invocation).await;
        let headers = publisher.headers_to(QUEUE);
        assert_eq!(headers.len(), count);
        assert!(headers.iter().all(|(_, h)| h.is_none()), "{invocation:?}: {headers:?}");
        for batch in publisher.sent_to(QUEUE) {
            assert!(batch.messages.iter().all(|m| m.traceparent().is_none()));
        }
        for batch in publisher.sent_to(TOPIC) {
            assert_eq!(batch.request_trace, None);
        }
    }
}

#[tokio::test]
async fn injected_invocation_header_sends_no_header_for_a_direct_event() {
    for inj in INJECTED {
        for (field, header) in injected_headers(inj) {
            // Non-ASCII in an optional field leaves a valid header: covered above.
            let header_is_invalid = CONTROL.contains(&inj) || field.starts_with("Root");
            if !header_is_invalid {
                continue;
            }
            let publisher = FakePublisher::default();
            let response = relay(&format!("{QUEUE},{TOPIC}"), publisher.clone())
                .handle(&notification(vec![s3_record("k")]), &info(Some(&header)))
                .await
                .unwrap();
            assert!(
                matches!(response, RelayResponse::Done(ref s) if s.published == 2),
                "{field}"
            );
            let sent = publisher.sent();
            assert_eq!(sent.len(), 2);
            for (_, batch) in &sent {
                assert_eq!(batch.request_trace, None, "{field} {inj:?}");
                assert_eq!(
                    (&batch.messages[0].trace, &batch.messages[0].traceparent()),
                    (&None, &None)
                );
            }
        }
    }
}

#[tokio::test]
async fn sns_request_header_never_carries_injected_bytes() {
    let messages = injected_sqs_messages(&INJECTED);
    let count = messages.len();
    let publisher = relay_sqs(messages, Some(INVOCATION_TRACE)).await;
    let batches = publisher.sent_to(TOPIC);
    assert_eq!(batches.iter().map(|b| b.messages.len()).sum::<usize>(), count);
    let allowed: Vec<String> = std::iter::once(INVOCATION_TRACE.to_owned())
        .chain(injected_headers("é").iter().map(|(field, _)| sanitised(field)))
        .collect();
    for batch in &batches {
        let request = batch.request_trace.as_ref().map(ToString::to_string).unwrap();
        assert!(allowed.contains(&request), "{request:?}");
        assert!(batch.messages.iter().all(|m| m.trace == batch.request_trace));
    }
    assert_no_injected_bytes(&publisher.sent());
}
