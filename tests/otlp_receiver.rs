//! Checks the OTLP/HTTP receiver in `tests/support/otlp.rs` itself: real `opentelemetry-proto`
//! messages posted over 127.0.0.1 (with hyper, or a hand-written HTTP/1.1 client where the wire
//! matters), decoded back field by field. Nothing is installed and nothing leaves the machine.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use prost::Message;
use support::http::{HttpResponse, request};
use support::otlp::{AttrValue, OtlpReceiver, ReceivedLink, ReceivedSpan, SpanKind, SpanStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECS_5: Duration = Duration::from_secs(5);

const TRACE_A: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const TRACE_A_HEX: &str = "5b8efff798038103d269b633813fc60c";
const TRACE_B: [u8; 16] = [0xAB; 16];
const TRACE_B_HEX: &str = "abababababababababababababababab";
const ROOT: [u8; 8] = [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74];
const ROOT_HEX: &str = "eee19b7ec3c1b174";
const CHILD: [u8; 8] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xA7];
const CHILD_HEX: &str = "00010203040506a7";
const OTHER: [u8; 8] = [0xFF; 8];
const OTHER_HEX: &str = "ffffffffffffffff";

// ---------------------------------------------------------------------------------------------
// Building requests

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn resource(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Default::default()
    })
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        ..Default::default()
    })
}

/// Two resource spans; the first with two scopes. Spans, in order:
/// 1. `relay` (trace A, root, server, status error "boom", every attribute type, one link)
/// 2. `publish` (trace A, child of `relay`, producer, status ok, two links, 3 dropped)
/// 3. `scope-two-span` (trace A, internal, unset status, no attributes)
/// 4. `other-resource` (trace B, consumer, no status at all)
fn sample_request() -> ExportTraceServiceRequest {
    let relay = Span {
        trace_id: TRACE_A.to_vec(),
        span_id: ROOT.to_vec(),
        parent_span_id: Vec::new(),
        flags: 0x101,
        name: "relay".to_owned(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_767_225_600_000_000_000,
        end_time_unix_nano: 1_767_225_600_123_456_789,
        attributes: vec![
            s("faas.trigger", "pubsub"),
            kv("messaging.batch.message_count", any_value::Value::IntValue(-42)),
            kv("faas.coldstart", any_value::Value::BoolValue(true)),
            kv("ratio", any_value::Value::DoubleValue(0.25)),
            kv(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::StringValue("a".to_owned())),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(1)),
                        },
                    ],
                }),
            ),
            kv(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("k", any_value::Value::BoolValue(false))],
                }),
            ),
            kv("raw", any_value::Value::BytesValue(vec![0xDE, 0xAD])),
            KeyValue {
                key: "nothing".to_owned(),
                value: None,
                ..Default::default()
            },
        ],
        links: vec![span::Link {
            trace_id: TRACE_B.to_vec(),
            span_id: OTHER.to_vec(),
            attributes: vec![s("link.kind", "s3")],
            ..Default::default()
        }],
        status: Some(Status {
            message: "boom".to_owned(),
            code: status::StatusCode::Error as i32,
        }),
        ..Default::default()
    };
    let publish = Span {
        trace_id: TRACE_A.to_vec(),
        span_id: CHILD.to_vec(),
        parent_span_id: ROOT.to_vec(),
        flags: 1,
        name: "publish".to_owned(),
        kind: span::SpanKind::Producer as i32,
        start_time_unix_nano: 1_767_225_600_001_000_000,
        end_time_unix_nano: 1_767_225_600_002_000_000,
        attributes: vec![s("messaging.system", "aws_sqs")],
        links: vec![
            span::Link {
                trace_id: TRACE_A.to_vec(),
                span_id: ROOT.to_vec(),
                ..Default::default()
            },
            span::Link {
                trace_id: TRACE_B.to_vec(),
                span_id: CHILD.to_vec(),
                attributes: vec![kv("n", any_value::Value::IntValue(7))],
                ..Default::default()
            },
        ],
        dropped_links_count: 3,
        status: Some(Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        }),
        ..Default::default()
    };
    let scope_two = Span {
        trace_id: TRACE_A.to_vec(),
        span_id: OTHER.to_vec(),
        parent_span_id: ROOT.to_vec(),
        name: "scope-two-span".to_owned(),
        kind: span::SpanKind::Internal as i32,
        status: Some(Status::default()),
        ..Default::default()
    };
    let other_resource = Span {
        trace_id: TRACE_B.to_vec(),
        span_id: ROOT.to_vec(),
        name: "other-resource".to_owned(),
        kind: span::SpanKind::Consumer as i32,
        status: None,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(vec![
                    s("service.name", "relay"),
                    kv("process.pid", any_value::Value::IntValue(7)),
                ]),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope("s3-trace-relay"),
                        spans: vec![relay, publish],
                        ..Default::default()
                    },
                    ScopeSpans {
                        scope: scope("scope-two"),
                        spans: vec![scope_two],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            ResourceSpans {
                resource: resource(vec![s("service.name", "elsewhere")]),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![other_resource],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    }
}

