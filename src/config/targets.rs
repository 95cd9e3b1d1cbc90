//! The target list (CONTRACT §2): `RELAY_TARGETS` entries or `RELAY_TARGETS_FILE` lines, each a
//! destination with an optional query string (filter, message attributes, event source); entries
//! naming the same destination become one target.

use super::destination::{Destination, check_event_source, parse_destination};
use super::{ConfigError, RELAY_TARGETS, RELAY_TARGETS_FILE};
use crate::message::EventAttribute;
use crate::route::{EventPattern, Filter};

/// What a valid `RELAY_TARGETS` looks like, for errors.
pub(super) const TARGETS_EXPECTED: &str = "a comma-separated list of SQS queue URLs (https://sqs.<region>.amazonaws.com/<account>/<name>), \
     SQS queue ARNs (arn:aws:sqs:<region>:<account>:<name>), SNS topic ARNs (arn:aws:sns:<region>:<account>:<name>), \
     EventBridge bus ARNs (arn:aws:events:<region>:<account>:event-bus/<name>) or Step Functions state machine ARNs \
     (arn:aws:states:<region>:<account>:stateMachine:<name>), each optionally followed by ?prefix=…&suffix=…&events=…";

/// One destination and the filters that select the records it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The queue or topic.
    pub destination: Destination,
    /// One filter per configuration entry naming this destination: a record goes there (once)
    /// when any of them matches.
    pub filters: Vec<Filter>,
    /// Event fields each message carries as message attributes (SNS topics only).
    pub attributes: Vec<EventAttribute>,
}

/// Parses the value of `RELAY_TARGETS`: entries separated by the commas that start a new target
/// (commas inside an `events=` filter stay). An empty entry (`a,,b`, a trailing comma) is refused.
pub fn parse_targets(raw: &str) -> Result<Vec<Target>, ConfigError> {
    let mut entries = Vec::new();
    for (position, item) in split_targets(raw).into_iter().enumerate() {
        if item.is_empty() {
            return Err(invalid(
                RELAY_TARGETS,
                raw,
                format!(
                    "entry {} is empty (two commas in a row, or a comma at an end): remove it",
                    position + 1
                ),
            ));
        }
        entries.push(parse_target(RELAY_TARGETS, item, item)?);
    }
    merged(entries).ok_or_else(|| {
        invalid(
            RELAY_TARGETS,
            raw,
            format!("no target given: expected {TARGETS_EXPECTED}"),
        )
    })
}

/// Parses a `RELAY_TARGETS_FILE`: one target per line, blank lines and lines starting with `#`
/// ignored; a line's commas belong to its `events=` filter. Errors name the line.
pub fn parse_target_file(text: &str) -> Result<Vec<Target>, ConfigError> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let item = line.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let at = format!("line {}: {item}", number + 1);
        entries.push(parse_target(RELAY_TARGETS_FILE, item, &at)?);
    }
    merged(entries).ok_or_else(|| {
        invalid(
            RELAY_TARGETS_FILE,
            text.trim(),
            format!("no target given: expected one target per line, {TARGETS_EXPECTED}"),
        )
    })
}

/// Entries naming the same destination become one target with all their filters, in the order
/// the destination first appears; `None` when there is none.
fn merged(entries: Vec<Target>) -> Option<Vec<Target>> {
    let mut targets: Vec<Target> = Vec::with_capacity(entries.len());
    for entry in entries {
        match targets.iter_mut().find(|t| t.destination == entry.destination) {
            Some(target) => {
                target.filters.extend(entry.filters);
                let new: Vec<EventAttribute> = entry
                    .attributes
                    .into_iter()
                    .filter(|a| !target.attributes.contains(a))
                    .collect();
                target.attributes.extend(new);
            }
            None => targets.push(entry),
        }
    }
    (!targets.is_empty()).then_some(targets)
}

