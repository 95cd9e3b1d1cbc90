//! The value types inside an X-Ray trace header: `Root` ([`TraceId`]), `Parent` ([`SpanId`]),
//! `Sampled` ([`Sampled`]) and `Lineage` ([`Lineage`]).
//!
//! Formats follow the AWS X-Ray tracing header
//! (<https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader>)
//! as restated in contract §5: `Root` is `1-<8 hex epoch>-<24 hex unique>`, `Parent` is 16 hex,
//! `Sampled` is `0`, `1` or `?`, `Lineage` is at most [`MAX_LINEAGE_CHARS`] characters of
//! `[0-9A-Za-z:|,]`. Parsing accepts hex of either case; `Display` always writes lowercase.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use super::{MAX_LINEAGE_CHARS, parse_hex_u64, parse_hex_u128};

/// Length of a `Root` value: `1-` + 8 hex + `-` + 24 hex.
const TRACE_ID_LEN: usize = 35;
/// Length of a `Parent` value: 16 hex.
const SPAN_ID_LEN: usize = 16;
/// Mask of the 96-bit unique part of a trace id.
const UNIQUE_MASK: u128 = (1u128 << 96) - 1;

/// Why a `Root` / trace id is malformed. Messages describe the defect and never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TraceIdError {
    /// Not exactly 35 bytes long.
    #[error("expected 35 characters `1-<8 hex>-<24 hex>`, found {len} bytes")]
    WrongLength {
        /// Length of the value, in bytes.
        len: usize,
    },
    /// Version digit other than `1`, the only X-Ray trace id version.
    #[error("trace id version must be `1`")]
    UnsupportedVersion,
    /// The `-` separators are missing or misplaced.
    #[error("trace id fields must be separated by `-` as in `1-<8 hex>-<24 hex>`")]
    MissingSeparator,
    /// The epoch or unique part contains a non-hex character.
    #[error("trace id epoch and unique parts must be hexadecimal")]
    NonHex,
}

/// The X-Ray trace id (`Root`): a 32-bit epoch in seconds and 96 random bits.
///
/// Stored as numbers, not text, so two spellings of one id (upper/lowercase hex) compare and hash
/// equal and the canonical form is re-created on output instead of copied from input. Held as the
/// W3C 128-bit number in two 64-bit words (epoch, then the unique part): a `u128` field would align
/// every trace header, and every message and batch holding one, to 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId {
    high: u64,
    low: u64,
}

impl TraceId {
    /// A fresh root for a trace this process starts: the current Unix time in seconds (as X-Ray
    /// requires, so the trace is found by time) plus 96 random bits.
    #[must_use]
    pub fn new_root() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let epoch = u32::try_from(secs).unwrap_or(u32::MAX);
        TraceId::from_masked(epoch, rand::random::<u128>())
    }

    /// The id of `epoch` and the low 96 bits of `unique`.
    fn from_masked(epoch: u32, unique: u128) -> Self {
        let id = (u128::from(epoch) << 96) | (unique & UNIQUE_MASK);
        TraceId {
            high: (id >> 64) as u64,
            low: id as u64,
        }
    }

    /// Builds a trace id from its parts; `None` if `unique` does not fit in 96 bits. Lets tests and
    /// the W3C conversion build ids without going through text.
    pub fn from_parts(epoch: u32, unique: u128) -> Option<Self> {
        (unique <= UNIQUE_MASK).then(|| TraceId::from_masked(epoch, unique))
    }

    /// The epoch part: seconds since the Unix epoch when the trace started.
    pub fn epoch(&self) -> u32 {
        (self.high >> 32) as u32
    }

    /// The 96-bit unique part (high 32 bits are always zero).
    pub fn unique(&self) -> u128 {
        self.as_u128() & UNIQUE_MASK
    }

    /// The id as the 128-bit number W3C uses as its trace id (epoch in the high 32 bits).
    pub fn as_u128(&self) -> u128 {
        (u128::from(self.high) << 64) | u128::from(self.low)
    }
}

impl FromStr for TraceId {
    type Err = TraceIdError;

