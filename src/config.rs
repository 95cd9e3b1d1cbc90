//! Configuration, read once at init (CONTRACT §2).
//!
//! `RELAY_TARGETS` is a comma-separated list of SQS queue URLs, SQS queue ARNs and SNS topic ARNs, each
//! optionally followed by a `?prefix=…&suffix=…&events=…` filter. A name ending in `.fifo` is a FIFO
//! queue or topic. Because the `events` filter itself holds commas, the list is split on commas that
//! start a new target (`http://`, `https://` or `arn:`), not on every comma.
//!
//! Configuration is parsed from a lookup function, never from the process environment directly, so
//! tests build it from a map (`std::env::set_var` is `unsafe` in edition 2024 and racy in tests).

use std::time::Duration;

mod destination;
mod targets;

pub use destination::{DEFAULT_EVENT_SOURCE, Destination};
use targets::TARGETS_EXPECTED;
pub use targets::{Target, parse_target_file, parse_targets};

/// The variable that lists where notifications go.
pub const RELAY_TARGETS: &str = "RELAY_TARGETS";
/// Instead of [`RELAY_TARGETS`]: the path of a file packaged with the function that lists the
/// targets, one per line (Lambda caps all of a function's environment variables at 4 KB together).
pub const RELAY_TARGETS_FILE: &str = "RELAY_TARGETS_FILE";
/// Safety margin kept before the invocation deadline, in milliseconds.
pub const RELAY_DEADLINE_MARGIN_MS: &str = "RELAY_DEADLINE_MARGIN_MS";
/// Maximum number of publish calls in flight per invocation (default: from the memory size,
/// [`crate::concurrency::default_max_in_flight`]).
pub const RELAY_MAX_IN_FLIGHT: &str = "RELAY_MAX_IN_FLIGHT";
/// Time one attempt of one SQS/SNS call may take before the SDK gives up on it and retries.
pub const RELAY_ATTEMPT_TIMEOUT_MS: &str = "RELAY_ATTEMPT_TIMEOUT_MS";

/// The CloudWatch namespace of the EMF metrics.
pub const RELAY_METRICS_NAMESPACE: &str = "RELAY_METRICS_NAMESPACE";
/// The function's name, set by Lambda: the `FunctionName` dimension and the X-Ray segment name.
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// The function's memory in MiB, set by Lambda: the default in-flight cap follows it.
pub const AWS_LAMBDA_FUNCTION_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// Invocations one execution environment runs at once (Lambda Managed Instances); they share the
/// default in-flight cap.
pub const AWS_LAMBDA_MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";
/// The Runtime API's address, set by Lambda: without it the process is not running under Lambda.
pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
/// The X-Ray daemon's address, set by Lambda when active tracing is on.
pub const AWS_XRAY_DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// Lambda's log format: `JSON` or `Text` (advanced logging controls).
pub const AWS_LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// Lambda's log level (advanced logging controls); wins over [`RUST_LOG`].
pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// `tracing` filter directives, for a level per module when running locally.
pub const RUST_LOG: &str = "RUST_LOG";

/// Default margin before the deadline: enough for one SDK round trip to fail fast and for the
/// response to reach the Runtime API.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Default per-attempt timeout: a batch call normally answers in tens of milliseconds; three seconds
/// leaves room for a slow one while still allowing a retry within a typical invocation.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The namespace of the metrics when [`RELAY_METRICS_NAMESPACE`] is unset.
pub const DEFAULT_METRICS_NAMESPACE: &str = "S3TraceRelay";

/// The whole relay configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Where notifications go, in the order configured.
    pub targets: Vec<Target>,
    /// Time kept in reserve before the invocation deadline.
    pub deadline_margin: Duration,
    /// Upper bound on concurrent publish calls in one invocation.
    pub max_in_flight: usize,
    /// CloudWatch namespace of the EMF metrics.
    pub metrics_namespace: String,
    /// Per-attempt timeout of SDK calls.
    pub attempt_timeout: Duration,
    /// The function's name (empty outside Lambda).
    pub function_name: String,
    /// Where the X-Ray daemon listens, when Lambda says.
    pub xray_daemon_address: Option<String>,
}

