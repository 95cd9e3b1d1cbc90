//! Order (CONTRACT §6): records of one object reach a FIFO target in the order they arrived, and a
//! FIFO source batch is relayed in order per message group and per object — no message is sent
//! ahead of an earlier one of its group, or carrying an event of the same object, that failed.
//!
//! The whole rule lives here:
//! - **Rounds.** In a FIFO source batch ([`Order::of`]), a message goes one round after the previous
//!   message of its group and after the previous message carrying an event of the same object
//!   ([`Order::round_of`]); a round is sent only once the earlier ones are settled.
//! - **Hold-back.** Before each round, and once more before answering Lambda, every message after a
//!   failed one of its group or object is failed without being sent ([`Order::held_back`]), across
//!   rounds and transitively, so Lambda's redelivery of the failed message cannot land behind it.
//! - **FIFO targets.** A batch holds at most one event per object (`plan` batches so), batches go
//!   one at a time, and after an event of an object fails on a FIFO target, the later events of that
//!   object in the invocation are not sent to it ([`TargetGate`]).

use std::collections::{HashMap, HashSet};

use crate::failure::HoldBack;
use crate::inbound::{Content, Inbound, Source};
use crate::message::Message;

/// What a unit of a FIFO source batch is ordered by: its message group and the objects it carries.
#[derive(Debug, Default)]
struct Keys<'a> {
    group: Option<&'a str>,
    objects: Vec<(&'a str, &'a str)>,
}

/// The ordering of one invocation's units; empty (no constraint) unless the source is a FIFO queue.
#[derive(Debug, Default)]
pub struct Order<'a> {
    units: Vec<Keys<'a>>,
    rounds: Vec<usize>,
}

impl<'a> Order<'a> {
    /// The ordering of `inbound`: groups and objects of each unit, and the round each goes in.
    pub fn of(inbound: &'a Inbound) -> Self {
        if !matches!(inbound.source, Source::Sqs { fifo: true }) {
            return Order::default();
        }
        let units: Vec<Keys<'a>> = inbound
            .units
            .iter()
            .map(|u| Keys {
                group: u.group_id.as_deref(),
                objects: match &u.content {
                    Ok(Content::Notifications(list)) => {
                        list.iter().map(|n| (n.bucket.as_str(), n.key.as_str())).collect()
                    }
                    _ => Vec::new(),
                },
            })
            .collect();
        let rounds = rounds(&units);
        Order { units, rounds }
    }

    /// The round unit `unit` goes in (0 for every unit of other sources).
    pub fn round_of(&self, unit: usize) -> usize {
        self.rounds.get(unit).copied().unwrap_or(0)
    }

    /// How many rounds the invocation takes (at least one).
    pub fn round_count(&self) -> usize {
        self.rounds.iter().max().map_or(1, |r| r + 1)
    }

    /// The units not failed yet that must be held back, given which have failed: every unit after a
    /// failed (or held back) one of its message group or carrying an event of the same object.
    pub fn held_back(&self, failed: impl Fn(usize) -> bool) -> Vec<(usize, HoldBack)> {
        let mut groups: HashSet<&str> = HashSet::new();
        let mut objects: HashSet<(&str, &str)> = HashSet::new();
        let mut held = Vec::new();
        for (unit, keys) in self.units.iter().enumerate() {
            let why = if failed(unit) {
                None
            } else if keys.group.is_some_and(|g| groups.contains(g)) {
                Some(HoldBack::SourceGroup)
            } else if keys.objects.iter().any(|o| objects.contains(o)) {
                Some(HoldBack::SameObject)
            } else {
                continue;
            };
            held.extend(why.map(|why| (unit, why)));
            groups.extend(keys.group);
            objects.extend(keys.objects.iter().copied());
        }
        held
    }
}

/// Round of each unit: one after the previous unit of its group and of each of its objects.
fn rounds(units: &[Keys<'_>]) -> Vec<usize> {
    let mut next_of_group: HashMap<&str, usize> = HashMap::new();
    let mut next_of_object: HashMap<(&str, &str), usize> = HashMap::new();
    units
        .iter()
        .map(|keys| {
            let after_group = keys.group.and_then(|g| next_of_group.get(g)).copied().unwrap_or(0);
            let after_object = keys.objects.iter().filter_map(|o| next_of_object.get(o)).copied().max();
            let round = after_group.max(after_object.unwrap_or(0));
            if let Some(g) = keys.group {
                next_of_group.insert(g, round + 1);
            }
            for &o in &keys.objects {
                next_of_object.insert(o, round + 1);
            }
            round
        })
        .collect()
}

/// On one FIFO target: once an event of an object failed, the later events of that object in this
/// invocation are not sent (they would land ahead of the failed one's redelivery).
#[derive(Debug, Default)]
pub struct TargetGate {
    failed: HashSet<String>,
}

impl TargetGate {
    /// Whether `message` may be sent: no earlier event of its object failed on this target.
    pub fn admits(&self, message: &Message) -> bool {
        message
            .fifo
            .as_ref()
            .is_none_or(|ids| !self.failed.contains(ids.group_id.as_str()))
    }

    /// Records that `message` failed on this target.
    pub fn failed(&mut self, message: &Message) {
        if let Some(ids) = &message.fifo {
            self.failed.insert(ids.group_id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(group: &'a str, objects: &[&'a str]) -> Keys<'a> {
        Keys {
            group: Some(group),
            objects: objects.iter().map(|k| ("b", *k)).collect(),
        }
    }

    fn order(units: Vec<Keys<'static>>) -> Order<'static> {
        let rounds = rounds(&units);
        Order { units, rounds }
    }

    #[test]
    fn a_unit_waits_for_its_group_and_its_objects() {
        let o = order(vec![
            keys("g1", &["a"]),
            keys("g1", &["x"]),
            keys("g2", &["x"]),
            keys("g3", &["y"]),
        ]);
        assert_eq!(o.rounds, vec![0, 1, 2, 0]);
        assert_eq!(o.round_count(), 3);
    }

    #[test]
    fn a_failure_holds_back_later_units_of_its_group_and_object_transitively() {
        // u0 (g1, x) failed: u1 (g2, x) by object, then u2 (g2, y) by group, then u3 (g3, y) by object.
        let o = order(vec![
            keys("g1", &["x"]),
            keys("g2", &["x"]),
            keys("g2", &["y"]),
            keys("g3", &["y"]),
            keys("g4", &["z"]),
        ]);
        assert_eq!(
            o.held_back(|u| u == 0),
            vec![
                (1, HoldBack::SameObject),
                (2, HoldBack::SourceGroup),
                (3, HoldBack::SameObject)
            ]
        );
    }

    #[test]
    fn earlier_units_are_never_held_back() {
        let o = order(vec![keys("g1", &["x"]), keys("g1", &["x"])]);
        assert!(o.held_back(|u| u == 1).is_empty());
    }

    #[test]
    fn other_sources_have_one_round_and_no_hold_back() {
        let o = Order::default();
        assert_eq!((o.round_of(5), o.round_count()), (0, 1));
        assert!(o.held_back(|_| true).is_empty());
    }
}
