//! s3-trace-relay: relays Amazon S3 event notifications to SQS queues and SNS topics, carrying the
//! X-Ray trace context of each notification so uploader → S3 → relay → SQS/SNS → consumer stays
//! one linked trace.
//!
//! Modules follow the data's path: [`inbound`] decodes the invocation, [`context`] picks each
//! record's trace context (parsed by [`trace`]), [`route`] and [`plan`] decide which message goes
//! where in which batch, [`publish`] is the network edge, [`relay`] runs the whole and [`response`]
//! answers Lambda. [`config`] and [`init`] run once per cold start.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![warn(missing_docs)]

pub mod bus;
pub mod concurrency;
pub mod config;
pub mod context;
pub mod failure;
pub mod fifo;
pub mod inbound;
pub mod init;
pub mod lambda;
pub mod logs;
pub mod message;
pub mod metrics;
pub mod order;
pub mod otel;
pub mod plan;
pub mod prepare;
pub mod publish;
pub mod recording;
pub mod relay;
pub mod response;
pub mod retry;
pub mod route;
pub mod span;
pub mod trace;
pub mod xray;

pub use config::RelayConfig;
pub use publish::{AwsPublisher, Publisher};
pub use relay::{InvocationInfo, Relay};
