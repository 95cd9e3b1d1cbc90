//! Conversion between the X-Ray trace header and the W3C `traceparent` header.
//!
//! Encodes contract §5 and W3C Trace Context Level 1
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>):
//! `traceparent = 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, all lowercase. The X-Ray
//! root `1-<8 hex epoch>-<24 hex unique>` maps to trace-id `<epoch><unique>`; `Parent` maps to
//! parent-id; `Sampled=1` maps to flags `01`, anything else to `00`.
//!
//! Parsing is strict, as W3C requires: only version `00` is accepted (version `ff` is invalid by
//! spec; the future versions `01`–`fe` are reported as unsupported rather than parsed by their
//! first four fields — the simplest reading the contract allows), lowercase hex only, exact field
//! lengths, no all-zero ids, no extra fields, no surrounding whitespace (HTTP libraries strip
//! optional whitespace before the value reaches us).

use std::fmt;

use super::header::TraceHeader;
use super::ids::{Sampled, SpanId, TraceId};
use super::parse_hex_u128;

/// Which `traceparent` field an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceparentField {
    /// `version` (2 hex).
    Version,
    /// `trace-id` (32 hex).
    TraceId,
    /// `parent-id` (16 hex).
    ParentId,
    /// `trace-flags` (2 hex).
    Flags,
}

impl TraceparentField {
    /// Exact length W3C version `00` requires for this field.
    const fn expected_len(self) -> usize {
        match self {
            TraceparentField::Version | TraceparentField::Flags => 2,
            TraceparentField::TraceId => 32,
            TraceparentField::ParentId => 16,
        }
    }
}

impl fmt::Display for TraceparentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceparentField::Version => "version",
            TraceparentField::TraceId => "trace-id",
            TraceparentField::ParentId => "parent-id",
            TraceparentField::Flags => "trace-flags",
        })
    }
}

/// Why a `traceparent` value is rejected. Messages never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TraceparentError {
    /// Fewer than the four `-`-separated fields.
    #[error("traceparent has {found} fields; version 00 needs 4")]
    MissingFields {
        /// Number of `-`-separated fields found.
        found: usize,
    },
    /// More than four fields, which version `00` forbids.
    #[error("traceparent version 00 must have exactly 4 fields, found {found}")]
    ExtraFields {
        /// Number of `-`-separated fields found.
        found: usize,
    },
    /// A field of the wrong length.
    #[error("traceparent {field} must be {expected} hex characters, found {len} bytes", expected = field.expected_len())]
    WrongLength {
        /// The field.
        field: TraceparentField,
        /// Its length in bytes.
        len: usize,
    },
    /// A field with a character outside `[0-9a-fA-F]`.
    #[error("traceparent {field} is not hexadecimal")]
    NonHex {
        /// The field.
        field: TraceparentField,
    },
    /// A field with uppercase hex, which W3C forbids.
    #[error("traceparent {field} has uppercase hex; W3C requires lowercase")]
    UppercaseHex {
        /// The field.
        field: TraceparentField,
    },
    /// Version `ff`, declared invalid by W3C.
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    /// A future version (`01`–`fe`); only `00` is accepted.
    #[error("traceparent version {version:02x} is not supported; only 00 is accepted")]
    UnsupportedVersion {
        /// The version number.
        version: u8,
    },
    /// All-zero trace-id, invalid per W3C.
    #[error("traceparent trace-id is all zeros")]
    ZeroTraceId,
    /// All-zero parent-id, invalid per W3C.
    #[error("traceparent parent-id is all zeros")]
    ZeroParentId,
}

/// Decodes one field: exact length, lowercase hex.
fn field(value: &str, field: TraceparentField) -> Result<u128, TraceparentError> {
    if value.len() != field.expected_len() {
        return Err(TraceparentError::WrongLength {
            field,
            len: value.len(),
        });
    }
    let number = parse_hex_u128(value).ok_or(TraceparentError::NonHex { field })?;
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(TraceparentError::UppercaseHex { field });
    }
    Ok(number)
}

impl TraceHeader {
    /// The W3C `traceparent` for this context, so consumers instrumented with OpenTelemetry/W3C
    /// join the same trace. `None` without a `Parent` (W3C needs a parent-id) and for the all-zero
    /// root (W3C forbids an all-zero trace-id). Flags are `01` only for `Sampled=1`.
    pub fn to_traceparent(&self) -> Option<String> {
        let (trace, parent) = self.w3c_ids()?;
        let flags = if self.is_sampled() { "01" } else { "00" };
        Some(format!("00-{trace:032x}-{parent:016x}-{flags}"))
    }