    /// Strict parse of `1-<8 hex>-<24 hex>`, hex of either case, no surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != TRACE_ID_LEN {
            return Err(TraceIdError::WrongLength { len: b.len() });
        }
        if b.first() != Some(&b'1') {
            return Err(TraceIdError::UnsupportedVersion);
        }
        if b.get(1) != Some(&b'-') || b.get(10) != Some(&b'-') {
            return Err(TraceIdError::MissingSeparator);
        }
        // `get` is `None` rather than a panic if a multi-byte character straddles a boundary.
        let epoch = s.get(2..10).and_then(parse_hex_u64).ok_or(TraceIdError::NonHex)?;
        let unique = s.get(11..).and_then(parse_hex_u128).ok_or(TraceIdError::NonHex)?;
        let epoch = u32::try_from(epoch).map_err(|_| TraceIdError::NonHex)?;
        Ok(TraceId::from_masked(epoch, unique))
    }
}

impl fmt::Display for TraceId {
    /// Canonical lowercase `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1-{:08x}-{:024x}", self.epoch(), self.unique())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// Why a `Parent` / span id is malformed. Messages never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SpanIdError {
    /// Not exactly 16 bytes long.
    #[error("expected 16 hex characters, found {len} bytes")]
    WrongLength {
        /// Length of the value, in bytes.
        len: usize,
    },
    /// A character outside `[0-9A-Fa-f]`.
    #[error("span id must be hexadecimal")]
    NonHex,
    /// All zeros, which both X-Ray and W3C treat as "no parent".
    #[error("span id must not be all zeros")]
    Zero,
}

/// A segment / span id (`Parent` in X-Ray, `parent-id` in W3C): 64 bits, never zero because W3C
/// declares the all-zero id invalid and X-Ray never issues it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(NonZeroU64);

impl SpanId {
    /// A random id for a new segment this process emits (never zero).
    #[must_use]
    pub fn random() -> Self {
        loop {
            if let Some(v) = NonZeroU64::new(rand::random::<u64>()) {
                return SpanId(v);
            }
        }
    }

    /// Wraps a raw id; `None` for zero, which is not a valid span id.
    pub fn from_u64(v: u64) -> Option<Self> {
        NonZeroU64::new(v).map(SpanId)
    }

    /// The raw 64-bit id.
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

impl FromStr for SpanId {
    type Err = SpanIdError;

    /// Strict parse of exactly 16 hex digits of either case, non-zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != SPAN_ID_LEN {
            return Err(SpanIdError::WrongLength { len: s.len() });
        }
        let v = parse_hex_u64(s).ok_or(SpanIdError::NonHex)?;
        SpanId::from_u64(v).ok_or(SpanIdError::Zero)
    }
}

impl fmt::Display for SpanId {
    /// Canonical 16 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// The `Sampled` decision carried by the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sampled {
    /// `Sampled=1`: the upstream decided to record this trace.
    Yes,
    /// `Sampled=0`: the upstream decided not to record it.
    No,
    /// `Sampled=?`: the upstream asks the downstream to decide.
    Requested,
}

impl Sampled {
    /// The header spelling: `1`, `0` or `?`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sampled::Yes => "1",
            Sampled::No => "0",
            Sampled::Requested => "?",
        }
    }
}

/// A `Sampled` value other than `0`, `1` or `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("Sampled must be `0`, `1` or `?`")]
pub struct SampledError;

impl FromStr for Sampled {
    type Err = SampledError;

    /// Exactly `1`, `0` or `?`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1" => Ok(Sampled::Yes),
            "0" => Ok(Sampled::No),
            "?" => Ok(Sampled::Requested),
            _ => Err(SampledError),
        }
    }
}

impl fmt::Display for Sampled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `Lineage` value is not kept. Messages never echo the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum LineageError {
    /// Empty value: nothing worth forwarding.
    #[error("Lineage is empty")]
    Empty,
    /// Longer than [`MAX_LINEAGE_CHARS`].
    #[error("Lineage is {len} characters; at most {max} are allowed", max = MAX_LINEAGE_CHARS)]
    TooLong {
        /// Length of the value, in bytes.
        len: usize,
    },
    /// A character outside `[0-9A-Za-z:|,]`.
    #[error("Lineage has a character outside [0-9A-Za-z:|,] at byte {position}")]
    InvalidCharacter {
        /// Byte offset of the first offending character.
        position: usize,
    },
}

/// The Lambda `Lineage` field (recursion-loop detection), validated so it can be forwarded
/// unchanged: 1 to [`MAX_LINEAGE_CHARS`] characters of `[0-9A-Za-z:|,]`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Lineage(String);

impl Lineage {
    /// The value exactly as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validation without allocation, shared by `TryFrom` and the header parser.
    pub(crate) fn validate(s: &str) -> Result<(), LineageError> {
        if s.is_empty() {
            return Err(LineageError::Empty);
        }
        if s.len() > MAX_LINEAGE_CHARS {
            return Err(LineageError::TooLong { len: s.len() });
        }
        match s
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b':' | b'|' | b',')))
        {
            Some(position) => Err(LineageError::InvalidCharacter { position }),
            None => Ok(()),
        }
    }
}

