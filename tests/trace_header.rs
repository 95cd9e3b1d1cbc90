//! Table-driven tests of `s3_trace_relay::trace` against contract §5 (X-Ray `X-Amzn-Trace-Id`
//! parsing/validation/canonical output, and the W3C `traceparent` conversion).
//!
//! The tables live in `tests/fixtures/trace/*.txt` (format described at the top of `headers.txt`)
//! and are compiled in with `include_str!`; every case carries a description that is printed when
//! it fails. All failures of a table are reported together.

use std::collections::{HashMap, HashSet};

use s3_trace_relay::trace::{
    Lineage, LineageError, MAX_LINEAGE_CHARS, MAX_TRACE_HEADER_BYTES, Sampled, SampledError, SpanId, SpanIdError,
    TraceHeader, TraceHeaderError, TraceId, TraceIdError, TraceparentError, TraceparentField,
};

const HEADERS: &str = include_str!("fixtures/trace/headers.txt");
const TRACEPARENT_PARSE: &str = include_str!("fixtures/trace/traceparent_parse.txt");
const TRACEPARENT_EMIT: &str = include_str!("fixtures/trace/traceparent_emit.txt");

// ------------------------------------------------------------------------------------------------
// Fixture loader
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Out(String),
    Err(String),
    None,
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    line: usize,
    input: String,
    expect: Expect,
}

/// Decodes the body of a quoted piece (escapes `\\ \" \r \n \t \0 \xHH \u{H..}`), returning it and
/// the rest of the line after the closing quote.
fn quoted(s: &str, line: usize) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('r') => out.push('\r'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('x') => {
                    let hex: String = (0..2).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let v = u8::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("line {line}: bad \\x escape"));
                    out.push(char::from(v));
                }
                Some('u') => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('{'), "line {line}: \\u needs {{");
                    let hex: String = chars.by_ref().map(|(_, c)| c).take_while(|&c| c != '}').collect();
                    let v = u32::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("line {line}: bad \\u escape"));
                    out.push(char::from_u32(v).unwrap_or_else(|| panic!("line {line}: bad code point")));
                }
                other => panic!("line {line}: unknown escape {other:?}"),
            },
            c => out.push(c),
        }
    }
    panic!("line {line}: unterminated string");
}

/// Evaluates `"a" + "b"*3 + ...`.
fn expr(mut s: &str, line: usize) -> String {
    let mut out = String::new();
    loop {
        s = s.trim_start();
        let body = s
            .strip_prefix('"')
            .unwrap_or_else(|| panic!("line {line}: expected a quoted string"));
        let (piece, rest) = quoted(body, line);
        let rest = rest.trim_start();
        let (times, rest) = match rest.strip_prefix('*') {
            Some(r) => {
                let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
                (
                    digits
                        .parse::<usize>()
                        .unwrap_or_else(|_| panic!("line {line}: bad repeat")),
                    &r[digits.len()..],
                )
            }
            None => (1, rest),
        };
        out.push_str(&piece.repeat(times));
        let rest = rest.trim_start();
        if rest.is_empty() {
            return out;
        }
        s = rest
            .strip_prefix('+')
            .unwrap_or_else(|| panic!("line {line}: expected + or end of line"));
    }
}

fn load(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut current: Option<(String, usize, Option<String>, Option<Expect>)> = None;
    let mut finish = |current: &mut Option<(String, usize, Option<String>, Option<Expect>)>| {
        if let Some((name, line, input, expect)) = current.take() {
            let input = input.unwrap_or_else(|| panic!("line {line}: case {name:?} has no `in`"));
            let expect = expect.unwrap_or_else(|| panic!("line {line}: case {name:?} has no expectation"));
            cases.push(Case {
                name,
                line,
                input,
                expect,
            });
        }
    };
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (key, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        match key {
            "case" => {
                finish(&mut current);
                current = Some((rest.trim().to_owned(), line, None, None));
            }
            "in" | "out" | "err" | "none" => {
                let Some((_, _, input, expect)) = current.as_mut() else {
                    panic!("line {line}: `{key}` before any `case`");
                };
                match key {
                    "in" => *input = Some(expr(rest, line)),
                    "out" => *expect = Some(Expect::Out(expr(rest, line))),
                    "err" => *expect = Some(Expect::Err(rest.trim().to_owned())),
                    _ => *expect = Some(Expect::None),
                }
            }
            other => panic!("line {line}: unknown directive {other:?}"),
        }
    }
    finish(&mut current);
    let mut names = HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name.clone()), "duplicate case name {:?}", c.name);
    }
    cases
}

