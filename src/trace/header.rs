//! The `X-Amzn-Trace-Id` header: lenient parse, strict validation, canonical output.
//!
//! Encodes contract §5 on top of the AWS X-Ray tracing header format
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader>):
//!
//! 1. the raw value is rejected if it holds a control character (any byte `< 0x20` or `0x7f`:
//!    CR, LF, NUL, tab…), checked before anything else, then if it is longer than
//!    [`MAX_TRACE_HEADER_BYTES`];
//! 2. it is split on `;`; spaces around parts, keys and values are ignored; empty parts and parts
//!    without `=` are ignored; keys are case-insensitive; hex may be of either case; any order.
//!    "Spaces" means ASCII space: after rule 1 no other ASCII whitespace can remain, and Unicode
//!    spaces (e.g. U+00A0) are not trimmed, so they make a value malformed;
//! 3. exactly one `Root` (`1-<8 hex>-<24 hex>`) is required: none is [`TraceHeaderError::MissingRoot`],
//!    two or more — even identical or malformed ones — is [`TraceHeaderError::DuplicateRoot`], a
//!    single bad one is [`TraceHeaderError::MalformedRoot`];
//! 4. `Parent` (16 hex, non-zero) and `Sampled` (`0`, `1`, `?`) are kept only if well-formed; when one
//!    appears several times the **first well-formed** occurrence wins (malformed ones are skipped
//!    as if absent, so a later good value still counts);
//! 5. `Lineage` is kept unchanged only if it is 1–[`MAX_LINEAGE_CHARS`](super::MAX_LINEAGE_CHARS) characters of
//!    `[0-9A-Za-z:|,]` (first valid occurrence wins, like `Parent`);
//! 6. `Self` and unknown keys are dropped;
//! 7. output is always written as `Root=…;Parent=…;Sampled=…;Lineage=…`, lowercase hex, no spaces,
//!    absent fields omitted — never copied from the input.

use std::fmt;
use std::str::FromStr;

use super::MAX_TRACE_HEADER_BYTES;
use super::ids::{Lineage, Sampled, SpanId, TraceId, TraceIdError};

/// Why an incoming `X-Amzn-Trace-Id` value is rejected as a whole. Messages say why and never echo
/// the input (control characters are shown as hex codes), so they are safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TraceHeaderError {
    /// Longer than [`MAX_TRACE_HEADER_BYTES`]; bounds the work done on untrusted input.
    #[error("trace header is {len} bytes; at most {max} are allowed", max = MAX_TRACE_HEADER_BYTES)]
    TooLong {
        /// Length of the raw value, in bytes.
        len: usize,
    },
    /// A control character (`< 0x20` or `0x7f`) anywhere in the raw value: a header-injection
    /// attempt or corruption, so the whole header is distrusted.
    #[error("trace header contains control character {byte:#04x} at byte {position}")]
    ControlCharacter {
        /// The offending byte.
        byte: u8,
        /// Byte offset of the first control character.
        position: usize,
    },
    /// No `Root` field: there is no trace to continue.
    #[error("trace header has no Root field")]
    MissingRoot,
    /// The single `Root` field is not `1-<8 hex>-<24 hex>`.
    #[error("trace header Root is malformed: {reason}")]
    MalformedRoot {
        /// What is wrong with it.
        reason: TraceIdError,
    },
    /// More than one `Root` field: ambiguous which trace to continue.
    #[error("trace header has more than one Root field")]
    DuplicateRoot,
}

/// A validated X-Ray trace context: the fields the relay forwards, nothing else.
///
/// Implements `Hash`/`Eq` on the parsed values, so headers that differ only in spelling (case,
/// spaces, field order, dropped junk) group together as one trace context.
///
/// Parsed leniently, written canonically (CONTRACT §5):
///
/// ```
/// use s3_trace_relay::trace::TraceHeader;
/// let header: TraceHeader = "sampled=1; ROOT=1-5759E988-BD862E3FE1BE46A994272793; Self=1-x; parent=53995C3F42CD8AD8"
///     .parse()
///     .unwrap();
/// assert_eq!(
///     header.to_string(),
///     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
/// );
/// assert_eq!(
///     header.to_traceparent().as_deref(),
///     Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
/// );
/// assert!("Root=1-5759e988-bd862e3fe1be46a994272793\r\nX-Injected: 1".parse::<TraceHeader>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceHeader {
    root: TraceId,
    parent: Option<SpanId>,
    sampled: Option<Sampled>,
    lineage: Option<Lineage>,
}

