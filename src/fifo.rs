//! FIFO message ids (CONTRACT §4).
//!
//! `MessageGroupId` keeps the events of one object in order, so it is derived from bucket and
//! decoded key. `MessageDeduplicationId` makes a retried invocation harmless within SQS/SNS's
//! 5-minute deduplication window without ever merging two distinct events: it is a digest of every
//! field that identifies one S3 event — bucket, key, version id, sequencer, event name, event time
//! and S3 request id, absent ones as empty. S3 sets `sequencer` only for PUT and DELETE events and
//! `versionId` only on versioned buckets, so two tagging (ACL, restore, lifecycle, …) events on one
//! key differ only in time and request id; redeliveries of one event (S3's own duplicates, Lambda's
//! retries) carry identical records and so get the same id. Both ids are at most 128 characters of
//! alphanumerics and punctuation, whatever the key holds.

use sha2::{Digest, Sha256};

use crate::message::{MAX_FIFO_ID_CHARS, Notification};

/// Characters SQS and SNS accept in FIFO ids: ASCII alphanumerics and punctuation.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_ascii_punctuation()
}

/// Length of a SHA-256 digest written as lowercase hex.
const DIGEST_HEX_CHARS: usize = 64;

/// The message group of an object: `bucket/key` when that is already a valid id, else a readable
/// prefix (invalid characters as `_`) plus `~` and the SHA-256 of `bucket/key`, which keeps distinct
/// objects in distinct groups.
pub fn group_id(bucket: &str, key: &str) -> String {
    let plain_len = bucket.len() + 1 + key.len();
    if plain_len <= MAX_FIFO_ID_CHARS && bucket.chars().chain(key.chars()).all(allowed) {
        return format!("{bucket}/{key}");
    }
    let mut hasher = Sha256::new();
    hasher.update(bucket.as_bytes());
    hasher.update(b"/");
    hasher.update(key.as_bytes());
    let readable_chars = MAX_FIFO_ID_CHARS - DIGEST_HEX_CHARS - 1;
    let mut id: String = bucket
        .chars()
        .chain(std::iter::once('/'))
        .chain(key.chars())
        .take(readable_chars)
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    id.push('~');
    id.push_str(&format!("{:x}", hasher.finalize()));
    id
}

/// The Step Functions execution name of one S3 event: its deduplication id (64 hex characters,
/// within the 80 an execution name may have), so a redelivered record names the same execution
/// and a Standard workflow does not start it twice.
pub fn execution_name(n: &Notification) -> String {
    deduplication_id(n)
}

/// The deduplication id of one S3 event: SHA-256 over its identifying fields, each length-prefixed so
/// no two different field lists hash the same input.
pub fn deduplication_id(n: &Notification) -> String {
    let mut hasher = Sha256::new();
    for field in [
        n.bucket.as_str(),
        n.key.as_str(),
        n.version_id.as_deref().unwrap_or(""),
        n.sequencer.as_deref().unwrap_or(""),
        n.event_name.as_str(),
        n.event_time.as_deref().unwrap_or(""),
        n.request_id.as_deref().unwrap_or(""),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn notification(key: &str, sequencer: &str) -> Notification {
        Notification {
            bucket: "bucket".into(),
            key: key.into(),
            event_name: "ObjectCreated:Put".into(),
            version_id: None,
            sequencer: Some(sequencer.into()),
            event_time: Some("2026-11-25T12:00:00.000Z".into()),
            request_id: Some("C3D13FE58DE4C810".into()),
            size: None,
            body: String::new(),
            origin: crate::message::Origin::S3Record,
        }
    }

    #[test]
    fn short_plain_key_is_used_as_is() {
        assert_eq!(group_id("photos", "2024/cat.jpg"), "photos/2024/cat.jpg");
    }

    #[test]
    fn key_with_spaces_gets_a_digest_suffix() {
        let id = group_id("photos", "my cat.jpg");
        assert!(id.starts_with("photos/my_cat.jpg~"), "{id}");
        assert_eq!(id.len(), "photos/my_cat.jpg~".len() + 64);
    }

    #[test]
    fn distinct_objects_that_sanitize_alike_stay_distinct() {
        assert_ne!(group_id("b", "a b"), group_id("b", "a\tb"));
    }

    #[test]
    fn dedup_id_differs_per_event_and_is_stable() {
        let a = notification("k", "0055AED6DCD90281E5");
        let b = notification("k", "0055AED6DCD90281E6");
        assert_eq!(deduplication_id(&a), deduplication_id(&a.clone()));
        assert_ne!(deduplication_id(&a), deduplication_id(&b));
        assert_eq!(deduplication_id(&a).len(), 64);
    }

    #[test]
    fn dedup_id_tells_apart_events_that_differ_only_in_time_or_request_id() {
        let mut a = notification("k", "");
        a.sequencer = None;
        let mut later = a.clone();
        later.event_time = Some("2026-11-25T12:00:00.001Z".into());
        let mut other_request = a.clone();
        other_request.request_id = Some("D4E24GF69EF5D921".into());
        assert_ne!(deduplication_id(&a), deduplication_id(&later));
        assert_ne!(deduplication_id(&a), deduplication_id(&other_request));
    }

    #[test]
    fn absent_and_empty_fields_are_not_confused_with_a_shifted_field() {
        // Length prefixes: moving text from one field to the next changes the digest.
        let mut a = notification("k", "");
        a.event_time = Some("x".into());
        a.request_id = None;
        let mut b = a.clone();
        b.event_time = None;
        b.request_id = Some("x".into());
        assert_ne!(deduplication_id(&a), deduplication_id(&b));
    }

    proptest! {
        #[test]
        fn group_id_is_always_valid(bucket in "[a-z0-9.-]{3,63}", key in any::<String>()) {
            let id = group_id(&bucket, &key);
            prop_assert!(!id.is_empty() && id.chars().count() <= MAX_FIFO_ID_CHARS);
            prop_assert!(id.chars().all(allowed));
        }
    }
}