/// Printable form of a fixture input for failure messages.
fn show(s: &str) -> String {
    if s.len() > 120 {
        format!("{:?}… ({} bytes)", &s[..s.floor_char_boundary(100)], s.len())
    } else {
        format!("{s:?}")
    }
}

fn report(table: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing case(s) in {table}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn has_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20 || b == 0x7f)
}

// ------------------------------------------------------------------------------------------------
// X-Amzn-Trace-Id table
// ------------------------------------------------------------------------------------------------

#[test]
fn header_table() {
    let cases = load(HEADERS);
    assert!(cases.len() >= 60, "only {} header cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = case.input.parse::<TraceHeader>();
        let ctx = format!("  line {} — {}: input {}", case.line, case.name, show(&case.input));
        match (&case.expect, &got) {
            (Expect::Out(want), Ok(h)) => {
                let out = h.to_string();
                if &out != want {
                    failures.push(format!("{ctx}\n    want {want:?}\n    got  {out:?}"));
                    continue;
                }
                // Canonical output is stable: parsing it gives the same header and the same text.
                match out.parse::<TraceHeader>() {
                    Ok(again) if &again == h && again.to_string() == out => {}
                    other => failures.push(format!("{ctx}\n    canonical output does not round-trip: {other:?}")),
                }
                if has_control(&out) || out.contains(' ') || out.len() > MAX_TRACE_HEADER_BYTES {
                    failures.push(format!("{ctx}\n    canonical output not clean: {out:?}"));
                }
            }
            (Expect::Err(want), Err(e)) => {
                let got = format!("{e:?}");
                if &got != want {
                    failures.push(format!("{ctx}\n    want error {want}\n    got  error {got}"));
                }
                let msg = e.to_string();
                if has_control(&msg) || msg.is_empty() {
                    failures.push(format!("{ctx}\n    error message unsafe to log: {msg:?}"));
                }
            }
            (want, got) => failures.push(format!("{ctx}\n    want {want:?}\n    got  {got:?}")),
        }
    }
    report("headers.txt", failures);
}

