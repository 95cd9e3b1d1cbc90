//! End to end: the real `s3-trace-relay` binary, driven through the Lambda Runtime API protocol by a
//! stand-in, publishing to a real SQS/SNS-speaking server (moto, patched for the two gaps noted in
//! AWS-NOTES). Each test reads what arrived in the queues, as a downstream consumer would.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::fixture;
use support::moto::moto;
use support::payloads::s3_record;
use support::relay_process::{
    INVOCATION_ROOT, INVOCATION_TRACE, Relay, WAIT, failed_items, header_field, keys_of, sqs_event,
};
use support::runtime_api::{Invocation, Outcome};

#[tokio::test]
async fn direct_event_reaches_a_queue_and_a_topic_subscriber_with_the_trace_header() {
    let moto = moto().await;
    let queue = moto.create_queue("direct-out").await;
    let topic = moto.create_topic("direct-topic").await;
    let via_sns = moto.create_queue("direct-via-sns").await;
    moto.subscribe_queue(&topic, &via_sns, true).await;
    let relay = Relay::start(&moto, &format!("{queue},{topic}")).await;

    let response = relay.invoke_fixture("s3-put.json").await.expect_response();
    assert_eq!(response["published"], 2, "{response}");

    let input = support::fixture_json("s3-put.json");
    for url in [&queue, &via_sns] {
        let received = moto.receive_all(url).await;
        assert_eq!(received.len(), 1, "{url}");
        let m = &received[0];
        assert_eq!(m.json(), json!({"Records": [input["Records"][0].clone()]}), "{url}");
        let header = m
            .aws_trace_header
            .as_deref()
            .unwrap_or_else(|| panic!("no AWSTraceHeader on {url}"));
        assert_eq!(header_field(header, "Root"), Some(INVOCATION_ROOT));
        assert_eq!(header_field(header, "Sampled"), Some("1"));
        assert_eq!(header_field(header, "Lineage"), Some("a87bd80c:1|68fd508a:5"));
        let parent = header_field(header, "Parent").unwrap();
        assert!(
            parent.len() == 16 && parent.bytes().all(|b| b.is_ascii_hexdigit()),
            "{parent}"
        );
        let traceparent = &m.message_attributes["traceparent"];
        assert_eq!(traceparent, &format!("00-6745a1b20123456789abcdef01234567-{parent}-01"));
    }
}

#[tokio::test]
async fn targets_in_another_region_are_called_in_their_own_region() {
    // The relay runs in HOME_REGION; the queue and topic live in eu-west-1, where a request signed
    // for HOME_REGION finds neither (moto answers NonExistentQueue / NotFound, as AWS does).
    let moto = moto().await;
    let far = moto.in_region("eu-west-1");
    let queue = far.create_queue("far-out").await;
    let topic = far.create_topic("far-topic").await;
    let via_sns = far.create_queue("far-via-sns").await;
    far.subscribe_queue(&topic, &via_sns, true).await;
    let relay = Relay::start(&moto, &format!("arn:aws:sqs:eu-west-1:123456789012:far-out,{topic}")).await;

    let response = relay.invoke_fixture("s3-put.json").await.expect_response();
    assert_eq!(response["published"], 2, "{response}");
    for url in [&queue, &via_sns] {
        let received = far.receive_all(url).await;
        assert_eq!(received.len(), 1, "{url}");
        let header = received[0].aws_trace_header.as_deref().unwrap_or_default();
        assert_eq!(header_field(header, "Root"), Some(INVOCATION_ROOT), "{url}");
    }
}

