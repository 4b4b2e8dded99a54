//! Projection: from one global program to one local program per role.
//!
//! The projector walks the global program once with an explicit stack (no recursion,
//! so nesting depth never overflows the thread stack) and builds the local programs of
//! *all* roles side by side. Projecting every role at once is what lets it decide, at
//! each choice, which roles must learn the pick and from whom, and insert the label
//! messages into the informers' programs. Its cost is linear in the program size times
//! the number of roles.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::mem;
use std::sync::Arc;

use thiserror::Error;

use crate::extension::{OrderTag, Participation, Place};
use crate::label::{Label, Path, Step};
use crate::local::{Local, LocalProgram, LoopControl, Origin, push_blocks};
use crate::order::{
    Fact, Known, Scope, acting_roles, has_ordered, last_actors, same_with_tags, strip,
};
use crate::program::{Global, LoopKind, Message, Program, blocks};
use crate::role::RoleId;

/// Why a global program cannot be projected. Every variant says where: a [`Path`] of
/// indices, branch labels and parts from the top of the program.
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Program, ProjectionError};
///
/// // The worker sends in one branch and receives in the other: it cannot know which
/// // branch the coordinator picked.
/// let program: Program<&str, &str> = Program::new().choice("coordinator", [
///     ("a", Program::new().send("worker", "coordinator", "rows")),
///     ("b", Program::new().send("coordinator", "worker", "stop")),
/// ]);
/// let error = project_all(&program).unwrap_err();
/// assert!(matches!(error, ProjectionError::UnlearnedChoice { ref role, .. } if role == "\"worker\""));
/// assert_eq!(error.path().to_string(), "[0]");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProjectionError {
    /// A role sends a message to itself.
    #[error("{role} sends a message to itself at {path}")]
    SelfSend {
        /// The role.
        role: String,
        /// Where.
        path: Path,
    },
    /// A role that is not a role of the program.
    #[error("{role} {context} at {path}, but it is not a role of this program")]
    UnknownRole {
        /// The role.
        role: String,
        /// What the program does with it ("sends", "chooses", ...).
        context: String,
        /// Where.
        path: Path,
    },
    /// A choice without branches.
    #[error("the choice at {chooser} at {path} has no branch")]
    EmptyChoice {
        /// The chooser.
        chooser: String,
        /// Where.
        path: Path,
    },
    /// Two branches of a choice with the same label.
    #[error("the choice at {chooser} at {path} has two branches labelled {label:?}")]
    DuplicateLabel {
        /// The chooser.
        chooser: String,
        /// The repeated label.
        label: String,
        /// Where.
        path: Path,
    },
    /// A role behaves differently in the branches of a choice but cannot learn which
    /// branch was taken.
    #[error(
        "{role} cannot learn which branch of the choice at {chooser} at {path} was taken: \
         in branch {branch:?}, {reason}"
    )]
    UnlearnedChoice {
        /// The role that cannot learn.
        role: String,
        /// The chooser.
        chooser: String,
        /// The branch where the problem shows.
        branch: String,
        /// What is wrong.
        reason: String,
        /// Where the choice is.
        path: Path,
    },
    /// Two parts of a `par` use the same directed channel.
    #[error("parts {first} and {second} of the par at {path} both use the channel {from} -> {to}")]
    ParallelChannelRace {
        /// The sending side of the channel.
        from: String,
        /// The receiving side of the channel.
        to: String,
        /// The first part using it.
        first: usize,
        /// The second part using it.
        second: usize,
        /// Where the par is.
        path: Path,
    },
    /// Effect order needs an order frame on a channel that another part of a `par`
    /// uses.
    #[error(
        "effect order needs an order frame from {from} to {to} in part {second} of the par at {path}, \
         but part {first} uses that channel; order the effects with a message of the part, \
         or move them out of the par"
    )]
    OrderFrameRace {
        /// The sending side of the channel.
        from: String,
        /// The receiving side of the channel.
        to: String,
        /// The other part using it.
        first: usize,
        /// The part that needs the frame.
        second: usize,
        /// Where the par is.
        path: Path,
    },
    /// An effect started with `ext_start` is not finished on some path.
    #[error(
        "the effect started as `{handle}` at {path} is not finished in {place}: \
         every start needs its `ext finish {handle}` on every path, in the same block"
    )]
    UnfinishedStart {
        /// The handle.
        handle: String,
        /// The block that ends without finishing it ("branch \"b\" of the choice",
        /// "the loop's round", "the program").
        place: String,
        /// Where the start is.
        path: Path,
    },
    /// A finish of a handle that is not running there.
    #[error("`ext finish {handle}` at {path} finishes nothing: {reason}")]
    UnknownFinish {
        /// The handle.
        handle: String,
        /// Why nothing runs under it.
        reason: String,
        /// Where the finish is.
        path: Path,
    },
    /// A handle started again while the effect started under it still runs.
    #[error(
        "`{handle}` is started at {path} while the effect started as `{handle}` at {first} still runs"
    )]
    HandleInUse {
        /// The handle.
        handle: String,
        /// Where it was started first.
        first: Path,
        /// Where it is started again.
        path: Path,
    },
    /// A timeout of zero length, which could never be met.
    #[error("the timeout for {role} at {path} is zero")]
    ZeroTimeout {
        /// The bounded role.
        role: String,
        /// Where.
        path: Path,
    },
}

impl ProjectionError {
    /// Where in the global program the problem is.
    pub fn path(&self) -> &Path {
        match self {
            ProjectionError::SelfSend { path, .. }
            | ProjectionError::UnknownRole { path, .. }
            | ProjectionError::EmptyChoice { path, .. }
            | ProjectionError::DuplicateLabel { path, .. }
            | ProjectionError::UnlearnedChoice { path, .. }
            | ProjectionError::ParallelChannelRace { path, .. }
            | ProjectionError::OrderFrameRace { path, .. }
            | ProjectionError::UnfinishedStart { path, .. }
            | ProjectionError::UnknownFinish { path, .. }
            | ProjectionError::HandleInUse { path, .. }
            | ProjectionError::ZeroTimeout { path, .. } => path,
        }
    }
}

