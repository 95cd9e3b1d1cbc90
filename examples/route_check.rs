//! Which targets a record goes to under a `RELAY_TARGETS` value, decided by the relay's own
//! configuration parser and routing: a check for deployment tooling (the CDK tests run it for every
//! member of `s3.EventType`, so a construct can never hand the relay a filter it refuses).
//!
//! ```sh
//! RELAY_TARGETS='https://sqs.us-east-1.amazonaws.com/123456789012/q?events=IntelligentTiering' \
//!     cargo run --quiet --example route_check -- uploads/a.txt IntelligentTiering ObjectCreated:Put
//! ```
//!
//! Prints one JSON object, `{"targets":["<address>",…],"routes":{"<event name>":[<target index>,…]}}`;
//! an invalid configuration prints the init error on stderr and exits with status 1.

use std::process::ExitCode;

use s3_trace_relay::RelayConfig;
use s3_trace_relay::route::route;
use serde_json::{Map, Value, json};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(key) = args.next() else {
        eprintln!("usage: route_check <decoded object key> <event name>...  (RELAY_TARGETS from the environment)");
        return ExitCode::from(2);
    };
    let config = match RelayConfig::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let routes: Map<String, Value> = args
        .map(|event_name| {
            let filters = config.targets.iter().map(|t| t.filters.as_slice());
            let targets: Vec<usize> = route(filters, &key, &event_name).collect();
            (event_name, json!(targets))
        })
        .collect();
    let targets: Vec<String> = config.targets.iter().map(|t| t.destination.to_string()).collect();
    println!("{}", json!({ "targets": targets, "routes": routes }));
    ExitCode::SUCCESS
}
