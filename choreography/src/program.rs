//! Global programs: one description of a test for all of its parties.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use crate::extension::{Extension, ExtensionEffect, Participation};
use crate::label::{Label, Path, Step};
use crate::role::{Family, RoleId};

/// The bound every message type meets.
///
/// A program holds a message's *kind* as a template value (for instance
/// `Msg::Lsn(0)`); what a role actually sends is produced at run time by its handler
/// from the template and the role's state (an LSN, a row count, a verdict). Two
/// templates are the same message when they compare equal.
///
/// It is implemented automatically for every `Clone + Debug + PartialEq + Send + Sync +
/// 'static` type.
///
/// # Example
/// ```
/// use stormchor_choreography::Message;
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Msg { Lsn(u64), Verdict(bool) }
///
/// fn is_message<M: Message>(_: M) {}
/// is_message(Msg::Lsn(0));
/// is_message("plain strings work too");
/// ```
pub trait Message: Clone + Debug + PartialEq + Send + Sync + 'static {}

impl<T> Message for T where T: Clone + Debug + PartialEq + Send + Sync + 'static {}

/// How a loop decides when to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoopKind<R> {
    /// Exactly this many rounds; nobody needs to be told.
    Count(u64),
    /// The decider decides before every round, at run time, and tells every other role
    /// the loop involves whether to go on.
    Until {
        /// The role that decides.
        decider: R,
    },
}

/// One effect of a global program.
///
/// Built with the [`Program`] builder; public so that tools can inspect programs.
///
/// # Example
/// ```
/// use stormchor_choreography::{Global, Program};
///
/// let program: Program<&str, &str> = Program::new().send("a", "b", "ping");
/// assert_eq!(program.effects(), &[Global::Send { from: "a", to: "b", msg: "ping" }]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Global<R, M> {
    /// `from` sends `msg` to `to`.
    Send {
        /// The sender.
        from: R,
        /// The receiver.
        to: R,
        /// The message kind (template).
        msg: M,
    },
    /// `from` sends `msg` to every member of a family, in member order.
    Broadcast {
        /// The sender.
        from: R,
        /// The receivers.
        to: Family<R>,
        /// The message kind (template).
        msg: M,
    },
    /// Every member of a family sends `msg` to `to`, which receives them in member order.
    Gather {
        /// The senders.
        from: Family<R>,
        /// The receiver.
        to: R,
        /// The message kind (template).
        msg: M,
    },
    /// `at` picks one of the labelled branches at run time.
    Choice {
        /// The role that chooses.
        at: R,
        /// The branches, each with a distinct label.
        branches: Vec<(Label, Vec<Global<R, M>>)>,
    },
    /// A loop over `body`.
    Loop {
        /// How the loop ends.
        kind: LoopKind<R>,
        /// The effects of one round.
        body: Vec<Global<R, M>>,
    },
    /// Parts that run concurrently; they must not share a directed channel.
    Par {
        /// The parts.
        parts: Vec<Vec<Global<R, M>>>,
    },
    /// `role` must finish its share of `body` within `duration`.
    Timeout {
        /// The role whose share is bounded.
        role: R,
        /// The bound.
        duration: Duration,
        /// The effects.
        body: Vec<Global<R, M>>,
    },
    /// An extension effect, carried out by its participating roles.
    Ext(Extension),
}

/// How many effects of each kind a program holds, nested ones included.
///
/// # Example
/// ```
/// use stormchor_choreography::Program;
///
/// let program: Program<&str, &str> = Program::new()
///     .loop_n(10, Program::new().send("a", "b", "ping").send("b", "a", "pong"));
/// let counts = program.counts();
/// assert_eq!((counts.loops, counts.sends, counts.total()), (1, 2, 3));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EffectCounts {
    /// Point-to-point sends.
    pub sends: usize,
    /// Broadcasts to a family.
    pub broadcasts: usize,
    /// Gathers from a family.
    pub gathers: usize,
    /// Choices.
    pub choices: usize,
    /// Loops of both kinds.
    pub loops: usize,
    /// Parallel compositions.
    pub pars: usize,
    /// Timeouts.
    pub timeouts: usize,
    /// Extension effects.
    pub extensions: usize,
    /// Messages a single pass over the program text exchanges (a broadcast or gather
    /// counts one per member; loops are counted once).
    pub messages: usize,
}

impl EffectCounts {
    /// All effects together.
    pub fn total(&self) -> usize {
        self.sends
            + self.broadcasts
            + self.gathers
            + self.choices
            + self.loops
            + self.pars
            + self.timeouts
            + self.extensions
    }
}

