//! Property tests of `s3_trace_relay::trace` (contract §5): canonical output round-trips, is clean
//! and bounded; the lenient parser accepts any re-spelling of a valid header; parsing never panics on
//! arbitrary text or bytes; X-Ray ↔ W3C `traceparent` conversion keeps root, parent and sampling.

use proptest::prelude::*;
use s3_trace_relay::trace::{
    Lineage, MAX_LINEAGE_CHARS, MAX_TRACE_HEADER_BYTES, Sampled, SpanId, TraceHeader, TraceId,
};

// ------------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------------

fn trace_id() -> impl Strategy<Value = TraceId> {
    (any::<u32>(), any::<u128>()).prop_filter_map("96-bit unique", |(epoch, unique)| {
        TraceId::from_parts(epoch, unique & ((1u128 << 96) - 1))
    })
}

fn span_id() -> impl Strategy<Value = SpanId> {
    (1..=u64::MAX).prop_filter_map("non-zero", SpanId::from_u64)
}

fn sampled() -> impl Strategy<Value = Sampled> {
    prop_oneof![Just(Sampled::Yes), Just(Sampled::No), Just(Sampled::Requested)]
}

fn lineage() -> impl Strategy<Value = Lineage> {
    "[0-9A-Za-z:|,]{1,256}".prop_filter_map("valid lineage", |s| Lineage::try_from(s.as_str()).ok())
}

fn header() -> impl Strategy<Value = TraceHeader> {
    (
        trace_id(),
        proptest::option::of(span_id()),
        proptest::option::of(sampled()),
        proptest::option::of(lineage()),
    )
        .prop_map(|(root, parent, sampled, lineage)| {
            let h = TraceHeader::new(root).with_sampled(sampled).with_lineage(lineage);
            match parent {
                Some(p) => h.with_parent(p),
                None => h,
            }
        })
}

