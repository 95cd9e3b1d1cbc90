//! Where a target publishes to: an SQS queue, an SNS topic, an EventBridge event bus or a Step
//! Functions state machine, parsed from the address in `RELAY_TARGETS` (CONTRACT §2).

use std::fmt;

/// The `Source` of the events the relay puts on a bus, unless a target says otherwise (`?source=`).
pub const DEFAULT_EVENT_SOURCE: &str = "s3-trace-relay";

/// A queue, topic, bus or state machine, resolved to what the SDK call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An SQS queue, by URL (ARNs are turned into the regional URL at init).
    Sqs {
        /// The queue URL passed as `QueueUrl`.
        queue_url: String,
        /// Whether the queue is FIFO (name ends in `.fifo`).
        fifo: bool,
    },
    /// An SNS topic.
    Sns {
        /// The topic ARN passed as `TopicArn`.
        topic_arn: String,
        /// Whether the topic is FIFO (name ends in `.fifo`).
        fifo: bool,
    },
    /// An EventBridge event bus.
    EventBus {
        /// The bus ARN, passed as each entry's `EventBusName` (which takes ARNs, for other accounts).
        bus_arn: String,
        /// The `Source` of the events (`?source=`, default [`DEFAULT_EVENT_SOURCE`]; never `aws.*`).
        source: String,
    },
    /// A Step Functions state machine: one execution per record.
    StateMachine {
        /// The state machine ARN passed as `stateMachineArn`.
        state_machine_arn: String,
    },
}

impl Destination {
    /// Whether the queue or topic is FIFO, which requires group and deduplication ids.
    pub fn is_fifo(&self) -> bool {
        match self {
            Destination::Sqs { fifo, .. } | Destination::Sns { fifo, .. } => *fifo,
            Destination::EventBus { .. } | Destination::StateMachine { .. } => false,
        }
    }

    /// The region the destination lives in: from its ARN, or from an AWS queue URL
    /// (`https://sqs.<region>.amazonaws.com[.cn]/…`, which queue ARNs are turned into). `None` for
    /// other endpoints (local stand-ins, custom domains), which are called with the function's region.
    ///
    /// The services serve a resource only in its own region: a request signed for another one gets
    /// `NonExistentQueue` / `NotFound`, so each target must be called through a client of its region.
    pub fn region(&self) -> Option<&str> {
        let region = match self {
            Destination::Sns { topic_arn: arn, .. }
            | Destination::EventBus { bus_arn: arn, .. }
            | Destination::StateMachine { state_machine_arn: arn } => arn.split(':').nth(3)?,
            Destination::Sqs { queue_url, .. } => {
                let host = queue_url.split_once("://")?.1.split('/').next()?;
                let rest = host.strip_prefix("sqs.")?;
                let (region, domain) = rest.split_once('.')?;
                if !matches!(domain, "amazonaws.com" | "amazonaws.com.cn") {
                    return None;
                }
                region
            }
        };
        (!region.is_empty()).then_some(region)
    }

    /// The queue URL or the ARN, for logs and errors.
    pub fn address(&self) -> &str {
        match self {
            Destination::Sqs { queue_url, .. } => queue_url,
            Destination::Sns { topic_arn, .. } => topic_arn,
            Destination::EventBus { bus_arn, .. } => bus_arn,
            Destination::StateMachine { state_machine_arn } => state_machine_arn,
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.address())
    }
}