#[tokio::test]
async fn sqs_batch_records_keep_their_own_trace_and_sns_calls_are_split_per_context() {
    let moto = moto().await;
    let queue = moto.create_queue("mixed-out").await;
    let topic = moto.create_topic("mixed-topic").await;
    let via_sns = moto.create_queue("mixed-via-sns").await;
    moto.subscribe_queue(&topic, &via_sns, true).await;
    let relay = Relay::start(&moto, &format!("{queue},{topic}")).await;

    let response = relay
        .invoke_fixture("sqs-batch-mixed-trace.json")
        .await
        .expect_response();
    assert!(failed_items(&response).is_empty(), "{response}");

    let own_root = "1-5759e988-bd862e3fe1be46a994272793";
    let expected_root = |key: &str| {
        if key == "uploads/a.txt" {
            own_root
        } else {
            INVOCATION_ROOT
        }
    };
    for url in [&queue, &via_sns] {
        let received = moto.receive_all(url).await;
        assert_eq!(
            keys_of(&received),
            vec!["uploads/a.txt", "uploads/b.txt", "uploads/c.txt"]
        );
        for m in &received {
            let key = m.json()["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap()
                .to_owned();
            let header = m.aws_trace_header.as_deref().unwrap();
            assert_eq!(
                header_field(header, "Root"),
                Some(expected_root(&key)),
                "{key} on {url}"
            );
            assert!(!header.contains(' '), "canonical, not copied: {header}");
        }
    }
    let sns_calls = moto.calls_of("PublishBatch").await;
    assert_eq!(sns_calls.len(), 2, "one PublishBatch per trace context: {sns_calls:?}");
    let roots: HashSet<&str> = sns_calls
        .iter()
        .map(|c| header_field(c.trace_header.as_deref().unwrap(), "Root").unwrap())
        .collect();
    assert_eq!(roots, HashSet::from([own_root, INVOCATION_ROOT]));
    let sqs_calls = moto.calls_of("SendMessageBatch").await;
    assert_eq!(sqs_calls.len(), 1);
    assert_eq!(sqs_calls[0].trace_header, None, "SQS entries carry their own header");
}

#[tokio::test]
async fn twenty_five_records_take_three_send_message_batch_calls() {
    let moto = moto().await;
    let queue = moto.create_queue("many-out").await;
    let relay = Relay::start(&moto, &queue).await;
    let records: Vec<Value> = (0..25)
        .map(|i| s3_record(&format!("k{i:02}"), &format!("{i:018}")))
        .collect();
    let response = relay
        .invoke(Invocation::json(&json!({ "Records": records })).with_trace(INVOCATION_TRACE))
        .await
        .expect_response();
    assert_eq!(response["publishCalls"], 3, "{response}");
    let mut sizes: Vec<Option<usize>> = moto
        .calls_of("SendMessageBatch")
        .await
        .iter()
        .map(|c| c.entries)
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        vec![Some(5), Some(10), Some(10)],
        "batches of a standard queue go out concurrently"
    );
    assert_eq!(moto.receive_all(&queue).await.len(), 25);
}

#[tokio::test]
async fn fifo_queue_gets_the_same_event_only_once() {
    let moto = moto().await;
    let queue = moto.create_queue("dedup-out.fifo").await;
    let relay = Relay::start(&moto, &queue).await;
    for _ in 0..2 {
        relay.invoke_fixture("s3-key-escapes.json").await.expect_response();
    }
    let received = moto.receive_all(&queue).await;
    assert_eq!(received.len(), 1, "the retried event is deduplicated");
    let group = received[0].group_id.as_deref().unwrap();
    assert!(group.starts_with("relay-demo-uploads/my_photos/caf"), "{group}");
    assert!(group.len() <= 128);
    assert_eq!(received[0].dedup_id.as_deref().map(str::len), Some(64));
}

#[tokio::test]
async fn filters_route_only_matching_records() {
    let moto = moto().await;
    let images = moto.create_queue("only-images").await;
    let deletes = moto.create_queue("only-deletes").await;
    let relay = Relay::start(
        &moto,
        &format!("{images}?prefix=images/&suffix=.jpg&events=ObjectCreated:*,{deletes}?events=ObjectRemoved:Delete"),
    )
    .await;
    relay.invoke_fixture("s3-put.json").await.expect_response();
    relay.invoke_fixture("s3-delete.json").await.expect_response();
    let response = relay.invoke_fixture("s3-key-escapes.json").await.expect_response();
    assert_eq!(response["filteredOut"], 1);
    assert_eq!(keys_of(&moto.receive_all(&images).await), vec!["images/cat.jpg"]);
    let deleted = moto.receive_all(&deletes).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].json()["Records"][0]["eventName"], "ObjectRemoved:Delete");
}

#[tokio::test]
async fn test_event_publishes_nothing_and_succeeds() {
    let moto = moto().await;
    let queue = moto.create_queue("test-event-out").await;
    let relay = Relay::start(&moto, &queue).await;
    let response = relay.invoke_fixture("s3-test-event.json").await.expect_response();
    assert_eq!(response["testEvents"], 1);
    assert!(moto.calls_of("SendMessageBatch").await.is_empty());
}