/// A global program: one description of a multi-party test for all of its roles.
///
/// Build it with the chained builder methods; project it onto each role with
/// [`project`](crate::project) or [`project_all`](crate::project_all). Programs are
/// plain values: clone them, compare them, compose them with [`then`](Program::then).
///
/// Roles may be declared with [`role`](Program::role), [`with_roles`](Program::with_roles) or
/// [`family`](Program::family). When any role is declared, using an undeclared one is a
/// projection error; when none is, the roles are the ones the program mentions.
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Family, Program};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Worker(u16) }
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Msg { Start, Rows(u64) }
///
/// let workers = Family::indexed("Worker", 3, Role::Worker);
/// let program = Program::new()
///     .role(Role::Coordinator)
///     .family(&workers)
///     .broadcast(Role::Coordinator, &workers, Msg::Start)
///     .gather(&workers, Role::Coordinator, Msg::Rows(0))
///     .end();
///
/// assert_eq!(program.roles().len(), 4);
/// assert_eq!(program.counts().messages, 6);
/// let locals = project_all(&program).expect("well-formed");
/// assert_eq!(locals[&Role::Worker(1)].effects().len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Program<R, M> {
    effects: Vec<Global<R, M>>,
    declared: BTreeSet<R>,
}

impl<R: RoleId, M: Message> Default for Program<R, M> {
    fn default() -> Self {
        Program::new()
    }
}

impl<R: RoleId, M: Message> Program<R, M> {
    /// An empty program.
    pub fn new() -> Self {
        Program {
            effects: Vec::new(),
            declared: BTreeSet::new(),
        }
    }

    /// Declares a role.
    pub fn role(mut self, role: R) -> Self {
        self.declared.insert(role);
        self
    }

    /// Declares several roles.
    pub fn with_roles(mut self, roles: impl IntoIterator<Item = R>) -> Self {
        self.declared.extend(roles);
        self
    }

    /// Declares every member of a family.
    pub fn family(mut self, family: &Family<R>) -> Self {
        self.declared.extend(family.members().iter().copied());
        self
    }

    /// `from` sends `msg` to `to`.
    pub fn send(self, from: R, to: R, msg: M) -> Self {
        self.push(Global::Send { from, to, msg })
    }

    /// `from` sends `msg` to every member of `to`, in member order.
    pub fn broadcast(self, from: R, to: impl Into<Family<R>>, msg: M) -> Self {
        self.push(Global::Broadcast {
            from,
            to: to.into(),
            msg,
        })
    }

    /// Every member of `from` sends `msg` to `to`, which receives them in member order.
    pub fn gather(self, from: impl Into<Family<R>>, to: R, msg: M) -> Self {
        self.push(Global::Gather {
            from: from.into(),
            to,
            msg,
        })
    }

    /// `at` picks one of the labelled branches at run time.
    ///
    /// Every other role whose behaviour differs between branches must learn the pick
    /// from a message: its first action in every branch must be a receive from `at` or
    /// from a role that already knows. Roles that behave the same in every branch need
    /// not know.
    pub fn choice<L: Into<Label>>(
        mut self,
        at: R,
        branches: impl IntoIterator<Item = (L, Program<R, M>)>,
    ) -> Self {
        let branches = branches
            .into_iter()
            .map(|(label, program)| (label.into(), self.absorb(program)))
            .collect();
        self.push(Global::Choice { at, branches })
    }

    /// Runs `body` exactly `rounds` times.
    pub fn loop_n(mut self, rounds: u64, body: Program<R, M>) -> Self {
        let body = self.absorb(body);
        self.push(Global::Loop {
            kind: LoopKind::Count(rounds),
            body,
        })
    }

    /// Runs `body` until `decider` decides to stop; the decider tells every other role
    /// the loop involves before each round whether to go on.
    pub fn loop_until(mut self, decider: R, body: Program<R, M>) -> Self {
        let body = self.absorb(body);
        self.push(Global::Loop {
            kind: LoopKind::Until { decider },
            body,
        })
    }

    /// Runs the parts concurrently. No two parts may use the same directed channel.
    pub fn par(mut self, parts: impl IntoIterator<Item = Program<R, M>>) -> Self {
        let parts = parts.into_iter().map(|part| self.absorb(part)).collect();
        self.push(Global::Par { parts })
    }

    /// `role` must finish its share of `body` within `duration`.
    pub fn timeout(mut self, role: R, duration: Duration, body: Program<R, M>) -> Self {
        let body = self.absorb(body);
        self.push(Global::Timeout {
            role,
            duration,
            body,
        })
    }