/// The local programs of every role of a program, by role.
pub type Projections<R, M> = BTreeMap<R, LocalProgram<R, M>>;

/// Projects `program` onto every one of its roles.
///
/// Succeeds only if the whole program is sound: the local programs run together never
/// deadlock, leave no message unread and never meet an unexpected message or label.
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Local, Program};
///
/// let program: Program<&str, &str> = Program::new()
///     .send("coordinator", "worker", "start")
///     .choice("worker", [
///         ("ok", Program::new().send("worker", "coordinator", "done")),
///         ("failed", Program::new().send("worker", "coordinator", "error")),
///     ]);
/// let locals = project_all(&program).expect("well-formed");
/// // The coordinator learns the worker's pick from the label the worker sends.
/// assert!(matches!(locals["coordinator"].effects()[1], Local::Branch { from: "worker", .. }));
/// ```
pub fn project_all<R: RoleId, M: Message>(
    program: &Program<R, M>,
) -> Result<Projections<R, M>, ProjectionError> {
    project_counting(program).map(|(locals, _)| locals)
}

/// [`project_all`], and how many branch labels effect order added.
pub(crate) fn project_counting<R: RoleId, M: Message>(
    program: &Program<R, M>,
) -> Result<(Projections<R, M>, usize), ProjectionError> {
    let resolved = crate::background::resolve(program.effects())?;
    let effects = resolved.as_deref().unwrap_or(program.effects());
    let roles: Vec<R> = program.roles().into_iter().collect();
    let mut projector = Projector {
        order: Known::new(roles.len()),
        roles,
        path: Path::default(),
        loop_levels: Vec::new(),
        facts: Vec::new(),
        scopes: Vec::new(),
        labels: 0,
        trials: 0,
        pruned: 0,
        framing: None,
    };
    let per_role = projector.run(effects)?;
    let labels = projector.labels;
    Ok((
        projector
            .roles
            .iter()
            .zip(per_role)
            .map(|(role, effects)| (*role, LocalProgram::new(*role, effects)))
            .collect(),
        labels,
    ))
}

/// Projects `program` onto one role.
///
/// The whole program is checked, so an error may concern another role: a program is
/// either sound for all its roles or rejected.
///
/// # Example
/// ```
/// use stormchor_choreography::{project, Local, Program, ProjectionError};
///
/// let program: Program<&str, &str> = Program::new().send("a", "b", "ping");
/// let b = project(&program, "b").expect("well-formed");
/// assert_eq!(b.effects(), &[Local::Recv { from: "a", msg: "ping", at: Default::default() }]);
/// assert!(matches!(project(&program, "c"), Err(ProjectionError::UnknownRole { .. })));
/// ```
pub fn project<R: RoleId, M: Message>(
    program: &Program<R, M>,
    role: R,
) -> Result<LocalProgram<R, M>, ProjectionError> {
    let mut all = project_all(program)?;
    all.remove(&role)
        .ok_or_else(|| ProjectionError::UnknownRole {
            role: format!("{role:?}"),
            context: "is the projection target".to_owned(),
            path: Path::default(),
        })
}

/// Local effects of every role, indexed like `Projector::roles`.
type PerRole<R, M> = Vec<Vec<Local<R, M>>>;

struct Projector<R> {
    /// The program's roles, sorted.
    roles: Vec<R>,
    /// The path of the effect being projected.
    path: Path,
    /// The positions of `path` that are loop bodies.
    loop_levels: Vec<usize>,
    /// What every role knows at this point, for effect order.
    order: Known,
    /// The role each fact belongs to, by fact number.
    facts: Vec<usize>,
    /// The `par`s being projected, outermost first.
    scopes: Vec<Scope>,
    /// Branch labels added for effect order.
    labels: usize,
    /// How many trial rounds are being projected (nested loops).
    trials: usize,
    /// The number of facts at the last pruning.
    pruned: usize,
    /// The origin of the order frames being inserted, when it is not the current
    /// path (the frames before an extension effect take its place, source line
    /// included).
    framing: Option<Origin>,
}

/// Prune what roles know after this many new facts.
const PRUNE_EVERY: usize = 256;

/// The effect-order side of a compound effect being projected.
struct Ordering {
    /// Whether the compound holds ordered effects (then loops and choices join).
    ordered: bool,
    /// The knowledge each block starts from (choices and loops).
    start: Known,
    /// The knowledge before the compound, after the frames sent before it.
    before: Known,
    /// The knowledge at the end of each block.
    ends: Vec<Known>,
    /// A loop's last actors: roles whose points at a round's start stand for the
    /// previous round's last effects.
    origins: Vec<usize>,
    /// For each last actor, the other roles that know its last effects when a round
    /// ends.
    knowers: Vec<Vec<usize>>,
    /// A decided loop's decider.
    decider: Option<usize>,
    /// A decided loop's roles that hear every decision.
    hearers: Vec<usize>,
}

/// What a compound effect leaves when its blocks are done.
struct Left {
    /// Whether it held ordered effects.
    ordered: bool,
    /// A `par`'s scope, with the frames to send before it.
    scope: Option<Scope>,
}

enum Task<'p, R, M> {
    /// Projecting a sequence; `out` holds what is done so far.
    Seq {
        items: &'p [Global<R, M>],
        next: usize,
        out: PerRole<R, M>,
    },
    /// A compound effect whose blocks are being projected one after the other.
    Compound {
        effect: &'p Global<R, M>,
        blocks: std::vec::IntoIter<(Step, &'p [Global<R, M>])>,
        results: Vec<PerRole<R, M>>,
        ordering: Box<Ordering>,
    },
}

