//! Metrics as CloudWatch Embedded Metric Format log lines (CONTRACT §7).
//!
//! CloudWatch Logs turns a log line that is a JSON object with an `_aws.CloudWatchMetrics` directive
//! into metrics, with no API call on the invocation's path. Each invocation writes one line with the
//! function-level counts (dimension `FunctionName`) and one line per target it published to
//! (dimensions `FunctionName`, `Target`): a dimension's value is a top-level key of its line, so
//! per-target values need lines of their own.

use serde_json::{Map, Value, json};

use crate::response::Summary;

/// Counts for one target in one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetCounts {
    /// Queue URL or topic ARN.
    pub target: String,
    /// Messages accepted.
    pub published: usize,
    /// Messages not delivered.
    pub failed: usize,
    /// Batch calls made.
    pub publish_calls: usize,
    /// Entries resent after a transient failure.
    pub retries: usize,
}

impl TargetCounts {
    /// Adds another run's counts for the same target.
    pub fn add(&mut self, other: &TargetCounts) {
        self.published += other.published;
        self.failed += other.failed;
        self.publish_calls += other.publish_calls;
        self.retries += other.retries;
    }
}

/// Builds the EMF lines of one invocation.
pub fn emf_lines(
    namespace: &str,
    function_name: &str,
    summary: &Summary,
    targets: &[&TargetCounts],
    timestamp_ms: u64,
) -> Vec<String> {
    let mut lines = Vec::with_capacity(1 + targets.len());
    let function_metrics = [
        ("RecordsReceived", summary.received),
        ("MessagesPublished", summary.published),
        ("MessagesFailed", summary.messages_failed),
        ("ReportedFailures", summary.reported_failures),
        ("RecordsFilteredOut", summary.filtered_out),
        ("TestEvents", summary.test_events),
        ("TraceHeadersInvalid", summary.invalid_trace_headers),
        ("TraceFallbacks", summary.fallbacks),
        ("PublishCalls", summary.publish_calls),
        ("Retries", summary.retries),
    ];
    lines.push(line(
        namespace,
        timestamp_ms,
        &[("FunctionName", function_name)],
        &function_metrics,
    ));
    for t in targets {
        let metrics = [
            ("MessagesPublished", t.published),
            ("MessagesFailed", t.failed),
            ("PublishCalls", t.publish_calls),
            ("Retries", t.retries),
        ];
        lines.push(line(
            namespace,
            timestamp_ms,
            &[("FunctionName", function_name), ("Target", &t.target)],
            &metrics,
        ));
    }
    lines
}

fn line(namespace: &str, timestamp_ms: u64, dimensions: &[(&str, &str)], metrics: &[(&str, usize)]) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let dimension_names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }]
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::from(*v));
    }
    for (k, v) in metrics {
        root.insert((*k).into(), Value::from(*v));
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_line_is_valid_emf_with_every_count() {
        let summary = Summary {
            received: 3,
            published: 5,
            reported_failures: 1,
            publish_calls: 2,
            ..Summary::default()
        };
        let lines = emf_lines("NS", "relay", &summary, &[], 1_764_072_000_000);
        assert_eq!(lines.len(), 1);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "NS");
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_u64(), "metric {name} has a value");
        }
        assert_eq!(
            (
                v["RecordsReceived"].as_u64(),
                v["MessagesPublished"].as_u64(),
                v["ReportedFailures"].as_u64()
            ),
            (Some(3), Some(5), Some(1))
        );
        assert_eq!(v["FunctionName"], "relay");
        assert_eq!(v["_aws"]["Timestamp"], 1_764_072_000_000u64);
    }

    #[test]
    fn each_target_gets_a_line_with_its_dimension() {
        let t = TargetCounts {
            target: "arn:aws:sns:us-east-1:123456789012:t".into(),
            published: 4,
            ..TargetCounts::default()
        };
        let lines = emf_lines("NS", "relay", &Summary::default(), &[&t], 0);
        let v: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName", "Target"]])
        );
        assert_eq!(v["Target"], "arn:aws:sns:us-east-1:123456789012:t");
        assert_eq!(v["MessagesPublished"], 4);
    }
}
