//! Logs (CONTRACT §7): Lambda's log format and level, and values from input written so that no one
//! can forge a log line.
//!
//! `lambda_runtime`'s default subscriber writes text lines with ANSI colour codes whatever stdout
//! is, and a value logged with `Display` reaches the text format raw: an object key whose escapes
//! decode to a newline starts a new, forged line. Here colour is used only when stdout is a
//! terminal, and every value from input (keys, buckets, message ids, error texts that quote them) is
//! recorded as a string field through [`input`] or [`text`]: the text format writes string fields
//! quoted and escaped (`key="a\nb"`), the JSON format as plain JSON strings; and both are cut to a
//! bounded length, so a 1 MiB key cannot make a 1 MiB log line.

use std::fmt::Display;
use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

use crate::config::{AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL, RUST_LOG};

/// Longest value from input kept in a log field (S3 keys are at most 1,024 bytes).
pub const MAX_LOGGED_BYTES: usize = 1024;
/// Longest error text kept in a log field: errors name a record and a target, and quote input.
pub const MAX_LOGGED_ERROR_BYTES: usize = 4096;

/// A value from input as a log field: at most [`MAX_LOGGED_BYTES`], cut at a character boundary.
/// Record it as a plain field (`key = logs::input(&n.key)`), never with `%`, so the formatter
/// escapes it.
pub fn input(value: &str) -> &str {
    cut(value, MAX_LOGGED_BYTES)
}

/// An error (or any text that may quote input) as a log field, at most [`MAX_LOGGED_ERROR_BYTES`].
/// Record it as `error = logs::text(&e).as_str()`.
pub fn text(value: &impl Display) -> String {
    let mut text = value.to_string();
    let end = cut(&text, MAX_LOGGED_ERROR_BYTES).len();
    text.truncate(end);
    text
}

fn cut(value: &str, max: usize) -> &str {
    let mut end = value.len().min(max);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default()
}

/// Installs the process's log subscriber: JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`, else
/// text; level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO; no timestamps (Lambda adds
/// them) and colour only on a terminal. Variables are read through `lookup`.
pub fn init_subscriber(lookup: impl Fn(&str) -> Option<String>) {
    let level = lookup(AWS_LAMBDA_LOG_LEVEL)
        .or_else(|| lookup(RUST_LOG))
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(lookup(RUST_LOG).unwrap_or_default());
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let json = lookup(AWS_LAMBDA_LOG_FORMAT).is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // A second subscriber (tests, embedding) is not an error worth failing init for.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.with_ansi(std::io::stdout().is_terminal()).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_cut_at_a_character_boundary() {
        let key = "é".repeat(MAX_LOGGED_BYTES);
        let logged = input(&key);
        assert!(logged.len() <= MAX_LOGGED_BYTES && logged.len() >= MAX_LOGGED_BYTES - 1);
        assert!(logged.chars().all(|c| c == 'é'));
    }

    #[test]
    fn short_values_are_kept_whole() {
        assert_eq!(input("images/cat.jpg"), "images/cat.jpg");
        assert_eq!(text(&"plain error"), "plain error");
    }
}
