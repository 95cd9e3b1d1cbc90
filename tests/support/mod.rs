//! Shared harness for the integration tests: a Lambda Runtime API stand-in that drives the real
//! `s3-trace-relay` binary, a process-wide moto server standing in for SQS and SNS, and an
//! in-memory publisher with payload builders for driving the relay core in-process.
//!
//! Each test binary declares `mod support;` and uses only part of it, hence the blanket allow.
#![allow(dead_code)]

pub mod fake_publisher;
pub mod fault_proxy;
pub mod http;
pub mod moto;
pub mod otlp;
pub mod payloads;
pub mod relay_process;
pub mod runtime_api;
pub mod watched;

use std::path::{Path, PathBuf};

/// The package root (where Cargo.toml, `events/`, `scripts/` and `.venv/` live).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a fixture: `events/<name>` if it exists, else `tests/fixtures/<name>`.
pub fn fixture_path(name: &str) -> PathBuf {
    let root = repo_root();
    let candidates = [root.join("events").join(name), root.join("tests/fixtures").join(name)];
    for candidate in &candidates {
        if candidate.is_file() {
            return candidate.clone();
        }
    }
    panic!(
        "fixture {name:?} not found; looked at {} and {}",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// Bytes of a fixture from `events/<name>` or `tests/fixtures/<name>` (first found wins).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()))
}

/// Lambda's deadline (milliseconds since the epoch, as `Lambda-Runtime-Deadline-Ms`) `ms_left`
/// from now.
pub fn deadline_in(ms_left: u64) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.expect("clock after 1970").as_millis() as u64 + ms_left
}

/// A fixture parsed as JSON.
pub fn fixture_json(name: &str) -> serde_json::Value {
    let bytes = fixture(name);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("fixture {name:?} is not valid JSON: {e}"))
}
