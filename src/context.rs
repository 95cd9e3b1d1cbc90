//! Choosing each record's trace context (CONTRACT §5).
//!
//! A record's own carrier wins when valid; an invalid or missing one falls back to the invocation's
//! (`Context::xray_trace_id`, never the process-wide `_X_AMZN_TRACE_ID`, which concurrent
//! invocations do not set). If neither is valid no header is sent and the record is still relayed.
//! Every fallback is reported so it can be logged as a warning and counted.

use crate::inbound::Carrier;
use crate::trace::TraceHeader;

/// The invocation-level trace context, parsed once per invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationTrace {
    /// Lambda sent no `Lambda-Runtime-Trace-Id`.
    Absent,
    /// A valid header.
    Valid(TraceHeader),
    /// Present but invalid; the text says why.
    Invalid(String),
}

impl InvocationTrace {
    /// Parses the invocation's `Lambda-Runtime-Trace-Id` value.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            None => InvocationTrace::Absent,
            Some(v) => match v.parse::<TraceHeader>() {
                Ok(h) => InvocationTrace::Valid(h),
                Err(e) => InvocationTrace::Invalid(e.to_string()),
            },
        }
    }

    /// The header, when valid.
    pub fn header(&self) -> Option<&TraceHeader> {
        match self {
            InvocationTrace::Valid(h) => Some(h),
            _ => None,
        }
    }
}

/// Why a record did not use its own carrier, when it had one to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The record's carrier was invalid; the invocation's header is used instead.
    ToInvocation {
        /// Why the record's carrier was rejected.
        reason: String,
    },
    /// Neither the record's nor the invocation's header is valid: no header is sent.
    ToNone {
        /// Why the record's carrier (or, for direct sources, the invocation's) was rejected or missing.
        reason: String,
    },
}

/// The header a record's messages carry, and the fallback taken to get it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The upstream context to propagate; `None` sends no header.
    pub header: Option<TraceHeader>,
    /// Set when a fallback was taken.
    pub fallback: Option<Fallback>,
}

/// Resolves the trace context of one record from its carrier and the invocation's.
///
/// `record_level` says whether the source has record-level carriers at all (SQS); for other sources
/// an `Absent` carrier is normal and using the invocation's header is not a fallback.
pub fn resolve(carrier: &Carrier, invocation: &InvocationTrace, record_level: bool) -> Resolved {
    if let Carrier::Valid(h) = carrier {
        return Resolved {
            header: Some(h.clone()),
            fallback: None,
        };
    }
    let record_problem = match carrier {
        Carrier::Invalid(reason) => Some(reason.clone()),
        Carrier::Absent if record_level => Some("record has no trace header".to_owned()),
        _ => None,
    };
    match (invocation, record_problem) {
        (InvocationTrace::Valid(h), reason) => Resolved {
            header: Some(h.clone()),
            fallback: reason.map(|reason| Fallback::ToInvocation { reason }),
        },
        (other, reason) => {
            let invocation_problem = match other {
                InvocationTrace::Invalid(r) => format!("invocation trace header invalid: {r}"),
                _ => "invocation has no trace header".to_owned(),
            };
            Resolved {
                header: None,
                fallback: Some(Fallback::ToNone {
                    reason: match reason {
                        Some(r) => format!("{r}; {invocation_problem}"),
                        None => invocation_problem,
                    },
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVOCATION: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const RECORD: &str = "Root=1-67891233-abcdef012345678912345678;Parent=0123456789abcdef;Sampled=0";

    fn valid(s: &str) -> TraceHeader {
        s.parse().unwrap()
    }

    #[test]
    fn valid_record_header_wins() {
        let r = resolve(
            &Carrier::Valid(valid(RECORD)),
            &InvocationTrace::parse(Some(INVOCATION)),
            true,
        );
        assert_eq!(r.header, Some(valid(RECORD)));
        assert_eq!(r.fallback, None);
    }

    #[test]
    fn invalid_record_header_falls_back_to_the_invocation() {
        let r = resolve(
            &Carrier::Invalid("bad".into()),
            &InvocationTrace::parse(Some(INVOCATION)),
            true,
        );
        assert_eq!(r.header, Some(valid(INVOCATION)));
        assert!(matches!(r.fallback, Some(Fallback::ToInvocation { .. })));
    }

    #[test]
    fn absent_record_header_on_sqs_is_a_fallback() {
        let r = resolve(&Carrier::Absent, &InvocationTrace::parse(Some(INVOCATION)), true);
        assert_eq!(r.header, Some(valid(INVOCATION)));
        assert!(matches!(r.fallback, Some(Fallback::ToInvocation { .. })));
    }

    #[test]
    fn direct_source_uses_the_invocation_header_without_fallback() {
        let r = resolve(&Carrier::Absent, &InvocationTrace::parse(Some(INVOCATION)), false);
        assert_eq!(r.header, Some(valid(INVOCATION)));
        assert_eq!(r.fallback, None);
    }

    #[test]
    fn nothing_valid_sends_no_header() {
        let r = resolve(
            &Carrier::Invalid("bad".into()),
            &InvocationTrace::parse(Some("Root=nope")),
            true,
        );
        assert_eq!(r.header, None);
        assert!(matches!(r.fallback, Some(Fallback::ToNone { .. })));
    }

    #[test]
    fn direct_source_without_invocation_header_sends_none() {
        let r = resolve(&Carrier::Absent, &InvocationTrace::Absent, false);
        assert_eq!(r.header, None);
        assert!(matches!(r.fallback, Some(Fallback::ToNone { .. })));
    }
}
