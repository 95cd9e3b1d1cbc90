//! What an S3 event is on an EventBridge bus: the `DetailType` and `Detail` of its `PutEvents`
//! entry. S3's own EventBridge events carry no trace context (EventBridge traces only events that
//! arrive through `PutEvents`), so the relay puts its own, with the shape S3 uses: rules written
//! for S3's events need only their `source` changed.
//!
//! An S3 record becomes the `detail-type` S3 uses for that event (`Object Created`, `Object
//! Deleted`, …; event types S3 does not send to EventBridge keep their S3 name) and a detail with
//! S3's field names (`bucket.name`, `object.key`, `object.size`, `object.etag`, `object.version-id`,
//! `object.sequencer`, `request-id`, `requester`, `source-ip-address`, `reason`, `deletion-type`),
//! values as the record has them. An event that came through EventBridge keeps its own
//! `detail-type` and `detail`, unchanged.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::inbound::eventbridge_detail_for;
use crate::message::{BusEntry, MAX_DETAIL_TYPE_CHARS, Notification, Origin};

/// Why a notification cannot be an entry on a bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusEntryError {
    /// The body is not the JSON the relay decoded it from (cannot happen for decoded input).
    #[error("its body cannot be read as an event: {0}")]
    Unreadable(String),
    /// EventBridge drops an entry with a longer `DetailType` after accepting it.
    #[error("its detail-type has {0} characters; EventBridge takes at most {MAX_DETAIL_TYPE_CHARS}")]
    DetailTypeTooLong(usize),
}

/// The bus entry of `n`.
pub fn entry(n: &Notification) -> Result<BusEntry, BusEntryError> {
    let entry = match n.origin {
        Origin::EventBridge => forwarded(&n.body)?,
        Origin::S3Record => from_record(n)?,
    };
    let chars = entry.detail_type.chars().count();
    if chars > MAX_DETAIL_TYPE_CHARS {
        return Err(BusEntryError::DetailTypeTooLong(chars));
    }
    Ok(entry)
}

#[derive(Deserialize)]
struct EventParts<'a> {
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(borrow)]
    detail: &'a RawValue,
}

/// An EventBridge event's own `detail-type` and `detail`, the detail's text unchanged.
fn forwarded(body: &str) -> Result<BusEntry, BusEntryError> {
    let parts: EventParts = serde_json::from_str(body).map_err(|e| BusEntryError::Unreadable(e.to_string()))?;
    Ok(BusEntry {
        detail_type: parts.detail_type,
        detail: parts.detail.get().to_owned(),
    })
}

/// The entry S3 would have sent to EventBridge for this record.
fn from_record(n: &Notification) -> Result<BusEntry, BusEntryError> {
    let body: Value = serde_json::from_str(&n.body).map_err(|e| BusEntryError::Unreadable(e.to_string()))?;
    let record = &body["Records"][0];
    let object = &record["s3"]["object"];
    let (detail_type, reason, deletion_type) = match eventbridge_detail_for(&n.event_name) {
        Some((detail_type, reason, deletion_type)) => (detail_type.to_owned(), reason, deletion_type),
        None => (n.event_name.clone(), None, None),
    };
    let mut detail = Map::new();
    detail.insert("version".into(), json!("0"));
    detail.insert("bucket".into(), json!({ "name": n.bucket }));
    let mut fields = Map::new();
    for (to, from) in [
        ("key", "key"),
        ("size", "size"),
        ("etag", "eTag"),
        ("version-id", "versionId"),
        ("sequencer", "sequencer"),
    ] {
        put(&mut fields, to, &object[from]);
    }
    detail.insert("object".into(), Value::Object(fields));
    put(
        &mut detail,
        "request-id",
        &record["responseElements"]["x-amz-request-id"],
    );
    put(&mut detail, "requester", &record["userIdentity"]["principalId"]);
    put(
        &mut detail,
        "source-ip-address",
        &record["requestParameters"]["sourceIPAddress"],
    );
    put(&mut detail, "reason", &reason.map_or(Value::Null, |r| json!(r)));
    put(
        &mut detail,
        "deletion-type",
        &deletion_type.map_or(Value::Null, |d| json!(d)),
    );
    Ok(BusEntry {
        detail_type,
        detail: Value::Object(detail).to_string(),
    })
}

/// Adds `value` under `key` unless it is absent.
fn put(map: &mut Map<String, Value>, key: &str, value: &Value) {
    if !value.is_null() {
        map.insert(key.to_owned(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{Content, decode};

    fn notification(payload: &str) -> Notification {
        match decode(payload).unwrap().units.remove(0).content.unwrap() {
            Content::Notifications(mut list) => (*list.remove(0)).clone(),
            Content::TestEvent => panic!("test event"),
        }
    }

    #[test]
    fn an_s3_put_becomes_object_created_with_s3s_field_names() {
        let n = notification(include_str!("../events/s3-put.json"));
        let e = entry(&n).unwrap();
        assert_eq!(e.detail_type, "Object Created");
        let detail: Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(
            detail,
            json!({"version": "0", "bucket": {"name": "relay-demo-uploads"},
                "object": {"key": "images/cat.jpg", "size": 1024, "etag": "d41d8cd98f00b204e9800998ecf8427e",
                    "sequencer": "0062E99A88DC407460"},
                "request-id": "C3D13FE58DE4C810", "requester": "AWS:AIDAEXAMPLEUPLOADER",
                "source-ip-address": "203.0.113.10", "reason": "PutObject"})
        );
    }

    #[test]
    fn a_delete_says_how_it_deleted() {
        let n = notification(include_str!("../events/s3-delete.json"));
        let detail: Value = serde_json::from_str(&entry(&n).unwrap().detail).unwrap();
        assert_eq!(
            (&detail["reason"], &detail["deletion-type"]),
            (&json!("DeleteObject"), &json!("Permanently Deleted"))
        );
    }

    #[test]
    fn an_eventbridge_event_keeps_its_detail_type_and_detail_text() {
        let text = include_str!("../events/eventbridge-object-created.json");
        let e = entry(&notification(text)).unwrap();
        let event: Value = serde_json::from_str(text).unwrap();
        assert_eq!(e.detail_type, "Object Created");
        assert_eq!(serde_json::from_str::<Value>(&e.detail).unwrap(), event["detail"]);
    }

    #[test]
    fn a_detail_type_over_128_characters_is_refused() {
        let mut event: Value = serde_json::from_str(include_str!("../events/eventbridge-object-created.json")).unwrap();
        event["detail-type"] = "x".repeat(129).into();
        let mut n = notification(include_str!("../events/eventbridge-object-created.json"));
        n.body = event.to_string();
        assert_eq!(entry(&n), Err(BusEntryError::DetailTypeTooLong(129)));
    }
}
