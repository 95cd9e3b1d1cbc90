//! Init-phase failure reporting.
//!
//! A misconfigured function must fail its init with one clear line, and publish nothing. Returning an
//! error from `main` alone only shows Lambda an exit code (`Runtime.ExitError`), so the error is also
//! posted to the Runtime API's `/runtime/init/error`, where Lambda surfaces its message to the caller
//! of the failed invocation and in the function's logs.

use lambda_runtime::Diagnostic;
use lambda_runtime_api_client::body::Body;

/// Runtime API path for init errors.
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";
/// Error type reported for configuration errors.
pub const CONFIG_ERROR_TYPE: &str = "S3TraceRelay.ConfigError";

/// Logs the error and reports it to the Runtime API's `/runtime/init/error`.
pub async fn fail_init(error: &(dyn std::error::Error + Send + Sync)) {
    tracing::error!(error = crate::logs::text(&error).as_str(), "init failed");
    let diagnostic = Diagnostic {
        error_type: CONFIG_ERROR_TYPE.to_owned(),
        error_message: error.to_string(),
    };
    if let Err(report) = report(&diagnostic).await {
        tracing::warn!(
            error = crate::logs::text(&report).as_str(),
            "could not report the init error to the Runtime API"
        );
    }
}

async fn report(diagnostic: &Diagnostic) -> Result<(), lambda_runtime::Error> {
    let client = lambda_runtime_api_client::Client::builder().build()?;
    let body = serde_json::to_vec(diagnostic)?;
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri(INIT_ERROR_PATH)
        .header("lambda-runtime-function-error-type", CONFIG_ERROR_TYPE)
        .body(Body::from(body))?;
    let response = client.call(request).await?;
    if !response.status().is_success() {
        return Err(format!("Runtime API answered {}", response.status()).into());
    }
    Ok(())
}
