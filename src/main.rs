//! The Lambda function. Everything it does is in the library: [`s3_trace_relay::lambda::run`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match s3_trace_relay::lambda::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_logged() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("s3-trace-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