/// Randomly re-cases ASCII letters, as producers may send keys and hex in either case.
fn recase(s: &str, mask: &[bool]) -> String {
    s.chars()
        .zip(mask.iter().cycle())
        .map(|(c, &upper)| {
            if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Fragments that look like header pieces, for structured fuzzing.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Root=1-5759e988-bd862e3fe1be46a994272793".to_owned()),
        Just("root=1-5759E988-BD862E3FE1BE46A994272793".to_owned()),
        Just("Parent=53995c3f42cd8ad8".to_owned()),
        Just("Sampled=1".to_owned()),
        Just("Sampled=?".to_owned()),
        Just("Lineage=a87bd80c:1|68fd508a:5".to_owned()),
        Just("Self=1-67891234-12456789abcdef012345678".to_owned()),
        Just(" ".to_owned()),
        Just("=".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{0}".to_owned()),
        Just("é".to_owned()),
        "[A-Za-z]{0,8}=[ -~]{0,40}",
        "Root=[0-9a-fA-F-]{0,40}",
        "Parent=[0-9a-fA-F]{0,20}",
        "Lineage=[ -~]{0,300}",
    ]
}

/// Checks every promise about an accepted header; used on all parser outputs.
fn assert_canonical(h: &TraceHeader) -> Result<(), TestCaseError> {
    let out = h.to_string();
    prop_assert!(out.len() <= MAX_TRACE_HEADER_BYTES, "too long: {}", out.len());
    prop_assert!(
        !out.bytes().any(|b| b < 0x20 || b == 0x7f || b == b' '),
        "unclean: {out:?}"
    );
    prop_assert!(out.is_ascii());
    prop_assert!(out.starts_with("Root=1-"));
    let again: TraceHeader = out.parse().map_err(|e| TestCaseError::fail(format!("{e}: {out:?}")))?;
    prop_assert_eq!(&again, h);
    prop_assert_eq!(again.to_string(), out);
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// parse(display(x)) == x, and the output is clean and within the limit.
    #[test]
    fn canonical_round_trip(h in header()) {
        let s = h.to_string();
        prop_assert_eq!(s.parse::<TraceHeader>(), Ok(h.clone()));
        prop_assert!(s.len() <= 339);
        assert_canonical(&h)?;
    }

    /// Any lenient re-spelling of a valid header (key/hex case, spaces, order, empty parts, junk
    /// parts, Self) parses to the same header. Lineage keeps its case, so it is not re-cased.
    #[test]
    fn lenient_spellings_parse_to_the_same_header(
        h in header(),
        mask in proptest::collection::vec(any::<bool>(), 1..16),
        pad in proptest::collection::vec(" {0,3}", 12),
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let p = |i: usize| pad.get(i).map(String::as_str).unwrap_or("");
        let mut parts: Vec<Option<String>> = vec![
            Some(format!("{}{}{}={}{}{}", p(0), recase("Root", &mask), p(1), p(2), recase(&h.root().to_string(), &mask), p(3))),
            h.parent().map(|x| format!("{}{}={}{}", p(4), recase("parent", &mask), recase(&x.to_string(), &mask), p(5))),
            h.sampled().map(|x| format!("{}={}{}", recase("SAMPLED", &mask), p(6), x)),
            h.lineage().map(|x| format!("{}{} = {}", p(7), recase("lineage", &mask), x)),
            Some(format!("{}Self=1-5759e989-bd862e3fe1be46a994272793{}", p(8), p(9))),
            Some(format!("{}junk{}", p(10), p(11))),
        ];
        let mut spelled: Vec<String> = Vec::new();
        for &i in &order {
            if let Some(part) = parts.get_mut(i).and_then(Option::take) {
                spelled.push(part);
                spelled.push(String::new()); // an empty part after each
            }
        }
        let s = spelled.join(";");
        prop_assume!(s.len() <= MAX_TRACE_HEADER_BYTES);
        prop_assert_eq!(s.parse::<TraceHeader>(), Ok(h));
    }

    /// Parsing arbitrary Unicode strings never panics, and whatever is accepted is canonical-clean.
    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        if let Ok(h) = s.parse::<TraceHeader>() { assert_canonical(&h)?; }
        let _ = TraceHeader::from_traceparent(&s);
    }

    /// Parsing arbitrary bytes (lossy UTF-8), including over-long inputs, never panics.
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let s = String::from_utf8_lossy(&bytes);
        match s.parse::<TraceHeader>() {
            Ok(h) => assert_canonical(&h)?,
            Err(e) => prop_assert!(!e.to_string().bytes().any(|b| b < 0x20 || b == 0x7f)),
        }
        let _ = TraceHeader::from_traceparent(&s);
    }

    /// Structured fuzzing: header-like fragments joined by `;` — accepted results are canonical,
    /// rejections are explained, and control characters are always rejected.
    #[test]
    fn never_panics_on_header_like_input(frags in proptest::collection::vec(fragment(), 0..12)) {
        let s = frags.join(";");
        match s.parse::<TraceHeader>() {
            Ok(h) => {
                prop_assert!(!s.bytes().any(|b| b < 0x20 || b == 0x7f));
                prop_assert!(s.len() <= MAX_TRACE_HEADER_BYTES);
                if let Some(l) = h.lineage() { prop_assert!(l.as_str().len() <= MAX_LINEAGE_CHARS); }
                assert_canonical(&h)?;
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Header with a Parent → traceparent → header keeps root and parent; sampling becomes Yes for
    /// Sampled=1 and No otherwise; Lineage is not carried.
    #[test]
    fn traceparent_round_trip(h in header(), parent in span_id()) {
        let h = h.with_parent(parent);
        prop_assume!(h.root().as_u128() != 0);
        let tp = h.to_traceparent().ok_or_else(|| TestCaseError::fail("no traceparent"))?;
        prop_assert_eq!(tp.len(), 55);
        prop_assert!(tp.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let back = TraceHeader::from_traceparent(&tp).map_err(|e| TestCaseError::fail(format!("{e}: {tp}")))?;
        prop_assert_eq!(back.root(), h.root());
        prop_assert_eq!(back.parent(), Some(parent));
        let want = if h.is_sampled() { Sampled::Yes } else { Sampled::No };
        prop_assert_eq!(back.sampled(), Some(want));
        prop_assert_eq!(back.lineage(), None);
        prop_assert_eq!(back.to_traceparent(), Some(tp));
    }

    /// A header without a Parent has no traceparent.
    #[test]
    fn no_traceparent_without_parent(h in header()) {
        prop_assert_eq!(h.without_parent().to_traceparent(), None);
    }

    /// Valid W3C values (lowercase, non-zero ids, any flags) are accepted and re-emitted with the
    /// sampled flag normalised to 00/01.
    #[test]
    fn valid_traceparents_are_accepted(
        trace in 1..=u128::MAX,
        parent in 1..=u64::MAX,
        flags in any::<u8>(),
    ) {
        let tp = format!("00-{trace:032x}-{parent:016x}-{flags:02x}");
        let h = TraceHeader::from_traceparent(&tp).map_err(|e| TestCaseError::fail(format!("{e}: {tp}")))?;
        prop_assert_eq!(h.root().as_u128(), trace);
        prop_assert_eq!(h.parent().map(|p| p.as_u64()), Some(parent));
        prop_assert_eq!(h.is_sampled(), flags & 1 == 1);
        let want = format!("00-{trace:032x}-{parent:016x}-{:02x}", flags & 1);
        prop_assert_eq!(h.to_traceparent(), Some(want));
        // Uppercase spelling is rejected when it changes anything.
        let upper = tp.to_ascii_uppercase();
        if upper != tp { prop_assert!(TraceHeader::from_traceparent(&upper).is_err()); }
    }

    /// Adding a control character anywhere to a valid header makes it invalid.
    #[test]
    fn control_characters_anywhere_are_rejected(
        h in header(),
        at in any::<prop::sample::Index>(),
        c in prop_oneof![0u8..0x20, Just(0x7fu8)],
    ) {
        let s = h.to_string();
        let i = at.index(s.len() + 1);
        let injected = format!("{}{}{}", &s[..i], char::from(c), &s[i..]);
        let rejected = matches!(
            injected.parse::<TraceHeader>(),
            Err(s3_trace_relay::trace::TraceHeaderError::ControlCharacter { position, byte })
                if position == i && byte == c
        );
        prop_assert!(rejected, "{injected:?}");
    }
}
