//! Routing: which targets a notification goes to (CONTRACT §2 filters).
//!
//! A record goes to a target only if its decoded key has the target's prefix and suffix and its
//! event name matches one of the target's patterns. Patterns follow S3 notification
//! configuration: `ObjectCreated:*` matches every `ObjectCreated:` event, `*` matches the rest of the
//! name, and the `s3:` prefix of configuration event types is accepted and ignored.

/// The filter attached to one target; the empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Required start of the decoded object key.
    pub prefix: Option<String>,
    /// Required end of the decoded object key.
    pub suffix: Option<String>,
    /// Event-name patterns, any of which may match; empty means all events.
    pub events: Vec<EventPattern>,
}

/// An S3 event-name pattern such as `ObjectCreated:*`, `ObjectRemoved:Delete` or `IntelligentTiering`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern {
    /// The fixed part of the pattern (without the `s3:` prefix or the trailing `*`).
    stem: String,
    /// Whether the pattern ended in `*`.
    wildcard: bool,
}

impl EventPattern {
    /// Parses a pattern: an optional `s3:` prefix, then names of ASCII letters and digits, each
    /// starting with a letter, joined by `:` (`ObjectCreated:Put`, `IntelligentTiering`), optionally
    /// ending in `*` in place of the rest (`ObjectCreated:*`). Any such name is accepted, not a fixed
    /// list: S3 keeps adding event types (`ObjectAnnotation:*` in 2026). Returns `None` for anything else.
    ///
    /// ```
    /// use s3_trace_relay::route::EventPattern;
    /// assert!(EventPattern::parse("s3:IntelligentTiering").is_some());
    /// assert!(EventPattern::parse("ObjectCreated:*").is_some());
    /// assert!(EventPattern::parse("Object Created:*").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix("s3:").unwrap_or(text);
        let (stem, wildcard) = match text.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (text, false),
        };
        // A wildcard may follow a complete name and its `:` (`ObjectCreated:*`) or part of a name
        // (`ObjectCreated:Complete*`); everything before it must be well-formed names.
        let names = if wildcard {
            stem.strip_suffix(':').unwrap_or(stem)
        } else {
            stem
        };
        let well_formed = !names.is_empty() && names.split(':').all(is_name);
        well_formed.then(|| EventPattern {
            stem: stem.to_owned(),
            wildcard,
        })
    }

    /// Whether an event name (as in a record's `eventName`, e.g. `ObjectCreated:Put`) matches. A
    /// category wildcard also matches the bare category (`ObjectCreated:*` matches `ObjectCreated`,
    /// the name an EventBridge `Object Created` event without a known reason stands for).
    pub fn matches(&self, event_name: &str) -> bool {
        let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
        if !self.wildcard {
            return name == self.stem;
        }
        name.starts_with(&self.stem) || self.stem.strip_suffix(':') == Some(name)
    }
}

/// One name of an event type: an ASCII letter, then letters and digits.
fn is_name(part: &str) -> bool {
    part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) && part.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Filter {
    /// Whether a record with this decoded key and event name passes the filter.
    pub fn matches(&self, decoded_key: &str, event_name: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| decoded_key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| decoded_key.ends_with(s))
            && (self.events.is_empty() || self.events.iter().any(|p| p.matches(event_name)))
    }
}

/// Whether a record passes any of a target's filters. A destination listed more than once in the
/// configuration has one filter per entry and receives a record once when any of them matches.
pub fn passes_any(filters: &[Filter], decoded_key: &str, event_name: &str) -> bool {
    filters.iter().any(|f| f.matches(decoded_key, event_name))
}

