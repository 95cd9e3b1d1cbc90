//! S3 events delivered through EventBridge (`"source":"aws.s3"`), forwarded unchanged; routing and
//! FIFO ids use the S3 notification event name each stands for (CONTRACT §3, §4).
//!
//! `aws_lambda_events`' `EventBridgeEvent` requires an RFC 3339 `time` and every envelope field;
//! moto writes `time` as epoch seconds. As for S3 records, the relay reads a projection of exactly
//! the fields it needs: `detail-type`, `time`, and from `detail` the bucket name, object key,
//! `version-id`, `sequencer`, `size`, `request-id`, `reason` and `deletion-type`.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::message::{Notification, Origin};

use super::{Content, DecodeError, RecordKind, bounded, decode_key, scalar_text, scalar_u64};

#[derive(Deserialize)]
struct EventFields<'a> {
    #[serde(rename = "detail-type", borrow)]
    detail_type: Cow<'a, str>,
    #[serde(default, borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    detail: Detail<'a>,
}

#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(borrow)]
    bucket: Bucket<'a>,
    #[serde(borrow)]
    object: Object<'a>,
    #[serde(rename = "request-id", default, borrow)]
    request_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(rename = "deletion-type", default, borrow)]
    deletion_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Bucket<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(rename = "version-id", default, borrow)]
    version_id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    sequencer: Option<&'a RawValue>,
    #[serde(default, borrow)]
    size: Option<&'a RawValue>,
}

/// Decodes an EventBridge `aws.s3` event; its body is the event's own text.
pub(super) fn decode_eventbridge(text: &str) -> Result<Content, DecodeError> {
    let event: EventFields = serde_json::from_str(text).map_err(|e| DecodeError::MalformedRecord {
        index: 0,
        kind: RecordKind::EventBridge,
        reason: bounded(e.to_string()),
    })?;
    let detail = event.detail;
    let key = decode_key(&detail.object.key).ok_or_else(|| DecodeError::KeyNotUtf8 {
        index: 0,
        bucket: bounded(detail.bucket.name.clone().into_owned()),
    })?;
    Ok(Content::Notifications(vec![Arc::new(Notification {
        event_name: eventbridge_event_name(
            &event.detail_type,
            detail.reason.as_deref(),
            detail.deletion_type.as_deref(),
        ),
        bucket: detail.bucket.name.into_owned(),
        key,
        version_id: detail.object.version_id.and_then(scalar_text),
        sequencer: detail.object.sequencer.and_then(scalar_text),
        event_time: event.time.and_then(scalar_text),
        request_id: detail.request_id.and_then(scalar_text),
        size: detail.object.size.and_then(scalar_u64),
        body: text.to_owned(),
        origin: Origin::EventBridge,
    })]))
}

/// `(detail-type, reason, deletion-type, S3 event name)`, as S3's EventBridge documentation pairs
/// them; `None` matches any value. The first matching row wins.
const EVENT_NAMES: &[(&str, Option<&str>, Option<&str>, &str)] = &[
    ("Object Created", Some("PutObject"), None, "ObjectCreated:Put"),
    ("Object Created", Some("POST Object"), None, "ObjectCreated:Post"),
    ("Object Created", Some("CopyObject"), None, "ObjectCreated:Copy"),
    (
        "Object Created",
        Some("CompleteMultipartUpload"),
        None,
        "ObjectCreated:CompleteMultipartUpload",
    ),
    ("Object Created", None, None, "ObjectCreated"),
    (
        "Object Deleted",
        Some("DeleteObject"),
        Some("Delete Marker Created"),
        "ObjectRemoved:DeleteMarkerCreated",
    ),
    ("Object Deleted", Some("DeleteObject"), None, "ObjectRemoved:Delete"),
    (
        "Object Deleted",
        Some("Lifecycle Expiration"),
        Some("Delete Marker Created"),
        "LifecycleExpiration:DeleteMarkerCreated",
    ),
    (
        "Object Deleted",
        Some("Lifecycle Expiration"),
        None,
        "LifecycleExpiration:Delete",
    ),
    ("Object Deleted", None, None, "ObjectRemoved"),
    ("Object Restore Initiated", None, None, "ObjectRestore:Post"),
    ("Object Restore Completed", None, None, "ObjectRestore:Completed"),
    ("Object Restore Expired", None, None, "ObjectRestore:Delete"),
    ("Object Tags Added", None, None, "ObjectTagging:Put"),
    ("Object Tags Deleted", None, None, "ObjectTagging:Delete"),
    ("Object ACL Updated", None, None, "ObjectAcl:Put"),
    ("Object Storage Class Changed", None, None, "LifecycleTransition"),
    ("Object Access Tier Changed", None, None, "IntelligentTiering"),
];