impl TryFrom<&str> for Lineage {
    type Error = LineageError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Lineage::validate(s)?;
        Ok(Lineage(s.to_owned()))
    }
}

impl FromStr for Lineage {
    type Err = LineageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lineage::try_from(s)
    }
}

impl fmt::Display for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lineage({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trip_lowercases() {
        let id: TraceId = "1-5759E988-BD862E3FE1BE46A994272793".parse().unwrap();
        assert_eq!(id.epoch(), 0x5759_e988);
        assert_eq!(id.to_string(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(id.as_u128(), 0x5759_e988_bd86_2e3f_e1be_46a9_9427_2793);
    }

    #[test]
    fn trace_id_parts_and_order_follow_the_w3c_number() {
        let a = TraceId::from_parts(0x5759_e988, 0xbd86_2e3f_e1be_46a9_9427_2793).unwrap();
        assert_eq!((a.epoch(), a.unique()), (0x5759_e988, 0xbd86_2e3f_e1be_46a9_9427_2793));
        assert_eq!(TraceId::from_parts(1, UNIQUE_MASK + 1), None);
        let later_epoch = TraceId::from_parts(0x5759_e989, 0).unwrap();
        assert!(a < later_epoch);
        assert!(TraceId::from_parts(0x5759_e988, 0).unwrap() < a);
    }

    #[test]
    fn trace_id_needs_no_sixteen_byte_alignment() {
        // Every message and batch holds a header: a u128 field would pad each to 16 bytes.
        assert_eq!((size_of::<TraceId>(), align_of::<TraceId>()), (16, 8));
    }

    #[test]
    fn trace_id_rejections() {
        assert_eq!("".parse::<TraceId>(), Err(TraceIdError::WrongLength { len: 0 }));
        assert_eq!(
            "2-5759e988-bd862e3fe1be46a994272793".parse::<TraceId>(),
            Err(TraceIdError::UnsupportedVersion)
        );
        assert_eq!(
            "1_5759e988-bd862e3fe1be46a994272793".parse::<TraceId>(),
            Err(TraceIdError::MissingSeparator)
        );
        assert_eq!(
            "1-5759e98g-bd862e3fe1be46a994272793".parse::<TraceId>(),
            Err(TraceIdError::NonHex)
        );
        // 35 bytes but a multi-byte character: must not panic.
        assert!("1-5759e98é-bd862e3fe1be46a99427279".parse::<TraceId>().is_err());
    }

    #[test]
    fn new_root_is_recent_and_random() {
        let a = TraceId::new_root();
        let b = TraceId::new_root();
        assert!(a.epoch() > 1_600_000_000);
        assert_ne!(a, b);
        assert!(a.unique() <= UNIQUE_MASK);
        assert_eq!(a.to_string().parse::<TraceId>(), Ok(a));
    }

    #[test]
    fn span_id_rules() {
        assert_eq!(
            "53995C3F42CD8AD8".parse::<SpanId>().unwrap().to_string(),
            "53995c3f42cd8ad8"
        );
        assert_eq!("0000000000000000".parse::<SpanId>(), Err(SpanIdError::Zero));
        assert_eq!(
            "53995c3f42cd8ad".parse::<SpanId>(),
            Err(SpanIdError::WrongLength { len: 15 })
        );
        assert_eq!("53995c3f42cd8adz".parse::<SpanId>(), Err(SpanIdError::NonHex));
        assert_eq!(SpanId::from_u64(0), None);
        assert_eq!(SpanId::from_u64(1).unwrap().to_string(), "0000000000000001");
        assert_ne!(SpanId::random().as_u64(), 0);
    }

    #[test]
    fn lineage_rules() {
        assert_eq!(
            Lineage::try_from("a87bd80c:1|68fd508a:5").unwrap().as_str(),
            "a87bd80c:1|68fd508a:5"
        );
        assert_eq!(Lineage::try_from(""), Err(LineageError::Empty));
        assert_eq!(
            Lineage::try_from("ab cd"),
            Err(LineageError::InvalidCharacter { position: 2 })
        );
        assert!(Lineage::try_from("a".repeat(256).as_str()).is_ok());
        assert_eq!(
            Lineage::try_from("a".repeat(257).as_str()),
            Err(LineageError::TooLong { len: 257 })
        );
    }
}
