//! Peak heap of one streamed invocation, counted by a global allocator: how many bytes the relay
//! holds at most beyond the payload itself, which peak RSS (the latency bench) mixes with mapped
//! code and the allocator's slack.
//!
//! ```text
//! python3 -c 'import sys; sys.path.insert(0, "bench/latency"); import latency
//! sys.stdout.buffer.write(latency.sqs_event(10000, 1))' > /tmp/sqs-10000-1.json
//! cargo run --release --example heap_peak -- /tmp/sqs-10000-1.json
//! ```
//!
//! The payload goes through `Relay::handle_payload` (what Lambda calls) to one SQS queue and one
//! SNS topic, each call answered after 1 ms by a publisher that accepts every entry.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use s3_trace_relay::config::Destination;
use s3_trace_relay::failure::CallError;
use s3_trace_relay::message::Batch;
use s3_trace_relay::publish::{CallReport, EntryOutcome, Publisher};
use s3_trace_relay::{InvocationInfo, Relay, RelayConfig};

/// The system allocator, counting the bytes live and the most ever live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    PEAK.fetch_max(LIVE.fetch_add(by, Relaxed) + by, Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; only the counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match new_size.checked_sub(layout.size()) {
            Some(more) => grew(more),
            None => {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Accepts every entry after 1 ms.
struct AcceptAfterOneMs;

impl Publisher for AcceptAfterOneMs {
    async fn send(&self, _: &Destination, batch: &Batch) -> Result<CallReport, CallError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(CallReport::new(vec![EntryOutcome::Delivered; batch.messages.len()]))
    }
}

const TARGETS: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/q,arn:aws:sns:us-east-1:123456789012:t";

#[tokio::main]
async fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: heap_peak <payload.json>");
        return ExitCode::FAILURE;
    };
    let payload = match std::fs::read(&path) {
        Ok(bytes) => bytes::Bytes::from(bytes),
        Err(e) => {
            eprintln!("heap_peak: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = RelayConfig::from_lookup(|name| (name == "RELAY_TARGETS").then(|| TARGETS.to_owned()));
    let Ok(config) = config else {
        eprintln!("heap_peak: the targets do not parse");
        return ExitCode::FAILURE;
    };
    let relay = Relay::new(Arc::new(config), AcceptAfterOneMs);
    let info = InvocationInfo {
        request_id: "heap-peak".into(),
        ..InvocationInfo::default()
    };
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    if let Err(e) = relay.handle_payload(payload, &info).await {
        eprintln!("heap_peak: the invocation failed: {e}");
        return ExitCode::FAILURE;
    }
    let peak = PEAK.load(Relaxed);
    println!(
        "{path}: {before} bytes live before (the payload among them), peak {peak}: {} more",
        peak - before
    );
    ExitCode::SUCCESS
}
