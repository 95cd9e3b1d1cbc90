//! One-pass decoding of a well-formed SQS event, the relay's busiest input.
//!
//! The general decoder first captures each record's text, so that a message that cannot be read
//! fails alone (Lambda's partial batch response names it). For an SQS event that capture is an
//! extra scan of every escaped message body, about a fifth of the pipeline's time. Here the
//! `Records` array is read as it streams by, each element typed as `aws_lambda_events`'
//! [`SqsMessage`] and turned into its retry unit at once, so no record is held twice.
//!
//! Anything but a plain SQS event — a parse error anywhere, an element whose `eventSource` is not
//! `aws:sqs`, a message without `messageId`, an empty or repeated `Records` — makes this path give
//! up (`None`) and the payload goes to the general decoder, which then answers exactly as it always
//! does. When this path answers, its answer is the general decoder's (a differential property test
//! checks it).
//!
//! Measured against the simpler alternative — typing the whole payload as `aws_lambda_events`'
//! `SqsEvent` and converting after — on the pipeline bench (2026-12-02, same machine, same run):
//! this path is 7–15 % faster on SQS events (10 messages, 6 MiB) and never holds every message and
//! every decoded notification at once, so it stays.

use std::borrow::Cow;
use std::fmt;

use aws_lambda_events::event::sqs::SqsMessage;
use serde::de::{self, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer as _};

use super::{Inbound, SQS_EVENT_SOURCE, Source, Unit, is_fifo, sqs_unit};

/// Decodes `payload` if it is a well-formed SQS event; `None` sends it to the general decoder.
pub(super) fn decode(payload: &str) -> Option<Inbound> {
    decode_each(payload.as_bytes(), &mut |_, _, unit| Some(unit))
}

/// [`decode`], handing each unit to `on_unit` (with the source and the unit's index) as soon as it
/// is read; the units it gives back are kept in the answer. On `None`, some units may have been
/// handed out already. Read from bytes, every string it decodes is checked to be UTF-8 as it is
/// read; one that is not ends the stream like any other parse error.
pub(super) fn decode_each(payload: &[u8], on_unit: OnUnit<'_>) -> Option<Inbound> {
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    let inbound = deserializer.deserialize_map(Event(on_unit)).ok()?;
    deserializer.end().ok()?;
    Some(inbound)
}

/// What is told each unit as it is read.
type OnUnit<'f> = &'f mut dyn FnMut(Source, usize, Unit) -> Option<Unit>;

/// The reason carried by the error that stops the stream; never shown to anyone.
const NOT_PLAIN: &str = "not a plain SQS event";

/// The top-level object: `Records`, once; other keys are ignored, as the general decoder ignores
/// them when `Records` is there.
struct Event<'f>(OnUnit<'f>);

impl<'de> Visitor<'de> for Event<'_> {
    type Value = Inbound;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an SQS event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Inbound, A::Error> {
        let mut inbound = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "Records" if inbound.is_none() => inbound = Some(map.next_value_seed(Records(&mut *self.0))?),
                "Records" => return Err(A::Error::custom(NOT_PLAIN)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        inbound.ok_or_else(|| A::Error::custom(NOT_PLAIN))
    }
}

/// The `Records` array, each element an SQS message decoded into its unit as it is read.
struct Records<'f>(OnUnit<'f>);

impl<'de> DeserializeSeed<'de> for Records<'_> {
    type Value = Inbound;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Inbound, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_> {
    type Value = Inbound;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of SQS messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inbound, A::Error> {
        let mut fifo = None;
        let mut read = 0;
        let mut units: Vec<Unit> = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(message) = seq.next_element::<SqsMessage>()? {
            if message.event_source.as_deref() != Some(SQS_EVENT_SOURCE) {
                return Err(A::Error::custom(NOT_PLAIN));
            }
            // The first message's queue decides, as in the general decoder.
            let fifo = *fifo.get_or_insert_with(|| is_fifo(&message));
            let unit = sqs_unit(read, &message).map_err(|_| A::Error::custom(NOT_PLAIN))?;
            units.extend((self.0)(Source::Sqs { fifo }, read, unit));
            read += 1;
        }
        match fifo {
            Some(fifo) => Ok(Inbound {
                source: Source::Sqs { fifo },
                units,
            }),
            None => Err(A::Error::custom(NOT_PLAIN)),
        }
    }
}

