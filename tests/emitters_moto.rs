//! End to end with what others produce: the real relay binary relays the S3 notifications moto's own
//! S3 sends (through SQS and through SNS), every S3 event type's record as S3 writes it, the records
//! of S3-compatible emitters and S3's EventBridge events, and FIFO targets keep every distinct event
//! while dropping only redeliveries (CONTRACT §3, §4).

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::moto::{Moto, Received, moto};
use support::relay_process::{INVOCATION_ROOT, Relay, failed_items, header_field, keys_of, sns_event_of, sqs_event_of};

/// The record inside a relayed message's body (`{"Records":[record]}`).
fn record_of(message: &Received) -> Value {
    let body = message.json();
    assert_eq!(body["Records"].as_array().map(Vec::len), Some(1), "{body}");
    body["Records"][0].clone()
}

/// The S3 records (not test events) in messages moto delivered to a queue, in order.
fn s3_records_in(messages: &[Received]) -> Vec<Value> {
    messages
        .iter()
        .flat_map(|m| m.json()["Records"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Uploads then deletes `key` in `bucket` through the SDK.
async fn put_and_delete(moto: &Moto, bucket: &str, key: &str) {
    let s3 = moto.s3();
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(b"hello".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("DeleteObject");
}

#[tokio::test]
async fn moto_s3_notifications_through_sqs_are_relayed_as_moto_wrote_them() {
    let moto = moto().await;
    let source = moto.create_queue("moto-s3-events").await;
    let target = moto.create_queue("from-moto-sqs").await;
    moto.create_bucket_notifying("moto-bucket", Some(&moto.queue_arn(&source).await), None)
        .await;
    put_and_delete(&moto, "moto-bucket", "uploads/my photo.jpg").await;
    let delivered = moto.receive_all(&source).await;
    let records = s3_records_in(&delivered);
    // moto sends a test event, then Put (and, from PutObject, a tagging event) and Delete.
    let names: Vec<&str> = records.iter().filter_map(|r| r["eventName"].as_str()).collect();
    assert!(
        names.contains(&"ObjectCreated:Put") && names.contains(&"ObjectRemoved:Delete"),
        "{names:?}"
    );
    assert!(records[0].get("userIdentity").is_none(), "moto omits userIdentity");

    let relay = Relay::start(&moto, &format!("{target}?prefix=uploads/my photo")).await;
    let event = sqs_event_of(&moto.queue_arn(&source).await, &delivered);
    let response = relay.invoke_json(&event).await.expect_response();
    assert!(failed_items(&response).is_empty(), "{response}");

    let relayed = moto.receive_all(&target).await;
    let mut got: Vec<Value> = relayed.iter().map(record_of).collect();
    let mut want = records.clone();
    let by_name = |r: &Value| r["eventName"].as_str().unwrap_or_default().to_owned();
    got.sort_by_key(by_name);
    want.sort_by_key(by_name);
    assert_eq!(got, want, "each record forwarded exactly as moto wrote it");
    // moto encodes keys with Python's quote_plus (`/` too); the prefix filter saw the decoded key.
    assert_eq!(keys_of(&relayed), vec!["uploads%2Fmy+photo.jpg"; names.len()]);
    for m in &relayed {
        let header = m.aws_trace_header.as_deref().unwrap_or_default();
        assert_eq!(header_field(header, "Root"), Some(INVOCATION_ROOT), "{header}");
    }
}

#[tokio::test]
async fn moto_s3_notifications_through_sns_are_relayed_as_moto_wrote_them() {
    let moto = moto().await;
    let topic = moto.create_topic("moto-s3-topic").await;
    let envelopes = moto.create_queue("moto-s3-envelopes").await;
    moto.subscribe_queue(&topic, &envelopes, false).await;
    let target = moto.create_queue("from-moto-sns").await;
    moto.create_bucket_notifying("moto-sns-bucket", None, Some(&topic))
        .await;
    put_and_delete(&moto, "moto-sns-bucket", "uploads/b.txt").await;
    let delivered = moto.receive_all(&envelopes).await;
    assert!(
        delivered.len() >= 3,
        "test event, Put and Delete, each in an SNS envelope"
    );

    let relay = Relay::start(&moto, &target).await;
    let mut want = Vec::new();
    for envelope in &delivered {
        let envelope = envelope.json();
        let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
        want.extend(message["Records"].as_array().cloned().unwrap_or_default());
        let event = sns_event_of(&envelope, &format!("{topic}:sub"));
        let response = relay.invoke_json(&event).await.expect_response();
        assert!(response["reportedFailures"] == 0, "{response}");
    }
    let got: Vec<Value> = moto.receive_all(&target).await.iter().map(record_of).collect();
    assert_eq!(got.len(), want.len());
    for record in &want {
        assert!(got.contains(record), "{record} not relayed unchanged");
    }
}

#[tokio::test]
async fn two_tagging_events_on_one_key_reach_a_fifo_queue_as_two_messages_and_redelivery_as_none() {
    let moto = moto().await;
    let source = moto.create_queue("tagging-events").await;
    let target = moto.create_queue("tagging-out.fifo").await;
    moto.create_bucket_notifying("tag-bucket", Some(&moto.queue_arn(&source).await), None)
        .await;
    let s3 = moto.s3();
    s3.put_object()
        .bucket("tag-bucket")
        .key("doc.txt")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect("PutObject");
    for value in ["draft", "final"] {
        // moto's records carry no request id: their millisecond eventTime tells them apart.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let tag = aws_sdk_s3::types::Tag::builder()
            .key("state")
            .value(value)
            .build()
            .unwrap();
        let tagging = aws_sdk_s3::types::Tagging::builder().tag_set(tag).build().unwrap();
        s3.put_object_tagging()
            .bucket("tag-bucket")
            .key("doc.txt")
            .tagging(tagging)
            .send()
            .await
            .expect("PutObjectTagging");
    }
    let delivered = moto.receive_all(&source).await;
    let want = s3_records_in(&delivered);
    let tagging = want.iter().filter(|r| r["eventName"] == "ObjectTagging:Put").count();
    assert!(tagging >= 2, "two tagging events on one key, no sequencer: {want:?}");

    let relay = Relay::start(&moto, &target).await;
    let event = sqs_event_of(&moto.queue_arn(&source).await, &delivered);
    for _ in 0..2 {
        let response = relay.invoke_json(&event).await.expect_response();
        assert!(failed_items(&response).is_empty(), "{response}");
    }
    let got: Vec<Value> = moto.receive_all(&target).await.iter().map(record_of).collect();
    assert_eq!(
        got, want,
        "every distinct event kept, in order; the redelivered batch deduplicated"
    );
}

#[tokio::test]
async fn eventbridge_events_reach_a_fifo_queue_once_each() {
    let moto = moto().await;
    let target = moto.create_queue("eventbridge-out.fifo").await;
    let relay = Relay::start(&moto, &target).await;
    let event = support::fixture_json("eventbridge/object-tags-added.json");
    let mut second = event.clone();
    second["detail"]["request-id"] = "SECONDREQUEST001".into();
    second["id"] = "a-second-event".into();
    for payload in [&event, &event, &second] {
        relay.invoke_json(payload).await.expect_response();
    }
    let relayed = moto.receive_all(&target).await;
    let request_ids: Vec<Value> = relayed
        .iter()
        .map(|m| m.json()["detail"]["request-id"].clone())
        .collect();
    assert_eq!(
        request_ids,
        vec![event["detail"]["request-id"].clone(), json!("SECONDREQUEST001")]
    );
}

/// The `.json` files of a directory, sorted.
fn json_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn every_s3_event_fixture_is_relayed_with_its_record_unchanged() {
    let moto = moto().await;
    let target = moto.create_queue("every-event-type").await;
    let relay = Relay::start(&moto, &format!("{target}?events=s3:ObjectCreated:*,ObjectRemoved:*,ObjectRestore:*,ReducedRedundancyLostObject,Replication:*,LifecycleTransition,IntelligentTiering,ObjectAcl:Put,LifecycleExpiration:*,ObjectTagging:*")).await;
    let fixtures = json_files(&support::repo_root().join("events"), "s3-");
    let direct: Vec<&String> = fixtures.iter().filter(|n| *n != "s3-test-event.json").collect();
    assert!(direct.len() >= 16, "one fixture per event category: {direct:?}");
    for name in direct {
        let input = support::fixture_json(name);
        let response = relay.invoke_fixture(name).await.expect_response();
        assert_eq!(response["reportedFailures"], 0, "{name}: {response}");
        let relayed = moto.receive_all(&target).await;
        let want = input["Records"].as_array().unwrap();
        let got: Vec<Value> = relayed.iter().map(record_of).collect();
        assert_eq!(&got, want, "{name}: every record forwarded unchanged");
    }
}

#[tokio::test]
async fn records_of_s3_compatible_emitters_are_relayed_unchanged() {
    let moto = moto().await;
    let target = moto.create_queue("emitters-out").await;
    let relay = Relay::start(&moto, &format!("{target}?prefix=uploads/")).await;

    // MinIO delivers its own envelope (EventName, Key, Records) with eventSource minio:s3.
    let minio = support::fixture_json("emitters/minio-put.json");
    relay.invoke_fixture("emitters/minio-put.json").await.expect_response();
    let relayed = moto.receive_all(&target).await;
    assert_eq!(relayed.len(), 1);
    assert_eq!(record_of(&relayed[0]), minio["Records"][0]);

    // LocalStack's notifications arrive through SQS; it writes a space in a key as %20.
    for name in ["emitters/localstack-put.json", "emitters/localstack-delete.json"] {
        let body = support::fixture_json(name);
        let event = support::relay_process::sqs_event(&[("m-localstack", body.clone())]);
        let response = relay.invoke_json(&event).await.expect_response();
        assert!(failed_items(&response).is_empty(), "{name}: {response}");
        let relayed = moto.receive_all(&target).await;
        assert_eq!(relayed.len(), 1, "{name}");
        assert_eq!(record_of(&relayed[0]), body["Records"][0], "{name}");
    }
}

#[tokio::test]
async fn every_eventbridge_fixture_is_forwarded_unchanged() {
    let moto = moto().await;
    let target = moto.create_queue("eventbridge-every-type").await;
    let relay = Relay::start(&moto, &target).await;
    let fixtures = json_files(&support::repo_root().join("tests/fixtures/eventbridge"), "");
    assert!(fixtures.len() >= 10, "{fixtures:?}");
    for name in fixtures {
        let path = format!("eventbridge/{name}");
        let response = relay.invoke_fixture(&path).await.expect_response();
        assert_eq!(response["reportedFailures"], 0, "{name}: {response}");
        let relayed = moto.receive_all(&target).await;
        assert_eq!(relayed.len(), 1, "{name}");
        assert_eq!(relayed[0].json(), support::fixture_json(&path), "{name}");
    }
}