    /// An extension effect, carried out by its participating roles.
    pub fn ext(self, effect: impl ExtensionEffect) -> Self {
        self.push(Global::Ext(Extension::new(effect)))
    }

    /// Starts an extension effect, carried out by its participating roles, and goes
    /// on: the roles run the program's next steps while it runs, until
    /// [`ext_finish`](Program::ext_finish) of the same `handle` waits for its outcome.
    ///
    /// For effect order the start counts as done once the effect has *started* (its
    /// handler may say when: a statement once it is seen waiting for a lock, a backup
    /// once it streams); the finish is a step of its own. Every start must be
    /// finished on every path, in the same block (branch, loop round, `par` part or
    /// timeout body): projection rejects a start left open and a finish of a handle
    /// that is not running.
    ///
    /// # Example
    /// ```
    /// use stormchor_choreography::{project_all, At, Program, ProjectionError};
    /// # use std::any::{Any, TypeId};
    /// # use stormchor_choreography::ExtensionEffect;
    /// # #[derive(Clone, Debug)]
    /// # struct Update;
    /// # impl ExtensionEffect for Update {
    /// #     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
    /// #     fn type_name(&self) -> &'static str { "Update" }
    /// #     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { Vec::new() }
    /// #     fn as_any(&self) -> &dyn Any { self }
    /// #     fn as_any_mut(&mut self) -> &mut dyn Any { self }
    /// #     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
    /// # }
    ///
    /// let program: Program<&str, &str> = Program::new()
    ///     .ext_start(At::new(Update, ["t2"]), "update")
    ///     .ext(At::new(Update, ["t1"]))
    ///     .ext_finish("update");
    /// assert!(project_all(&program).is_ok());
    ///
    /// let unfinished: Program<&str, &str> = Program::new().ext_start(At::new(Update, ["t2"]), "update");
    /// assert!(matches!(project_all(&unfinished), Err(ProjectionError::UnfinishedStart { .. })));
    /// ```
    pub fn ext_start(
        self,
        effect: impl ExtensionEffect,
        handle: impl Into<crate::background::Handle>,
    ) -> Self {
        self.push(Global::Ext(Extension::start(effect, handle)))
    }

    /// Waits, at the roles that started it, for the outcome of the effect started
    /// under `handle` with [`ext_start`](Program::ext_start).
    pub fn ext_finish(self, handle: impl Into<crate::background::Handle>) -> Self {
        self.push(Global::Ext(Extension::finish(handle)))
    }

    /// An already wrapped extension effect.
    pub fn ext_shared(self, effect: Extension) -> Self {
        self.push(Global::Ext(effect))
    }

    /// Appends `next` after this program (sequential composition).
    pub fn then(mut self, next: Program<R, M>) -> Self {
        let effects = self.absorb(next);
        self.effects.extend(effects);
        self
    }

    /// Ends the program. Purely for readability at the end of a builder chain.
    pub fn end(self) -> Self {
        self
    }

    /// The top-level effects.
    pub fn effects(&self) -> &[Global<R, M>] {
        &self.effects
    }

    /// The explicitly declared roles.
    pub fn declared_roles(&self) -> &BTreeSet<R> {
        &self.declared
    }

    /// Whether the program has no effect.
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    /// Every role of the program: the declared ones, or when none is declared, every
    /// role an effect mentions (extension participants included).
    pub fn roles(&self) -> BTreeSet<R> {
        if !self.declared.is_empty() {
            return self.declared.clone();
        }
        self.used_roles()
    }

    /// Every role an effect mentions, declared or not.
    pub fn used_roles(&self) -> BTreeSet<R> {
        let mut roles = BTreeSet::new();
        self.walk(|_, effect| match effect {
            Global::Send { from, to, .. } => {
                roles.insert(*from);
                roles.insert(*to);
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
                roles.insert(*one);
                roles.extend(many.members().iter().copied());
            }
            Global::Choice { at: role, .. }
            | Global::Loop {
                kind: LoopKind::Until { decider: role },
                ..
            }
            | Global::Timeout { role, .. } => {
                roles.insert(*role);
            }
            Global::Ext(ext) => {
                if let Participation::Roles(list) = ext.participation::<R>() {
                    roles.extend(list);
                }
            }
            Global::Loop { .. } | Global::Par { .. } => {}
        });
        roles
    }