impl TraceHeader {
    /// A header with only a `Root`: the start of a trace, or a context to fill with the builders.
    #[must_use]
    pub fn new(root: TraceId) -> Self {
        TraceHeader {
            root,
            parent: None,
            sampled: None,
            lineage: None,
        }
    }

    /// The trace id (`Root`), always present.
    pub fn root(&self) -> &TraceId {
        &self.root
    }

    /// The upstream segment id (`Parent`), if one was sent well-formed.
    pub fn parent(&self) -> Option<SpanId> {
        self.parent
    }

    /// The sampling decision (`Sampled`), if one was sent well-formed.
    pub fn sampled(&self) -> Option<Sampled> {
        self.sampled
    }

    /// The Lambda recursion-detection `Lineage`, if one was sent valid.
    pub fn lineage(&self) -> Option<&Lineage> {
        self.lineage.as_ref()
    }

    /// The same context with `Parent` replaced by `id`: what the relay sends downstream after
    /// creating its own segment `id`.
    #[must_use]
    pub fn with_parent(&self, id: SpanId) -> TraceHeader {
        TraceHeader {
            parent: Some(id),
            ..self.clone()
        }
    }

    /// The same context without a `Parent`.
    #[must_use]
    pub fn without_parent(self) -> Self {
        TraceHeader { parent: None, ..self }
    }

    /// The same context with the sampling decision replaced (or removed with `None`).
    #[must_use]
    pub fn with_sampled(self, s: Option<Sampled>) -> Self {
        TraceHeader { sampled: s, ..self }
    }

    /// The same context with `Lineage` replaced (or removed with `None`).
    #[must_use]
    pub fn with_lineage(self, lineage: Option<Lineage>) -> Self {
        TraceHeader { lineage, ..self }
    }

    /// True only for `Sampled=1`; `0`, `?` and absent all mean "not recorded (yet)".
    pub fn is_sampled(&self) -> bool {
        self.sampled == Some(Sampled::Yes)
    }
}

/// Control character per contract §5: any byte below 0x20 (CR, LF, NUL, tab…) and DEL (0x7f). Bytes of
/// multi-byte UTF-8 characters are all ≥ 0x80, so checking bytes is exact.
#[inline]
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Parse-time state of one optional field: first well-formed occurrence wins.
#[inline]
fn keep_first<T>(slot: &mut Option<T>, value: impl FnOnce() -> Option<T>) {
    if slot.is_none() {
        *slot = value();
    }
}

impl FromStr for TraceHeader {
    type Err = TraceHeaderError;

    /// Lenient parse with strict validation, per the rules in this module's header.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Rule 1: raw-input checks before anything else (no trimming, no splitting yet).
        // A branch-free `any` over the bytes vectorises; the position is only looked for on failure.
        if s.bytes().fold(false, |found, b| found | is_control(b)) {
            let position = s.bytes().position(is_control).unwrap_or(0);
            let byte = s.as_bytes().get(position).copied().unwrap_or(0);
            return Err(TraceHeaderError::ControlCharacter { byte, position });
        }
        if s.len() > MAX_TRACE_HEADER_BYTES {
            return Err(TraceHeaderError::TooLong { len: s.len() });
        }

        let mut root: Option<Result<TraceId, TraceIdError>> = None;
        let mut roots = 0usize;
        let mut parent: Option<SpanId> = None;
        let mut sampled: Option<Sampled> = None;
        let mut lineage: Option<&str> = None;