/// Splits on the commas that begin a new target (or an empty entry), keeping commas inside an
/// `events=` filter. Entries come back trimmed; an empty one is an extra comma.
fn split_targets(raw: &str) -> Vec<&str> {
    let mut starts = vec![0];
    for (i, _) in raw.match_indices(',') {
        let rest = raw.get(i + 1..).unwrap_or_default().trim_start();
        let new_entry = rest.is_empty() || rest.starts_with(',');
        if new_entry || ["http://", "https://", "arn:"].iter().any(|p| rest.starts_with(p)) {
            starts.push(i + 1);
        }
    }
    starts.push(raw.len() + 1);
    let entries: Vec<&str> = starts
        .windows(2)
        .map(|w| raw.get(w[0]..w[1] - 1).unwrap_or_default().trim())
        .collect();
    // A value that is empty or blank is "no target", not "an empty entry".
    if entries.len() == 1 && entries.first().is_some_and(|e| e.is_empty()) {
        return Vec::new();
    }
    entries
}

/// Why one entry is wrong, as the `reason` of a [`ConfigError::Invalid`].
fn reason(text: impl Into<String>) -> String {
    text.into()
}

fn invalid(variable: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        variable,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// One entry: a destination and its filter. Errors name `variable` and show `shown` as the value.
fn parse_target(variable: &'static str, item: &str, shown: &str) -> Result<Target, ConfigError> {
    let (address, query) = match item.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (item, None),
    };
    let fail = |reason: String| invalid(variable, shown, reason);
    let mut destination = parse_destination(address).map_err(&fail)?;
    let query = query.map(parse_query).transpose().map_err(&fail)?.unwrap_or_default();
    if !query.attributes.is_empty() && !matches!(destination, Destination::Sns { .. }) {
        return Err(fail(reason(
            "attributes= applies to SNS topics (subscription filter policies), not to other targets",
        )));
    }
    match (&mut destination, query.source) {
        (Destination::EventBus { source, .. }, Some(given)) => {
            check_event_source(&given).map_err(&fail)?;
            *source = given;
        }
        (_, Some(_)) => return Err(fail(reason("source= applies to event bus targets only"))),
        (_, None) => {}
    }
    Ok(Target {
        destination,
        filters: vec![query.filter],
        attributes: query.attributes,
    })
}

/// What the query string of one entry asks for: the filter (`prefix`, `suffix`, `events`), for SNS
/// topics event fields to add as message attributes (`attributes`), for buses the `source`.
#[derive(Default)]
struct Query {
    filter: Filter,
    attributes: Vec<EventAttribute>,
    source: Option<String>,
}

/// Parses `prefix=…&suffix=…&events=…&attributes=…`; `Err` says what is wrong with it.
fn parse_query(query: &str) -> Result<Query, String> {
    let mut parsed = Query::default();
    let filter = &mut parsed.filter;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(reason(format!(
                "option {pair:?} has no '=': expected prefix=, suffix=, events=, attributes= or source="
            )));
        };
        match key {
            "prefix" if filter.prefix.is_none() => filter.prefix = Some(value.to_owned()),
            "suffix" if filter.suffix.is_none() => filter.suffix = Some(value.to_owned()),
            "events" if filter.events.is_empty() => filter.events = parse_events(value)?,
            "attributes" if parsed.attributes.is_empty() => parsed.attributes = parse_attributes(value)?,
            "source" if parsed.source.is_none() => parsed.source = Some(value.to_owned()),
            "prefix" | "suffix" | "events" | "attributes" | "source" => {
                return Err(reason(format!("option {key:?} is given twice")));
            }
            other => {
                return Err(reason(format!(
                    "unknown option {other:?}: expected prefix, suffix, events, attributes or source"
                )));
            }
        }
    }
    Ok(parsed)
}

fn parse_events(value: &str) -> Result<Vec<EventPattern>, String> {
    value
        .split(',')
        .map(|pattern| {
            EventPattern::parse(pattern.trim()).ok_or_else(|| {
                reason(format!(
                    "event pattern {pattern:?} is not an S3 event type such as ObjectCreated:*, \
                     ObjectRemoved:Delete or IntelligentTiering (s3: prefix optional)"
                ))
            })
        })
        .collect()
}

/// `attributes=bucket,key,eventName,size` (any subset, each once).
fn parse_attributes(value: &str) -> Result<Vec<EventAttribute>, String> {
    let mut attributes = Vec::new();
    for name in value.split(',').map(str::trim) {
        let attribute = EventAttribute::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                reason(format!(
                    "unknown attribute {name:?}: expected some of bucket, key, eventName, size"
                ))
            })?;
        if attributes.contains(&attribute) {
            return Err(reason(format!("attribute {name:?} is given twice")));
        }
        attributes.push(attribute);
    }
    Ok(attributes)
}