/// Indexes of the targets (each given by its filters, in configuration order) a record goes to.
pub fn route<'a>(
    targets: impl IntoIterator<Item = &'a [Filter]> + 'a,
    decoded_key: &'a str,
    event_name: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    targets
        .into_iter()
        .enumerate()
        .filter(move |(_, filters)| passes_any(filters, decoded_key, event_name))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(prefix: Option<&str>, suffix: Option<&str>, events: &[&str]) -> Filter {
        Filter {
            prefix: prefix.map(str::to_owned),
            suffix: suffix.map(str::to_owned),
            events: events.iter().map(|e| EventPattern::parse(e).unwrap()).collect(),
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(Filter::default().matches("any/key", "ObjectRemoved:Delete"));
    }

    #[test]
    fn prefix_and_suffix_apply_to_the_decoded_key() {
        let f = filter(Some("images/"), Some(".jpg"), &[]);
        assert!(f.matches("images/my cat.jpg", "ObjectCreated:Put"));
        assert!(!f.matches("docs/my cat.jpg", "ObjectCreated:Put"));
        assert!(!f.matches("images/my cat.png", "ObjectCreated:Put"));
    }

    #[test]
    fn wildcard_pattern_matches_the_rest_of_the_name() {
        let f = filter(None, None, &["ObjectCreated:*"]);
        assert!(f.matches("k", "ObjectCreated:Put"));
        assert!(f.matches("k", "ObjectCreated:CompleteMultipartUpload"));
        assert!(!f.matches("k", "ObjectRemoved:Delete"));
    }

    #[test]
    fn exact_pattern_matches_only_that_name() {
        let f = filter(None, None, &["ObjectRemoved:Delete"]);
        assert!(f.matches("k", "ObjectRemoved:Delete"));
        assert!(!f.matches("k", "ObjectRemoved:DeleteMarkerCreated"));
    }

    #[test]
    fn any_of_several_patterns_matches() {
        let f = filter(None, None, &["ObjectCreated:*", "ObjectRemoved:Delete"]);
        assert!(f.matches("k", "ObjectRemoved:Delete"));
        assert!(!f.matches("k", "ObjectRestore:Post"));
    }

    #[test]
    fn s3_prefix_of_configuration_event_types_is_ignored() {
        let f = filter(None, None, &["s3:ObjectCreated:*"]);
        assert!(f.matches("k", "ObjectCreated:Copy"));
    }

    #[test]
    fn colon_less_and_future_names_are_patterns() {
        for p in [
            "IntelligentTiering",
            "s3:LifecycleTransition",
            "ReducedRedundancyLostObject",
            "s3:ObjectAnnotation:*",
        ] {
            assert!(EventPattern::parse(p).is_some(), "{p:?}");
        }
    }

    #[test]
    fn category_wildcard_matches_the_bare_category() {
        let f = filter(None, None, &["ObjectCreated:*"]);
        assert!(f.matches("k", "ObjectCreated"));
        assert!(!f.matches("k", "ObjectCreatedSoon"));
    }

    #[test]
    fn partial_name_wildcard_matches_names_with_that_start() {
        let f = filter(None, None, &["ObjectCreated:Complete*"]);
        assert!(f.matches("k", "ObjectCreated:CompleteMultipartUpload"));
        assert!(!f.matches("k", "ObjectCreated:Put"));
    }

    #[test]
    fn a_target_with_several_filters_takes_a_record_once_when_any_matches() {
        let filters = [filter(Some("images/"), None, &[]), filter(None, Some(".pdf"), &[])];
        let everything = [Filter::default()];
        let routed: Vec<usize> = route([&filters[..], &everything[..]], "docs/a.pdf", "ObjectCreated:Put").collect();
        assert_eq!(routed, vec![0, 1]);
        assert!(!passes_any(&filters, "docs/a.txt", "ObjectCreated:Put"));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for p in [
            "",
            "*",
            "s3:",
            "s3:*",
            "Object Created:*",
            ":Put",
            "ObjectCreated::Put",
            "ObjectCreated:",
            "ObjectCreated:P*t",
            "9Lives",
        ] {
            assert_eq!(EventPattern::parse(p), None, "{p:?}");
        }
    }
}
