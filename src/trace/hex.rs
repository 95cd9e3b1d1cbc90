//! Allocation-free hexadecimal helpers shared by the X-Ray and W3C codecs.
//!
//! X-Ray accepts hex digits of either case on input (contract §5); W3C Trace Context requires
//! lowercase (<https://www.w3.org/TR/trace-context/#traceparent-header-field-values>). Both are
//! always written lowercase. No indexing: nothing here can panic.

/// Why a run of characters is not the hex the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HexDefect {
    /// A character outside `[0-9A-Fa-f]`.
    NonHex,
    /// Valid hex but with an uppercase digit, where only lowercase is allowed (W3C).
    Uppercase,
}

/// Marker in [`DIGITS`] for a byte that is not a hex digit.
const NOT_HEX: u8 = 0xff;

/// Value of every byte as a hex digit of either case, or [`NOT_HEX`]: one load per character
/// instead of a chain of range comparisons. Indexed by a `u8`, so it can never go out of bounds.
const DIGITS: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Value of one hex digit of either case.
#[inline]
fn digit(b: u8) -> Option<u8> {
    let d = DIGITS.get(usize::from(b)).copied().unwrap_or(NOT_HEX);
    if d == NOT_HEX { None } else { Some(d) }
}

/// Decodes up to 16 hex digits of either case (longer input silently loses high bits; callers pass
/// fixed-length fields).
#[inline]
pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &b in bytes {
        v = (v << 4) | u64::from(digit(b)?);
    }
    Some(v)
}

/// Decodes up to 32 hex digits of either case.
#[inline]
pub(crate) fn decode_u128(bytes: &[u8]) -> Option<u128> {
    let mut v: u128 = 0;
    for &b in bytes {
        v = (v << 4) | u128::from(digit(b)?);
    }
    Some(v)
}

/// Decodes up to 32 lowercase hex digits, telling non-hex apart from uppercase (W3C fields).
#[inline]
pub(crate) fn decode_lower_u128(bytes: &[u8]) -> Result<u128, HexDefect> {
    let mut v: u128 = 0;
    let mut uppercase = false;
    for &b in bytes {
        let d = digit(b).ok_or(HexDefect::NonHex)?;
        uppercase |= b.is_ascii_uppercase();
        v = (v << 4) | u128::from(d);
    }
    if uppercase { Err(HexDefect::Uppercase) } else { Ok(v) }
}

/// Lowercase hex character for the low nibble of `n`.
#[inline]
fn nibble(n: u128) -> u8 {
    let n = (n & 0xf) as u8;
    if n < 10 { b'0' + n } else { b'a' + (n - 10) }
}

/// Writes `v` as lowercase hex, zero-padded to fill `out` (the low `4 * out.len()` bits of `v`).
#[inline]
pub(crate) fn encode_lower(mut v: u128, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = nibble(v);
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_cases_and_rejects_non_hex() {
        assert_eq!(decode_u64(b"53995C3f42cd8aD8"), Some(0x5399_5c3f_42cd_8ad8));
        assert_eq!(decode_u64(b"5g"), None);
        assert_eq!(decode_u128(b"ffFF"), Some(0xffff));
        assert_eq!(decode_lower_u128(b"ab"), Ok(0xab));
        assert_eq!(decode_lower_u128(b"aB"), Err(HexDefect::Uppercase));
        assert_eq!(decode_lower_u128(b"Ag"), Err(HexDefect::NonHex));
    }

    #[test]
    fn encodes_zero_padded_lowercase() {
        let mut out = [0u8; 8];
        encode_lower(0xab_cdef, &mut out);
        assert_eq!(&out, b"00abcdef");
    }
}