/// A request with one span called `name` (and nothing else of note).
fn one_span(name: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: TRACE_A.to_vec(),
                    span_id: ROOT.to_vec(),
                    name: name.to_owned(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// Posting

async fn post(rx: &OtlpReceiver, headers: &[(&str, &str)], body: Vec<u8>) -> HttpResponse {
    request(&rx.endpoint(), Method::POST, "/v1/traces", headers, body)
        .await
        .expect("POST /v1/traces")
}

async fn post_proto(rx: &OtlpReceiver, req: &ExportTraceServiceRequest) -> HttpResponse {
    post(rx, &[("content-type", "application/x-protobuf")], req.encode_to_vec()).await
}

/// The spans of [`sample_request`] as received.
async fn sample_spans() -> Vec<ReceivedSpan> {
    let rx = OtlpReceiver::start().await;
    let resp = post_proto(&rx, &sample_request()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let spans = rx.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    spans
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

fn names(spans: &[ReceivedSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The endpoint

#[tokio::test]
async fn endpoint_is_a_plain_http_url_on_loopback_without_a_path() {
    let rx = OtlpReceiver::start().await;
    let endpoint = rx.endpoint();
    let port = endpoint
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("endpoint {endpoint:?}"));
    assert!(port.parse::<u16>().is_ok_and(|p| p != 0), "endpoint {endpoint:?}");
}

#[tokio::test]
async fn protobuf_export_is_answered_200_with_an_empty_protobuf_export_response() {
    let rx = OtlpReceiver::start().await;
    let resp = post_proto(&rx, &sample_request()).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(
        resp.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/x-protobuf"[..])
    );
    let decoded = ExportTraceServiceResponse::decode(resp.body.clone()).expect("an ExportTraceServiceResponse");
    assert_eq!(decoded, ExportTraceServiceResponse::default());
    assert_eq!(decoded.partial_success, None);
}

// ---------------------------------------------------------------------------------------------
// Decoding spans

#[tokio::test]
async fn spans_are_flattened_over_resource_and_scope_spans_in_order() {
    let spans = sample_spans().await;
    assert_eq!(names(&spans), ["relay", "publish", "scope-two-span", "other-resource"]);
}

#[tokio::test]
async fn ids_are_lowercase_hex_of_the_bytes_sent() {
    let spans = sample_spans().await;
    let relay = by_name(&spans, "relay");
    assert_eq!(relay.trace_id, TRACE_A_HEX);
    assert_eq!(relay.span_id, ROOT_HEX);
    let publish = by_name(&spans, "publish");
    assert_eq!(publish.span_id, CHILD_HEX);
    assert_eq!(by_name(&spans, "other-resource").trace_id, TRACE_B_HEX);
}

#[tokio::test]
async fn parent_span_id_is_hex_for_a_child_and_none_for_a_root() {
    let spans = sample_spans().await;
    assert_eq!(by_name(&spans, "relay").parent_span_id, None);
    assert_eq!(by_name(&spans, "publish").parent_span_id.as_deref(), Some(ROOT_HEX));
}

#[tokio::test]
async fn span_kind_is_decoded() {
    let spans = sample_spans().await;
    let kinds: Vec<SpanKind> = spans.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SpanKind::Server,
            SpanKind::Producer,
            SpanKind::Internal,
            SpanKind::Consumer
        ]
    );
}

#[tokio::test]
async fn status_is_decoded_with_the_error_message_and_unset_when_absent() {
    let spans = sample_spans().await;
    assert_eq!(by_name(&spans, "relay").status, SpanStatus::Error("boom".to_owned()));
    assert_eq!(by_name(&spans, "publish").status, SpanStatus::Ok);
    assert_eq!(by_name(&spans, "scope-two-span").status, SpanStatus::Unset);
    assert_eq!(by_name(&spans, "other-resource").status, SpanStatus::Unset);
}

#[tokio::test]
async fn times_and_flags_are_decoded() {
    let spans = sample_spans().await;
    let relay = by_name(&spans, "relay");
    assert_eq!(relay.start_unix_nano, 1_767_225_600_000_000_000);
    assert_eq!(relay.end_unix_nano, 1_767_225_600_123_456_789);
    assert_eq!(relay.flags, 0x101);
    assert_eq!(by_name(&spans, "publish").flags, 1);
}

#[tokio::test]
async fn attributes_of_every_type_are_decoded() {
    let spans = sample_spans().await;
    let relay = by_name(&spans, "relay");
    let expected: BTreeMap<String, AttrValue> = [
        ("faas.trigger", AttrValue::Str("pubsub".to_owned())),
        ("messaging.batch.message_count", AttrValue::Int(-42)),
        ("faas.coldstart", AttrValue::Bool(true)),
        ("ratio", AttrValue::Double(0.25)),
        ("list", AttrValue::Other(r#"["a", 1]"#.to_owned())),
        ("map", AttrValue::Other(r#"{"k": false}"#.to_owned())),
        ("raw", AttrValue::Other("bytes:dead".to_owned())),
        ("nothing", AttrValue::Other("empty".to_owned())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(relay.attributes, expected);
    assert_eq!(by_name(&spans, "scope-two-span").attributes, BTreeMap::new());
}

#[tokio::test]
async fn attr_and_its_accessors_read_one_attribute() {
    let spans = sample_spans().await;
    let relay = by_name(&spans, "relay");
    assert_eq!(relay.attr("faas.trigger").and_then(AttrValue::as_str), Some("pubsub"));
    assert_eq!(
        relay.attr("messaging.batch.message_count").and_then(AttrValue::as_i64),
        Some(-42)
    );
    assert_eq!(relay.attr("faas.coldstart").and_then(AttrValue::as_bool), Some(true));
    assert_eq!(relay.attr("faas.trigger").and_then(AttrValue::as_i64), None);
    assert_eq!(relay.attr("ratio").and_then(AttrValue::as_str), None);
    assert_eq!(relay.attr("absent"), None);
}

#[tokio::test]
async fn links_are_decoded_with_their_attributes_and_dropped_count() {
    let spans = sample_spans().await;
    let relay = by_name(&spans, "relay");
    assert_eq!(
        relay.links,
        [ReceivedLink {
            trace_id: TRACE_B_HEX.to_owned(),
            span_id: OTHER_HEX.to_owned(),
            attributes: [("link.kind".to_owned(), AttrValue::Str("s3".to_owned()))].into(),
        }]
    );
    assert_eq!(relay.dropped_links_count, 0);
    let publish = by_name(&spans, "publish");
    assert_eq!(
        publish.links,
        [
            ReceivedLink {
                trace_id: TRACE_A_HEX.to_owned(),
                span_id: ROOT_HEX.to_owned(),
                attributes: BTreeMap::new(),
            },
            ReceivedLink {
                trace_id: TRACE_B_HEX.to_owned(),
                span_id: CHILD_HEX.to_owned(),
                attributes: [("n".to_owned(), AttrValue::Int(7))].into(),
            },
        ]
    );
    assert_eq!(publish.dropped_links_count, 3);
}

#[tokio::test]
async fn each_span_carries_its_resource_attributes_and_scope_name() {
    let spans = sample_spans().await;
    let first_resource: BTreeMap<String, AttrValue> = [
        ("service.name".to_owned(), AttrValue::Str("relay".to_owned())),
        ("process.pid".to_owned(), AttrValue::Int(7)),
    ]
    .into();
    for name in ["relay", "publish", "scope-two-span"] {
        assert_eq!(by_name(&spans, name).resource, first_resource, "{name}");
    }
    let other = by_name(&spans, "other-resource");
    assert_eq!(
        other.resource.get("service.name").and_then(AttrValue::as_str),
        Some("elsewhere")
    );
    assert_eq!(other.resource.len(), 1);

    assert_eq!(by_name(&spans, "relay").scope_name, "s3-trace-relay");
    assert_eq!(by_name(&spans, "publish").scope_name, "s3-trace-relay");
    assert_eq!(by_name(&spans, "scope-two-span").scope_name, "scope-two");
    assert_eq!(other.scope_name, "", "no scope at all");
}

#[tokio::test]
async fn spans_of_successive_exports_accumulate_in_arrival_order() {
    let rx = OtlpReceiver::start().await;
    for name in ["first", "second", "third"] {
        assert_eq!(post_proto(&rx, &one_span(name)).await.status, StatusCode::OK);
    }
    assert_eq!(names(&rx.spans()), ["first", "second", "third"]);
}

// ---------------------------------------------------------------------------------------------
// Requests

#[tokio::test]
async fn requests_record_path_content_type_and_headers() {
    let rx = OtlpReceiver::start().await;
    assert!(rx.requests().is_empty());
    post(
        &rx,
        &[
            ("content-type", "application/x-protobuf"),
            ("Authorization", "Basic dXNlcjpwYXNz"),
            ("x-tenant", "acme"),
        ],
        one_span("s").encode_to_vec(),
    )
    .await;
    let requests = rx.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.path, "/v1/traces");
    assert_eq!(req.content_type.as_deref(), Some("application/x-protobuf"));
    assert!(
        req.headers
            .contains(&("authorization".to_owned(), "Basic dXNlcjpwYXNz".to_owned())),
        "header names are lowercased, values verbatim: {:?}",
        req.headers
    );
    assert_eq!(req.header("X-Tenant"), Some("acme"));
}

#[tokio::test]
async fn json_export_as_the_otlp_spec_writes_it_is_accepted() {
    let rx = OtlpReceiver::start().await;
    // https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding: hex ids, lowerCamelCase
    // field names, enums as integers, 64-bit integers as strings.
    let body = serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "relay"}}]},
            "scopeSpans": [{
                "scope": {"name": "json-scope"},
                "spans": [{
                    "traceId": TRACE_A_HEX,
                    "spanId": CHILD_HEX,
                    "parentSpanId": ROOT_HEX,
                    "name": "from-json",
                    "kind": 3,
                    "startTimeUnixNano": "1767225600000000000",
                    "endTimeUnixNano": "1767225600000000001",
                    "attributes": [
                        {"key": "n", "value": {"intValue": "12"}},
                        {"key": "b", "value": {"boolValue": true}}
                    ],
                    "links": [{"traceId": TRACE_B_HEX, "spanId": OTHER_HEX}],
                    "status": {"code": 2, "message": "bad"}
                }]
            }]
        }]
    });
    let resp = post(
        &rx,
        &[("content-type", "application/json")],
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(
        resp.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(resp.text(), "{}");
    let spans = rx.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "from-json");
    assert_eq!(span.trace_id, TRACE_A_HEX);
    assert_eq!(span.span_id, CHILD_HEX);
    assert_eq!(span.parent_span_id.as_deref(), Some(ROOT_HEX));
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.start_unix_nano, 1_767_225_600_000_000_000);
    assert_eq!(span.end_unix_nano, 1_767_225_600_000_000_001);
    assert_eq!(span.attr("n"), Some(&AttrValue::Int(12)));
    assert_eq!(span.attr("b"), Some(&AttrValue::Bool(true)));
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.links[0].trace_id, TRACE_B_HEX);
    assert_eq!(span.status, SpanStatus::Error("bad".to_owned()));
    assert_eq!(span.scope_name, "json-scope");
    assert_eq!(
        span.resource.get("service.name").and_then(AttrValue::as_str),
        Some("relay")
    );
}

