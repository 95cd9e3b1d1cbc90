//! Why a record was not delivered (CONTRACT §6): one vocabulary for the network edge, the relay,
//! the Lambda response, the logs and the metrics. Nothing compares error strings: each reason is a
//! variant, and an [`Undelivered`] names the record (bucket and key) and the target it concerns.

use std::fmt;

use crate::bus::BusEntryError;
use crate::inbound::DecodeError;

/// Why one message (a record for one target), or a whole retry unit, was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Not sent, or not answered, before the invocation deadline less the safety margin.
    #[error("not delivered before the invocation deadline margin")]
    Deadline,
    /// The batch response named the entry neither successful nor failed.
    #[error("the batch response did not mention it")]
    MissingFromResponse,
    /// Larger than the target accepts in one message.
    #[error("{size} bytes exceed the target's {limit}-byte limit")]
    TooLarge {
        /// Body plus message attributes, in bytes.
        size: usize,
        /// The target's limit.
        limit: usize,
    },
    /// The service failed this entry of a batch call.
    #[error("rejected ({code}{}): {message}", if *sender_fault { ", sender fault" } else { "" })]
    Rejected {
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
        /// `SenderFault`: `false` means the same entry may succeed when sent again.
        sender_fault: bool,
    },
    /// The whole batch call failed, after the SDK's own retries.
    #[error("{0}")]
    Call(CallError),
    /// Not sent, so as not to overtake an earlier message that failed.
    #[error("held back: {0}")]
    HeldBack(HoldBack),
    /// The input could not be decoded.
    #[error("{0}")]
    BadInput(DecodeError),
    /// The record cannot be an entry on an event bus.
    #[error("not published to the event bus: {0}")]
    NotABusEntry(BusEntryError),
}

impl Reason {
    /// Whether the relay sends the entry again, alone, within the invocation: the service said it
    /// was not the sender's fault, or did not say anything about it.
    pub fn resend_alone(&self) -> bool {
        matches!(
            self,
            Reason::Rejected {
                sender_fault: false,
                ..
            } | Reason::MissingFromResponse
        )
    }
}

/// Which earlier failure a message is held back behind (CONTRACT §6 order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldBack {
    /// An earlier message of its FIFO source's message group failed.
    SourceGroup,
    /// An earlier message of its FIFO source, carrying an event of the same object, failed.
    SameObject,
    /// An earlier event of the same object failed on this FIFO target.
    TargetObject,
}

impl fmt::Display for HoldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HoldBack::SourceGroup => "an earlier message of its FIFO message group failed",
            HoldBack::SameObject => "an earlier message with an event of the same object failed",
            HoldBack::TargetObject => "an earlier event of the same object failed on this FIFO target",
        })
    }
}

/// A whole call that failed, so none of its entries is known to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed ({code}): {message}")]
pub struct CallError {
    /// `SendMessageBatch`, `PublishBatch`, `PutEvents`, `DescribeEventBus` or `StartExecution`.
    pub operation: &'static str,
    /// The service's error code, or the SDK's failure kind (`Timeout`, `DispatchFailure`, …).
    pub code: String,
    /// Detail.
    pub message: String,
    /// Whether a later attempt may succeed ([`crate::retry::classify`]).
    pub transient: bool,
    /// HTTP status of the error response, if one came back.
    pub status: Option<u16>,
    /// AWS request id of the error response, if one came back.
    pub request_id: Option<String>,
}

/// S3 keys are at most 1,024 bytes; anything longer (hostile input) is cut in error texts so a huge
/// key cannot make a huge Lambda error.
pub const MAX_KEY_BYTES_IN_ERRORS: usize = 1024;

/// A record that was not delivered, and why: what the logs, the Lambda error and the metrics say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// Bucket and decoded key of the record, when it was decoded.
    pub object: Option<(String, String)>,
    /// The queue URL or topic ARN it was for, when the failure concerns one target.
    pub target: Option<String>,
    /// Why.
    pub reason: Reason,
}

impl Undelivered {
    /// A failure of a whole unit that names no record (bad input).
    pub fn unit(reason: Reason) -> Self {
        Undelivered {
            object: None,
            target: None,
            reason,
        }
    }
}

impl fmt::Display for Undelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((bucket, key)) = &self.object {
            write!(f, "{bucket}/{}", short_key(key))?;
            if let Some(target) = &self.target {
                write!(f, " to {target}")?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for Undelivered {}

fn short_key(key: &str) -> &str {
    let mut end = key.len().min(MAX_KEY_BYTES_IN_ERRORS);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_record_target_and_reason() {
        let failure = Undelivered {
            object: Some(("bucket".into(), "a b.jpg".into())),
            target: Some("https://sqs.us-east-1.amazonaws.com/123456789012/q".into()),
            reason: Reason::TooLarge {
                size: 300_000,
                limit: 262_144,
            },
        };
        assert_eq!(
            failure.to_string(),
            "bucket/a b.jpg to https://sqs.us-east-1.amazonaws.com/123456789012/q: \
             300000 bytes exceed the target's 262144-byte limit"
        );
    }

    #[test]
    fn only_receiver_faults_and_silence_are_resent_alone() {
        let rejected = |sender_fault| Reason::Rejected {
            code: "InternalError".into(),
            message: String::new(),
            sender_fault,
        };
        assert!(rejected(false).resend_alone());
        assert!(Reason::MissingFromResponse.resend_alone());
        assert!(!rejected(true).resend_alone());
        assert!(!Reason::Deadline.resend_alone());
    }

    #[test]
    fn huge_keys_are_cut_in_messages() {
        let failure = Undelivered {
            object: Some(("b".into(), "k".repeat(5000))),
            target: None,
            reason: Reason::Deadline,
        };
        assert!(failure.to_string().len() < MAX_KEY_BYTES_IN_ERRORS + 100);
    }
}
