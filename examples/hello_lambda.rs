//! The floor for cold start: a `lambda_runtime` function that does nothing. `bench/latency/run.py`
//! times its init (exec → first `/next`) next to the relay's and its peers'.
//!
//! ```sh
//! cargo build --release --example hello_lambda
//! ```

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async { Ok::<_, Error>(()) })).await
}