    /// The length of [`TraceHeader::to_traceparent`], without writing it: what the `traceparent`
    /// attribute counts toward a message's size.
    pub fn traceparent_len(&self) -> Option<usize> {
        // `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
        self.w3c_ids().map(|_| 55)
    }

    /// The W3C trace-id and parent-id, when this context has a W3C form.
    fn w3c_ids(&self) -> Option<(u128, u64)> {
        let parent = self.parent()?;
        let trace = self.root().as_u128();
        (trace != 0).then_some((trace, parent.as_u64()))
    }

    /// Parses a W3C `traceparent` (version `00` only, strict) into an X-Ray context: Root
    /// `1-<first 8 hex>-<last 24 hex>`, Parent = parent-id, Sampled = `1` if flag bit 0 is set,
    /// else `0`. Used when an upstream speaks W3C rather than X-Ray.
    ///
    /// # Errors
    ///
    /// A [`TraceparentError`] naming the first rule the value breaks (checked in order: version,
    /// field count, each field's length and hex, then all-zero ids).
    pub fn from_traceparent(s: &str) -> Result<TraceHeader, TraceparentError> {
        let mut fields = s.split('-');
        let version = fields.next().unwrap_or_default();
        let version =
            u8::try_from(field(version, TraceparentField::Version)?).map_err(|_| TraceparentError::NonHex {
                field: TraceparentField::Version,
            })?;
        match version {
            0x00 => {}
            0xff => return Err(TraceparentError::InvalidVersion),
            v => return Err(TraceparentError::UnsupportedVersion { version: v }),
        }
        let (Some(trace), Some(parent), Some(flags)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(TraceparentError::MissingFields {
                found: s.split('-').count(),
            });
        };
        if fields.next().is_some() {
            return Err(TraceparentError::ExtraFields {
                found: s.split('-').count(),
            });
        }
        let trace = field(trace, TraceparentField::TraceId)?;
        let parent = field(parent, TraceparentField::ParentId)?;
        let flags = field(flags, TraceparentField::Flags)?;
        if trace == 0 {
            return Err(TraceparentError::ZeroTraceId);
        }
        let parent = u64::try_from(parent)
            .ok()
            .and_then(SpanId::from_u64)
            .ok_or(TraceparentError::ZeroParentId)?;
        let epoch = u32::try_from(trace >> 96).map_err(|_| TraceparentError::NonHex {
            field: TraceparentField::TraceId,
        })?;
        let root = TraceId::from_parts(epoch, trace & ((1u128 << 96) - 1)).ok_or(TraceparentError::NonHex {
            field: TraceparentField::TraceId,
        })?;
        let sampled = if flags & 1 == 1 { Sampled::Yes } else { Sampled::No };
        Ok(TraceHeader::new(root).with_parent(parent).with_sampled(Some(sampled)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_ray_to_w3c_and_back() {
        let h: TraceHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            .parse()
            .unwrap();
        let tp = h.to_traceparent().unwrap();
        assert_eq!(tp, "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
        assert_eq!(TraceHeader::from_traceparent(&tp), Ok(h));
    }

    #[test]
    fn traceparent_len_is_the_length_of_the_traceparent() {
        for text in [
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=1",
        ] {
            let h: TraceHeader = text.parse().unwrap();
            assert_eq!(h.traceparent_len(), h.to_traceparent().map(|tp| tp.len()), "{text}");
        }
    }

    #[test]
    fn rejections() {
        let ok = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
        assert!(TraceHeader::from_traceparent(ok).is_ok());
        assert_eq!(
            TraceHeader::from_traceparent("ff-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
            Err(TraceparentError::InvalidVersion)
        );
        assert_eq!(
            TraceHeader::from_traceparent("00-00000000000000000000000000000000-53995c3f42cd8ad8-01"),
            Err(TraceparentError::ZeroTraceId)
        );
        assert_eq!(
            TraceHeader::from_traceparent(""),
            Err(TraceparentError::WrongLength {
                field: TraceparentField::Version,
                len: 0
            })
        );
        assert_eq!(
            TraceHeader::from_traceparent("00"),
            Err(TraceparentError::MissingFields { found: 1 })
        );
    }
}