/// Maps an EventBridge `detail-type` (with `reason` and `deletion-type`) to the S3 notification event
/// name it stands for, so one `events=` filter serves both deliveries: `Object Created` + `PutObject`
/// → `ObjectCreated:Put`. An unknown reason gives the bare category (`ObjectCreated`, which
/// `ObjectCreated:*` matches); an unknown detail-type its words joined (`Object Legal Hold Set` →
/// `ObjectLegalHoldSet`). Never a trailing `:`.
///
/// ```
/// use s3_trace_relay::inbound::eventbridge_event_name;
/// assert_eq!(eventbridge_event_name("Object Created", Some("PutObject"), None), "ObjectCreated:Put");
/// assert_eq!(eventbridge_event_name("Object Access Tier Changed", None, None), "IntelligentTiering");
/// ```
pub fn eventbridge_event_name(detail_type: &str, reason: Option<&str>, deletion_type: Option<&str>) -> String {
    let fits = |wanted: Option<&str>, got: Option<&str>| wanted.is_none() || wanted == got;
    EVENT_NAMES
        .iter()
        .find(|(d, r, t, _)| *d == detail_type && fits(*r, reason) && fits(*t, deletion_type))
        .map_or_else(|| detail_type.replace(' ', ""), |(_, _, _, name)| (*name).to_owned())
}

/// The other way: the `detail-type`, `reason` and `deletion-type` S3 uses on EventBridge for an S3
/// notification event name (`ObjectCreated:Put` → `Object Created`, `PutObject`); `None` for event
/// types S3 does not send to EventBridge (`ReducedRedundancyLostObject`, `Replication:*`, …).
pub fn eventbridge_detail_for(event_name: &str) -> Option<(&'static str, Option<&'static str>, Option<&'static str>)> {
    let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    let (detail_type, reason, deletion_type, _) = EVENT_NAMES.iter().find(|row| row.3 == name)?;
    let deletion_type = match (deletion_type, *detail_type) {
        (None, "Object Deleted") => Some("Permanently Deleted"),
        (given, _) => *given,
    };
    Some((detail_type, *reason, deletion_type))
}

#[cfg(test)]
mod tests {
    use super::{eventbridge_detail_for, eventbridge_event_name};

    #[test]
    fn every_mapped_name_maps_back_to_itself() {
        for name in [
            "ObjectCreated:Put",
            "ObjectCreated:CompleteMultipartUpload",
            "ObjectRemoved:Delete",
            "ObjectRemoved:DeleteMarkerCreated",
            "LifecycleExpiration:Delete",
            "LifecycleExpiration:DeleteMarkerCreated",
            "ObjectRestore:Completed",
            "ObjectTagging:Delete",
            "ObjectAcl:Put",
            "LifecycleTransition",
            "IntelligentTiering",
        ] {
            let (detail_type, reason, deletion_type) = eventbridge_detail_for(name).unwrap();
            assert_eq!(eventbridge_event_name(detail_type, reason, deletion_type), name);
        }
        assert_eq!(eventbridge_detail_for("Replication:OperationFailedReplication"), None);
    }

    #[test]
    fn deletions_are_told_apart_by_reason_and_deletion_type() {
        for (reason, deletion, name) in [
            ("DeleteObject", "Permanently Deleted", "ObjectRemoved:Delete"),
            (
                "DeleteObject",
                "Delete Marker Created",
                "ObjectRemoved:DeleteMarkerCreated",
            ),
            (
                "Lifecycle Expiration",
                "Permanently Deleted",
                "LifecycleExpiration:Delete",
            ),
            (
                "Lifecycle Expiration",
                "Delete Marker Created",
                "LifecycleExpiration:DeleteMarkerCreated",
            ),
        ] {
            assert_eq!(
                eventbridge_event_name("Object Deleted", Some(reason), Some(deletion)),
                name
            );
        }
    }

    #[test]
    fn an_unknown_reason_gives_the_bare_category() {
        assert_eq!(eventbridge_event_name("Object Created", None, None), "ObjectCreated");
        assert_eq!(
            eventbridge_event_name("Object Created", Some("RenameObject"), None),
            "ObjectCreated"
        );
    }

    #[test]
    fn colon_less_types_map_to_their_s3_names() {
        assert_eq!(
            eventbridge_event_name("Object Storage Class Changed", None, None),
            "LifecycleTransition"
        );
        assert_eq!(
            eventbridge_event_name("Object Access Tier Changed", None, None),
            "IntelligentTiering"
        );
    }

    #[test]
    fn an_unknown_detail_type_joins_its_words() {
        assert_eq!(eventbridge_event_name("Something New", None, None), "SomethingNew");
    }
}
