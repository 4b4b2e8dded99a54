//! Effect order: what each role causally knows while projection walks a program, and
//! the order frames that make every ordered extension effect start after the ones
//! before it have finished.
//!
//! A *fact* is an event of one role: "role p finished this effect instance", or a
//! point a role reached (a loop round's start, a choice's end). Every role knows its
//! own facts; a message, a label, a loop decision or an order frame from `a` to `b`
//! teaches `b` everything `a` knows at that point. The *frontier* is the set of facts
//! the next ordered effect needs: before it starts at role `q`, `q` must know them
//! all, and where the program's own messages did not teach it, projection inserts an
//! order frame from a role that knows to `q`.

use std::collections::{BTreeMap, BTreeSet};

use crate::extension::Participation;
use crate::local::{Local, LocalProgram, push_blocks};
use crate::program::{Global, LoopKind, Message, Program};
use crate::project::ProjectionError;
use crate::role::RoleId;

/// A fact's number; facts are numbered in the order projection meets them.
pub(crate) type Fact = u32;

/// What every role knows, and what the next ordered effect needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Known {
    /// Per role (indexed like the projector's roles): the facts it knows.
    pub(crate) know: Vec<BTreeSet<Fact>>,
    /// The facts every participant of the next ordered effect must know.
    pub(crate) frontier: Vec<Fact>,
}

impl Known {
    pub(crate) fn new(roles: usize) -> Self {
        Known {
            know: vec![BTreeSet::new(); roles],
            frontier: Vec::new(),
        }
    }

    /// `to` learns everything `from` knows.
    pub(crate) fn teach(&mut self, from: usize, to: usize) {
        if from == to || self.know[from].is_empty() {
            return;
        }
        let known = self.know[from].clone();
        self.know[to].extend(known);
    }

    /// The facts of the frontier `role` does not know.
    pub(crate) fn missing(&self, role: usize, facts: &[Fact]) -> Vec<Fact> {
        facts
            .iter()
            .copied()
            .filter(|fact| !self.know[role].contains(fact))
            .collect()
    }

    /// What is known in every one of `states` (the branches of a choice), with the
    /// frontier of the first.
    pub(crate) fn intersection(states: &[Known]) -> Known {
        let mut out = states.first().cloned().unwrap_or_default();
        for state in states.iter().skip(1) {
            for (mine, theirs) in out.know.iter_mut().zip(&state.know) {
                mine.retain(|fact| theirs.contains(fact));
            }
        }
        out
    }

    /// What is known after all of `states` (the parts of a `par`) are done: the union
    /// of the knowledge and of the frontiers.
    pub(crate) fn union(states: &[Known]) -> Known {
        let mut out = states.first().cloned().unwrap_or_default();
        for state in states.iter().skip(1) {
            for (mine, theirs) in out.know.iter_mut().zip(&state.know) {
                mine.extend(theirs.iter().copied());
            }
            out.frontier.extend(state.frontier.iter().copied());
        }
        out.frontier.sort_unstable();
        out.frontier.dedup();
        out
    }
}

/// A `par` or a choice being projected: order frames about facts older than it are
/// sent before it, so that they never make two parts share a channel, and never make
/// a role's branches differ.
#[derive(Debug)]
pub(crate) struct Scope {
    /// The first fact number of the `par`: older facts are known before it.
    pub(crate) watermark: Fact,
    /// The knowledge when the `par` starts, grown by the frames sent before it.
    pub(crate) entry: Known,
    /// Frames (sender, receiver) to send just before the `par`.
    pub(crate) before: Vec<(usize, usize)>,
}

/// Whether `seq` holds an ordered extension effect with at least one participant
/// (loops of zero rounds left out: they never run).
pub(crate) fn has_ordered<R: RoleId, M>(seq: &[Global<R, M>]) -> bool {
    first_ordered(seq).is_some()
}

/// The participants of the first ordered extension effect of `seq`, in program order.
pub(crate) fn first_ordered<R: RoleId, M>(seq: &[Global<R, M>]) -> Option<Participation<R>> {
    let mut stack: Vec<std::slice::Iter<'_, Global<R, M>>> = vec![seq.iter()];
    while let Some(top) = stack.last_mut() {
        let Some(effect) = top.next() else {
            stack.pop();
            continue;
        };
        match effect {
            Global::Ext(ext) if ext.is_ordered() => {
                let participation = ext.participation::<R>();
                if !matches!(&participation, Participation::Roles(list) if list.is_empty()) {
                    return Some(participation);
                }
            }
            Global::Loop {
                kind: LoopKind::Count(0),
                ..
            } => {}
            Global::Loop { body, .. } | Global::Timeout { body, .. } => stack.push(body.iter()),
            Global::Choice { branches, .. } => {
                // Any branch may run: look at all of them, the first first.
                for (_, branch) in branches.iter().rev() {
                    stack.push(branch.iter());
                }
            }
            Global::Par { parts } => {
                for part in parts.iter().rev() {
                    stack.push(part.iter());
                }
            }
            _ => {}
        }
    }
    None
}