/// The two trace carriers of each SQS message — its `AWSTraceHeader` system attribute and its
/// `traceparent` message attribute's string value — read without decoding any body (serde skips
/// them unescaped): a typed projection of exactly those fields, not `aws_lambda_events`'
/// [`SqsMessage`], which would unescape and copy every body.
pub(super) fn carrier_fields(payload: &[u8]) -> Option<Vec<CarrierValues<'_>>> {
    let event: CarrierEvent<'_> = serde_json::from_slice(payload).ok()?;
    let fields = event.records.into_iter().map(|m| {
        let header = m.attributes.and_then(|a| a.aws_trace_header);
        let traceparent = m
            .message_attributes
            .and_then(|a| a.traceparent)
            .and_then(|a| a.string_value);
        (header, traceparent)
    });
    Some(fields.collect())
}

/// A message's `AWSTraceHeader` and `traceparent` values, as found.
pub(super) type CarrierValues<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

#[derive(Deserialize)]
struct CarrierEvent<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<CarrierMessage<'a>>,
}

#[derive(Deserialize)]
struct CarrierMessage<'a> {
    #[serde(default, borrow)]
    attributes: Option<SystemAttributes<'a>>,
    #[serde(rename = "messageAttributes", default, borrow)]
    message_attributes: Option<MessageAttributes<'a>>,
}

#[derive(Deserialize)]
struct SystemAttributes<'a> {
    #[serde(rename = "AWSTraceHeader", default, borrow)]
    aws_trace_header: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageAttributes<'a> {
    #[serde(default, borrow)]
    traceparent: Option<StringValue<'a>>,
}

#[derive(Deserialize)]
struct StringValue<'a> {
    #[serde(rename = "stringValue", default, borrow)]
    string_value: Option<Cow<'a, str>>,
}

#[cfg(test)]
mod tests {
    //! The one-pass decoder is an optimisation only: whatever it answers, the general decoder
    //! answers too, and the well-formed SQS events the relay sees every day take it.

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::decode;
    use crate::inbound::{Carrier, decode_record_by_record, sqs_carriers};

    const S3_RECORD: &str = r#"{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-25T12:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:X"},"requestParameters":{"sourceIPAddress":"203.0.113.10"},"responseElements":{},"s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"b","ownerIdentity":{"principalId":"P"},"arn":"arn:aws:s3:::b"},"object":{"key":"a+b%20c","size":1,"eTag":"e","sequencer":"01"}}}"#;