#[tokio::test]
async fn missing_target_fails_the_affected_records_and_the_relay_keeps_serving() {
    let moto = moto().await;
    let good = moto.create_queue("still-there").await;
    let missing = format!("{}/123456789012/never-created", moto.endpoint());
    let relay = Relay::start(&moto, &format!("{good},{missing}?prefix=b/")).await;

    let event = sqs_event(&[
        ("m-a", json!({"Records": [s3_record("a/1", "01")]})),
        ("m-b", json!({"Records": [s3_record("b/2", "02")]})),
    ]);
    let response = relay.invoke(Invocation::json(&event)).await.expect_response();
    assert_eq!(failed_items(&response), vec!["m-b"]);

    let error = relay
        .invoke(Invocation::json(&json!({"Records": [s3_record("b/3", "03")]})))
        .await;
    let Outcome::Error { body, .. } = error else {
        panic!("expected an invocation error, got {error:?}")
    };
    assert_eq!(body["errorType"], "S3TraceRelay.Undelivered");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("never-created"),
        "{body}"
    );

    relay.invoke_fixture("s3-put.json").await.expect_response();
    assert_eq!(
        moto.receive_all(&good).await.len(),
        4,
        "every record still reached the good queue"
    );
}

#[tokio::test]
async fn missing_topic_is_an_invocation_error_for_sns_sourced_events() {
    let moto = moto().await;
    let relay = Relay::start(&moto, "arn:aws:sns:us-east-1:123456789012:no-such-topic").await;
    let outcome = relay.invoke_fixture("sns-wrapped.json").await;
    let body = outcome.expect_error();
    assert!(
        body["errorMessage"].as_str().unwrap().contains("no-such-topic"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_and_unknown_payloads_are_clear_errors_and_the_next_invocation_is_served() {
    let moto = moto().await;
    let queue = moto.create_queue("after-bad-input").await;
    let relay = Relay::start(&moto, &queue).await;

    let malformed = relay
        .invoke(Invocation::new(&b"{\"Records\": [tru"[..]))
        .await
        .expect_error();
    assert!(!malformed["errorMessage"].as_str().unwrap().is_empty(), "{malformed}");
    let unknown = relay
        .invoke(Invocation::json(&json!({"hello": "world"})))
        .await
        .expect_error();
    assert_eq!(unknown["errorType"], "S3TraceRelay.BadPayload");
    assert!(
        unknown["errorMessage"]
            .as_str()
            .unwrap()
            .contains("not an S3 notification"),
        "{unknown}"
    );

    relay.invoke_fixture("s3-put.json").await.expect_response();
    assert_eq!(moto.receive_all(&queue).await.len(), 1);
    assert!(
        !relay.process.logs().contains("panicked"),
        "no panic:\n{}",
        relay.process.logs()
    );
}

#[tokio::test]
async fn concurrent_invocations_each_carry_their_own_trace() {
    let moto = moto().await;
    let queue = moto.create_queue("concurrent-out").await;
    let relay = Relay::start_with(&moto, &queue, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]).await;
    assert!(relay.api.wait_for_polls(4, WAIT).await, "four workers poll /next");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let trace = format!("Root=1-6745a1b2-{i:024x};Parent=a1b2c3d4e5f60718;Sampled=1");
            let event = json!({"Records": [s3_record(&format!("c/{i}"), &format!("{i:018}"))]});
            relay.api.invoke(Invocation::json(&event).with_trace(trace))
        })
        .collect();
    for h in handles {
        h.outcome(WAIT).await.expect_response();
    }
    let received = moto.receive_all(&queue).await;
    assert_eq!(received.len(), 8);
    for m in received {
        let key = m.json()["Records"][0]["s3"]["object"]["key"]
            .as_str()
            .unwrap()
            .to_owned();
        let i: usize = key.trim_start_matches("c/").parse().unwrap();
        let root = header_field(m.aws_trace_header.as_deref().unwrap(), "Root")
            .unwrap()
            .to_owned();
        assert_eq!(root, format!("1-6745a1b2-{i:024x}"), "{key}");
    }
}