#[tokio::test]
async fn content_type_parameters_and_case_are_ignored() {
    let rx = OtlpReceiver::start().await;
    let resp = post(
        &rx,
        &[("content-type", "Application/X-Protobuf; charset=binary")],
        one_span("s").encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(rx.spans().len(), 1);
}

#[tokio::test]
async fn another_content_type_is_answered_415_and_recorded_without_spans() {
    let rx = OtlpReceiver::start().await;
    let resp = post(&rx, &[("content-type", "text/plain")], one_span("s").encode_to_vec()).await;
    assert_eq!(resp.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = post(&rx, &[], one_span("s").encode_to_vec()).await;
    assert_eq!(resp.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "no content type");
    assert!(rx.spans().is_empty());
    let requests = rx.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].content_type.as_deref(), Some("text/plain"));
    assert_eq!(requests[1].content_type, None);
}

#[tokio::test]
async fn a_compressed_body_is_answered_415() {
    let rx = OtlpReceiver::start().await;
    let resp = post(
        &rx,
        &[("content-type", "application/x-protobuf"), ("content-encoding", "gzip")],
        one_span("s").encode_to_vec(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(rx.spans().is_empty());
}

#[tokio::test]
async fn a_body_that_does_not_decode_is_answered_400() {
    let rx = OtlpReceiver::start().await;
    let resp = post(
        &rx,
        &[("content-type", "application/x-protobuf")],
        vec![0xFF, 0xFF, 0xFF],
    )
    .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{}", resp.text());
    let resp = post(&rx, &[("content-type", "application/json")], b"{not json".to_vec()).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{}", resp.text());
    assert!(rx.spans().is_empty());
    assert_eq!(rx.requests().len(), 2);
}

#[tokio::test]
async fn a_span_kind_outside_the_proto_enum_is_answered_400() {
    let rx = OtlpReceiver::start().await;
    let mut req = one_span("odd");
    req.resource_spans[0].scope_spans[0].spans[0].kind = 9;
    let resp = post_proto(&rx, &req).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert!(resp.text().contains("unknown kind 9"), "{}", resp.text());
    assert!(rx.spans().is_empty());
}

#[tokio::test]
async fn other_paths_are_answered_404_and_recorded() {
    let rx = OtlpReceiver::start().await;
    let resp = request(
        &rx.endpoint(),
        Method::POST,
        "/v1/metrics",
        &[("content-type", "application/x-protobuf")],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    let resp = request(&rx.endpoint(), Method::GET, "/v1/traces", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(resp.status, StatusCode::METHOD_NOT_ALLOWED);
    let paths: Vec<String> = rx.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/metrics", "/v1/traces"]);
}

// ---------------------------------------------------------------------------------------------
// Connections

#[tokio::test]
async fn a_kept_alive_connection_serves_several_exports() {
    let rx = OtlpReceiver::start().await;
    let authority = rx.endpoint().trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&authority).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    for name in ["one", "two", "three"] {
        let req = Request::post("/v1/traces")
            .header(header::HOST, &authority)
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(one_span(name).encode_to_vec())))
            .unwrap();
        sender.ready().await.expect("the connection stays usable");
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.into_body().collect().await.unwrap();
    }
    assert_eq!(names(&rx.spans()), ["one", "two", "three"]);
    assert!(!conn.is_finished(), "the server closed a kept-alive connection");
    conn.abort();
}

#[tokio::test]
async fn a_stalled_connection_does_not_hold_up_another() {
    let rx = OtlpReceiver::start().await;
    let authority = rx.endpoint().trim_start_matches("http://").to_owned();
    // Half a request head, never finished.
    let mut stalled = TcpStream::connect(&authority).await.unwrap();
    stalled
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let resp = tokio::time::timeout(SECS_5, post_proto(&rx, &one_span("other")))
        .await
        .expect("answered while another connection is stalled");
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(names(&rx.spans()), ["other"]);
}

#[tokio::test]
async fn dropping_the_receiver_stops_the_server() {
    let rx = OtlpReceiver::start().await;
    let authority = rx.endpoint().trim_start_matches("http://").to_owned();
    drop(rx);
    let deadline = tokio::time::Instant::now() + SECS_5;
    loop {
        if TcpStream::connect(&authority).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{authority} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// wait_for_spans

#[tokio::test]
async fn wait_for_spans_returns_once_enough_spans_arrived() {
    let rx = OtlpReceiver::start().await;
    let endpoint = rx.endpoint();
    let poster = tokio::spawn(async move {
        for name in ["a", "b"] {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let body = one_span(name).encode_to_vec();
            let headers = [("content-type", "application/x-protobuf")];
            request(&endpoint, Method::POST, "/v1/traces", &headers, body)
                .await
                .unwrap();
        }
    });
    let started = tokio::time::Instant::now();
    let spans = rx.wait_for_spans(2, SECS_5).await;
    assert_eq!(names(&spans), ["a", "b"]);
    assert!(started.elapsed() < SECS_5);
    poster.await.unwrap();
}

#[tokio::test]
async fn wait_for_spans_returns_at_once_when_enough_already_arrived() {
    let rx = OtlpReceiver::start().await;
    post_proto(&rx, &sample_request()).await;
    let spans = tokio::time::timeout(Duration::from_millis(100), rx.wait_for_spans(3, SECS_5))
        .await
        .expect("no waiting when spans are there");
    assert_eq!(spans.len(), 4, "returns every span, not just n");
}

#[tokio::test]
#[should_panic(expected = "expected at least 2 span(s) within 200ms; 1 span(s) arrived")]
async fn wait_for_spans_panics_on_timeout_showing_what_arrived() {
    let rx = OtlpReceiver::start().await;
    post_proto(&rx, &one_span("lonely")).await;
    rx.wait_for_spans(2, Duration::from_millis(200)).await;
}

// ---------------------------------------------------------------------------------------------
// black_hole

/// Sends one export over a raw connection and returns the connection, unanswered or not.
async fn raw_export(endpoint: &str) -> TcpStream {
    let authority = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).await.expect("the connection is accepted");
    let body = one_span("into-the-void").encode_to_vec();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    stream
}

#[tokio::test]
async fn black_hole_accepts_and_reads_a_request_but_never_answers() {
    let rx = OtlpReceiver::black_hole().await;
    let mut stream = raw_export(&rx.endpoint()).await;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
        Err(_elapsed) => {}
        Ok(Ok(0)) => panic!("the black hole closed the connection"),
        Ok(Ok(n)) => panic!("the black hole answered {:?}", String::from_utf8_lossy(&buf[..n])),
        Ok(Err(e)) => panic!("the black hole broke the connection: {e}"),
    }
    let requests = rx.wait_for_requests(1, SECS_5).await;
    assert_eq!(requests[0].path, "/v1/traces");
    assert_eq!(requests[0].content_type.as_deref(), Some("application/x-protobuf"));
}

#[tokio::test]
async fn black_hole_still_records_the_spans_it_swallowed() {
    let rx = OtlpReceiver::black_hole().await;
    let _stream = raw_export(&rx.endpoint()).await;
    let spans = rx.wait_for_spans(1, SECS_5).await;
    assert_eq!(names(&spans), ["into-the-void"]);
}

#[tokio::test]
async fn dropping_a_black_hole_closes_its_hung_connections() {
    let rx = OtlpReceiver::black_hole().await;
    let mut stream = raw_export(&rx.endpoint()).await;
    rx.wait_for_requests(1, SECS_5).await;
    drop(rx);
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(SECS_5, stream.read(&mut buf))
        .await
        .expect("the connection ends when the receiver is dropped");
    assert!(matches!(read, Ok(0) | Err(_)), "expected end of stream, read {read:?}");
}

// ---------------------------------------------------------------------------------------------
// The real exporter (opentelemetry-otlp over hyper, as the relay uses it)

/// One SDK span: trace A, child of ROOT, client kind, an attribute, a link, status error.
fn sdk_span() -> opentelemetry_sdk::trace::SpanData {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let context = |trace: [u8; 16], span: [u8; 8]| {
        SpanContext::new(
            TraceId::from_bytes(trace),
            SpanId::from_bytes(span),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        )
    };
    let start = std::time::UNIX_EPOCH + Duration::from_nanos(1_767_225_600_000_000_000);
    let mut links = opentelemetry_sdk::trace::SpanLinks::default();
    links
        .links
        .push(opentelemetry::trace::Link::with_context(context(TRACE_B, OTHER)));
    links.dropped_count = 2;
    opentelemetry_sdk::trace::SpanData {
        span_context: context(TRACE_A, CHILD),
        parent_span_id: SpanId::from_bytes(ROOT),
        parent_span_is_remote: true,
        span_kind: opentelemetry::trace::SpanKind::Client,
        name: "sdk-span".into(),
        start_time: start,
        end_time: start + Duration::from_millis(5),
        attributes: vec![opentelemetry::KeyValue::new("n", 3_i64)],
        dropped_attributes_count: 0,
        events: Default::default(),
        links,
        status: opentelemetry::trace::Status::error("failed"),
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("sdk-scope").build(),
    }
}

/// Exports [`sdk_span`] to `rx` with the real exporter speaking `protocol`.
async fn export_with_sdk(rx: &OtlpReceiver, protocol: opentelemetry_otlp::Protocol) {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::trace::SpanExporter as _;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", rx.endpoint()))
        .with_protocol(protocol)
        .with_timeout(SECS_5)
        .with_headers([("x-tenant".to_owned(), "acme".to_owned())].into())
        .build()
        .expect("building the OTLP/HTTP exporter");
    exporter.set_resource(
        &opentelemetry_sdk::Resource::builder_empty()
            .with_attribute(opentelemetry::KeyValue::new("service.name", "sdk-test"))
            .build(),
    );
    exporter
        .export(vec![sdk_span()])
        .await
        .expect("the receiver accepts the export");
}

fn assert_sdk_span(rx: &OtlpReceiver) {
    let spans = rx.spans();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span.name, "sdk-span");
    assert_eq!(span.trace_id, TRACE_A_HEX);
    assert_eq!(span.span_id, CHILD_HEX);
    assert_eq!(span.parent_span_id.as_deref(), Some(ROOT_HEX));
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.attr("n"), Some(&AttrValue::Int(3)));
    assert_eq!(span.links.len(), 1);
    assert_eq!(span.links[0].trace_id, TRACE_B_HEX);
    assert_eq!(span.links[0].span_id, OTHER_HEX);
    assert_eq!(span.dropped_links_count, 2);
    assert_eq!(span.status, SpanStatus::Error("failed".to_owned()));
    assert_eq!(span.start_unix_nano, 1_767_225_600_000_000_000);
    assert_eq!(span.end_unix_nano, 1_767_225_600_005_000_000);
    assert_eq!(span.scope_name, "sdk-scope");
    assert_eq!(
        span.resource.get("service.name").and_then(AttrValue::as_str),
        Some("sdk-test")
    );
    assert_eq!(rx.requests()[0].header("x-tenant"), Some("acme"));
}

#[tokio::test]
async fn the_real_exporter_over_protobuf_is_understood() {
    let rx = OtlpReceiver::start().await;
    export_with_sdk(&rx, opentelemetry_otlp::Protocol::HttpBinary).await;
    assert_eq!(rx.requests()[0].content_type.as_deref(), Some("application/x-protobuf"));
    assert_sdk_span(&rx);
}

#[tokio::test]
async fn the_real_exporter_over_json_is_understood() {
    let rx = OtlpReceiver::start().await;
    export_with_sdk(&rx, opentelemetry_otlp::Protocol::HttpJson).await;
    assert_eq!(rx.requests()[0].content_type.as_deref(), Some("application/json"));
    assert_sdk_span(&rx);
}
