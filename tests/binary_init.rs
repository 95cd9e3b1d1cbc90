//! The real binary's init (CONTRACT §2): targets read from `RELAY_TARGETS_FILE`, a bad line failing
//! init with its number, and the binary run by hand outside Lambda saying in one line what it is and
//! how to run it — no panic, no backtrace. No AWS stand-in is needed: nothing is published.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use support::runtime_api::{RelayProcess, RuntimeApi};

const WAIT: Duration = Duration::from_secs(30);
const BINARY: &str = env!("CARGO_BIN_EXE_s3-trace-relay");

/// A file with `text` in the system temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("s3-trace-relay-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn targets_are_read_from_the_targets_file() {
    let file = TempFile::new(
        "targets-ok.txt",
        "# uploads\narn:aws:sqs:us-east-1:123456789012:q?events=ObjectCreated:*,ObjectRemoved:*\n\narn:aws:sns:us-east-1:123456789012:t\n",
    );
    let api = RuntimeApi::start().await;
    let relay = RelayProcess::spawn(
        &api,
        &[
            ("RELAY_TARGETS_FILE", file.path()),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
    );
    assert!(api.wait_for_polls(1, WAIT).await, "no /next:\n{}", relay.logs());
    assert_eq!(api.init_error(Duration::ZERO).await, None);
}

#[tokio::test]
async fn a_bad_line_in_the_targets_file_fails_init_naming_it() {
    let file = TempFile::new(
        "targets-bad.txt",
        "arn:aws:sqs:us-east-1:123456789012:q\narn:aws:sqs:us-east-1:123456789012:bad name\n",
    );
    let api = RuntimeApi::start().await;
    let relay = RelayProcess::spawn(&api, &[("RELAY_TARGETS_FILE", file.path())]);
    let error = api
        .init_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("no init error:\n{}", relay.logs()));
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("RELAY_TARGETS_FILE has an invalid value \"line 2: "),
        "{message}"
    );
}

/// Runs the binary by hand: no Lambda environment at all, just `env`.
fn run_by_hand(env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn outside_lambda_the_binary_says_what_it_is_and_how_to_run_it() {
    let output = run_by_hand(&[("RELAY_TARGETS", "arn:aws:sqs:us-east-1:123456789012:q")]);
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("AWS Lambda function") && stderr.contains("cargo lambda watch"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn outside_lambda_a_bad_configuration_is_the_one_line_said() {
    let output = run_by_hand(&[("RELAY_TARGETS", "ftp://nowhere")]);
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(
        stderr.starts_with("s3-trace-relay: RELAY_TARGETS has an invalid value"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_otlp_protocol_the_relay_does_not_speak_fails_init_naming_the_variable() {
    let output = run_by_hand(&[
        ("RELAY_TARGETS", "https://sqs.us-east-1.amazonaws.com/123456789012/out"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    let stderr = stderr_of(&output);
    assert!(!output.status.success());
    assert!(
        stderr.starts_with("s3-trace-relay: OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
