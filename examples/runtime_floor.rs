//! The floor for the time to the first call: a `lambda_runtime` function that only receives each
//! invocation and answers `{}`. Its handler gets no event (a layer sets the body aside before the
//! runtime types it, as the relay's does), on one thread (as the relay serves one invocation at a
//! time), so an invocation takes what the runtime itself takes to read a body into one buffer and
//! send the answer. `bench/latency/latency.py` times it on the largest payload next to the relay's
//! time to its first call.
//!
//! ```sh
//! cargo build --release --example runtime_floor
//! ```

use lambda_runtime::tower::util::MapRequestLayer;
use lambda_runtime::{Error, LambdaEvent, LambdaInvocation, Runtime, service_fn};
use serde::de::IgnoredAny;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let handler = service_fn(|_: LambdaEvent<IgnoredAny>| async { Ok::<Value, Error>(json!({})) });
    Runtime::new(handler)
        .layer(MapRequestLayer::new(|mut invocation: LambdaInvocation| {
            invocation.body = bytes::Bytes::from_static(b"null");
            invocation
        }))
        .run()
        .await
}
