//! The Lambda function. Everything it does is in the library: [`s3_trace_relay::lambda::run`] on
//! the runtime [`s3_trace_relay::lambda::tokio_runtime`] picks, with the allocator's thresholds
//! fixed first ([`s3_trace_relay::lambda::fix_malloc_thresholds`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    s3_trace_relay::lambda::fix_malloc_thresholds();
    let runtime = match s3_trace_relay::lambda::tokio_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("s3-trace-relay: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(s3_trace_relay::lambda::run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_logged() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("s3-trace-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