#[tokio::test]
async fn sampled_invocation_sends_subsegments_to_the_daemon_and_parents_the_messages() {
    let moto = moto().await;
    let queue = moto.create_queue("xray-out").await;
    let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = daemon.local_addr().unwrap().to_string();
    let relay = Relay::start_with(&moto, &queue, &[("AWS_XRAY_DAEMON_ADDRESS", address.as_str())]).await;

    relay.invoke_fixture("s3-put.json").await.expect_response();
    let mut buf = vec![0u8; 65_536];
    let len = tokio::time::timeout(WAIT, daemon.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let datagram = std::str::from_utf8(&buf[..len]).unwrap();
    let (header, document) = datagram.split_once('\n').unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(header).unwrap(),
        json!({"format": "json", "version": 1})
    );
    let sub: Value = serde_json::from_str(document).unwrap();
    assert_eq!(sub["trace_id"], INVOCATION_ROOT);
    assert_eq!(sub["parent_id"], "a1b2c3d4e5f60718", "under the function segment");
    assert_eq!(sub["name"], "SQS");
    assert_eq!(sub["aws"]["queue_url"], queue.as_str());
    assert!(sub["aws"]["request_id"].is_string(), "{sub}");
    let received = moto.receive_all(&queue).await;
    let header = received[0].aws_trace_header.as_deref().unwrap();
    assert_eq!(header_field(header, "Parent"), sub["id"].as_str());

    // Unsampled: nothing reaches the daemon, the incoming Parent is kept.
    let unsampled = "Root=1-6745a1b2-0123456789abcdef01234567;Parent=a1b2c3d4e5f60718;Sampled=0";
    relay
        .invoke(Invocation::new(fixture("s3-put.json")).with_trace(unsampled))
        .await
        .expect_response();
    let nothing = tokio::time::timeout(Duration::from_millis(300), daemon.recv(&mut buf)).await;
    assert!(nothing.is_err(), "no datagram for an unsampled trace");
    let received = moto.receive_all(&queue).await;
    assert_eq!(received[0].aws_trace_header.as_deref(), Some(unsampled));
}