/// How a role relates to a choice.
#[derive(Clone, Copy)]
enum Knowledge {
    Chooser,
    /// Behaves the same in every branch; the branches merge.
    Unaware,
    /// Behaves differently; learns from this role (an index).
    Learner(usize),
}

impl<R: RoleId> Projector<R> {
    fn empty<M>(&self) -> PerRole<R, M> {
        (0..self.roles.len()).map(|_| Vec::new()).collect()
    }

    fn index(&self, role: &R, context: &str) -> Result<usize, ProjectionError> {
        self.roles
            .binary_search(role)
            .map_err(|_| ProjectionError::UnknownRole {
                role: format!("{role:?}"),
                context: context.to_owned(),
                path: self.path.clone(),
            })
    }

    fn run<M: Message>(&mut self, top: &[Global<R, M>]) -> Result<PerRole<R, M>, ProjectionError> {
        let mut stack = vec![Task::Seq {
            items: top,
            next: 0,
            out: self.empty(),
        }];
        while let Some(task) = stack.last_mut() {
            match task {
                Task::Seq { items, next, out } => {
                    if let Some(effect) = items.get(*next) {
                        self.path.push(Step::Index(*next));
                        *next += 1;
                        if self.project_simple(effect, out)? {
                            self.path.pop();
                            if self.facts.len() >= self.pruned + PRUNE_EVERY {
                                self.prune(&stack);
                            }
                        } else {
                            self.check_compound(effect)?;
                            let ordering = Box::new(self.enter(effect)?);
                            stack.push(Task::Compound {
                                effect,
                                blocks: blocks(effect).into_iter(),
                                results: Vec::new(),
                                ordering,
                            });
                        }
                        continue;
                    }
                    let Some(Task::Seq { mut out, .. }) = stack.pop() else {
                        continue;
                    };
                    match stack.last_mut() {
                        Some(Task::Compound {
                            effect,
                            results,
                            ordering,
                            ..
                        }) => {
                            self.end_block(effect, ordering, &mut out)?;
                            results.push(out);
                            self.path.pop();
                        }
                        // A sequence is either the top or a block of a compound effect.
                        _ => return Ok(out),
                    }
                }
                Task::Compound {
                    effect,
                    blocks,
                    ordering,
                    ..
                } => {
                    if let Some((step, items)) = blocks.next() {
                        self.path.push(step);
                        match effect {
                            Global::Loop { .. } => {
                                self.loop_levels.push(self.path.steps().len() - 1);
                                self.order = ordering.start.clone();
                            }
                            Global::Choice { .. } | Global::Par { .. } => {
                                if let Some(scope) = self.scopes.last() {
                                    self.order = scope.entry.clone();
                                }
                            }
                            _ => {}
                        }
                        let out = self.empty();
                        stack.push(Task::Seq {
                            items,
                            next: 0,
                            out,
                        });
                        continue;
                    }
                    let Some(Task::Compound {
                        effect,
                        results,
                        ordering,
                        ..
                    }) = stack.pop()
                    else {
                        continue;
                    };
                    let before = self.leave(effect, *ordering);
                    let combined = self.combine(effect, results, &before)?;
                    if let Some(Task::Seq { out, .. }) = stack.last_mut() {
                        if let Some(scope) = before.scope {
                            for (from, to) in scope.before {
                                self.frame(from, to, out);
                            }
                        }
                        for (slot, effects) in out.iter_mut().zip(combined) {
                            slot.extend(effects);
                        }
                    }
                    self.path.pop();
                }
            }
        }
        Ok(self.empty())
    }