/// Why the configuration was rejected; the message names the variable, the bad value and what is
/// expected, so the Lambda init error alone tells the operator what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{variable} is not set: expected {expected}")]
    Missing {
        /// The variable.
        variable: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("{variable} has an invalid value {value:?}: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// The offending value (the one target, for `RELAY_TARGETS`).
        value: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl RelayConfig {
    /// Reads the configuration through `lookup` (the process environment in Lambda, a map in tests).
    ///
    /// ```
    /// use s3_trace_relay::RelayConfig;
    /// let env = |name: &str| match name {
    ///     "RELAY_TARGETS" => Some("arn:aws:sqs:us-east-1:123456789012:out?events=ObjectCreated:*".to_owned()),
    ///     _ => None,
    /// };
    /// let config = RelayConfig::from_lookup(env).unwrap();
    /// assert_eq!(config.targets[0].destination.address(), "https://sqs.us-east-1.amazonaws.com/123456789012/out");
    ///
    /// let err = RelayConfig::from_lookup(|_| None).unwrap_err();
    /// assert!(err.to_string().starts_with("RELAY_TARGETS is not set"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_sources(lookup, |path| std::fs::read_to_string(path))
    }

    /// [`RelayConfig::from_lookup`], with the files it names (`RELAY_TARGETS_FILE`) read through
    /// `read_file`.
    pub fn from_sources(
        lookup: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Self, ConfigError> {
        let targets = targets_from(&lookup, read_file)?;
        let millis = |variable, default: Duration, min, max| match lookup(variable) {
            None => Ok(default),
            Some(v) => parse_number(variable, &v, min, max).map(Duration::from_millis),
        };
        Ok(RelayConfig {
            targets,
            deadline_margin: millis(RELAY_DEADLINE_MARGIN_MS, DEFAULT_DEADLINE_MARGIN, 0, 60_000)?,
            attempt_timeout: millis(RELAY_ATTEMPT_TIMEOUT_MS, DEFAULT_ATTEMPT_TIMEOUT, 10, 900_000)?,
            max_in_flight: match lookup(RELAY_MAX_IN_FLIGHT) {
                None => default_max_in_flight(&lookup),
                Some(v) => usize::try_from(parse_number(RELAY_MAX_IN_FLIGHT, &v, 1, 1024)?).unwrap_or(1024),
            },
            metrics_namespace: match lookup(RELAY_METRICS_NAMESPACE) {
                None => DEFAULT_METRICS_NAMESPACE.to_owned(),
                Some(v) => parse_namespace(&v)?,
            },
            function_name: lookup(AWS_LAMBDA_FUNCTION_NAME).unwrap_or_default(),
            xray_daemon_address: lookup(AWS_XRAY_DAEMON_ADDRESS),
        })
    }
}

/// The in-flight cap from what Lambda says of the environment.
fn default_max_in_flight(lookup: &impl Fn(&str) -> Option<String>) -> usize {
    let positive = |variable| lambda_number(lookup(variable).as_deref());
    crate::concurrency::default_max_in_flight(
        positive(AWS_LAMBDA_FUNCTION_MEMORY_SIZE),
        positive(AWS_LAMBDA_MAX_CONCURRENCY),
    )
}

/// A number Lambda sets for the environment (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`,
/// `AWS_LAMBDA_MAX_CONCURRENCY`). Those variables are Lambda's, not the relay's configuration: a
/// value that is not a positive whole number counts as absent.
pub(crate) fn lambda_number(value: Option<&str>) -> Option<u64> {
    value.and_then(|v| v.trim().parse::<u64>().ok()).filter(|&n| n > 0)
}

/// CloudWatch namespaces: 1 to 255 characters of alphanumerics and `. - _ / # :` and space, not
/// starting with `AWS/` (reserved for AWS services).
fn parse_namespace(value: &str) -> Result<String, ConfigError> {
    let valid = !value.is_empty()
        && value.len() <= 255
        && !value.starts_with("AWS/")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_/#: ".contains(&b));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(ConfigError::Invalid {
            variable: RELAY_METRICS_NAMESPACE,
            value: value.to_owned(),
            reason: "expected 1-255 characters of A-Z a-z 0-9 . - _ / # : and space, not starting with AWS/".into(),
        })
    }
}

