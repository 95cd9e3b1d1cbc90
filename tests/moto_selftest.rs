//! Checks the moto SQS/SNS server the end-to-end tests run against (`tests/support/moto.rs`,
//! `scripts/moto_server.py`): a round trip through SQS, the call log, reset, batch calls recording
//! their trace header and entries, and SNS delivering to a subscribed queue.

mod support;

use serde_json::json;
use support::moto::moto;

#[tokio::test]
async fn moto_sqs_round_trip_call_log_and_reset() {
    let moto = moto().await;
    assert!(moto.endpoint().starts_with("http://127.0.0.1:"), "{}", moto.endpoint());
    assert!(moto.calls().await.is_empty(), "fresh moto has an empty call log");

    let url = moto.create_queue("selftest").await;
    assert!(url.ends_with("/123456789012/selftest"), "{url}");
    let message_id = moto.send_message(&url, r#"{"hello":"moto"}"#).await;

    let received = moto.receive_all(&url).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].message_id, message_id);
    assert_eq!(received[0].json(), json!({"hello": "moto"}));
    assert_eq!(received[0].aws_trace_header, None);
    assert!(
        moto.receive_all(&url).await.is_empty(),
        "receive_all deletes what it returns"
    );

    let calls = moto.calls().await;
    let send = calls
        .iter()
        .find(|c| c.operation == "SendMessage")
        .unwrap_or_else(|| panic!("SendMessage not in {calls:?}"));
    assert_eq!(send.service, "sqs");
    assert_eq!(send.target.as_deref(), Some(url.as_str()));
    assert_eq!(moto.calls_of("CreateQueue").await.len(), 1);

    moto.reset().await;
    assert!(moto.calls().await.is_empty(), "reset clears the call log");
    let queues = moto.sqs().list_queues().send().await.unwrap();
    assert!(queues.queue_urls().is_empty(), "reset clears queues: {queues:?}");
}

#[tokio::test]
async fn moto_batch_calls_record_trace_header_and_entries() {
    let moto = moto().await;
    let url = moto.create_queue("batch.fifo").await;
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let entries = (0..3)
        .map(|i| {
            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                .id(format!("e{i}"))
                .message_body(format!("m{i}"))
                .message_group_id("grp")
                .message_deduplication_id(format!("d{i}"))
                .message_system_attributes(
                    aws_sdk_sqs::types::MessageSystemAttributeNameForSends::AwsTraceHeader,
                    aws_sdk_sqs::types::MessageSystemAttributeValue::builder()
                        .data_type("String")
                        .string_value(entry_header(i))
                        .build()
                        .unwrap(),
                )
                .message_attributes(
                    "traceparent",
                    aws_sdk_sqs::types::MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        })
        .collect::<Vec<_>>();
    let out = moto
        .sqs()
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(entries))
        .customize()
        .mutate_request(move |r| {
            r.headers_mut().insert("x-amzn-trace-id", header);
        })
        .send()
        .await
        .unwrap();
    assert!(out.failed().is_empty(), "{out:?}");

    let calls = moto.calls_of("SendMessageBatch").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].service, "sqs");
    assert_eq!(calls[0].entries, Some(3));
    assert_eq!(calls[0].trace_header.as_deref(), Some(header));
    assert_eq!(calls[0].target.as_deref(), Some(url.as_str()));

    let received = moto.receive_all(&url).await;
    let bodies: Vec<&str> = received.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["m0", "m1", "m2"], "FIFO order");
    for (i, r) in received.iter().enumerate() {
        assert_eq!(
            r.aws_trace_header.as_deref(),
            Some(entry_header(i).as_str()),
            "per-entry AWSTraceHeader"
        );
        assert_eq!(r.group_id.as_deref(), Some("grp"));
        assert!(r.dedup_id.as_deref().is_some_and(|d| d.starts_with('d')), "{r:?}");
        assert_eq!(
            r.message_attributes.get("traceparent").map(String::as_str),
            Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
        );
    }
}

fn entry_header(i: usize) -> String {
    format!("Root=1-5759e988-bd862e3fe1be46a99427279{i};Sampled=1")
}

#[tokio::test]
async fn moto_sns_topic_delivers_to_subscribed_queue() {
    let moto = moto().await;
    let topic = moto.create_topic("selftest-topic").await;
    assert_eq!(topic, "arn:aws:sns:us-east-1:123456789012:selftest-topic");
    let raw_queue = moto.create_queue("raw").await;
    let wrapped_queue = moto.create_queue("wrapped").await;
    moto.subscribe_queue(&topic, &raw_queue, true).await;
    moto.subscribe_queue(&topic, &wrapped_queue, false).await;

    moto.publish(&topic, r#"{"Records":[]}"#).await;

    let raw = moto.receive_all(&raw_queue).await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0].body, r#"{"Records":[]}"#);
    let wrapped = moto.receive_all(&wrapped_queue).await;
    assert_eq!(wrapped.len(), 1, "{wrapped:?}");
    let envelope = wrapped[0].json();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic.as_str());
    assert_eq!(envelope["Message"], r#"{"Records":[]}"#);

    assert_eq!(
        raw[0].aws_trace_header, None,
        "no header on the publish, none on the delivery"
    );

    let publish = moto.calls_of("Publish").await;
    assert_eq!(publish.len(), 1);
    assert_eq!(publish[0].service, "sns");
    assert_eq!(publish[0].target.as_deref(), Some(topic.as_str()));
    assert_eq!(publish[0].status, Some(200));

    // The SNS request's X-Amzn-Trace-Id reaches SQS subscribers as AWSTraceHeader (moto_server.py patch).
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    moto.sns()
        .publish_batch()
        .topic_arn(&topic)
        .publish_batch_request_entries(
            aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                .id("0")
                .message("traced")
                .build()
                .unwrap(),
        )
        .customize()
        .mutate_request(move |r| {
            r.headers_mut().insert("x-amzn-trace-id", header);
        })
        .send()
        .await
        .unwrap();
    let raw = moto.receive_all(&raw_queue).await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0].body, "traced");
    assert_eq!(raw[0].aws_trace_header.as_deref(), Some(header));
    let batch = moto.calls_of("PublishBatch").await;
    assert_eq!(
        (batch[0].entries, batch[0].trace_header.as_deref()),
        (Some(1), Some(header))
    );

    let fifo_topic = moto.create_topic("selftest.fifo").await;
    assert!(fifo_topic.ends_with(":selftest.fifo"));
    let attrs = moto
        .sns()
        .get_topic_attributes()
        .topic_arn(&fifo_topic)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().and_then(|a| a.get("FifoTopic")).map(String::as_str),
        Some("true")
    );
}
