//! `X-Amzn-Trace-Id` parsing (CONTRACT §5): arbitrary bytes, read as UTF-8 (lossily, so invalid
//! sequences become U+FFFD), through `TraceHeader::from_str`.
//!
//! Never panics; an accepted header came from input without control characters and within
//! `MAX_TRACE_HEADER_BYTES`; its canonical form holds only the characters of the canonical grammar
//! (so nothing from the input can be smuggled out: no control characters, spaces or non-ASCII), is
//! at most `MAX_TRACE_HEADER_BYTES`, re-parses to the same value and is a fixed point; its
//! `traceparent`, when there is one, converts back to the same Root, Parent and sampling decision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_trace_relay::trace::{MAX_TRACE_HEADER_BYTES, TraceHeader};

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Bytes the canonical `Root=…;Parent=…;Sampled=…;Lineage=…` can hold.
fn canonical_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'=' | b';' | b'-' | b'?' | b':' | b'|' | b',')
}

fn check(input: &str) {
    let header = match input.parse::<TraceHeader>() {
        Ok(h) => h,
        Err(e) => {
            // Error messages are logged: they must not echo control characters from the input.
            let message = e.to_string();
            assert!(
                !message.bytes().any(is_control),
                "error message has a control char: {message:?}"
            );
            return;
        }
    };
    assert!(
        input.len() <= MAX_TRACE_HEADER_BYTES,
        "accepted a {}-byte header",
        input.len()
    );
    assert!(
        !input.bytes().any(is_control),
        "accepted a header with a control character"
    );

    let out = header.to_string();
    assert!(
        out.len() <= MAX_TRACE_HEADER_BYTES,
        "canonical form is {} bytes",
        out.len()
    );
    assert!(
        out.bytes().all(canonical_byte),
        "canonical form has a foreign byte: {out:?}"
    );
    assert!(
        out.starts_with("Root=1-"),
        "canonical form does not start with Root: {out:?}"
    );
    let again: TraceHeader = out
        .parse()
        .unwrap_or_else(|e| panic!("canonical form {out:?} does not re-parse: {e}"));
    assert_eq!(again, header, "canonical form {out:?} re-parses to another value");
    assert_eq!(again.to_string(), out, "canonical form is not a fixed point");

    match header.to_traceparent() {
        Some(tp) => {
            assert_eq!(tp.len(), 55);
            assert!(
                tp.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
            );
            let back = TraceHeader::from_traceparent(&tp)
                .unwrap_or_else(|e| panic!("traceparent {tp:?} does not parse back: {e}"));
            assert_eq!(back.root(), header.root());
            assert_eq!(back.parent(), header.parent());
            assert_eq!(back.is_sampled(), header.is_sampled());
        }
        None => assert!(
            header.parent().is_none() || header.root().as_u128() == 0,
            "no traceparent for a header with a Parent and a non-zero Root"
        ),
    }
}
