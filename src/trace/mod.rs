//! Trace context: the AWS X-Ray `X-Amzn-Trace-Id` header and the W3C `traceparent` header.
//!
//! Encodes section 5 of the project contract, which follows the AWS X-Ray tracing-header format
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader>)
//! and W3C Trace Context Level 1 (<https://www.w3.org/TR/trace-context/#traceparent-header>):
//!
//! * incoming `X-Amzn-Trace-Id` values are parsed leniently ([`TraceHeader`]'s `FromStr`): parts are
//!   split on `;`, spaces around parts, keys and values are ignored, empty parts and parts without
//!   `=` are ignored, keys are case-insensitive, hex digits may be of either case, any order;
//! * a header is valid only with exactly one well-formed `Root`, no control character anywhere in the
//!   raw value and at most [`MAX_TRACE_HEADER_BYTES`] bytes; malformed optional fields are dropped;
//! * the outbound header is always re-written canonically ([`TraceHeader`]'s `Display`), never copied,
//!   so nothing a caller sent can be smuggled into the headers or attributes the relay writes;
//! * [`TraceHeader::to_traceparent`] / [`TraceHeader::from_traceparent`] convert to and from W3C.
//!
//! Parsing never panics, uses no regex and allocates only for a kept `Lineage`.

mod header;
mod ids;
mod w3c;

pub use header::{TraceHeader, TraceHeaderError};
pub use ids::{Lineage, LineageError, Sampled, SampledError, SpanId, SpanIdError, TraceId, TraceIdError};
pub use w3c::{TraceparentError, TraceparentField};

/// Longest `X-Amzn-Trace-Id` value accepted, in bytes (contract §5: "a length of at most 1024
/// bytes"). Bounds the work done on untrusted input; the canonical output is always far shorter.
pub const MAX_TRACE_HEADER_BYTES: usize = 1024;

/// Longest `Lineage` value kept, in characters (contract §5: `Lineage` is kept only if it is "at
/// most 256 characters of `[0-9A-Za-z:|,]`"). Longer values are dropped, not fatal.
pub const MAX_LINEAGE_CHARS: usize = 256;

/// Hex digits of either case as a number (std's `from_str_radix`, which would also take a sign).
fn parse_hex_u64(text: &str) -> Option<u64> {
    is_hex(text).then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

/// [`parse_hex_u64`] for up to 32 digits.
fn parse_hex_u128(text: &str) -> Option<u128> {
    is_hex(text).then(|| u128::from_str_radix(text, 16).ok()).flatten()
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}
