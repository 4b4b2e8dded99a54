//! The checker's effect-order witness: vector clocks of the checker's threads and the
//! ordered extension effect instances that started, to tell whether an effect starts
//! knowing (through the frames that reached its role) that every effect the program
//! puts before it has finished at every one of its roles.
//!
//! An instance is an effect's [`OrderTag`] unfolded with the rounds of the loops
//! around it. Two instances are ordered when, at the first step where their unfolded
//! paths differ, one has the lower index of a sequence or the earlier round of a
//! loop; different parts of a `par` (or different branches) are not ordered.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::extension::OrderTag;
use crate::label::{Label, Step};

/// A step of an unfolded path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Unfolded {
    Index(usize),
    Branch(Label),
    Part(usize),
    Round(u64),
    Body,
}

/// One started instance of an ordered effect.
struct Instance {
    key: Vec<Unfolded>,
    name: &'static str,
    participants: usize,
    /// (thread, its clock at the finish) for every participant that finished.
    finished: Vec<(usize, u32)>,
}

/// Why an effect started out of order.
pub(crate) struct Violation {
    pub(crate) earlier: String,
    pub(crate) problem: String,
}

/// Clocks and instances of one check.
#[derive(Default)]
pub(crate) struct Witness {
    /// `clocks[t][u]`: how many finishes of thread `u` thread `t` knows of.
    clocks: Vec<Vec<u32>>,
    instances: Vec<Instance>,
    by_key: HashMap<Vec<Unfolded>, usize>,
}

/// The instance key of `tag` in loop rounds `rounds`, or `None` when the tag does not
/// fit (a hand-edited program).
pub(crate) fn unfold(tag: &OrderTag, rounds: &[u64]) -> Option<Vec<Unfolded>> {
    if tag.loop_levels().len() != rounds.len() {
        return None;
    }
    let mut next_round = rounds.iter();
    let mut key = Vec::with_capacity(tag.path().steps().len());
    for (position, step) in tag.path().steps().iter().enumerate() {
        key.push(match step {
            Step::Index(i) => Unfolded::Index(*i),
            Step::Branch(label) => Unfolded::Branch(label.clone()),
            Step::Part(i) => Unfolded::Part(*i),
            Step::Body if tag.loop_levels().contains(&position) => {
                Unfolded::Round(*next_round.next()?)
            }
            Step::Body => Unfolded::Body,
        });
    }
    Some(key)
}

/// Whether the program puts instance `a` before (`Less`) or after (`Greater`) `b`;
/// `None` when neither (parts of a `par`, branches of a choice).
fn compare(a: &[Unfolded], b: &[Unfolded]) -> Option<Ordering> {
    for (x, y) in a.iter().zip(b) {
        if x == y {
            continue;
        }
        return match (x, y) {
            (Unfolded::Index(x), Unfolded::Index(y)) => Some(x.cmp(y)),
            (Unfolded::Round(x), Unfolded::Round(y)) => Some(x.cmp(y)),
            _ => None,
        };
    }
    (a.len() == b.len()).then_some(Ordering::Equal)
}

fn describe(name: &str, key: &[Unfolded]) -> String {
    let mut out = format!("{name} at ");
    for (i, step) in key.iter().enumerate() {
        if i > 0 {
            out.push_str(" > ");
        }
        match step {
            Unfolded::Index(i) => out.push_str(&format!("[{i}]")),
            Unfolded::Branch(label) => out.push_str(&format!("branch {label:?}")),
            Unfolded::Part(i) => out.push_str(&format!("part {i}")),
            Unfolded::Round(r) => out.push_str(&format!("round {r}")),
            Unfolded::Body => out.push_str("body"),
        }
    }
    out
}

impl Witness {
    fn clock(&mut self, thread: usize) -> &mut Vec<u32> {
        if self.clocks.len() <= thread {
            self.clocks.resize_with(thread + 1, Vec::new);
        }
        &mut self.clocks[thread]
    }

    /// What thread `thread` knows, to send along with a frame.
    pub(crate) fn stamp(&mut self, thread: usize) -> Vec<u32> {
        self.clock(thread).clone()
    }

    /// Thread `thread` received a frame stamped `stamp`.
    pub(crate) fn receive(&mut self, thread: usize, stamp: &[u32]) {
        let clock = self.clock(thread);
        if clock.len() < stamp.len() {
            clock.resize(stamp.len(), 0);
        }
        for (mine, theirs) in clock.iter_mut().zip(stamp) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// A `par` part's thread starts knowing what its parent knows.
    pub(crate) fn fork(&mut self, parent: usize, child: usize) {
        let stamp = self.stamp(parent);
        *self.clock(child) = stamp;
    }

    /// A part's thread ended: its parent goes on knowing what it knew.
    pub(crate) fn join(&mut self, child: usize, parent: usize) {
        let stamp = self.stamp(child);
        self.receive(parent, &stamp);
    }

    /// Thread `thread` starts instance `key` of effect `name`, carried out by
    /// `participants` roles. Returns the instance's number, or the violation.
    pub(crate) fn start(
        &mut self,
        thread: usize,
        name: &'static str,
        key: Vec<Unfolded>,
        participants: usize,
    ) -> Result<usize, Violation> {
        let clock = self.stamp(thread);
        let knows = |(t, tick): &(usize, u32)| clock.get(*t).copied().unwrap_or(0) >= *tick;
        for other in &self.instances {
            match compare(&other.key, &key) {
                Some(Ordering::Less) => {
                    if other.finished.len() < other.participants {
                        return Err(Violation {
                            earlier: describe(other.name, &other.key),
                            problem: format!(
                                "had finished at {} of its {} roles",
                                other.finished.len(),
                                other.participants
                            ),
                        });
                    }
                    if !other.finished.iter().all(knows) {
                        return Err(Violation {
                            earlier: describe(other.name, &other.key),
                            problem: "had finished, but no frame told this role so".to_owned(),
                        });
                    }
                }
                Some(Ordering::Greater) => {
                    return Err(Violation {
                        earlier: describe(other.name, &other.key),
                        problem: "comes after it in the program, but had already started"
                            .to_owned(),
                    });
                }
                _ => {}
            }
        }
        if let Some(&index) = self.by_key.get(&key) {
            return Ok(index);
        }
        self.instances.push(Instance {
            key: key.clone(),
            name,
            participants,
            finished: Vec::new(),
        });
        self.by_key.insert(key, self.instances.len() - 1);
        Ok(self.instances.len() - 1)
    }

    /// Thread `thread` finished instance `index`.
    pub(crate) fn finish(&mut self, thread: usize, index: usize) {
        let clock = self.clock(thread);
        if clock.len() <= thread {
            clock.resize(thread + 1, 0);
        }
        clock[thread] += 1;
        let tick = clock[thread];
        if let Some(instance) = self.instances.get_mut(index) {
            instance.finished.push((thread, tick));
        }
    }

    /// Describes instance `key` of `name` for an error.
    pub(crate) fn describe(name: &str, key: &[Unfolded]) -> String {
        describe(name, key)
    }
}