fn parse_number(variable: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            variable,
            value: value.to_owned(),
            reason: format!("expected a whole number from {min} to {max}"),
        }),
    }
}

/// The targets, from `RELAY_TARGETS` or the file `RELAY_TARGETS_FILE` names (exactly one of them).
fn targets_from(
    lookup: &impl Fn(&str) -> Option<String>,
    read_file: impl Fn(&str) -> std::io::Result<String>,
) -> Result<Vec<Target>, ConfigError> {
    match (lookup(RELAY_TARGETS), lookup(RELAY_TARGETS_FILE)) {
        (Some(raw), None) => parse_targets(&raw),
        (None, Some(path)) => {
            let text = read_file(&path).map_err(|e| ConfigError::Invalid {
                variable: RELAY_TARGETS_FILE,
                value: path.clone(),
                reason: format!("the file cannot be read: {e}"),
            })?;
            parse_target_file(&text)
        }
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            variable: RELAY_TARGETS_FILE,
            value: lookup(RELAY_TARGETS_FILE).unwrap_or_default(),
            reason: format!("{RELAY_TARGETS} is set too: set one of the two"),
        }),
        (None, None) => Err(ConfigError::Missing {
            variable: RELAY_TARGETS,
            expected: TARGETS_EXPECTED,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::EventAttribute;
    use crate::route::Filter;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<RelayConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RelayConfig::from_lookup(|k| map.get(k).cloned())
    }

    fn region_of(target: &str) -> Option<String> {
        parse_targets(target).unwrap()[0]
            .destination
            .region()
            .map(str::to_owned)
    }

    #[test]
    fn destinations_know_their_region() {
        assert_eq!(
            region_of("arn:aws:sns:eu-west-1:123456789012:t").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of("arn:aws:sqs:ap-south-2:123456789012:q").as_deref(),
            Some("ap-south-2")
        );
        assert_eq!(
            region_of("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(
            region_of("https://sqs.us-west-2.amazonaws.com/123456789012/q").as_deref(),
            Some("us-west-2")
        );
    }

    #[test]
    fn other_endpoints_have_no_region_of_their_own() {
        assert_eq!(region_of("http://127.0.0.1:5000/123456789012/q"), None);
        assert_eq!(region_of("https://queue.amazonaws.com/123456789012/q"), None);
        assert_eq!(region_of("https://sqs.example.com/123456789012/q"), None);
    }

    #[test]
    fn missing_targets_names_the_variable() {
        let err = config(&[]).unwrap_err().to_string();
        assert!(err.starts_with("RELAY_TARGETS is not set"), "{err}");
    }

    #[test]
    fn queue_url_topic_arn_and_queue_arn_are_accepted() {
        let c = config(&[(
            RELAY_TARGETS,
            "https://sqs.eu-west-1.amazonaws.com/123456789012/q1, arn:aws:sns:eu-west-1:123456789012:t.fifo,arn:aws:sqs:us-east-1:123456789012:q2.fifo",
        )])
        .unwrap();
        assert_eq!(
            c.targets.iter().map(|t| t.destination.clone()).collect::<Vec<_>>(),
            vec![
                Destination::Sqs {
                    queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/q1".into(),
                    fifo: false
                },
                Destination::Sns {
                    topic_arn: "arn:aws:sns:eu-west-1:123456789012:t.fifo".into(),
                    fifo: true
                },
                Destination::Sqs {
                    queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/q2.fifo".into(),
                    fifo: true
                },
            ]
        );
        assert_eq!(c.deadline_margin, DEFAULT_DEADLINE_MARGIN);
    }

    #[test]
    fn local_endpoint_urls_are_queue_urls() {
        let c = config(&[(RELAY_TARGETS, "http://127.0.0.1:5000/123456789012/local")]).unwrap();
        assert_eq!(
            c.targets[0].destination.address(),
            "http://127.0.0.1:5000/123456789012/local"
        );
    }

    #[test]
    fn china_partition_arn_uses_the_china_domain() {
        let c = config(&[(RELAY_TARGETS, "arn:aws-cn:sqs:cn-north-1:123456789012:q")]).unwrap();
        assert_eq!(
            c.targets[0].destination.address(),
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q"
        );
    }

    #[test]
    fn events_filter_keeps_its_commas() {
        let c = config(&[(
            RELAY_TARGETS,
            "arn:aws:sns:us-east-1:123456789012:t?prefix=images/&suffix=.jpg&events=ObjectCreated:*,ObjectRemoved:Delete,arn:aws:sqs:us-east-1:123456789012:q",
        )])
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        let f = &c.targets[0].filters[0];
        assert_eq!(f.prefix.as_deref(), Some("images/"));
        assert_eq!(f.suffix.as_deref(), Some(".jpg"));
        assert_eq!(f.events.len(), 2);
        assert_eq!(c.targets[1].filters, vec![Filter::default()]);
    }

    #[test]
    fn invalid_values_are_named_with_what_is_expected() {
        for (value, needle) in [
            ("", "no target given"),
            ("ftp://x/123456789012/q", "not a queue URL or ARN"),
            ("arn:aws:s3:::bucket", "is not a target"),
            ("arn:aws:sqs:us-east-1:123456789012", "an ARN must have the form"),
            ("arn:aws:lambda:us-east-1:123456789012:f", "is not a target"),
            ("arn:aws:sqs:us-east-1:12345:q", "12-digit"),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/bad name",
                "is not a queue or topic name",
            ),
            ("https://sqs.us-east-1.amazonaws.com/123456789012", "must have the form"),
            ("arn:aws:sqs:us-east-1:123456789012:q?colour=red", "unknown option"),
            ("arn:aws:sqs:us-east-1:123456789012:q?prefix", "has no '='"),
            (
                "arn:aws:sqs:us-east-1:123456789012:q?events=ObjectCreated::Put",
                "is not an S3 event type",
            ),
            ("arn:aws:sqs:us-east-1:123456789012:q?prefix=a&prefix=b", "given twice"),
        ] {
            let err = config(&[(RELAY_TARGETS, value)]).unwrap_err().to_string();
            assert!(err.starts_with("RELAY_TARGETS has an invalid value"), "{value}: {err}");
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn a_destination_listed_twice_is_one_target_with_both_filters() {
        let c = config(&[(
            RELAY_TARGETS,
            "arn:aws:sqs:us-east-1:123456789012:q?prefix=images/,arn:aws:sns:us-east-1:123456789012:t,\
             https://sqs.us-east-1.amazonaws.com/123456789012/q?suffix=.pdf",
        )])
        .unwrap();
        assert_eq!(c.targets.len(), 2, "the queue ARN and its URL are one destination");
        assert_eq!(c.targets[0].filters.len(), 2);
        assert_eq!(c.targets[0].filters[1].suffix.as_deref(), Some(".pdf"));
    }

    #[test]
    fn an_empty_entry_is_refused_by_its_position() {
        for (value, position) in [
            (
                "arn:aws:sqs:us-east-1:123456789012:a,,arn:aws:sqs:us-east-1:123456789012:b",
                2,
            ),
            (
                "arn:aws:sqs:us-east-1:123456789012:a, ,arn:aws:sqs:us-east-1:123456789012:b",
                2,
            ),
            ("arn:aws:sqs:us-east-1:123456789012:a,", 2),
            (",arn:aws:sqs:us-east-1:123456789012:a", 1),
            (
                "arn:aws:sqs:us-east-1:123456789012:a?events=ObjectCreated:*,,arn:aws:sqs:us-east-1:123456789012:b",
                2,
            ),
        ] {
            let err = config(&[(RELAY_TARGETS, value)]).unwrap_err().to_string();
            assert!(err.contains(&format!("entry {position} is empty")), "{value}: {err}");
            assert!(
                !err.contains("is not a queue or topic name"),
                "blames a neighbour: {err}"
            );
        }
    }

    fn from_file(vars: &[(&str, &str)], file: &str) -> Result<RelayConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let file = file.to_owned();
        RelayConfig::from_sources(
            |k| map.get(k).cloned(),
            move |path| {
                if path == "/var/task/targets.txt" {
                    Ok(file.clone())
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "No such file or directory",
                    ))
                }
            },
        )
    }

    #[test]
    fn targets_can_come_from_a_file_one_per_line() {
        let file = "# where uploads go\n\
                    arn:aws:sqs:us-east-1:123456789012:q?events=ObjectCreated:*,ObjectRemoved:Delete\n\
                    \n\
                    arn:aws:sns:us-east-1:123456789012:t?prefix=a#b/\n";
        let c = from_file(&[(RELAY_TARGETS_FILE, "/var/task/targets.txt")], file).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(
            c.targets[0].filters[0].events.len(),
            2,
            "a line's commas are its filter's"
        );
        assert_eq!(
            c.targets[1].filters[0].prefix.as_deref(),
            Some("a#b/"),
            "# only starts a comment line"
        );
    }

    #[test]
    fn a_bad_line_in_the_targets_file_is_named_by_number() {
        let file = "arn:aws:sqs:us-east-1:123456789012:q\n# ok\narn:aws:sqs:us-east-1:12345:bad\n";
        let err = from_file(&[(RELAY_TARGETS_FILE, "/var/task/targets.txt")], file)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("RELAY_TARGETS_FILE has an invalid value \"line 3: "),
            "{err}"
        );
        assert!(err.contains("12-digit"), "{err}");
    }

    #[test]
    fn an_unreadable_or_empty_targets_file_or_both_variables_are_refused() {
        let missing = from_file(&[(RELAY_TARGETS_FILE, "/nope.txt")], "")
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("cannot be read") && missing.contains("/nope.txt"),
            "{missing}"
        );
        let empty = from_file(&[(RELAY_TARGETS_FILE, "/var/task/targets.txt")], "# nothing\n")
            .unwrap_err()
            .to_string();
        assert!(empty.contains("no target given"), "{empty}");
        let both = from_file(
            &[
                (RELAY_TARGETS_FILE, "/var/task/targets.txt"),
                (RELAY_TARGETS, "arn:aws:sqs:us-east-1:123456789012:q"),
            ],
            "arn:aws:sqs:us-east-1:123456789012:q",
        )
        .unwrap_err()
        .to_string();
        assert!(both.contains("set one of the two"), "{both}");
    }

    #[test]
    fn sns_targets_may_carry_event_fields_as_message_attributes() {
        let c = config(&[(
            RELAY_TARGETS,
            "arn:aws:sns:us-east-1:123456789012:t?attributes=size,eventName&prefix=a/",
        )])
        .unwrap();
        assert_eq!(
            c.targets[0].attributes,
            vec![EventAttribute::Size, EventAttribute::EventName]
        );
        assert_eq!(c.targets[0].filters[0].prefix.as_deref(), Some("a/"));
    }

    #[test]
    fn message_attributes_are_refused_for_queues_and_unknown_names() {
        for (value, needle) in [
            (
                "arn:aws:sqs:us-east-1:123456789012:q?attributes=bucket",
                "applies to SNS topics",
            ),
            (
                "arn:aws:sns:us-east-1:123456789012:t?attributes=colour",
                "unknown attribute \"colour\"",
            ),
            ("arn:aws:sns:us-east-1:123456789012:t?attributes=key,key", "given twice"),
        ] {
            let err = config(&[(RELAY_TARGETS, value)]).unwrap_err().to_string();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn event_buses_and_state_machines_are_targets() {
        let c = config(&[(
            RELAY_TARGETS,
            "arn:aws:events:eu-west-1:123456789012:event-bus/uploads?source=com.example.uploads,\
             arn:aws:states:us-east-1:123456789012:stateMachine:Thumbnails,\
             arn:aws:events:us-east-1:123456789012:event-bus/default",
        )])
        .unwrap();
        assert_eq!(
            c.targets[0].destination,
            Destination::EventBus {
                bus_arn: "arn:aws:events:eu-west-1:123456789012:event-bus/uploads".into(),
                source: "com.example.uploads".into()
            }
        );
        assert_eq!(c.targets[0].destination.region(), Some("eu-west-1"));
        assert_eq!(
            c.targets[1].destination,
            Destination::StateMachine {
                state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:Thumbnails".into()
            }
        );
        assert!(
            matches!(&c.targets[2].destination, Destination::EventBus { source, .. } if source == DEFAULT_EVENT_SOURCE)
        );
    }

    #[test]
    fn reserved_sources_and_misplaced_options_are_refused() {
        for (value, needle) in [
            (
                "arn:aws:events:us-east-1:123456789012:event-bus/b?source=aws.s3",
                "reserved for AWS services",
            ),
            (
                "arn:aws:sqs:us-east-1:123456789012:q?source=mine",
                "applies to event bus targets only",
            ),
            ("arn:aws:events:us-east-1:123456789012:rule/r", "must name an event bus"),
            (
                "arn:aws:states:us-east-1:123456789012:execution:m:x",
                "must name a state machine",
            ),
            (
                "arn:aws:states:us-east-1:123456789012:stateMachine:bad name",
                "is not valid",
            ),
            (
                "arn:aws:events:us-east-1:123456789012:event-bus/b?attributes=key",
                "applies to SNS topics",
            ),
        ] {
            let err = config(&[(RELAY_TARGETS, value)]).unwrap_err().to_string();
            assert!(err.contains(needle), "{value}: {err}");
        }
    }

    #[test]
    fn tuning_variables_are_range_checked() {
        let t = (RELAY_TARGETS, "arn:aws:sqs:us-east-1:123456789012:q");
        let c = config(&[
            t,
            (RELAY_DEADLINE_MARGIN_MS, "750"),
            (RELAY_MAX_IN_FLIGHT, "4"),
            (RELAY_ATTEMPT_TIMEOUT_MS, "1500"),
        ])
        .unwrap();
        assert_eq!(c.deadline_margin, Duration::from_millis(750));
        assert_eq!(c.attempt_timeout, Duration::from_millis(1500));
        assert_eq!(c.max_in_flight, 4);
        let err = config(&[t, (RELAY_MAX_IN_FLIGHT, "0")]).unwrap_err().to_string();
        assert!(
            err.starts_with("RELAY_MAX_IN_FLIGHT has an invalid value \"0\""),
            "{err}"
        );
    }

    /// The in-flight cap with a valid target and `env`.
    fn in_flight(env: &[(&str, &str)]) -> usize {
        let target = (RELAY_TARGETS, "arn:aws:sqs:us-east-1:123456789012:q");
        config(&[&[target], env].concat()).unwrap().max_in_flight
    }

    #[test]
    fn the_default_in_flight_cap_follows_the_memory_size() {
        assert_eq!(in_flight(&[]), 16);
        for (memory, cap) in [("128", 16), ("1769", 30), ("3538", 60), ("10240", 174)] {
            assert_eq!(
                in_flight(&[(AWS_LAMBDA_FUNCTION_MEMORY_SIZE, memory)]),
                cap,
                "{memory} MiB"
            );
        }
    }

    #[test]
    fn concurrent_invocations_share_the_default_in_flight_cap() {
        let cap = |n| {
            in_flight(&[
                (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, "10240"),
                (AWS_LAMBDA_MAX_CONCURRENCY, n),
            ])
        };
        assert_eq!(cap("1"), 174);
        assert_eq!(cap("4"), 44);
        assert_eq!(cap("64"), 16, "never below 16 each");
    }

    #[test]
    fn relay_max_in_flight_wins_over_the_memory_size() {
        assert_eq!(
            in_flight(&[(AWS_LAMBDA_FUNCTION_MEMORY_SIZE, "10240"), (RELAY_MAX_IN_FLIGHT, "8")]),
            8
        );
    }

    #[test]
    fn an_unreadable_memory_size_leaves_the_default_cap_and_does_not_fail_init() {
        for value in ["", "0", "-1", "lots", "1769.5", "99999999999999999999999"] {
            let env = [
                (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, value),
                (AWS_LAMBDA_MAX_CONCURRENCY, value),
            ];
            assert_eq!(in_flight(&env), 16, "{value:?}");
        }
    }

    #[test]
    fn metrics_namespace_defaults_and_is_validated() {
        let t = (RELAY_TARGETS, "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(config(&[t]).unwrap().metrics_namespace, "S3TraceRelay");
        let custom = config(&[t, (RELAY_METRICS_NAMESPACE, "Team/Relay")]).unwrap();
        assert_eq!(custom.metrics_namespace, "Team/Relay");
        let err = config(&[t, (RELAY_METRICS_NAMESPACE, "AWS/Lambda")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("RELAY_METRICS_NAMESPACE has an invalid value"), "{err}");
    }
}