        for part in s.split(';') {
            // Rule 2: parts without `=` (including empty ones) are ignored.
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let key = key.trim_ascii();
            let value = value.trim_ascii();
            if key.eq_ignore_ascii_case("root") {
                roots += 1;
                if root.is_none() {
                    root = Some(value.parse());
                }
            } else if key.eq_ignore_ascii_case("parent") {
                keep_first(&mut parent, || value.parse().ok());
            } else if key.eq_ignore_ascii_case("sampled") {
                keep_first(&mut sampled, || value.parse().ok());
            } else if key.eq_ignore_ascii_case("lineage") {
                keep_first(&mut lineage, || Lineage::validate(value).is_ok().then_some(value));
            }
            // `Self` and unknown keys: dropped (rule 6).
        }

        // Rule 3: exactly one Root.
        let root = match (roots, root) {
            (0, _) | (_, None) => return Err(TraceHeaderError::MissingRoot),
            (1, Some(r)) => r.map_err(|reason| TraceHeaderError::MalformedRoot { reason })?,
            (_, Some(_)) => return Err(TraceHeaderError::DuplicateRoot),
        };
        Ok(TraceHeader {
            root,
            parent,
            sampled,
            lineage: lineage.and_then(|l| Lineage::try_from(l).ok()),
        })
    }
}

impl fmt::Display for TraceHeader {
    /// Canonical form `Root=…;Parent=…;Sampled=…;Lineage=…`, lowercase hex, no spaces, absent
    /// fields omitted. At most 339 bytes, so always within [`MAX_TRACE_HEADER_BYTES`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(parent) = &self.parent {
            write!(f, ";Parent={parent}")?;
        }
        if let Some(sampled) = self.sampled {
            write!(f, ";Sampled={}", sampled.as_str())?;
        }
        if let Some(lineage) = &self.lineage {
            write!(f, ";Lineage={}", lineage.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

    fn parse(s: &str) -> Result<TraceHeader, TraceHeaderError> {
        s.parse()
    }

    #[test]
    fn sdk_style_header_is_canonicalised() {
        let h = parse("Root=1-5759E988-bd862e3fe1be46a994272793; Parent=53995C3F42CD8AD8; Sampled=1").unwrap();
        assert_eq!(h.to_string(), format!("Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1"));
        assert!(h.is_sampled());
    }

    #[test]
    fn rejections() {
        assert_eq!(parse(""), Err(TraceHeaderError::MissingRoot));
        assert_eq!(parse("Root"), Err(TraceHeaderError::MissingRoot));
        assert_eq!(
            parse(&format!("Root={ROOT};root={ROOT}")),
            Err(TraceHeaderError::DuplicateRoot)
        );
        assert_eq!(
            parse(&format!("Root={ROOT}\r\nX: y")),
            Err(TraceHeaderError::ControlCharacter {
                byte: b'\r',
                position: 40
            })
        );
        assert!(matches!(
            parse("Root=1-2-3"),
            Err(TraceHeaderError::MalformedRoot { .. })
        ));
        let long = format!("Root={ROOT};{}", "x".repeat(1024));
        assert_eq!(parse(&long), Err(TraceHeaderError::TooLong { len: long.len() }));
    }

    #[test]
    fn first_well_formed_optional_field_wins() {
        let h = parse(&format!(
            "Root={ROOT};Parent=zz;Parent=0000000000000002;Parent=0000000000000003;Sampled=x;Sampled=?"
        ))
        .unwrap();
        assert_eq!(h.parent().map(|p| p.as_u64()), Some(2));
        assert_eq!(h.sampled(), Some(Sampled::Requested));
    }

    #[test]
    fn builders() {
        let root: TraceId = ROOT.parse().unwrap();
        let h = TraceHeader::new(root).with_sampled(Some(Sampled::No));
        let p = SpanId::from_u64(0xabc).unwrap();
        let h2 = h.with_parent(p);
        assert_eq!(h2.parent(), Some(p));
        assert_eq!(h2.clone().without_parent(), h);
        assert_eq!(h2.to_string(), format!("Root={ROOT};Parent=0000000000000abc;Sampled=0"));
    }
}
