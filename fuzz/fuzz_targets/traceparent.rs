//! W3C `traceparent` parsing (CONTRACT §5): arbitrary bytes, read as UTF-8 (lossily), through
//! `TraceHeader::from_traceparent`.
//!
//! Never panics; an accepted value is exactly `00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase
//! hex>`; `to_traceparent` gives it back with the flags reduced to the sampled bit; the X-Ray form
//! re-parses to the same context.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_trace_relay::trace::{Sampled, TraceHeader};

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});

fn lower_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check(input: &str) {
    let header = match TraceHeader::from_traceparent(input) {
        Ok(h) => h,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.bytes().any(|b| b < 0x20 || b == 0x7f),
                "error message: {message:?}"
            );
            return;
        }
    };
    let fields: Vec<&str> = input.split('-').collect();
    assert_eq!(fields.len(), 4, "accepted {input:?}");
    assert_eq!(fields[0], "00");
    assert!(
        fields[1].len() == 32 && lower_hex(fields[1]),
        "accepted trace-id of {input:?}"
    );
    assert!(
        fields[2].len() == 16 && lower_hex(fields[2]),
        "accepted parent-id of {input:?}"
    );
    assert!(
        fields[3].len() == 2 && lower_hex(fields[3]),
        "accepted flags of {input:?}"
    );
    let flags = u8::from_str_radix(fields[3], 16).expect("checked hex");

    let sampled = if flags & 1 == 1 { Sampled::Yes } else { Sampled::No };
    assert_eq!(header.sampled(), Some(sampled));
    assert!(header.parent().is_some());
    assert_eq!(header.lineage(), None);

    let tp = header
        .to_traceparent()
        .expect("a context from a traceparent has a parent");
    let expected = format!("00-{}-{}-{:02x}", fields[1], fields[2], flags & 1);
    assert_eq!(tp, expected, "round trip of {input:?}");
    assert_eq!(TraceHeader::from_traceparent(&tp), Ok(header.clone()));

    let xray = header.to_string();
    assert_eq!(xray.parse::<TraceHeader>(), Ok(header), "X-Ray form {xray:?}");
}