    /// Forgets, in what every role knows now, the facts no frontier can need any more:
    /// only the current frontier and those saved by the compound effects being
    /// projected are ever asked for (later frontiers are made of newer facts). Keeps
    /// projection linear in the program's length.
    fn prune<M>(&mut self, stack: &[Task<'_, R, M>]) {
        let mut relevant: std::collections::BTreeSet<Fact> =
            self.order.frontier.iter().copied().collect();
        for task in stack {
            if let Task::Compound { ordering, .. } = task {
                relevant.extend(ordering.start.frontier.iter().copied());
                relevant.extend(ordering.before.frontier.iter().copied());
                for end in &ordering.ends {
                    relevant.extend(end.frontier.iter().copied());
                }
            }
        }
        for scope in &self.scopes {
            relevant.extend(scope.entry.frontier.iter().copied());
        }
        for known in &mut self.order.know {
            known.retain(|fact| relevant.contains(fact));
        }
        self.pruned = self.facts.len();
    }

    /// A new fact of `role`.
    fn fresh(&mut self, role: usize) -> Fact {
        let fact = self.facts.len() as Fact;
        self.facts.push(role);
        fact
    }

    /// The origin of a step projected here.
    fn origin(&self) -> Origin {
        Origin::new(Place::at(&self.path))
    }

    /// An order frame from `from` to `to` at this point of `out`.
    fn frame<M>(&self, from: usize, to: usize, out: &mut PerRole<R, M>) {
        let at = self.framing.clone().unwrap_or_else(|| self.origin());
        out[from].push(Local::OrderSend {
            to: self.roles[to],
            at: at.clone(),
        });
        out[to].push(Local::OrderRecv {
            from: self.roles[from],
            at,
        });
    }

    /// Makes `role` know `facts`: order frames from roles that know them, here, or
    /// before the outermost enclosing `par` that started after a fact (so that frames
    /// about what happened before a `par` never use a channel of its parts).
    fn ensure_knows<M>(&mut self, role: usize, facts: &[Fact], out: &mut PerRole<R, M>) {
        let mut missing = self.order.missing(role, facts);
        while !missing.is_empty() {
            // The outermost par the first missing fact predates, if any.
            let level =
                |fact: Fact, scopes: &[Scope]| scopes.iter().position(|s| fact < s.watermark);
            let target = level(missing[0], &self.scopes);
            let group: Vec<Fact> = missing
                .iter()
                .copied()
                .filter(|fact| level(*fact, &self.scopes) == target)
                .collect();
            let known = match target {
                Some(k) => &self.scopes[k].entry,
                None => &self.order,
            };
            // The role that knows most of them (the lowest on a tie).
            let best = (0..self.roles.len())
                .filter(|x| *x != role)
                .map(|x| {
                    let count = group.iter().filter(|f| known.know[x].contains(f)).count();
                    (count, std::cmp::Reverse(x))
                })
                .max();
            let Some((count, std::cmp::Reverse(sender))) = best else {
                return;
            };
            if count == 0 {
                // Nobody knows: cannot happen, since a fact's own role knows it.
                debug_assert!(false, "no role knows facts {group:?}");
                return;
            }
            match target {
                Some(k) => {
                    let taught = self.scopes[k].entry.know[sender].clone();
                    self.scopes[k].before.push((sender, role));
                    for scope in &mut self.scopes[k..] {
                        scope.entry.know[role].extend(taught.iter().copied());
                    }
                    self.order.know[role].extend(taught);
                }
                None => {
                    self.frame(sender, role, out);
                    self.order.teach(sender, role);
                }
            }
            missing = self.order.missing(role, facts);
        }
    }

    /// The effect-order side of entering a compound effect.
    ///
    /// A loop round starts needing what came before the loop and, from the previous
    /// round, the *points* its last actors reached: every such role knows its own
    /// previous round, so an order frame from it at the start of a round says that
    /// round is over (in the first round the frame says nothing, but costs no wait).
    fn enter<M: Message>(&mut self, effect: &Global<R, M>) -> Result<Ordering, ProjectionError> {
        let mut ordering = Ordering {
            ordered: false,
            start: self.order.clone(),
            before: self.order.clone(),
            ends: Vec::new(),
            origins: Vec::new(),
            knowers: Vec::new(),
            decider: None,
            hearers: Vec::new(),
        };
        match effect {
            Global::Choice { branches, .. } => {
                ordering.ordered = branches.iter().any(|(_, branch)| has_ordered(branch));
                self.scopes.push(Scope {
                    watermark: self.facts.len() as Fact,
                    entry: self.order.clone(),
                    before: Vec::new(),
                });
            }
            Global::Loop { kind, body } => {
                ordering.ordered = !matches!(kind, LoopKind::Count(0)) && has_ordered(body);
                if let LoopKind::Until { decider } = kind {
                    ordering.decider = Some(self.index(decider, "decides a loop")?);
                    ordering.hearers = acting_roles(body, &self.roles)
                        .iter()
                        .filter_map(|role| self.roles.binary_search(role).ok())
                        .collect();
                }
                // A round after a round: more than one round, or decided.
                let repeats = !matches!(kind, LoopKind::Count(0 | 1));
                if ordering.ordered && repeats {
                    ordering.origins = last_actors(body, &self.roles)
                        .iter()
                        .filter_map(|role| self.roles.binary_search(role).ok())
                        .collect();
                    // Who knows a last actor's last effects when a round ends (the
                    // messages after them tell): a trial run of one round says, so
                    // that no frame repeats what they already told.
                    let knowers = self.trial_round(body, &ordering)?;
                    for (&origin, knowers) in ordering.origins.iter().zip(&knowers) {
                        let point = self.fresh(origin);
                        ordering.start.know[origin].insert(point);
                        for &knower in knowers {
                            ordering.start.know[knower].insert(point);
                        }
                        ordering.start.frontier.push(point);
                    }
                    ordering.knowers = knowers;
                }
                if let Some(decider) = ordering.decider {
                    for &hearer in &ordering.hearers {
                        ordering.start.teach(decider, hearer);
                    }
                }
            }
            Global::Par { .. } => self.scopes.push(Scope {
                watermark: self.facts.len() as Fact,
                entry: self.order.clone(),
                before: Vec::new(),
            }),
            _ => {}
        }
        Ok(ordering)
    }

    /// Projects one round of `body` on trial (the output is dropped) and returns, for
    /// each of `ordering.origins`, the roles that know all its last effects at the end
    /// of the round. Nested trials are bounded: past a depth, nobody is assumed to know.
    fn trial_round<M: Message>(
        &mut self,
        body: &[Global<R, M>],
        ordering: &Ordering,
    ) -> Result<Vec<Vec<usize>>, ProjectionError> {
        const MAX_TRIAL_DEPTH: usize = 6;
        if self.trials >= MAX_TRIAL_DEPTH {
            return Ok(vec![Vec::new(); ordering.origins.len()]);
        }
        let saved = (
            self.order.clone(),
            self.path.clone(),
            self.loop_levels.clone(),
            mem::take(&mut self.scopes),
            self.labels,
        );
        self.trials += 1;
        // The round starts knowing the previous round's points only at their roles.
        let mut start = ordering.start.clone();
        for &origin in &ordering.origins {
            let point = self.fresh(origin);
            start.know[origin].insert(point);
            start.frontier.push(point);
        }
        if let Some(decider) = ordering.decider {
            for &hearer in &ordering.hearers {
                start.teach(decider, hearer);
            }
        }
        self.order = start;
        self.path.push(Step::Body);
        self.loop_levels.push(self.path.steps().len() - 1);
        let result = self.run(body);
        let end = mem::replace(&mut self.order, saved.0);
        self.path = saved.1;
        self.loop_levels = saved.2;
        self.scopes = saved.3;
        self.labels = saved.4;
        self.trials -= 1;
        result?;
        Ok(ordering
            .origins
            .iter()
            .map(|&origin| {
                let last: Vec<Fact> = end
                    .frontier
                    .iter()
                    .copied()
                    .filter(|fact| self.facts[*fact as usize] == origin)
                    .collect();
                (0..self.roles.len())
                    .filter(|&role| {
                        role != origin && last.iter().all(|fact| end.know[role].contains(fact))
                    })
                    .collect()
            })
            .collect())
    }

    /// The effect-order side of the end of a block.
    fn end_block<M>(
        &mut self,
        effect: &Global<R, M>,
        ordering: &mut Ordering,
        out: &mut PerRole<R, M>,
    ) -> Result<(), ProjectionError> {
        match effect {
            Global::Loop { kind, .. } => {
                self.loop_levels.pop();
                if ordering.ordered && !matches!(kind, LoopKind::Count(0 | 1)) {
                    // The next round's start stands for the last actors' points: a
                    // last effect of another role is first made known to one of them
                    // (the static analysis names them all; this keeps it sound).
                    let frontier = self.order.frontier.clone();
                    for fact in frontier {
                        let origin = self.facts[fact as usize];
                        if ordering.before.frontier.contains(&fact)
                            || ordering.origins.contains(&origin)
                        {
                            continue;
                        }
                        if let Some(&join) = ordering.origins.first() {
                            self.ensure_knows(join, &[fact], out);
                        }
                    }
                    // The roles assumed to know a last actor's last effects do.
                    for (&origin, knowers) in ordering.origins.iter().zip(&ordering.knowers) {
                        let last: Vec<Fact> = self
                            .order
                            .frontier
                            .iter()
                            .copied()
                            .filter(|fact| self.facts[*fact as usize] == origin)
                            .collect();
                        for &knower in knowers {
                            self.ensure_knows(knower, &last, out);
                        }
                    }
                }
                ordering.ends.push(self.order.clone());
            }
            Global::Choice { .. } | Global::Par { .. } => ordering.ends.push(self.order.clone()),
            _ => {}
        }
        Ok(())
    }

    /// The points roles reach after a compound effect, standing for the new facts of
    /// `frontier`: every role whose fact is new gets one; old facts stay as they are.
    fn points(&mut self, frontier: &[Fact], old: &[Fact], after: &mut Known) {
        let mut origins: Vec<usize> = Vec::new();
        let mut next = Vec::new();
        for &fact in frontier {
            if old.contains(&fact) {
                next.push(fact);
            } else {
                origins.push(self.facts[fact as usize]);
            }
        }
        origins.sort_unstable();
        origins.dedup();
        for origin in origins {
            let point = self.fresh(origin);
            after.know[origin].insert(point);
            next.push(point);
        }
        next.sort_unstable();
        next.dedup();
        after.frontier = next;
    }

    /// The effect-order side of leaving a compound effect: the knowledge after it.
    fn leave<M>(&mut self, effect: &Global<R, M>, mut ordering: Ordering) -> Left {
        let mut left = Left {
            ordered: ordering.ordered,
            scope: None,
        };
        match effect {
            Global::Choice { .. } => {
                left.scope = self.scopes.pop();
                let mut after = Known::intersection(&ordering.ends);
                if after.know.is_empty() {
                    return left;
                }
                // After the choice, the roles whose effects ended a branch stand for
                // them with the point they reach after the choice (the same in every
                // branch, so the frames after it need no knowledge of the pick).
                let mut frontier: Vec<Fact> = ordering
                    .ends
                    .iter()
                    .flat_map(|end| end.frontier.iter().copied())
                    .collect();
                frontier.sort_unstable();
                frontier.dedup();
                self.points(&frontier, &ordering.start.frontier, &mut after);
                self.order = after;
            }
            Global::Loop { kind, .. } => match kind {
                LoopKind::Count(0) => self.order = ordering.before,
                LoopKind::Count(_) => {
                    self.order = ordering.ends.pop().unwrap_or(ordering.before);
                }
                LoopKind::Until { .. } => {
                    let mut after = ordering.before.clone();
                    if ordering.ordered {
                        // No round, or the last round's last actors, at their points
                        // after the loop.
                        let mut frontier = ordering.before.frontier.clone();
                        if let Some(end) = ordering.ends.first() {
                            frontier.extend(end.frontier.iter().copied());
                        }
                        self.points(&frontier, &ordering.before.frontier, &mut after);
                    }
                    if let Some(decider) = ordering.decider {
                        for &hearer in &ordering.hearers {
                            after.teach(decider, hearer);
                        }
                    }
                    self.order = after;
                }
            },
            Global::Par { .. } => {
                left.scope = self.scopes.pop();
                if ordering.ends.is_empty() {
                    if let Some(scope) = &left.scope {
                        self.order = scope.entry.clone();
                    }
                } else {
                    self.order = Known::union(&ordering.ends);
                }
            }
            _ => {}
        }
        left
    }

    /// Projects a message or extension effect into `out`; returns false for compound
    /// effects, which the caller descends into.
    fn project_simple<M: Message>(
        &mut self,
        effect: &Global<R, M>,
        out: &mut PerRole<R, M>,
    ) -> Result<bool, ProjectionError> {
        match effect {
            Global::Send { from, to, msg } => self.message(*from, *to, msg, out)?,
            Global::Broadcast { from, to, msg } => {
                for member in to.members() {
                    self.message(*from, *member, msg, out)?;
                }
            }
            Global::Gather { from, to, msg } => {
                for member in from.members() {
                    self.message(*member, *to, msg, out)?;
                }
            }
            Global::Ext(ext) => {
                let ext = &ext.placed(&self.path);
                let participants: Vec<usize> = match ext.participation::<R>() {
                    Participation::Everyone => (0..self.roles.len()).collect(),
                    Participation::Roles(roles) => {
                        let context =
                            format!("takes part in the extension effect {}", ext.type_name());
                        roles
                            .iter()
                            .map(|role| self.index(role, &context))
                            .collect::<Result<_, _>>()?
                    }
                };
                if ext.is_ordered() && !participants.is_empty() {
                    // Every participant starts only once it knows the last effects
                    // before this one finished.
                    let frontier = mem::take(&mut self.order.frontier);
                    self.framing = ext.place().cloned().map(Origin::new);
                    for &role in &participants {
                        self.ensure_knows(role, &frontier, out);
                    }
                    self.framing = None;
                    let tag = Arc::new(OrderTag::new(
                        self.path.clone(),
                        self.loop_levels.clone(),
                        participants.len(),
                    ));
                    let tagged = ext.with_tag(tag);
                    for &role in &participants {
                        out[role].push(Local::Ext(tagged.clone()));
                        let done = self.fresh(role);
                        self.order.know[role].insert(done);
                        self.order.frontier.push(done);
                    }
                } else {
                    for &role in &participants {
                        out[role].push(Local::Ext(ext.clone()));
                    }
                }
            }
            Global::Choice { .. }
            | Global::Loop { .. }
            | Global::Par { .. }
            | Global::Timeout { .. } => {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn message<M: Message>(
        &mut self,
        from: R,
        to: R,
        msg: &M,
        out: &mut PerRole<R, M>,
    ) -> Result<(), ProjectionError> {
        if from == to {
            return Err(ProjectionError::SelfSend {
                role: format!("{from:?}"),
                path: self.path.clone(),
            });
        }
        let sender = self.index(&from, "sends")?;
        let receiver = self.index(&to, "receives")?;
        let at = self.origin();
        out[sender].push(Local::Send {
            to,
            msg: msg.clone(),
            at: at.clone(),
        });
        out[receiver].push(Local::Recv {
            from,
            msg: msg.clone(),
            at,
        });
        self.order.teach(sender, receiver);
        Ok(())
    }

    /// Checks of a compound effect that do not need its blocks projected.
    fn check_compound<M>(&self, effect: &Global<R, M>) -> Result<(), ProjectionError> {
        match effect {
            Global::Choice { at, branches } => {
                self.index(at, "chooses")?;
                if branches.is_empty() {
                    return Err(ProjectionError::EmptyChoice {
                        chooser: format!("{at:?}"),
                        path: self.path.clone(),
                    });
                }
                for (i, (label, _)) in branches.iter().enumerate() {
                    if branches[..i].iter().any(|(other, _)| other == label) {
                        return Err(ProjectionError::DuplicateLabel {
                            chooser: format!("{at:?}"),
                            label: label.to_string(),
                            path: self.path.clone(),
                        });
                    }
                }
            }
            Global::Loop {
                kind: LoopKind::Until { decider },
                ..
            } => {
                self.index(decider, "decides a loop")?;
            }
            Global::Timeout { role, duration, .. } => {
                self.index(role, "is bounded by a timeout")?;
                if duration.is_zero() {
                    return Err(ProjectionError::ZeroTimeout {
                        role: format!("{role:?}"),
                        path: self.path.clone(),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn combine<M: Message>(
        &mut self,
        effect: &Global<R, M>,
        results: Vec<PerRole<R, M>>,
        left: &Left,
    ) -> Result<PerRole<R, M>, ProjectionError> {
        match effect {
            Global::Choice { at, branches } => {
                let labels = branches.iter().map(|(label, _)| label.clone()).collect();
                self.combine_choice(*at, labels, results, left.ordered)
            }
            Global::Loop { kind, .. } => Ok(self.combine_loop(*kind, results)),
            Global::Par { .. } => self.combine_par(results),
            Global::Timeout { role, duration, .. } => {
                let mut body = single(results, self.roles.len());
                let index = self.index(role, "is bounded by a timeout")?;
                let bounded = mem::take(&mut body[index]);
                if !bounded.is_empty() {
                    body[index] = vec![Local::Timeout {
                        duration: *duration,
                        body: bounded,
                        at: self.origin(),
                    }];
                }
                Ok(body)
            }
            Global::Send { .. }
            | Global::Broadcast { .. }
            | Global::Gather { .. }
            | Global::Ext(_) => Ok(self.empty()),
        }
    }

    /// How `role` relates to a choice whose branches give it `branches`: it behaves
    /// the same in all (unaware), or it must start every branch by receiving from one
    /// same role, from which it learns the pick. `with_tags` compares effects' places
    /// in the global program too.
    fn learn<M: Message>(
        &self,
        at: R,
        labels: &[Label],
        role: usize,
        branches: &[&[Local<R, M>]],
        with_tags: bool,
    ) -> Result<Knowledge, ProjectionError> {
        let unlearned = |branch: usize, reason: String| ProjectionError::UnlearnedChoice {
            role: format!("{:?}", self.roles[role]),
            chooser: format!("{at:?}"),
            branch: labels[branch].to_string(),
            reason,
            path: self.path.clone(),
        };
        let first = branches[0];
        let same = |branch: &&[Local<R, M>]| {
            if with_tags {
                same_with_tags(branch, first)
            } else {
                *branch == first
            }
        };
        let Some(differs) = branches.iter().position(|branch| !same(branch)) else {
            return Ok(Knowledge::Unaware);
        };
        // The role must start every branch by receiving from one same role.
        let mut source: Option<(usize, usize)> = None;
        for (branch, effects) in branches.iter().enumerate() {
            let Some(effect) = effects.first() else {
                let other = if branch == differs { 0 } else { differs };
                return Err(unlearned(
                    branch,
                    format!(
                        "it does nothing, but it acts in branch {:?}; it must receive a message in every branch",
                        labels[other].as_str()
                    ),
                ));
            };
            let Some(from) = receive_source(effect) else {
                return Err(unlearned(
                    branch,
                    format!(
                        "its first action is `{}`, not a receive from a role that knows the choice",
                        describe(effect)
                    ),
                ));
            };
            let from = self.index(&from, "sends")?;
            match source {
                None => source = Some((from, branch)),
                Some((earlier, earlier_branch)) if earlier != from => {
                    return Err(unlearned(
                        branch,
                        format!(
                            "it first receives from {:?}, but from {:?} in branch {:?}; it must learn from the same role in every branch",
                            self.roles[from],
                            self.roles[earlier],
                            labels[earlier_branch].as_str()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(match source {
            Some((informer, _)) => Knowledge::Learner(informer),
            None => Knowledge::Unaware,
        })
    }

    fn combine_choice<M: Message>(
        &mut self,
        at: R,
        labels: Vec<Label>,
        mut results: Vec<PerRole<R, M>>,
        ordered: bool,
    ) -> Result<PerRole<R, M>, ProjectionError> {
        let chooser = self.index(&at, "chooses")?;
        let mut knowledge = Vec::with_capacity(self.roles.len());
        for role in 0..self.roles.len() {
            if role == chooser {
                knowledge.push(Knowledge::Chooser);
                continue;
            }
            let branches: Vec<&[Local<R, M>]> = results
                .iter()
                .map(|per_role| per_role[role].as_slice())
                .collect();
            match self.learn(at, &labels, role, &branches, ordered) {
                Ok(status) => knowledge.push(status),
                Err(error) if !ordered => return Err(error),
                Err(_) => {
                    // Effect order made the role's branches differ (its frames, or its
                    // effects' places): if the program is fine without effect order,
                    // the chooser tells the role the pick directly.
                    let stripped: Vec<Vec<Local<R, M>>> =
                        branches.iter().map(|branch| strip(branch)).collect();
                    let stripped: Vec<&[Local<R, M>]> =
                        stripped.iter().map(Vec::as_slice).collect();
                    self.learn(at, &labels, role, &stripped, false)?;
                    self.labels += 1;
                    knowledge.push(Knowledge::Learner(chooser));
                }
            }
        }

        // Who knows the pick: the chooser, then whoever learns from someone who knows.
        loop {
            let mut learners_of: Vec<Vec<usize>> = vec![Vec::new(); self.roles.len()];
            for (role, status) in knowledge.iter().enumerate() {
                if let Knowledge::Learner(informer) = status {
                    learners_of[*informer].push(role);
                }
            }
            let mut knows = vec![false; self.roles.len()];
            knows[chooser] = true;
            let mut frontier = vec![chooser];
            while let Some(informer) = frontier.pop() {
                for &learner in &learners_of[informer] {
                    if !knows[learner] {
                        knows[learner] = true;
                        frontier.push(learner);
                    }
                }
            }
            let stuck: Vec<(usize, usize)> = knowledge
                .iter()
                .enumerate()
                .filter_map(|(role, status)| match status {
                    Knowledge::Learner(informer) if !knows[role] => Some((role, *informer)),
                    _ => None,
                })
                .collect();
            let Some(&(role, informer)) = stuck.first() else {
                break;
            };
            if !ordered {
                return Err(ProjectionError::UnlearnedChoice {
                    role: format!("{:?}", self.roles[role]),
                    chooser: format!("{at:?}"),
                    branch: labels[0].to_string(),
                    reason: format!(
                        "it first receives from {:?}, which does not know which branch was taken",
                        self.roles[informer]
                    ),
                    path: self.path.clone(),
                });
            }
            for (role, _) in stuck {
                self.labels += 1;
                knowledge[role] = Knowledge::Learner(chooser);
            }
        }
        let mut learners_of: Vec<Vec<usize>> = vec![Vec::new(); self.roles.len()];
        for (role, status) in knowledge.iter().enumerate() {
            if let Knowledge::Learner(informer) = status {
                learners_of[*informer].push(role);
            }
        }

        let mut out = self.empty();
        for (role, status) in knowledge.iter().enumerate() {
            let tell: Vec<R> = learners_of[role].iter().map(|&l| self.roles[l]).collect();
            let mut take_branches = || -> Vec<(Label, Vec<Local<R, M>>)> {
                labels
                    .iter()
                    .zip(results.iter_mut())
                    .map(|(label, per_role)| (label.clone(), mem::take(&mut per_role[role])))
                    .collect()
            };
            out[role] = match status {
                Knowledge::Chooser => vec![Local::Select {
                    tell,
                    branches: take_branches(),
                    at: self.origin(),
                }],
                Knowledge::Learner(informer) => vec![Local::Branch {
                    from: self.roles[*informer],
                    tell,
                    branches: take_branches(),
                    at: self.origin(),
                }],
                Knowledge::Unaware => {
                    let mut merged = mem::take(&mut results[0][role]);
                    if labels.len() > 1 {
                        // The role does the same in every branch: no one branch's
                        // place is its step's.
                        in_any_branch(&mut merged, &self.path);
                    }
                    merged
                }
            };
        }
        Ok(out)
    }

    fn combine_loop<M>(&self, kind: LoopKind<R>, results: Vec<PerRole<R, M>>) -> PerRole<R, M> {
        let body = single(results, self.roles.len());
        match kind {
            LoopKind::Count(rounds) => body
                .into_iter()
                .map(|body| {
                    if body.is_empty() || rounds == 0 {
                        Vec::new()
                    } else {
                        vec![Local::Loop {
                            control: LoopControl::Count(rounds),
                            body,
                            at: self.origin(),
                        }]
                    }
                })
                .collect(),
            LoopKind::Until { decider } => {
                let decider_index = self.roles.binary_search(&decider).ok();
                let tell: Vec<R> = self
                    .roles
                    .iter()
                    .zip(&body)
                    .filter(|(role, body)| **role != decider && !body.is_empty())
                    .map(|(role, _)| *role)
                    .collect();
                body.into_iter()
                    .enumerate()
                    .map(|(index, body)| {
                        if Some(index) == decider_index {
                            vec![Local::Loop {
                                control: LoopControl::Decide { tell: tell.clone() },
                                body,
                                at: self.origin(),
                            }]
                        } else if body.is_empty() {
                            Vec::new()
                        } else {
                            vec![Local::Loop {
                                control: LoopControl::Follow { decider },
                                body,
                                at: self.origin(),
                            }]
                        }
                    })
                    .collect()
            }
        }
    }

    fn combine_par<M>(
        &self,
        results: Vec<PerRole<R, M>>,
    ) -> Result<PerRole<R, M>, ProjectionError> {
        // Each directed channel may be used by one part only.
        let mut owner: std::collections::HashMap<(usize, usize), (usize, bool)> =
            std::collections::HashMap::new();
        for (part, per_role) in results.iter().enumerate() {
            for (sender, effects) in per_role.iter().enumerate() {
                for (receiver, order) in outgoing(effects) {
                    let receiver = self.index(receiver, "receives")?;
                    if let Some(&(first, first_order)) = owner.get(&(sender, receiver)) {
                        if first != part && (order || first_order) {
                            let (first, second) = if order { (first, part) } else { (part, first) };
                            return Err(ProjectionError::OrderFrameRace {
                                from: format!("{:?}", self.roles[sender]),
                                to: format!("{:?}", self.roles[receiver]),
                                first,
                                second,
                                path: self.path.clone(),
                            });
                        }
                        if first != part {
                            return Err(ProjectionError::ParallelChannelRace {
                                from: format!("{:?}", self.roles[sender]),
                                to: format!("{:?}", self.roles[receiver]),
                                first,
                                second: part,
                                path: self.path.clone(),
                            });
                        }
                    } else {
                        owner.insert((sender, receiver), (part, order));
                    }
                }
            }
        }
        let mut out = self.empty();
        let mut parts_of: Vec<Vec<Vec<Local<R, M>>>> =
            (0..self.roles.len()).map(|_| Vec::new()).collect();
        for per_role in results {
            for (role, effects) in per_role.into_iter().enumerate() {
                if !effects.is_empty() {
                    parts_of[role].push(effects);
                }
            }
        }
        for (role, mut parts) in parts_of.into_iter().enumerate() {
            out[role] = match parts.len() {
                0 => Vec::new(),
                1 => parts.pop().unwrap_or_default(),
                _ => vec![Local::Par { parts }],
            };
        }
        Ok(out)
    }
}

/// The per-role result of a compound effect's only block.
fn single<R, M>(results: Vec<PerRole<R, M>>, roles: usize) -> PerRole<R, M> {
    results
        .into_iter()
        .next()
        .unwrap_or_else(|| (0..roles).map(|_| Vec::new()).collect())
}

/// Marks every step of `effects` (nested ones too) as the same in every branch of
/// the choice at `choice`.
fn in_any_branch<R, M>(effects: &mut [Local<R, M>], choice: &Path) {
    let origin = Origin::new(Place::in_any_branch(choice));
    let mut stack: Vec<&mut [Local<R, M>]> = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            match effect {
                Local::Send { at, .. }
                | Local::Recv { at, .. }
                | Local::OrderSend { at, .. }
                | Local::OrderRecv { at, .. } => *at = origin.clone(),
                Local::Select { branches, at, .. } | Local::Branch { branches, at, .. } => {
                    *at = origin.clone();
                    stack.extend(branches.iter_mut().map(|(_, body)| body.as_mut_slice()));
                }
                Local::Loop { body, at, .. } | Local::Timeout { body, at, .. } => {
                    *at = origin.clone();
                    stack.push(body);
                }
                Local::Par { parts } => stack.extend(parts.iter_mut().map(Vec::as_mut_slice)),
                Local::Ext(ext) => *ext = ext.in_any_branch(choice),
            }
        }
    }
}

/// The role a local effect first receives from, if it starts with a receive.
fn receive_source<R: Copy, M>(effect: &Local<R, M>) -> Option<R> {
    match effect {
        Local::Recv { from, .. } | Local::Branch { from, .. } | Local::OrderRecv { from, .. } => {
            Some(*from)
        }
        Local::Loop {
            control: LoopControl::Follow { decider },
            ..
        } => Some(*decider),
        _ => None,
    }
}

/// Every role a local sequence sends to (messages, labels, loop decisions), nested
/// effects included.
fn outgoing<R, M>(effects: &[Local<R, M>]) -> Vec<(&R, bool)> {
    let mut found = Vec::new();
    let mut stack = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            match effect {
                Local::Send { to, .. } => found.push((to, false)),
                Local::OrderSend { to, .. } => found.push((to, true)),
                Local::Select { tell, .. }
                | Local::Branch { tell, .. }
                | Local::Loop {
                    control: LoopControl::Decide { tell },
                    ..
                } => found.extend(tell.iter().map(|role| (role, false))),
                _ => {}
            }
            push_blocks(effect, &mut stack);
        }
    }
    found
}

/// A short description of a local effect for error messages.
fn describe<R: Debug, M: Debug>(effect: &Local<R, M>) -> String {
    match effect {
        Local::Send { to, msg, .. } => format!("send {msg:?} to {to:?}"),
        Local::Recv { from, msg, .. } => format!("receive {msg:?} from {from:?}"),
        Local::Select { .. } => "choose a branch".to_owned(),
        Local::Branch { from, .. } => format!("learn a choice from {from:?}"),
        Local::Loop { .. } => "loop".to_owned(),
        Local::Par { .. } => "par".to_owned(),
        Local::Timeout { .. } => "timeout".to_owned(),
        Local::Ext(ext) => format!("extension effect {}", ext.type_name()),
        Local::OrderSend { to, .. } => format!("send an order frame to {to:?}"),
        Local::OrderRecv { from, .. } => format!("wait for an order frame from {from:?}"),
    }
}
