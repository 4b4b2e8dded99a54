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

use thiserror::Error;

use crate::extension::Participation;
use crate::label::{Label, Path, Step};
use crate::local::{Local, LocalProgram, LoopControl, push_blocks};
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
    let roles: Vec<R> = program.roles().into_iter().collect();
    let mut projector = Projector {
        roles,
        path: Path::default(),
    };
    let per_role = projector.run(program.effects())?;
    Ok(projector
        .roles
        .iter()
        .zip(per_role)
        .map(|(role, effects)| (*role, LocalProgram::new(*role, effects)))
        .collect())
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
/// assert_eq!(b.effects(), &[Local::Recv { from: "a", msg: "ping" }]);
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
                        } else {
                            self.check_compound(effect)?;
                            stack.push(Task::Compound {
                                effect,
                                blocks: blocks(effect).into_iter(),
                                results: Vec::new(),
                            });
                        }
                        continue;
                    }
                    let Some(Task::Seq { out, .. }) = stack.pop() else {
                        continue;
                    };
                    match stack.last_mut() {
                        Some(Task::Compound { results, .. }) => {
                            results.push(out);
                            self.path.pop();
                        }
                        // A sequence is either the top or a block of a compound effect.
                        _ => return Ok(out),
                    }
                }
                Task::Compound { blocks, .. } => {
                    if let Some((step, items)) = blocks.next() {
                        self.path.push(step);
                        let out = self.empty();
                        stack.push(Task::Seq {
                            items,
                            next: 0,
                            out,
                        });
                        continue;
                    }
                    let Some(Task::Compound {
                        effect, results, ..
                    }) = stack.pop()
                    else {
                        continue;
                    };
                    let combined = self.combine(effect, results)?;
                    if let Some(Task::Seq { out, .. }) = stack.last_mut() {
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

    /// Projects a message or extension effect into `out`; returns false for compound
    /// effects, which the caller descends into.
    fn project_simple<M: Message>(
        &self,
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
            Global::Ext(ext) => match ext.participation::<R>() {
                Participation::Everyone => {
                    for slot in out.iter_mut() {
                        slot.push(Local::Ext(ext.clone()));
                    }
                }
                Participation::Roles(roles) => {
                    let context = format!("takes part in the extension effect {}", ext.type_name());
                    for role in roles {
                        let index = self.index(&role, &context)?;
                        out[index].push(Local::Ext(ext.clone()));
                    }
                }
            },
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
        &self,
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
        out[sender].push(Local::Send {
            to,
            msg: msg.clone(),
        });
        out[receiver].push(Local::Recv {
            from,
            msg: msg.clone(),
        });
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
        &self,
        effect: &Global<R, M>,
        results: Vec<PerRole<R, M>>,
    ) -> Result<PerRole<R, M>, ProjectionError> {
        match effect {
            Global::Choice { at, branches } => {
                let labels = branches.iter().map(|(label, _)| label.clone()).collect();
                self.combine_choice(*at, labels, results)
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

    fn combine_choice<M: Message>(
        &self,
        at: R,
        labels: Vec<Label>,
        mut results: Vec<PerRole<R, M>>,
    ) -> Result<PerRole<R, M>, ProjectionError> {
        let chooser = self.index(&at, "chooses")?;
        let unlearned =
            |role: usize, branch: usize, reason: String| ProjectionError::UnlearnedChoice {
                role: format!("{:?}", self.roles[role]),
                chooser: format!("{at:?}"),
                branch: labels[branch].to_string(),
                reason,
                path: self.path.clone(),
            };

        let mut knowledge = Vec::with_capacity(self.roles.len());
        for role in 0..self.roles.len() {
            if role == chooser {
                knowledge.push(Knowledge::Chooser);
                continue;
            }
            let first = &results[0][role];
            let Some(differs) = results.iter().position(|branch| &branch[role] != first) else {
                knowledge.push(Knowledge::Unaware);
                continue;
            };
            // The role must start every branch by receiving from one same role.
            let mut source: Option<(usize, usize)> = None;
            for (branch, per_role) in results.iter().enumerate() {
                let Some(effect) = per_role[role].first() else {
                    let other = if branch == differs { 0 } else { differs };
                    return Err(unlearned(
                        role,
                        branch,
                        format!(
                            "it does nothing, but it acts in branch {:?}; it must receive a message in every branch",
                            labels[other].as_str()
                        ),
                    ));
                };
                let Some(from) = receive_source(effect) else {
                    return Err(unlearned(
                        role,
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
                            role,
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
            match source {
                Some((informer, _)) => knowledge.push(Knowledge::Learner(informer)),
                None => knowledge.push(Knowledge::Unaware),
            }
        }

        // Who knows the pick: the chooser, then whoever learns from someone who knows.
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
        for (role, status) in knowledge.iter().enumerate() {
            if let Knowledge::Learner(informer) = status {
                if !knows[role] {
                    return Err(unlearned(
                        role,
                        0,
                        format!(
                            "it first receives from {:?}, which does not know which branch was taken",
                            self.roles[*informer]
                        ),
                    ));
                }
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
                }],
                Knowledge::Learner(informer) => vec![Local::Branch {
                    from: self.roles[*informer],
                    tell,
                    branches: take_branches(),
                }],
                Knowledge::Unaware => mem::take(&mut results[0][role]),
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
                            }]
                        } else if body.is_empty() {
                            Vec::new()
                        } else {
                            vec![Local::Loop {
                                control: LoopControl::Follow { decider },
                                body,
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
        let mut owner: std::collections::HashMap<(usize, usize), usize> =
            std::collections::HashMap::new();
        for (part, per_role) in results.iter().enumerate() {
            for (sender, effects) in per_role.iter().enumerate() {
                for receiver in outgoing(effects) {
                    let receiver = self.index(receiver, "receives")?;
                    if let Some(&first) = owner.get(&(sender, receiver)) {
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
                        owner.insert((sender, receiver), part);
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

/// The role a local effect first receives from, if it starts with a receive.
fn receive_source<R: Copy, M>(effect: &Local<R, M>) -> Option<R> {
    match effect {
        Local::Recv { from, .. } | Local::Branch { from, .. } => Some(*from),
        Local::Loop {
            control: LoopControl::Follow { decider },
            ..
        } => Some(*decider),
        _ => None,
    }
}

/// Every role a local sequence sends to (messages, labels, loop decisions), nested
/// effects included.
fn outgoing<R, M>(effects: &[Local<R, M>]) -> Vec<&R> {
    let mut found = Vec::new();
    let mut stack = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            match effect {
                Local::Send { to, .. } => found.push(to),
                Local::Select { tell, .. }
                | Local::Branch { tell, .. }
                | Local::Loop {
                    control: LoopControl::Decide { tell },
                    ..
                } => found.extend(tell),
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
        Local::Send { to, msg } => format!("send {msg:?} to {to:?}"),
        Local::Recv { from, msg } => format!("receive {msg:?} from {from:?}"),
        Local::Select { .. } => "choose a branch".to_owned(),
        Local::Branch { from, .. } => format!("learn a choice from {from:?}"),
        Local::Loop { .. } => "loop".to_owned(),
        Local::Par { .. } => "par".to_owned(),
        Local::Timeout { .. } => "timeout".to_owned(),
        Local::Ext(ext) => format!("extension effect {}", ext.type_name()),
    }
}
