//! Benchmarks of `s3_trace_relay::trace`: parse, canonical format and parse+format of the
//! `X-Amzn-Trace-Id` header (contract §5), for a typical X-Ray SDK header and a Lambda header
//! carrying `Lineage`, plus the W3C `traceparent` conversion. Run with `cargo bench --bench trace`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use s3_trace_relay::trace::TraceHeader;

/// Header as the X-Ray SDKs send it, with `"; "` separators.
const SDK: &str = "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8; Sampled=1";
/// Header as Lambda passes it on, with a `Lineage` field.
const LAMBDA: &str = "Root=1-5f84c7a9-4b6c7e4a0b8d0ad6a42c7e1b;Parent=3b1a0c7b2d9e4f10;Sampled=0;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2";
/// A W3C traceparent.
const TRACEPARENT: &str = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";

fn parse(s: &str) -> TraceHeader {
    match s.parse::<TraceHeader>() {
        Ok(h) => h,
        Err(e) => panic!("benchmark input does not parse: {e}"),
    }
}

fn bench_header(c: &mut Criterion) {
    for (name, input) in [("sdk", SDK), ("lambda_lineage", LAMBDA)] {
        let mut group = c.benchmark_group(format!("trace_header/{name}"));
        group.throughput(Throughput::Elements(1));
        let header = parse(input);
        group.bench_function("parse", |b| {
            b.iter(|| black_box(black_box(input).parse::<TraceHeader>()))
        });
        group.bench_function("format", |b| b.iter(|| black_box(black_box(&header).to_string())));
        group.bench_function("parse_format", |b| {
            b.iter(|| black_box(black_box(input).parse::<TraceHeader>().map(|h| h.to_string())))
        });
        group.finish();
    }
}

fn bench_w3c(c: &mut Criterion) {
    let mut group = c.benchmark_group("traceparent");
    group.throughput(Throughput::Elements(1));
    let header = parse(SDK);
    group.bench_function("to_traceparent", |b| {
        b.iter(|| black_box(black_box(&header).to_traceparent()))
    });
    group.bench_function("from_traceparent", |b| {
        b.iter(|| black_box(TraceHeader::from_traceparent(black_box(TRACEPARENT))))
    });
    group.finish();
}

criterion_group!(benches, bench_header, bench_w3c);
criterion_main!(benches);