/// A queue URL or an ARN of a queue, topic, event bus or state machine; `Err` says what is wrong.
pub(super) fn parse_destination(address: &str) -> Result<Destination, String> {
    if let Some(rest) = address.strip_prefix("arn:") {
        return parse_arn(address, rest);
    }
    let Some(after_scheme) = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
    else {
        return Err(format!("not a queue URL or ARN: expected {}", super::TARGETS_EXPECTED));
    };
    let segments: Vec<&str> = after_scheme.split('/').collect();
    let [host, account, name] = segments.as_slice() else {
        return Err("a queue URL must have the form http(s)://host[:port]/<account>/<name>".into());
    };
    if host.is_empty() {
        return Err("the queue URL has no host".into());
    }
    check_account(account)?;
    check_name(name)?;
    Ok(Destination::Sqs {
        queue_url: address.to_owned(),
        fifo: name.ends_with(".fifo"),
    })
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` (`rest` is after `arn:`).
fn parse_arn(address: &str, rest: &str) -> Result<Destination, String> {
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts.as_slice() else {
        return Err("an ARN must have the form arn:<partition>:<service>:<region>:<account>:<resource>".into());
    };
    if !matches!(*service, "sqs" | "sns" | "events" | "states") {
        return Err(format!(
            "service {service:?} is not a target: expected an sqs queue, sns topic, events event-bus or states \
             stateMachine ARN"
        ));
    }
    if region.is_empty() || partition.is_empty() {
        return Err("the ARN has an empty partition or region".into());
    }
    check_account(account)?;
    match *service {
        "sqs" | "sns" => {
            check_name(resource)?;
            let fifo = resource.ends_with(".fifo");
            Ok(if *service == "sqs" {
                Destination::Sqs {
                    queue_url: format!("https://sqs.{region}.{}/{account}/{resource}", dns_suffix(partition)),
                    fifo,
                }
            } else {
                Destination::Sns {
                    topic_arn: address.to_owned(),
                    fifo,
                }
            })
        }
        "events" => parse_bus(address, resource),
        _ => parse_state_machine(address, resource),
    }
}

/// `event-bus/<name>`: 1-256 characters of letters, digits, `.`, `-`, `_` and `/`.
fn parse_bus(address: &str, resource: &str) -> Result<Destination, String> {
    let name = resource
        .strip_prefix("event-bus/")
        .ok_or("an events ARN must name an event bus: arn:aws:events:<region>:<account>:event-bus/<name>")?;
    let valid = !name.is_empty()
        && name.len() <= 256
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"./-_".contains(&b));
    if !valid {
        return Err(format!(
            "event bus name {name:?} is not valid (1-256 of A-Z a-z 0-9 . - _ /)"
        ));
    }
    Ok(Destination::EventBus {
        bus_arn: address.to_owned(),
        source: DEFAULT_EVENT_SOURCE.to_owned(),
    })
}

/// `stateMachine:<name>`: 1-80 characters of letters, digits, `-` and `_`.
fn parse_state_machine(address: &str, resource: &str) -> Result<Destination, String> {
    let name = resource
        .strip_prefix("stateMachine:")
        .ok_or("a states ARN must name a state machine: arn:aws:states:<region>:<account>:stateMachine:<name>")?;
    let valid = !name.is_empty()
        && name.len() <= 80
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!(
            "state machine name {name:?} is not valid (1-80 of A-Z a-z 0-9 - _)"
        ));
    }
    Ok(Destination::StateMachine {
        state_machine_arn: address.to_owned(),
    })
}

/// An event `Source` for a bus target: 1-256 characters, not `aws.*` (reserved for AWS services).
pub(super) fn check_event_source(source: &str) -> Result<(), String> {
    if source.is_empty() || source.len() > 256 || source.chars().any(char::is_control) {
        return Err(format!("source {source:?} must be 1-256 characters"));
    }
    if source.starts_with("aws.") {
        return Err(format!(
            "source {source:?} is reserved for AWS services (aws.*): choose another"
        ));
    }
    Ok(())
}

/// The DNS suffix of the partition, for building queue URLs from ARNs.
fn dns_suffix(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    }
}

fn check_account(account: &str) -> Result<(), String> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("account {account:?} is not a 12-digit AWS account id"))
    }
}

/// Queue and topic names: 1 to 80 characters of alphanumerics, hyphens and underscores, plus the
/// `.fifo` suffix for FIFO ones (SQS `CreateQueue` and SNS `CreateTopic` naming rules).
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 80
        && name
            .strip_suffix(".fifo")
            .unwrap_or(name)
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} is not a queue or topic name (1-80 of A-Z a-z 0-9 - _, optional .fifo)"
        ))
    }
}
