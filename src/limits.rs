//! AWS service limits the relay plans around, one named constant each, with the rule it encodes.

/// `SendMessageBatch` and `PublishBatch` accept at most 10 entries per call.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// SQS: a message, and a whole `SendMessageBatch` request, may hold at most 1 MiB (1,048,576 bytes)
/// of body plus message attributes (raised from 256 KiB in August 2025). `AWSTraceHeader` does not count.
pub const SQS_MAX_BATCH_BYTES: usize = 1_048_576;

/// SNS: a message, and a whole `PublishBatch` request, may hold at most 256 KiB (262,144 bytes) of
/// message plus message attributes.
pub const SNS_MAX_BATCH_BYTES: usize = 262_144;

/// FIFO `MessageGroupId` and `MessageDeduplicationId`: at most 128 characters of alphanumerics and
/// punctuation (``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~``).
pub const MAX_FIFO_ID_CHARS: usize = 128;

/// SQS and SNS allow at most 10 message attributes per message; the relay adds one (`traceparent`).
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