#[test]
fn header_table_covers_every_rejection_reason() {
    let cases = load(HEADERS);
    let kinds: HashSet<&str> = cases
        .iter()
        .filter_map(|c| match &c.expect {
            Expect::Err(e) => e.split([' ', '{']).next(),
            _ => None,
        })
        .collect();
    for kind in [
        "TooLong",
        "ControlCharacter",
        "MissingRoot",
        "MalformedRoot",
        "DuplicateRoot",
    ] {
        assert!(kinds.contains(kind), "no case for {kind}");
    }
    let reasons: HashSet<&str> = cases
        .iter()
        .filter_map(|c| match &c.expect {
            Expect::Err(e) => e.strip_prefix("MalformedRoot { reason: ")?.split([' ', '}']).next(),
            _ => None,
        })
        .collect();
    for reason in ["WrongLength", "UnsupportedVersion", "MissingSeparator", "NonHex"] {
        assert!(reasons.contains(reason), "no MalformedRoot case for {reason}");
    }
    // Every control character class the contract names appears in some rejected input.
    for byte in [b'\r', b'\n', b'\0', b'\t', 0x7f] {
        assert!(
            cases
                .iter()
                .any(|c| matches!(c.expect, Expect::Err(_)) && c.input.as_bytes().contains(&byte)),
            "no injection case with byte {byte:#04x}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// W3C tables
// ------------------------------------------------------------------------------------------------

#[test]
fn traceparent_parse_table() {
    let cases = load(TRACEPARENT_PARSE);
    assert!(cases.len() >= 30, "only {} traceparent parse cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = TraceHeader::from_traceparent(&case.input);
        let ctx = format!("  line {} — {}: input {}", case.line, case.name, show(&case.input));
        match (&case.expect, &got) {
            (Expect::Out(want), Ok(h)) => {
                if &h.to_string() != want {
                    failures.push(format!("{ctx}\n    want {want:?}\n    got  {:?}", h.to_string()));
                }
                // Anything accepted converts back to a valid traceparent with normalised flags.
                let back = h.to_traceparent();
                let expected_back = format!("{}{}", &case.input[..53], if h.is_sampled() { "01" } else { "00" });
                if back.as_deref() != Some(expected_back.as_str()) {
                    failures.push(format!(
                        "{ctx}\n    to_traceparent gave {back:?}, want {expected_back:?}"
                    ));
                }
            }
            (Expect::Err(want), Err(e)) => {
                let got = format!("{e:?}");
                if &got != want {
                    failures.push(format!("{ctx}\n    want error {want}\n    got  error {got}"));
                }
                if has_control(&e.to_string()) {
                    failures.push(format!("{ctx}\n    error message unsafe to log: {e}"));
                }
            }
            (want, got) => failures.push(format!("{ctx}\n    want {want:?}\n    got  {got:?}")),
        }
    }
    report("traceparent_parse.txt", failures);
}

#[test]
fn traceparent_emit_table() {
    let cases = load(TRACEPARENT_EMIT);
    assert!(cases.len() >= 8, "only {} traceparent emit cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let ctx = format!("  line {} — {}: input {}", case.line, case.name, show(&case.input));
        let header = match case.input.parse::<TraceHeader>() {
            Ok(h) => h,
            Err(e) => {
                failures.push(format!("{ctx}\n    fixture header does not parse: {e:?}"));
                continue;
            }
        };
        let got = header.to_traceparent();
        let want = match &case.expect {
            Expect::Out(s) => Some(s.clone()),
            Expect::None => None,
            Expect::Err(_) => {
                failures.push(format!("{ctx}\n    `err` is not meaningful here"));
                continue;
            }
        };
        if got != want {
            failures.push(format!("{ctx}\n    want {want:?}\n    got  {got:?}"));
            continue;
        }
        if let Some(tp) = got {
            match TraceHeader::from_traceparent(&tp) {
                Ok(back) => {
                    if back.root() != header.root() || back.parent() != header.parent() {
                        failures.push(format!("{ctx}\n    round trip changed ids: {back:?}"));
                    }
                    if back.is_sampled() != header.is_sampled() {
                        failures.push(format!("{ctx}\n    round trip changed sampling: {back:?}"));
                    }
                }
                Err(e) => failures.push(format!("{ctx}\n    emitted traceparent does not parse: {e:?}")),
            }
        }
    }
    report("traceparent_emit.txt", failures);
}

#[test]
fn traceparent_tables_cover_every_rejection_reason() {
    let cases = load(TRACEPARENT_PARSE);
    let errs: Vec<&str> = cases
        .iter()
        .filter_map(|c| match &c.expect {
            Expect::Err(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    for kind in [
        "MissingFields",
        "ExtraFields",
        "WrongLength { field: Version",
        "WrongLength { field: TraceId",
        "WrongLength { field: ParentId",
        "WrongLength { field: Flags",
        "NonHex { field: Version",
        "NonHex { field: TraceId",
        "NonHex { field: ParentId",
        "NonHex { field: Flags",
        "UppercaseHex { field: Version",
        "UppercaseHex { field: TraceId",
        "UppercaseHex { field: ParentId",
        "UppercaseHex { field: Flags",
        "InvalidVersion",
        "UnsupportedVersion",
        "ZeroTraceId",
        "ZeroParentId",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(kind)),
            "no traceparent case for {kind}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// API behaviour not expressible as a table
// ------------------------------------------------------------------------------------------------

const LAMBDA: &str = "Root=1-5f84c7a9-4b6c7e4a0b8d0ad6a42c7e1b;Parent=3b1a0c7b2d9e4f10;Sampled=0;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2";

#[test]
fn accessors_expose_parsed_fields() {
    let h: TraceHeader = LAMBDA.parse().unwrap();
    assert_eq!(h.root().to_string(), "1-5f84c7a9-4b6c7e4a0b8d0ad6a42c7e1b");
    assert_eq!(h.root().epoch(), 0x5f84_c7a9);
    assert_eq!(h.parent().map(|p| p.as_u64()), Some(0x3b1a_0c7b_2d9e_4f10));
    assert_eq!(h.sampled(), Some(Sampled::No));
    assert!(!h.is_sampled());
    assert_eq!(
        h.lineage().map(Lineage::as_str),
        Some("a87bd80c:1|68fd508a:5|c512fbe3:2")
    );
}

#[test]
fn is_sampled_only_for_sampled_1() {
    let root = TraceId::new_root();
    assert!(TraceHeader::new(root).with_sampled(Some(Sampled::Yes)).is_sampled());
    assert!(!TraceHeader::new(root).with_sampled(Some(Sampled::No)).is_sampled());
    assert!(
        !TraceHeader::new(root)
            .with_sampled(Some(Sampled::Requested))
            .is_sampled()
    );
    assert!(!TraceHeader::new(root).is_sampled());
}

#[test]
fn builders_replace_fields_and_keep_the_rest() {
    let h: TraceHeader = LAMBDA.parse().unwrap();
    let mine = SpanId::from_u64(0x0123_4567_89ab_cdef).unwrap();
    let next = h.with_parent(mine);
    assert_eq!(next.root(), h.root());
    assert_eq!(next.parent(), Some(mine));
    assert_eq!(next.sampled(), h.sampled());
    assert_eq!(next.lineage(), h.lineage());
    assert_eq!(
        next.to_string(),
        "Root=1-5f84c7a9-4b6c7e4a0b8d0ad6a42c7e1b;Parent=0123456789abcdef;Sampled=0;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2"
    );
    let stripped = next.clone().with_sampled(None).with_lineage(None).without_parent();
    assert_eq!(stripped, TraceHeader::new(*h.root()));
    assert_eq!(stripped.to_string(), "Root=1-5f84c7a9-4b6c7e4a0b8d0ad6a42c7e1b");
    let relineaged = stripped.with_lineage(Some(Lineage::try_from("x:1").unwrap()));
    assert_eq!(
        relineaged.to_string(),
        "Root=1-5f84c7a9-4b6c7e4a0b8d0ad6a42c7e1b;Lineage=x:1"
    );
}

#[test]
fn spellings_of_one_context_group_under_one_hashmap_key() {
    let spellings = [
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8; Sampled=1",
        "sampled=1;PARENT=53995C3F42CD8AD8;root=1-5759E988-BD862E3FE1BE46A994272793;Self=1-5759e989-bd862e3fe1be46a994272793",
        " Root = 1-5759e988-bd862e3fe1be46a994272793 ;; Parent=53995c3f42cd8ad8;Sampled=1;Foo=bar;Lineage=bad chars",
    ];
    let mut groups: HashMap<TraceHeader, usize> = HashMap::new();
    for s in spellings {
        *groups.entry(s.parse().unwrap()).or_default() += 1;
    }
    assert_eq!(groups.len(), 1);
    assert_eq!(groups.values().copied().next(), Some(4));
    // ...and a different Sampled is a different context.
    let other: TraceHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
        .parse()
        .unwrap();
    assert!(!groups.contains_key(&other));
}

#[test]
fn error_messages_say_why_without_echoing_input() {
    let e = "Root=1-5759e988-bd862e3fe1be46a994272793\r\nEvil: yes"
        .parse::<TraceHeader>()
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("0x0d") && msg.contains("40"), "{msg}");
    assert!(!msg.contains("Evil") && !has_control(&msg), "{msg}");

    let e = "Root=1-5759e988-bd862e3fe1be46a99427279Z"
        .parse::<TraceHeader>()
        .unwrap_err();
    assert!(e.to_string().contains("hexadecimal"), "{e}");
    assert!(!e.to_string().contains("99427279Z"), "{e}");

    let e = "x".repeat(2000).parse::<TraceHeader>().unwrap_err();
    assert_eq!(e.to_string(), "trace header is 2000 bytes; at most 1024 are allowed");
    assert_eq!(
        "".parse::<TraceHeader>().unwrap_err().to_string(),
        "trace header has no Root field"
    );

    let e = TraceHeader::from_traceparent("00-5759E988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01").unwrap_err();
    assert_eq!(
        e,
        TraceparentError::UppercaseHex {
            field: TraceparentField::TraceId
        }
    );
    assert_eq!(
        e.to_string(),
        "traceparent trace-id has uppercase hex; W3C requires lowercase"
    );
    let e = TraceHeader::from_traceparent("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad-01").unwrap_err();
    assert_eq!(
        e.to_string(),
        "traceparent parent-id must be 16 hex characters, found 15 bytes"
    );
}

#[test]
fn errors_are_std_errors() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    is_error(&TraceHeaderError::MissingRoot);
    is_error(&TraceparentError::ZeroTraceId);
    is_error(&TraceIdError::NonHex);
    is_error(&SpanIdError::Zero);
    is_error(&SampledError);
    is_error(&LineageError::Empty);
}

#[test]
fn trace_id_api() {
    let id: TraceId = "1-5759E988-bd862e3fe1be46a994272793".parse().unwrap();
    assert_eq!(id.to_string(), "1-5759e988-bd862e3fe1be46a994272793");
    assert_eq!(id.epoch(), 0x5759_e988);
    assert_eq!(id.unique(), 0xbd86_2e3f_e1be_46a9_9427_2793);
    assert_eq!(
        TraceId::from_parts(0x5759_e988, 0xbd86_2e3f_e1be_46a9_9427_2793),
        Some(id)
    );
    assert_eq!(TraceId::from_parts(1, 1 << 96), None);
    assert_eq!(
        " 1-5759e988-bd862e3fe1be46a994272793".parse::<TraceId>(),
        Err(TraceIdError::WrongLength { len: 36 })
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = TraceId::new_root();
    assert!(
        u64::from(fresh.epoch()).abs_diff(now) <= 5,
        "epoch {} vs now {now}",
        fresh.epoch()
    );
    assert_ne!(fresh, TraceId::new_root());
    assert_eq!(fresh.to_string().len(), 35);
}

#[test]
fn span_id_api() {
    assert_eq!(SpanId::from_u64(0), None);
    let id = SpanId::from_u64(0x53995c3f42cd8ad8).unwrap();
    assert_eq!(id.as_u64(), 0x53995c3f42cd8ad8);
    assert_eq!(id.to_string(), "53995c3f42cd8ad8");
    assert_eq!("53995C3F42CD8AD8".parse::<SpanId>(), Ok(id));
    assert_eq!("0000000000000000".parse::<SpanId>(), Err(SpanIdError::Zero));
    assert_eq!("1234".parse::<SpanId>(), Err(SpanIdError::WrongLength { len: 4 }));
    assert_eq!("123456789abcdefg".parse::<SpanId>(), Err(SpanIdError::NonHex));
    let randoms: HashSet<SpanId> = (0..1000).map(|_| SpanId::random()).collect();
    assert_eq!(randoms.len(), 1000);
    assert!(randoms.iter().all(|s| s.as_u64() != 0 && s.to_string().len() == 16));
}

#[test]
fn sampled_api() {
    for (s, v) in [("1", Sampled::Yes), ("0", Sampled::No), ("?", Sampled::Requested)] {
        assert_eq!(s.parse::<Sampled>(), Ok(v));
        assert_eq!(v.as_str(), s);
        assert_eq!(v.to_string(), s);
    }
    assert_eq!("yes".parse::<Sampled>(), Err(SampledError));
}

#[test]
fn lineage_api() {
    let l = Lineage::try_from("a87bd80c:1|68fd508a:5|c512fbe3:2").unwrap();
    assert_eq!(l.as_str(), "a87bd80c:1|68fd508a:5|c512fbe3:2");
    assert_eq!(l.to_string(), l.as_str());
    assert_eq!(Lineage::try_from(""), Err(LineageError::Empty));
    let max = "Z".repeat(MAX_LINEAGE_CHARS);
    assert_eq!(Lineage::try_from(max.as_str()).map(|l| l.as_str().len()), Ok(256));
    let over = "Z".repeat(MAX_LINEAGE_CHARS + 1);
    assert_eq!(
        Lineage::try_from(over.as_str()),
        Err(LineageError::TooLong { len: 257 })
    );
    assert_eq!(
        Lineage::try_from("ab;c"),
        Err(LineageError::InvalidCharacter { position: 2 })
    );
    assert_eq!(
        Lineage::try_from("ab\r\n"),
        Err(LineageError::InvalidCharacter { position: 2 })
    );
}

#[test]
fn limits_match_the_contract() {
    assert_eq!(MAX_TRACE_HEADER_BYTES, 1024);
    assert_eq!(MAX_LINEAGE_CHARS, 256);
}

#[test]
fn longest_canonical_header_is_well_under_the_limit() {
    let h = TraceHeader::new(TraceId::new_root())
        .with_parent(SpanId::random())
        .with_sampled(Some(Sampled::Requested))
        .with_lineage(Some(Lineage::try_from("a".repeat(MAX_LINEAGE_CHARS).as_str()).unwrap()));
    let s = h.to_string();
    assert_eq!(s.len(), 339);
    assert_eq!(s.parse::<TraceHeader>(), Ok(h));
}

#[test]
fn to_traceparent_maps_fields() {
    let h: TraceHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        .parse()
        .unwrap();
    assert_eq!(
        h.to_traceparent().as_deref(),
        Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
    );
    assert_eq!(
        h.clone()
            .with_sampled(Some(Sampled::Requested))
            .to_traceparent()
            .as_deref()
            .map(|s| &s[53..]),
        Some("00")
    );
    assert_eq!(h.without_parent().to_traceparent(), None);
}

#[test]
fn from_traceparent_fills_all_three_fields() {
    let h = TraceHeader::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(h.root().to_string(), "1-4bf92f35-77b34da6a3ce929d0e0e4736");
    assert_eq!(h.parent().map(|p| p.to_string()).as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(h.sampled(), Some(Sampled::Yes));
    assert_eq!(h.lineage(), None);
}
