//! S3 records: the fields the relay reads, from whatever emitter wrote them (CONTRACT §3).
//!
//! `aws_lambda_events`' `S3EventRecord` requires `userIdentity`, `requestParameters` and an RFC 3339
//! `eventTime`, and types `responseElements` as string values. S3 itself always sends them, but
//! S3-compatible emitters do not: moto omits `userIdentity`, `requestParameters`,
//! `responseElements` and `sequencer`; MinIO writes `minio:s3` as the source. Since the record is
//! forwarded as received anyway, the relay reads a small projection of exactly the fields it needs
//! — `eventSource`, `eventName`, `s3.bucket.name`, `s3.object.key` (required) and `versionId`,
//! `sequencer`, `size`, `eventTime`, `responseElements.x-amz-request-id` (when present, of any JSON
//! type) —
//! and ignores the rest.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::message::{Notification, Origin};

use super::{Content, DecodeError, RecordKind, bounded, decode_key, record_source, scalar_text, scalar_u64};

/// `eventSource` values of S3 records: S3's own, and MinIO's (whose records are otherwise S3's).
pub const S3_EVENT_SOURCES: [&str; 2] = ["aws:s3", "minio:s3"];

/// The fields of an S3 record the relay reads (see the module docs).
#[derive(Deserialize)]
struct S3RecordFields<'a> {
    #[serde(rename = "eventSource", default, borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", default, borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventTime", default, borrow)]
    event_time: Option<&'a RawValue>,
    #[serde(rename = "responseElements", default, borrow)]
    response_elements: Option<ResponseElements<'a>>,
    #[serde(default, borrow)]
    s3: Option<S3Entity<'a>>,
}

#[derive(Deserialize)]
struct ResponseElements<'a> {
    #[serde(rename = "x-amz-request-id", default, borrow)]
    request_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct S3Entity<'a> {
    #[serde(default, borrow)]
    bucket: Option<Bucket<'a>>,
    #[serde(default, borrow)]
    object: Option<Object<'a>>,
}

#[derive(Deserialize)]
struct Bucket<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    #[serde(rename = "versionId", default, borrow)]
    version_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    sequencer: Option<&'a RawValue>,
    #[serde(default, borrow)]
    size: Option<&'a RawValue>,
}

/// Whether `event_source` names an S3 record.
pub fn is_s3_source(event_source: &str) -> bool {
    S3_EVENT_SOURCES.contains(&event_source)
}

/// Decodes record `index` of an S3 notification's `Records`, keeping its text for the message body.
pub(super) fn decode_s3_record(index: usize, raw: &RawValue) -> Result<Notification, DecodeError> {
    let foreign = |found: Option<&str>| DecodeError::UnexpectedRecordSource {
        index,
        found: found.map(|s| bounded(s.to_owned())),
        within: RecordKind::S3,
    };
    let record: S3RecordFields = match serde_json::from_str(raw.get()) {
        Ok(record) => record,
        // A record of another source is named so, not as a malformed S3 record.
        Err(e) => match record_source(raw) {
            Some(source) if is_s3_source(&source) => {
                return Err(DecodeError::MalformedRecord {
                    index,
                    kind: RecordKind::S3,
                    reason: bounded(e.to_string()),
                });
            }
            other => return Err(foreign(other.as_deref())),
        },
    };
    match record.event_source.as_deref() {
        Some(source) if is_s3_source(source) => {}
        other => return Err(foreign(other)),
    }
    let missing = |field| DecodeError::MissingField { index, field };
    let (bucket, object) = match record.s3 {
        Some(S3Entity { bucket, object }) => (bucket.and_then(|b| b.name), object),
        None => (None, None),
    };
    let bucket = bucket.ok_or(missing("s3.bucket.name"))?.into_owned();
    let object = object.ok_or(missing("s3.object.key"))?;
    let raw_key = object.key.ok_or(missing("s3.object.key"))?;
    let event_name = record.event_name.ok_or(missing("eventName"))?.into_owned();
    let key = decode_key(&raw_key).ok_or_else(|| DecodeError::KeyNotUtf8 {
        index,
        bucket: bounded(bucket.clone()),
    })?;
    Ok(Notification {
        bucket,
        key,
        event_name,
        version_id: object.version_id.and_then(scalar_text),
        sequencer: object.sequencer.and_then(scalar_text),
        event_time: record.event_time.and_then(scalar_text),
        request_id: record
            .response_elements
            .and_then(|r| r.request_id)
            .and_then(scalar_text),
        size: object.size.and_then(scalar_u64),
        body: notification_body(raw.get()),
        origin: Origin::S3Record,
    })
}

/// `{"Records":[<record as received>]}`: S3's own notification format around one record.
fn notification_body(record: &str) -> String {
    const OPEN: &str = "{\"Records\":[";
    const CLOSE: &str = "]}";
    let mut body = String::with_capacity(OPEN.len() + record.len() + CLOSE.len());
    body.push_str(OPEN);
    body.push_str(record);
    body.push_str(CLOSE);
    body
}

/// Decodes the `Records` of an S3 notification (an SQS body or SNS message).
pub(super) fn decode_s3_records(records: &[&RawValue]) -> Result<Content, DecodeError> {
    let mut notifications = Vec::with_capacity(records.len());
    for (index, raw) in records.iter().enumerate() {
        notifications.push(Arc::new(decode_s3_record(index, raw)?));
    }
    Ok(Content::Notifications(notifications))
}