    fn body() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => Just(json!(format!(r#"{{"Records":[{S3_RECORD}]}}"#))),
            1 => Just(json!(format!(r#"{{"Records":[{S3_RECORD},{S3_RECORD}]}}"#))),
            1 => Just(json!(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#)),
            1 => Just(json!(r#"{"Records":[{"eventSource":"aws:sqs"}]}"#)),
            1 => Just(json!("not json")),
            1 => Just(Value::Null),
            1 => Just(json!(17)),
        ]
    }

    fn event_source() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            30 => Just(Some(json!("aws:sqs"))),
            1 => Just(Some(json!("aws:s3"))),
            1 => Just(Some(json!(3))),
            1 => Just(None),
        ]
    }

    fn attributes() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            3 => Just(Some(json!({"AWSTraceHeader": "Root=1-6745a1b2-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1"}))),
            1 => Just(Some(json!({"AWSTraceHeader": "Root=nope", "MessageGroupId": "g"}))),
            1 => Just(Some(json!({"AWSTraceHeader": 5}))),
            1 => Just(Some(json!({}))),
            1 => Just(Some(Value::Null)),
            1 => Just(None),
        ]
    }

    fn message_attributes() -> impl Strategy<Value = Option<Value>> {
        let traceparent = "00-6745a1b20123456789abcdef01234567-1111111111111111-01";
        prop_oneof![
            3 => Just(None),
            2 => Just(Some(json!({}))),
            2 => Just(Some(json!({"traceparent": {"stringValue": traceparent, "dataType": "String"}}))),
            1 => Just(Some(json!({"traceparent": {"stringValue": "00-nope", "dataType": "String"}}))),
            1 => Just(Some(json!({"traceparent": {"stringValue": null, "dataType": "String"}}))),
            1 => Just(Some(Value::Null)),
        ]
    }

    fn message() -> impl Strategy<Value = Value> {
        (
            event_source(),
            prop_oneof![30 => Just(Some(json!("m"))), 1 => Just(None), 1 => Just(Some(json!(1)))],
            body(),
            (attributes(), message_attributes()),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(source, id, body, (attributes, message_attributes), fifo, upper)| {
                let mut m = serde_json::Map::new();
                if let Some(source) = source {
                    m.insert("eventSource".into(), source);
                }
                if upper {
                    m.insert("EventSource".into(), json!(7));
                }
                if let Some(id) = id {
                    m.insert("messageId".into(), id);
                }
                m.insert("body".into(), body);
                if let Some(attributes) = attributes {
                    m.insert("attributes".into(), attributes);
                }
                if let Some(message_attributes) = message_attributes {
                    m.insert("messageAttributes".into(), message_attributes);
                }
                let arn = if fifo {
                    "arn:aws:sqs:us-east-1:1:q.fifo"
                } else {
                    "arn:aws:sqs:us-east-1:1:q"
                };
                m.insert("eventSourceARN".into(), json!(arn));
                Value::Object(m)
            })
    }

    /// Payload text: an SQS-like event, sometimes with an extra top-level key or textual damage.
    fn payload() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(message(), 0..6),
            prop_oneof![
                12 => Just(None),
                1 => Just(Some(("Event", json!("s3:TestEvent")))),
                1 => Just(Some(("source", json!(1)))),
                1 => Just(Some(("other", json!([1, {"a": null}])))),
            ],
            prop_oneof![
                20 => Just(""),
                1 => Just(" x"),
                1 => Just(",\"Records\":[]"),
            ],
        )
            .prop_map(|(messages, extra, damage)| {
                let mut event = serde_json::Map::new();
                event.insert("Records".into(), Value::Array(messages));
                if let Some((key, value)) = extra {
                    event.insert(key.into(), value);
                }
                let text = Value::Object(event).to_string();
                match damage {
                    "" => text,
                    " x" => text + damage,
                    _ => format!("{}{damage}}}", &text[..text.len() - 1]),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn one_pass_answer_is_the_general_decoders(payload in payload()) {
            if let Some(fast) = decode(&payload) {
                prop_assert_eq!(Ok(fast), decode_record_by_record(&payload));
            }
        }

        #[test]
        fn the_carrier_look_ahead_reads_each_units_carrier(payload in payload()) {
            if let Some(inbound) = decode(&payload) {
                let carriers: Vec<Carrier> = inbound.units.into_iter().map(|u| u.carrier).collect();
                prop_assert_eq!(sqs_carriers(payload.as_bytes()).map(Iterator::collect::<Vec<_>>), Some(carriers));
            }
        }

        #[test]
        fn every_well_formed_sqs_event_takes_the_one_pass_path(
            n in 1usize..12,
            fifo in any::<bool>(),
        ) {
            let arn = if fifo { "arn:aws:sqs:us-east-1:1:q.fifo" } else { "arn:aws:sqs:us-east-1:1:q" };
            let records: Vec<Value> = (0..n)
                .map(|i| json!({
                    "messageId": format!("m{i}"),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "body": format!(r#"{{"Records":[{S3_RECORD}]}}"#),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                }))
                .collect();
            let payload = json!({"Records": records}).to_string();
            let fast = decode(&payload);
            prop_assert!(fast.is_some());
            prop_assert_eq!(fast.ok_or(()), decode_record_by_record(&payload).map_err(|_| ()));
        }
    }

    #[test]
    fn sqs_fixtures_take_the_one_pass_path() {
        for fixture in [
            include_str!("../../events/sqs-batch-mixed-trace.json"),
            include_str!("../../events/sqs-sns-envelope.json"),
        ] {
            let fast = decode(fixture).expect("a well-formed SQS event");
            assert_eq!(Ok(fast), decode_record_by_record(fixture));
        }
    }

    #[test]
    fn the_carrier_look_ahead_reads_the_fixtures_carriers() {
        let fixture = include_str!("../../events/sqs-batch-mixed-trace.json");
        let carriers: Vec<Carrier> = decode(fixture).unwrap().units.into_iter().map(|u| u.carrier).collect();
        assert!(carriers.iter().any(|c| matches!(c, Carrier::Valid(_))));
        assert_eq!(
            sqs_carriers(fixture.as_bytes()).map(Iterator::collect::<Vec<_>>),
            Some(carriers)
        );
    }

    #[test]
    fn the_carrier_look_ahead_declines_what_is_no_sqs_event() {
        assert!(sqs_carriers(b"not json").is_none());
        assert!(sqs_carriers(br#"{"Records": 3}"#).is_none());
        assert!(sqs_carriers(br#"{"Records": [{"attributes": {"AWSTraceHeader": 5}}]}"#).is_none());
    }

    #[test]
    fn other_events_are_left_to_the_general_decoder() {
        for fixture in [
            include_str!("../../events/s3-put.json"),
            include_str!("../../events/sns-wrapped.json"),
            include_str!("../../events/eventbridge-object-created.json"),
            include_str!("../../events/s3-test-event.json"),
        ] {
            assert!(decode(fixture).is_none());
        }
    }

    #[test]
    fn a_message_without_message_id_is_left_to_the_general_decoder() {
        let payload = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}).to_string();
        assert!(decode(&payload).is_none());
        assert!(decode_record_by_record(&payload).is_err());
    }
}