/// Roles that surely act in `seq` (so a loop decision reaches them): message ends,
/// extension participants, choosers and deciders. Timeout-only roles and zero-round
/// loops are left out.
pub(crate) fn acting_roles<R: RoleId, M>(seq: &[Global<R, M>], all: &[R]) -> BTreeSet<R> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<&[Global<R, M>]> = vec![seq];
    while let Some(items) = stack.pop() {
        for effect in items {
            match effect {
                Global::Send { from, to, .. } => {
                    found.insert(*from);
                    found.insert(*to);
                }
                Global::Broadcast {
                    from: one,
                    to: many,
                    ..
                }
                | Global::Gather {
                    from: many,
                    to: one,
                    ..
                } => {
                    if !many.is_empty() {
                        found.insert(*one);
                        found.extend(many.members().iter().copied());
                    }
                }
                Global::Ext(ext) => match ext.participation::<R>() {
                    Participation::Everyone => found.extend(all.iter().copied()),
                    Participation::Roles(list) => found.extend(list),
                },
                Global::Choice { at, branches } => {
                    found.insert(*at);
                    stack.extend(branches.iter().map(|(_, b)| b.as_slice()));
                }
                Global::Loop {
                    kind: LoopKind::Count(0),
                    ..
                } => {}
                Global::Loop { kind, body } => {
                    if let LoopKind::Until { decider } = kind {
                        found.insert(*decider);
                    }
                    stack.push(body);
                }
                Global::Par { parts } => stack.extend(parts.iter().map(Vec::as_slice)),
                Global::Timeout { body, .. } => stack.push(body),
            }
        }
    }
    found
}

/// `effects` without order frames: what projection would give without effect order
/// (tags are invisible to equality already).
pub(crate) fn strip<R: Clone, M: Clone>(effects: &[Local<R, M>]) -> Vec<Local<R, M>> {
    effects
        .iter()
        .filter(|e| !matches!(e, Local::OrderSend { .. } | Local::OrderRecv { .. }))
        .map(|effect| match effect {
            Local::Select { tell, branches, at } => Local::Select {
                tell: tell.clone(),
                branches: strip_branches(branches),
                at: at.clone(),
            },
            Local::Branch {
                from,
                tell,
                branches,
                at,
            } => Local::Branch {
                from: from.clone(),
                tell: tell.clone(),
                branches: strip_branches(branches),
                at: at.clone(),
            },
            Local::Loop { control, body, at } => Local::Loop {
                control: control.clone(),
                body: strip(body),
                at: at.clone(),
            },
            Local::Par { parts } => Local::Par {
                parts: parts
                    .iter()
                    .map(|p| strip(p))
                    .filter(|p| !p.is_empty())
                    .collect(),
            },
            Local::Timeout { duration, body, at } => Local::Timeout {
                duration: *duration,
                body: strip(body),
                at: at.clone(),
            },
            other => other.clone(),
        })
        .collect()
}

fn strip_branches<R: Clone, M: Clone>(
    branches: &[(crate::label::Label, Vec<Local<R, M>>)],
) -> Vec<(crate::label::Label, Vec<Local<R, M>>)> {
    branches
        .iter()
        .map(|(label, body)| (label.clone(), strip(body)))
        .collect()
}

/// Whether two local sequences are the same, order tags included (two branches whose
/// effects sit at different places of the global program are not the same to a role).
pub(crate) fn same_with_tags<R: PartialEq, M: PartialEq>(
    a: &[Local<R, M>],
    b: &[Local<R, M>],
) -> bool {
    a == b && tags(a) == tags(b)
}

fn tags<R, M>(effects: &[Local<R, M>]) -> Vec<Option<crate::extension::OrderTag>> {
    let mut found = Vec::new();
    let mut stack = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            if let Local::Ext(ext) = effect {
                found.push(ext.order_tag().cloned());
            }
            push_blocks(effect, &mut stack);
        }
    }
    found
}