    /// How many effects of each kind the program holds.
    pub fn counts(&self) -> EffectCounts {
        let mut counts = EffectCounts::default();
        self.walk(|_, effect| match effect {
            Global::Send { .. } => {
                counts.sends += 1;
                counts.messages += 1;
            }
            Global::Broadcast { to: family, .. } => {
                counts.broadcasts += 1;
                counts.messages += family.len();
            }
            Global::Gather { from: family, .. } => {
                counts.gathers += 1;
                counts.messages += family.len();
            }
            Global::Choice { .. } => counts.choices += 1,
            Global::Loop { .. } => counts.loops += 1,
            Global::Par { .. } => counts.pars += 1,
            Global::Timeout { .. } => counts.timeouts += 1,
            Global::Ext(_) => counts.extensions += 1,
        });
        counts
    }

    /// Visits every effect, nested ones included, in program order (a compound effect
    /// before its contents), with its path. Iterative: nesting depth costs no stack.
    pub fn walk<'a>(&'a self, mut visit: impl FnMut(&Path, &'a Global<R, M>)) {
        walk_events(&self.effects, |event| {
            if let WalkEvent::Enter { path, effect } = event {
                visit(path, effect);
            }
        });
    }

    fn push(mut self, effect: Global<R, M>) -> Self {
        self.effects.push(effect);
        self
    }

    /// Takes over a sub-program's declarations and returns its effects.
    fn absorb(&mut self, program: Program<R, M>) -> Vec<Global<R, M>> {
        self.declared.extend(program.declared);
        program.effects
    }
}

/// An event of a depth-first traversal of a global program.
pub(crate) enum WalkEvent<'a, 'p, R, M> {
    /// An effect, before its contents.
    Enter {
        path: &'p Path,
        effect: &'a Global<R, M>,
    },
    /// A block (branch, part, body) of the last entered compound effect begins.
    Block { step: &'p Step },
    /// A compound effect ends, after all its blocks.
    Leave,
}

/// The blocks (sub-sequences) of a compound effect, with the step that leads into each.
pub(crate) fn blocks<R, M>(effect: &Global<R, M>) -> Vec<(Step, &[Global<R, M>])> {
    match effect {
        Global::Choice { branches, .. } => branches
            .iter()
            .map(|(label, body)| (Step::Branch(label.clone()), body.as_slice()))
            .collect(),
        Global::Loop { body, .. } | Global::Timeout { body, .. } => {
            vec![(Step::Body, body.as_slice())]
        }
        Global::Par { parts } => parts
            .iter()
            .enumerate()
            .map(|(i, part)| (Step::Part(i), part.as_slice()))
            .collect(),
        Global::Send { .. } | Global::Broadcast { .. } | Global::Gather { .. } | Global::Ext(_) => {
            Vec::new()
        }
    }
}

/// Depth-first traversal with an explicit stack.
pub(crate) fn walk_events<'a, R, M>(
    top: &'a [Global<R, M>],
    mut on: impl FnMut(WalkEvent<'a, '_, R, M>),
) {
    enum Frame<'a, R, M> {
        Seq {
            items: &'a [Global<R, M>],
            next: usize,
        },
        Compound {
            effect: &'a Global<R, M>,
            blocks: std::vec::IntoIter<(Step, &'a [Global<R, M>])>,
        },
    }
    let mut path = Path::default();
    let mut stack = vec![Frame::Seq {
        items: top,
        next: 0,
    }];
    while let Some(frame) = stack.last_mut() {
        match frame {
            Frame::Seq { items, next } => {
                let Some(effect) = items.get(*next) else {
                    stack.pop();
                    if !stack.is_empty() {
                        path.pop();
                    }
                    continue;
                };
                path.push(Step::Index(*next));
                *next += 1;
                on(WalkEvent::Enter {
                    path: &path,
                    effect,
                });
                stack.push(Frame::Compound {
                    effect,
                    blocks: blocks(effect).into_iter(),
                });
            }
            Frame::Compound { effect, blocks } => match blocks.next() {
                Some((step, items)) => {
                    path.push(step);
                    if let Some(step) = path.last() {
                        on(WalkEvent::Block { step });
                    }
                    stack.push(Frame::Seq { items, next: 0 });
                }
                None => {
                    let effect = *effect;
                    stack.pop();
                    if !matches!(
                        effect,
                        Global::Send { .. }
                            | Global::Broadcast { .. }
                            | Global::Gather { .. }
                            | Global::Ext(_)
                    ) {
                        on(WalkEvent::Leave);
                    }
                    path.pop();
                }
            },
        }
    }
}
