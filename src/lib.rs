//! s3-trace-relay: relays Amazon S3 event notifications to SQS queues and SNS topics, carrying the
//! X-Ray trace context of each notification so uploader → S3 → relay → SQS/SNS → consumer stays
//! one linked trace.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod trace;