/// How many control frames a program needs for effect order.
///
/// # Example
/// ```
/// use stormchor_choreography::{order_frames, Program};
/// # use std::any::{Any, TypeId};
/// # use stormchor_choreography::ExtensionEffect;
/// # #[derive(Clone, Debug)]
/// # struct Step(&'static str);
/// # impl ExtensionEffect for Step {
/// #     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
/// #     fn type_name(&self) -> &'static str { "Step" }
/// #     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { vec![Box::new(self.0)] }
/// #     fn as_any(&self) -> &dyn Any { self }
/// #     fn as_any_mut(&mut self) -> &mut dyn Any { self }
/// #     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// # }
///
/// // a's step, then b's: b waits for one order frame from a.
/// let program: Program<&str, &str> = Program::new().ext(Step("a")).ext(Step("b"));
/// let frames = order_frames(&program).expect("sound");
/// assert_eq!(frames.total(), 1);
/// assert_eq!(frames.sent_by["a"], 1);
///
/// // A message of the program already orders them: no frame.
/// let program: Program<&str, &str> = Program::new().ext(Step("a")).send("a", "b", "done").ext(Step("b"));
/// assert_eq!(order_frames(&program).expect("sound").total(), 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFrames<R> {
    /// Order frames in each role's local program (a loop's frames counted once).
    pub sent_by: BTreeMap<R, usize>,
    /// Branch labels sent only because effect order made a role's branches differ
    /// (the chooser tells such a role directly), counted once per choice and role.
    pub labels: usize,
}

impl<R> OrderFrames<R> {
    /// All control frames effect order adds: order frames and extra labels.
    pub fn total(&self) -> usize {
        self.sent_by.values().sum::<usize>() + self.labels
    }
}

/// Counts the control frames `program`'s projections hold for effect order.
pub fn order_frames<R: RoleId, M: Message>(
    program: &Program<R, M>,
) -> Result<OrderFrames<R>, ProjectionError> {
    let (locals, labels) = crate::project::project_counting(program)?;
    Ok(OrderFrames {
        sent_by: locals
            .iter()
            .map(|(role, local)| (*role, count_sends(local)))
            .collect(),
        labels,
    })
}

fn count_sends<R, M>(local: &LocalProgram<R, M>) -> usize {
    let mut count = 0;
    let mut stack = vec![local.effects()];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            if matches!(effect, Local::OrderSend { .. }) {
                count += 1;
            }
            push_blocks(effect, &mut stack);
        }
    }
    count
}

/// The roles whose points at the end of `seq` stand for its last ordered effects: the
/// participants of the last one, or the last actors of the last compound effect that
/// holds one. A loop round starts waiting for these roles' points of the round before.
pub(crate) fn last_actors<R: RoleId, M>(seq: &[Global<R, M>], all: &[R]) -> BTreeSet<R> {
    last_actors_at(seq, all, 0).0
}

/// [`last_actors`], and whether facts from before `seq` may still be among its last
/// ones (a branch, part or zero-round loop without ordered effects lets them through).
fn last_actors_at<R: RoleId, M>(
    seq: &[Global<R, M>],
    all: &[R],
    depth: usize,
) -> (BTreeSet<R>, bool) {
    if depth > 64 {
        // Deeper than any real program: every role, which is never too few.
        return (all.iter().copied().collect(), true);
    }
    let nested = |body: &[Global<R, M>]| last_actors_at(body, all, depth + 1);
    for (i, item) in seq.iter().enumerate().rev() {
        if !has_ordered(std::slice::from_ref(item)) {
            continue;
        }
        let (mut roles, through) = match item {
            Global::Ext(ext) => (
                match ext.participation::<R>() {
                    Participation::Everyone => all.iter().copied().collect(),
                    Participation::Roles(list) => list.into_iter().collect(),
                },
                false,
            ),
            Global::Choice { branches, .. } => {
                let mut roles = BTreeSet::new();
                let mut through = false;
                for (_, branch) in branches {
                    let (found, passes) = nested(branch);
                    roles.extend(found);
                    through |= passes;
                }
                (roles, through)
            }
            Global::Par { parts } => {
                let mut roles = BTreeSet::new();
                let mut through = false;
                for part in parts {
                    let (found, passes) = nested(part);
                    roles.extend(found);
                    through |= passes;
                }
                (roles, through)
            }
            Global::Loop {
                kind: LoopKind::Until { .. },
                body,
            } => (nested(body).0, true),
            Global::Loop { body, .. } | Global::Timeout { body, .. } => nested(body),
            _ => (BTreeSet::new(), true),
        };
        if through {
            let (before, passes) = last_actors_at(&seq[..i], all, depth + 1);
            roles.extend(before);
            return (roles, passes);
        }
        return (roles, false);
    }
    (BTreeSet::new(), true)
}
