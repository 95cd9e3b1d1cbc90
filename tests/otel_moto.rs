//! End to end: the real binary exporting its spans over OTLP/HTTP (protobuf) to a receiver that
//! decodes them with the OpenTelemetry proto definitions, while relaying to moto.

mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::moto::moto;
use support::otlp::{OtlpReceiver, ReceivedSpan, SpanKind};
use support::payloads::s3_record;
use support::relay_process::{INVOCATION_ROOT, INVOCATION_TRACE, Relay, WAIT, failed_items, header_field};
use support::runtime_api::Invocation;

/// Three upstream producers, each with its own sampled trace.
const UPSTREAM: [(&str, &str); 3] = [
    ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"),
    ("1-67891233-abcdef012345678912345678", "0123456789abcdef"),
    ("1-6a1b2c3d-00112233445566778899aabb", "1111222233334444"),
];

/// An SQS event whose message `i` carries `trace(i)` as its `AWSTraceHeader`.
fn sqs_with_traces(traces: &[String]) -> Value {
    let records: Vec<Value> = traces
        .iter()
        .enumerate()
        .map(|(i, trace)| {
            let body = json!({"Records": [s3_record(&format!("k{i}"), &format!("{i:018}"))]});
            json!({"messageId": format!("m{i}"), "body": body.to_string(), "attributes": {"AWSTraceHeader": trace},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:src"})
        })
        .collect();
    json!({ "Records": records })
}

fn sampled(root: &str, parent: &str) -> String {
    format!("Root={root};Parent={parent};Sampled=1")
}

/// The W3C form of an X-Ray root: its hex digits without the dashes.
fn w3c(root: &str) -> String {
    root.trim_start_matches("1-").replace('-', "")
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
async fn a_mixed_batch_gives_one_linked_process_span_and_a_send_span_per_context_parenting_each_message() {
    let moto = moto().await;
    let queue = moto.create_queue("otel-out").await;
    let otlp = OtlpReceiver::start().await;
    let endpoint = otlp.endpoint();
    let relay = Relay::start_with(&moto, &queue, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await;

    let traces: Vec<String> = UPSTREAM.iter().map(|(r, p)| sampled(r, p)).collect();
    let response = relay.invoke_json(&sqs_with_traces(&traces)).await.expect_response();
    assert!(failed_items(&response).is_empty(), "{response}");

    let spans = otlp.wait_for_spans(4, WAIT).await;
    let requests = otlp.requests();
    assert_eq!(requests.len(), 1, "one export per invocation: {requests:?}");
    assert_eq!(
        requests[0].content_type.as_deref(),
        Some("application/x-protobuf"),
        "protobuf by default"
    );
    let process = by_name(&spans, "process");
    assert_eq!(process.len(), 1, "{spans:#?}");
    let process = process[0];
    assert_eq!(process.kind, SpanKind::Consumer);
    assert_eq!(process.trace_id, w3c(INVOCATION_ROOT));
    assert_eq!(
        process.parent_span_id.as_deref(),
        Some("a1b2c3d4e5f60718"),
        "under the function segment"
    );
    let mut links: Vec<(String, String)> = process
        .links
        .iter()
        .map(|l| (l.trace_id.clone(), l.span_id.clone()))
        .collect();
    links.sort();
    let mut want: Vec<(String, String)> = UPSTREAM.iter().map(|(r, p)| (w3c(r), (*p).to_owned())).collect();
    want.sort();
    assert_eq!(links, want);
    assert_eq!(
        process.attr("messaging.batch.message_count").and_then(|v| v.as_i64()),
        Some(3)
    );
    assert_eq!(
        process.resource.get("cloud.provider").and_then(|v| v.as_str()),
        Some("aws")
    );

    let sends = by_name(&spans, "send");
    assert_eq!(sends.len(), 3, "one per trace context of the one call: {sends:#?}");
    let send_of: HashMap<&str, &ReceivedSpan> = sends.iter().map(|s| (s.trace_id.as_str(), *s)).collect();
    for (root, parent) in UPSTREAM {
        let send = send_of[w3c(root).as_str()];
        assert_eq!(send.kind, SpanKind::Producer);
        assert_eq!(
            send.parent_span_id.as_deref(),
            Some(parent),
            "child of the upstream parent"
        );
        assert_eq!(send.attr("messaging.system").and_then(|v| v.as_str()), Some("aws_sqs"));
        assert_eq!(
            send.attr("messaging.destination.name").and_then(|v| v.as_str()),
            Some("otel-out")
        );
        assert!(send.attr("aws.request_id").is_some(), "{send:#?}");
    }
    for m in moto.receive_all(&queue).await {
        let header = m.aws_trace_header.as_deref().unwrap();
        let root = header_field(header, "Root").unwrap();
        let send = send_of[w3c(root).as_str()];
        assert_eq!(header_field(header, "Parent"), Some(send.span_id.as_str()), "{header}");
        let traceparent = &m.message_attributes["traceparent"];
        assert_eq!(traceparent, &format!("00-{}-{}-01", w3c(root), send.span_id));
    }
}

#[tokio::test]
async fn an_unsampled_record_gets_no_span_and_keeps_its_context() {
    let moto = moto().await;
    let queue = moto.create_queue("otel-unsampled").await;
    let otlp = OtlpReceiver::start().await;
    let endpoint = otlp.endpoint();
    let relay = Relay::start_with(&moto, &queue, &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]).await;

    let (root, parent) = UPSTREAM[0];
    let unsampled = format!("Root={root};Parent={parent};Sampled=0");
    relay
        .invoke_json(&sqs_with_traces(std::slice::from_ref(&unsampled)))
        .await
        .expect_response();

    let spans = otlp.wait_for_spans(1, WAIT).await;
    assert!(by_name(&spans, "send").is_empty(), "{spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id != w3c(root)), "{spans:#?}");
    let received = moto.receive_all(&queue).await;
    assert_eq!(received[0].aws_trace_header.as_deref(), Some(unsampled.as_str()));
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_the_bound_and_a_warning_only() {
    let moto = moto().await;
    let queue = moto.create_queue("otel-down").await;
    let otlp = OtlpReceiver::black_hole().await;
    let endpoint = otlp.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
    ];
    let relay = Relay::start_with(&moto, &queue, &env).await;

    for _ in 0..2 {
        let response = relay.invoke_fixture("s3-put.json").await.expect_response();
        assert_eq!(response["published"], 1, "{response}");
    }
    assert_eq!(moto.receive_all(&queue).await.len(), 2);
    let warnings = relay
        .process
        .json_logs()
        .into_iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("OpenTelemetry export") && m.ends_with("spans dropped"))
        })
        .count();
    assert_eq!(warnings, 2, "{}", relay.process.logs());
}

#[tokio::test]
async fn with_x_ray_and_otlp_both_on_the_subsegments_and_send_spans_share_their_ids() {
    let moto = moto().await;
    let queue = moto.create_queue("otel-and-xray").await;
    let otlp = OtlpReceiver::start().await;
    let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (endpoint, address) = (otlp.endpoint(), daemon.local_addr().unwrap().to_string());
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("AWS_XRAY_DAEMON_ADDRESS", address.as_str()),
    ];
    let relay = Relay::start_with(&moto, &queue, &env).await;

    relay
        .invoke(Invocation::new(support::fixture("s3-put.json")).with_trace(INVOCATION_TRACE))
        .await
        .expect_response();
    let mut buf = vec![0u8; 65_536];
    let len = tokio::time::timeout(WAIT, daemon.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let (_, document) = std::str::from_utf8(&buf[..len]).unwrap().split_once('\n').unwrap();
    let subsegment: Value = serde_json::from_str(document).unwrap();

    let spans = otlp.wait_for_spans(2, WAIT).await;
    let send = by_name(&spans, "send");
    assert_eq!(send.len(), 1, "{spans:#?}");
    assert_eq!(subsegment["id"].as_str(), Some(send[0].span_id.as_str()));
    let received = moto.receive_all(&queue).await;
    let header = received[0].aws_trace_header.as_deref().unwrap();
    assert_eq!(header_field(header, "Parent"), Some(send[0].span_id.as_str()));
}