#[tokio::test]
async fn each_invocation_writes_emf_metrics_matching_its_counts() {
    let moto = moto().await;
    let queue = moto.create_queue("metrics-out").await;
    let relay = Relay::start_with(
        &moto,
        &format!("{queue}?prefix=uploads/a"),
        &[("RELAY_METRICS_NAMESPACE", "Test/Relay")],
    )
    .await;
    relay
        .invoke_fixture("sqs-batch-mixed-trace.json")
        .await
        .expect_response();
    assert!(relay.process.wait_for_log("CloudWatchMetrics", WAIT).await);
    let lines = relay.process.json_logs();
    let emf: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    let function_line = emf
        .iter()
        .find(|l| l["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == json!([["FunctionName"]]))
        .unwrap();
    let directive = &function_line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Test/Relay");
    for metric in directive["Metrics"].as_array().unwrap() {
        assert!(function_line[metric["Name"].as_str().unwrap()].is_u64(), "{metric}");
    }
    assert_eq!(function_line["RecordsReceived"], 3);
    assert_eq!(function_line["MessagesPublished"], 1);
    assert_eq!(function_line["RecordsFilteredOut"], 2);
    assert_eq!(function_line["TraceHeadersInvalid"], 1);
    assert_eq!(function_line["TraceFallbacks"], 2);
    assert_eq!(function_line["PublishCalls"], 1);
    let target_line = emf.iter().find(|l| l.get("Target").is_some()).unwrap();
    assert_eq!(target_line["Target"], queue.as_str());
    assert_eq!(target_line["MessagesPublished"], 1);
}

#[tokio::test]
async fn log_lines_of_an_invocation_carry_request_id_and_trace_root() {
    let moto = moto().await;
    let queue = moto.create_queue("logs-out").await;
    let relay = Relay::start(&moto, &queue).await;
    let invocation = Invocation::new(fixture("s3-put.json"))
        .with_trace(INVOCATION_TRACE)
        .with_request_id("req-logs-1");
    relay.invoke(invocation).await.expect_response();
    assert!(relay.process.wait_for_log("invocation done", WAIT).await);
    let summary = relay
        .process
        .json_logs()
        .into_iter()
        .find(|l| l["fields"]["message"] == "invocation done")
        .unwrap();
    let text = summary.to_string();
    assert!(text.contains("req-logs-1"), "{text}");
    assert!(text.contains(INVOCATION_ROOT), "{text}");
}

#[tokio::test]
async fn per_record_details_are_logged_at_debug_only() {
    let moto = moto().await;
    let queue = moto.create_queue("debug-logs-out").await;
    let quiet = Relay::start(&moto, &queue).await;
    quiet.invoke_fixture("s3-put.json").await.expect_response();
    assert!(quiet.process.wait_for_log("invocation done", WAIT).await);
    assert!(!quiet.process.logs().contains("record received"));

    let verbose = Relay::start_with(&moto, &queue, &[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]).await;
    verbose.invoke_fixture("s3-put.json").await.expect_response();
    assert!(verbose.process.wait_for_log("invocation done", WAIT).await);
    let record_line = verbose
        .process
        .json_logs()
        .into_iter()
        .find(|l| l["fields"]["message"] == "record received")
        .unwrap_or_else(|| panic!("no per-record line:\n{}", verbose.process.logs()));
    assert_eq!(record_line["level"], "DEBUG");
    assert_eq!(record_line["fields"]["key"], "images/cat.jpg");
}

#[tokio::test]
async fn fifo_source_holds_back_a_later_event_of_a_failed_object_in_another_group() {
    // m1 (group g1) and m2 (group g2) carry events of one object; m1 cannot reach one of its
    // targets, so m2 must not be sent ahead of m1's redelivery: both are reported, only m1's
    // event reached the FIFO queue.
    let moto = moto().await;
    let queue = moto.create_queue("order-out.fifo").await;
    let missing = format!("{}/123456789012/never-created", moto.endpoint());
    let relay = Relay::start(&moto, &format!("{queue},{missing}?events=ObjectCreated:*")).await;
    let mut tagging = s3_record("doc.txt", "02");
    tagging["eventName"] = "ObjectTagging:Put".into();
    let records: Vec<Value> = [("m1", "g1", s3_record("doc.txt", "01")), ("m2", "g2", tagging)]
        .into_iter()
        .map(|(id, group, record)| {
            json!({"messageId": id, "body": json!({"Records": [record]}).to_string(),
                "attributes": {"MessageGroupId": group}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:src.fifo"})
        })
        .collect();
    let response = relay
        .invoke_json(&json!({ "Records": records }))
        .await
        .expect_response();
    assert_eq!(failed_items(&response), vec!["m1", "m2"]);
    let received = moto.receive_all(&queue).await;
    let names: Vec<Value> = received
        .iter()
        .map(|m| m.json()["Records"][0]["eventName"].clone())
        .collect();
    assert_eq!(names, vec![json!("ObjectCreated:Put")], "m2's event was not sent");
}

#[tokio::test]
async fn sns_subscribers_filter_on_the_event_fields_the_relay_adds_as_attributes() {
    // One subscriber takes only created objects, another only objects of 1 KiB or more: their
    // filter policies read the message attributes, not the body.
    let moto = moto().await;
    let topic = moto.create_topic("attributes-topic").await;
    let created = moto.create_queue("attributes-created").await;
    let large = moto.create_queue("attributes-large").await;
    let created_only = r#"{"eventName": [{"prefix": "ObjectCreated:"}]}"#;
    let large_only = r#"{"size": [{"numeric": [">=", 1024]}]}"#;
    moto.subscribe_queue_filtered(&topic, &created, true, Some(created_only))
        .await;
    moto.subscribe_queue_filtered(&topic, &large, true, Some(large_only))
        .await;
    let relay = Relay::start(&moto, &format!("{topic}?attributes=bucket,key,eventName,size")).await;

    relay.invoke_fixture("s3-put.json").await.expect_response(); // images/cat.jpg, 1024 bytes
    relay.invoke_fixture("s3-delete.json").await.expect_response(); // no size
    let mut small = s3_record("small.txt", "03");
    small["s3"]["object"]["size"] = 10.into();
    relay.invoke_json(&json!({"Records": [small]})).await.expect_response();

    let created_keys = keys_of(&moto.receive_all(&created).await);
    assert_eq!(created_keys, vec!["images/cat.jpg", "small.txt"]);
    let large_received = moto.receive_all(&large).await;
    assert_eq!(keys_of(&large_received), vec!["images/cat.jpg"]);
    let attributes = &large_received[0].message_attributes;
    assert_eq!(attributes["bucket"], "relay-demo-uploads");
    assert_eq!(attributes["key"], "images/cat.jpg");
    assert_eq!(attributes["eventName"], "ObjectCreated:Put");
    assert_eq!(attributes["size"], "1024");
    assert!(attributes.contains_key("traceparent"));
}
