//! A pure executor that runs the local programs of all roles together.
//!
//! Every directed pair of roles has a FIFO queue; sends never block; a receive waits
//! for the head of its queue. Choices and loop decisions come from a
//! [`DecisionPolicy`]. The run ends with a [`CheckReport`], or with a [`CheckError`]
//! that says who waits for what (deadlock), which messages nobody read (orphans) or
//! which message or label arrived where another was expected.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::mem;

use thiserror::Error;

use crate::label::Label;
use crate::local::{Local, LoopControl};
use crate::program::Message;
use crate::project::Projections;
use crate::role::RoleId;
use crate::witness::{Unfolded, Witness, unfold};

/// Where the run-time decisions of a check come from.
///
/// # Example
/// ```
/// use stormchor_choreography::{check, project_all, DecisionPolicy, Label, Program};
///
/// /// Always takes the last branch and runs every decided loop twice.
/// struct LastBranchTwice;
///
/// impl<R> DecisionPolicy<R> for LastBranchTwice {
///     fn choose(&mut self, _: R, labels: &[Label]) -> usize { labels.len() - 1 }
///     fn keep_looping(&mut self, _: R, round: u64) -> bool { round < 2 }
/// }
///
/// let program: Program<&str, &str> = Program::new()
///     .loop_until("a", Program::new().send("a", "b", "tick"));
/// let report = check(&project_all(&program).expect("sound"), &mut LastBranchTwice).expect("runs");
/// assert_eq!(report.messages, 2);
/// ```
pub trait DecisionPolicy<R> {
    /// Which branch `role` picks, as an index into `labels`.
    fn choose(&mut self, role: R, labels: &[Label]) -> usize;

    /// Whether the loop `role` decides runs round `round` (counted from 0).
    fn keep_looping(&mut self, role: R, round: u64) -> bool;
}

/// A reproducible policy: every role draws its decisions from its own stream, derived
/// from the seed and the role, so the decisions do not depend on scheduling.
///
/// # Example
/// ```
/// use stormchor_choreography::{DecisionPolicy, Label, SeededPolicy};
///
/// let labels = [Label::from("a"), Label::from("b")];
/// let mut first = SeededPolicy::new(42);
/// let mut second = SeededPolicy::new(42);
/// let picks: Vec<usize> = (0..8).map(|_| first.choose("x", &labels)).collect();
/// let again: Vec<usize> = (0..8).map(|_| second.choose("x", &labels)).collect();
/// assert_eq!(picks, again);
/// assert!(!first.keep_looping("x", 3), "at most 3 rounds by default");
/// ```
#[derive(Clone, Debug)]
pub struct SeededPolicy {
    seed: u64,
    max_rounds: u64,
    draws: HashMap<u64, u64>,
}

impl SeededPolicy {
    /// A policy with this seed; decided loops run at most 3 rounds.
    pub fn new(seed: u64) -> Self {
        SeededPolicy {
            seed,
            max_rounds: 3,
            draws: HashMap::new(),
        }
    }

    /// Decided loops run at most `max_rounds` rounds.
    pub fn with_max_rounds(mut self, max_rounds: u64) -> Self {
        self.max_rounds = max_rounds;
        self
    }

    fn next<R: Hash>(&mut self, role: R) -> u64 {
        let mut hasher = DefaultHasher::new();
        role.hash(&mut hasher);
        let key = hasher.finish();
        let count = self.draws.entry(key).or_insert(0);
        *count += 1;
        splitmix64(self.seed ^ key.rotate_left(17) ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl<R: Hash> DecisionPolicy<R> for SeededPolicy {
    fn choose(&mut self, role: R, labels: &[Label]) -> usize {
        let len = labels.len().max(1) as u64;
        (self.next(role) % len) as usize
    }

    fn keep_looping(&mut self, role: R, round: u64) -> bool {
        round < self.max_rounds && self.next(role) % 4 != 0
    }
}

/// What a successful check did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport<R> {
    /// Messages delivered.
    pub messages: usize,
    /// Branch labels and loop decisions delivered.
    pub control: usize,
    /// Extension effects carried out, by role and type name, in execution order.
    pub extensions: Vec<(R, &'static str)>,
    /// Effects executed in all.
    pub steps: usize,
}

/// Why local programs do not run together.
///
/// # Example
/// ```
/// use stormchor_choreography::{check, CheckError, Local, LocalProgram, SeededPolicy};
///
/// // Two hand-written local programs that wait for each other.
/// let locals = [
///     ("a", LocalProgram::new("a", vec![Local::Recv { from: "b", msg: "x", at: Default::default() }])),
///     ("b", LocalProgram::new("b", vec![Local::Recv { from: "a", msg: "y", at: Default::default() }])),
/// ].into_iter().collect();
/// let error = check(&locals, &mut SeededPolicy::new(0)).unwrap_err();
/// assert!(matches!(error, CheckError::Deadlock { .. }));
/// assert_eq!(error.to_string(), "deadlock: \"a\" waits for \"x\" from \"b\"; \"b\" waits for \"y\" from \"a\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CheckError {
    /// No role can go on and not all have finished.
    #[error("deadlock: {}", waiting.join("; "))]
    Deadlock {
        /// What each stuck role waits for.
        waiting: Vec<String>,
    },
    /// Every role finished but messages are left unread.
    #[error("orphan messages left unread: {}", messages.join("; "))]
    Orphans {
        /// The unread messages, with their channels.
        messages: Vec<String>,
    },
    /// A role received another message than the one it expected.
    #[error("{role} expected {expected} from {from} but received {received}")]
    UnexpectedMessage {
        /// The receiving role.
        role: String,
        /// The sender.
        from: String,
        /// What it expected.
        expected: String,
        /// What arrived.
        received: String,
    },
    /// A role received a label that none of its branches has, or a non-label.
    #[error("{role} expected one of the labels {expected:?} from {from} but received {received}")]
    UnexpectedLabel {
        /// The receiving role.
        role: String,
        /// The sender.
        from: String,
        /// The labels it accepts.
        expected: Vec<String>,
        /// What arrived.
        received: String,
    },
    /// An ordered extension effect started before an effect the program puts before it
    /// had finished at every one of its roles, or without a frame telling its role so.
    #[error("effect order violated: {role} started {effect} while {earlier} {problem}")]
    OrderViolation {
        /// The role that started too early.
        role: String,
        /// The effect it started, with its place in the program (rounds unfolded).
        effect: String,
        /// The effect that comes before it.
        earlier: String,
        /// What was wrong with the earlier effect.
        problem: String,
    },
    /// A role finishes an effect it has not started (`ext finish` without its
    /// `ext start`), starts one under a handle still running, or ends with one
    /// still running.
    #[error("{role} {problem}")]
    Background {
        /// The role.
        role: String,
        /// What is wrong, with the handle.
        problem: String,
    },
    /// The run took more steps than allowed (a loop that never ends).
    #[error("the run exceeded {limit} steps")]
    StepLimit {
        /// The limit.
        limit: usize,
    },
}

const STEP_LIMIT: usize = 10_000_000;

/// Runs the local programs together until all finish or a problem shows.
///
/// # Example
/// ```
/// use stormchor_choreography::{check, project_all, CheckError, Local, Program, SeededPolicy};
///
/// let program: Program<&str, &str> = Program::new().send("a", "b", "ping").send("b", "a", "pong");
/// let mut locals = project_all(&program).expect("sound");
/// assert!(check(&locals, &mut SeededPolicy::new(1)).is_ok());
///
/// // Break b's program: it no longer answers, so a waits forever.
/// locals.get_mut("b").expect("b").effects_mut().pop();
/// assert!(matches!(check(&locals, &mut SeededPolicy::new(1)), Err(CheckError::Deadlock { .. })));
/// ```
pub fn check<R: RoleId, M: Message>(
    locals: &Projections<R, M>,
    policy: &mut impl DecisionPolicy<R>,
) -> Result<CheckReport<R>, CheckError> {
    let mut roles: Vec<R> = locals.keys().copied().collect();
    // Roles that are only talked to still get a queue, so the messages show as orphans.
    for local in locals.values() {
        collect_peers(local.effects(), &mut roles);
    }
    roles.sort_unstable();
    roles.dedup();
    let mut machine = Machine {
        queues: (0..roles.len() * roles.len())
            .map(|_| VecDeque::new())
            .collect(),
        threads: Vec::new(),
        report: CheckReport {
            messages: 0,
            control: 0,
            extensions: Vec::new(),
            steps: 0,
        },
        roles,
        witness: locals
            .values()
            .any(|local| has_tags(local.effects()))
            .then(Witness::default),
        yielded: false,
        running: Vec::new(),
    };
    for local in locals.values() {
        let role = machine.index(*local.role());
        machine.threads.push(Thread {
            role,
            stack: vec![Cont::Seq(local.effects(), 0)],
            parent: None,
            children: 0,
            done: false,
            rounds: Vec::new(),
        });
    }
    machine.run(policy)?;
    if let Some((role, handle)) = machine.running.first() {
        return Err(CheckError::Background {
            role: format!("{:?}", machine.roles[*role]),
            problem: format!("ends while the effect it started as `{handle}` still runs"),
        });
    }
    Ok(machine.report)
}

/// Whether any extension effect of `effects` carries an order tag.
fn has_tags<R, M>(effects: &[Local<R, M>]) -> bool {
    let mut stack = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            if matches!(effect, Local::Ext(ext) if ext.order_tag().is_some()) {
                return true;
            }
            crate::local::push_blocks(effect, &mut stack);
        }
    }
    false
}

fn collect_peers<R: RoleId, M>(effects: &[Local<R, M>], roles: &mut Vec<R>) {
    let mut stack = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            match effect {
                Local::Send { to: peer, .. }
                | Local::Recv { from: peer, .. }
                | Local::OrderSend { to: peer, .. }
                | Local::OrderRecv { from: peer, .. } => roles.push(*peer),
                Local::Branch { from, tell, .. } => {
                    roles.push(*from);
                    roles.extend(tell);
                }
                Local::Select { tell, .. } => roles.extend(tell),
                Local::Loop { control, .. } => match control {
                    LoopControl::Decide { tell } => roles.extend(tell),
                    LoopControl::Follow { decider } => roles.push(*decider),
                    LoopControl::Count(_) => {}
                },
                _ => {}
            }
            crate::local::push_blocks(effect, &mut stack);
        }
    }
}

enum Frame<'a, M> {
    Message(&'a M),
    Label(&'a Label),
    Decision(bool),
    Order,
}

impl<M: Debug> Frame<'_, M> {
    fn describe(&self) -> String {
        match self {
            Frame::Message(msg) => format!("message {msg:?}"),
            Frame::Label(label) => format!("label {label:?}"),
            Frame::Decision(true) => "loop decision \"go on\"".to_owned(),
            Frame::Decision(false) => "loop decision \"stop\"".to_owned(),
            Frame::Order => "order frame".to_owned(),
        }
    }
}

enum Cont<'a, R, M> {
    Seq(&'a [Local<R, M>], usize),
    Repeat {
        body: &'a [Local<R, M>],
        remaining: u64,
        total: u64,
    },
    Decide {
        body: &'a [Local<R, M>],
        tell: &'a [R],
        round: u64,
    },
    Follow {
        body: &'a [Local<R, M>],
        decider: R,
        round: u64,
    },
    /// An ordered effect that started (instance number) and finishes next.
    Finish(usize),
}

struct Thread<'a, R, M> {
    role: usize,
    stack: Vec<Cont<'a, R, M>>,
    parent: Option<usize>,
    children: usize,
    done: bool,
    /// The rounds of the loops of the parent threads around this one.
    rounds: Vec<u64>,
}

/// A queued frame, with the sender's clock when effect order is checked.
type Queued<'a, M> = (Frame<'a, M>, Option<Vec<u32>>);

struct Machine<'a, R, M> {
    roles: Vec<R>,
    queues: Vec<VecDeque<Queued<'a, M>>>,
    threads: Vec<Thread<'a, R, M>>,
    report: CheckReport<R>,
    /// The effect-order witness, when some effect carries an order tag.
    witness: Option<Witness>,
    /// Set when an ordered effect started: the thread lets the others run before it
    /// finishes.
    yielded: bool,
    /// Effects started and not yet finished, by role and handle.
    running: Vec<(usize, crate::background::Handle)>,
}

enum Outcome {
    Progress,
    Blocked,
}

impl<R: RoleId, M> Machine<'_, R, M> {
    /// Thread `t` of `role` starts an ordered effect instance.
    fn start_effect(
        &mut self,
        t: usize,
        role: R,
        name: &'static str,
        key: Vec<Unfolded>,
        participants: usize,
    ) -> Result<usize, CheckError> {
        let Some(witness) = self.witness.as_mut() else {
            return Ok(0);
        };
        let effect = Witness::describe(name, &key);
        witness
            .start(t, name, key, participants)
            .map_err(|violation| CheckError::OrderViolation {
                role: format!("{role:?}"),
                effect,
                earlier: violation.earlier,
                problem: violation.problem,
            })
    }
}

impl<'a, R: RoleId, M: Message> Machine<'a, R, M> {
    fn index(&self, role: R) -> usize {
        // Every role of every local program was collected before the run.
        self.roles.binary_search(&role).unwrap_or(0)
    }

    /// Takes the next frame from `from` for thread `t`, if there is one.
    fn pop(&mut self, t: usize, from: R) -> Option<Frame<'a, M>> {
        let from = self.index(from);
        let n = self.roles.len();
        let to = self.threads[t].role;
        let (frame, stamp) = self.queues[from * n + to].pop_front()?;
        if let (Some(witness), Some(stamp)) = (self.witness.as_mut(), stamp) {
            witness.receive(t, &stamp);
        }
        Some(frame)
    }

    /// Thread `t` sends `frame` to `to`.
    fn push(&mut self, t: usize, to: R, frame: Frame<'a, M>) {
        let from = self.threads[t].role;
        let to = self.index(to);
        let n = self.roles.len();
        let stamp = self.witness.as_mut().map(|w| w.stamp(t));
        self.queues[from * n + to].push_back((frame, stamp));
    }

    /// The rounds of every loop around thread `t`'s current point, outermost first.
    fn rounds(&self, t: usize) -> Vec<u64> {
        let thread = &self.threads[t];
        let mut rounds = thread.rounds.clone();
        for cont in &thread.stack {
            match cont {
                Cont::Repeat {
                    remaining, total, ..
                } => rounds.push(total - remaining - 1),
                Cont::Decide { round, .. } | Cont::Follow { round, .. } => {
                    rounds.push(round.saturating_sub(1))
                }
                Cont::Seq(..) | Cont::Finish(_) => {}
            }
        }
        rounds
    }

    fn run(&mut self, policy: &mut impl DecisionPolicy<R>) -> Result<(), CheckError> {
        loop {
            let mut progressed = false;
            let mut all_done = true;
            let mut t = 0;
            while t < self.threads.len() {
                if !self.threads[t].done {
                    if let Outcome::Progress = self.run_thread(t, policy)? {
                        progressed = true;
                    }
                    all_done &= self.threads[t].done;
                }
                t += 1;
            }
            if all_done {
                return self.finish();
            }
            if !progressed {
                return Err(self.deadlock());
            }
        }
    }

    fn finish(&self) -> Result<(), CheckError> {
        let n = self.roles.len();
        let mut messages = Vec::new();
        for (i, queue) in self.queues.iter().enumerate() {
            for (frame, _) in queue {
                messages.push(format!(
                    "{} from {:?} to {:?}",
                    frame.describe(),
                    self.roles[i / n],
                    self.roles[i % n]
                ));
            }
        }
        if messages.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Orphans { messages })
        }
    }

    fn deadlock(&self) -> CheckError {
        let mut waiting = Vec::new();
        for thread in self.threads.iter().filter(|t| !t.done) {
            let role = self.roles[thread.role];
            let what = match thread.stack.last() {
                Some(Cont::Seq(items, pos)) => match items.get(*pos) {
                    Some(Local::Recv { from, msg, .. }) => {
                        format!("waits for {msg:?} from {from:?}")
                    }
                    Some(Local::Branch { from, .. }) => format!("waits for a label from {from:?}"),
                    Some(Local::Par { .. }) => "waits for its parallel parts".to_owned(),
                    _ => "is stuck".to_owned(),
                },
                Some(Cont::Follow { decider, .. }) => {
                    format!("waits for a loop decision from {decider:?}")
                }
                _ => "is stuck".to_owned(),
            };
            waiting.push(format!("{role:?} {what}"));
        }
        CheckError::Deadlock { waiting }
    }

    /// Runs one thread until it blocks or finishes.
    fn run_thread(
        &mut self,
        t: usize,
        policy: &mut impl DecisionPolicy<R>,
    ) -> Result<Outcome, CheckError> {
        let mut outcome = Outcome::Blocked;
        let me = self.threads[t].role;
        let role = self.roles[me];
        loop {
            if self.threads[t].children > 0 {
                return Ok(outcome);
            }
            self.report.steps += 1;
            if self.report.steps > STEP_LIMIT {
                return Err(CheckError::StepLimit { limit: STEP_LIMIT });
            }
            let Some(top) = self.threads[t].stack.last_mut() else {
                self.threads[t].done = true;
                if let Some(parent) = self.threads[t].parent {
                    self.threads[parent].children -= 1;
                    if let Some(witness) = self.witness.as_mut() {
                        witness.join(t, parent);
                    }
                }
                return Ok(Outcome::Progress);
            };
            match top {
                Cont::Seq(items, pos) => {
                    let items: &'a [Local<R, M>] = items;
                    let Some(effect) = items.get(*pos) else {
                        self.threads[t].stack.pop();
                        continue;
                    };
                    // Advance first; a receive that must wait pushed nothing, so the
                    // cursor is still on top and steps back.
                    *pos += 1;
                    if !self.execute(t, role, effect, policy)? {
                        if let Some(Cont::Seq(_, pos)) = self.threads[t].stack.last_mut() {
                            *pos -= 1;
                        }
                        return Ok(outcome);
                    }
                    outcome = Outcome::Progress;
                    if mem::take(&mut self.yielded) {
                        return Ok(outcome);
                    }
                }
                Cont::Finish(instance) => {
                    let instance = *instance;
                    self.threads[t].stack.pop();
                    if let Some(witness) = self.witness.as_mut() {
                        witness.finish(t, instance);
                    }
                    outcome = Outcome::Progress;
                }
                Cont::Repeat {
                    body, remaining, ..
                } => {
                    if *remaining == 0 {
                        self.threads[t].stack.pop();
                    } else {
                        *remaining -= 1;
                        let body: &'a [Local<R, M>] = body;
                        self.threads[t].stack.push(Cont::Seq(body, 0));
                    }
                    outcome = Outcome::Progress;
                }
                Cont::Decide { body, tell, round } => {
                    let (body, tell): (&'a [Local<R, M>], &'a [R]) = (body, tell);
                    let go = policy.keep_looping(role, *round);
                    *round += 1;
                    for peer in tell {
                        self.push(t, *peer, Frame::Decision(go));
                        self.report.control += 1;
                    }
                    if go {
                        self.threads[t].stack.push(Cont::Seq(body, 0));
                    } else {
                        self.threads[t].stack.pop();
                    }
                    outcome = Outcome::Progress;
                }
                Cont::Follow {
                    body,
                    decider,
                    round,
                } => {
                    let (body, decider): (&'a [Local<R, M>], R) = (body, *decider);
                    *round += 1;
                    let Some(frame) = self.pop(t, decider) else {
                        if let Some(Cont::Follow { round, .. }) = self.threads[t].stack.last_mut() {
                            *round -= 1;
                        }
                        return Ok(outcome);
                    };
                    self.report.control += 1;
                    match frame {
                        Frame::Decision(true) => self.threads[t].stack.push(Cont::Seq(body, 0)),
                        Frame::Decision(false) => {
                            self.threads[t].stack.pop();
                        }
                        other => {
                            return Err(CheckError::UnexpectedMessage {
                                role: format!("{role:?}"),
                                from: format!("{decider:?}"),
                                expected: "a loop decision".to_owned(),
                                received: other.describe(),
                            });
                        }
                    }
                    outcome = Outcome::Progress;
                }
            }
        }
    }

    /// Executes one effect; false when it must wait.
    fn execute(
        &mut self,
        t: usize,
        role: R,
        effect: &'a Local<R, M>,
        policy: &mut impl DecisionPolicy<R>,
    ) -> Result<bool, CheckError> {
        let me = self.threads[t].role;
        match effect {
            Local::Send { to, msg, .. } => {
                self.push(t, *to, Frame::Message(msg));
            }
            Local::OrderSend { to, .. } => {
                self.push(t, *to, Frame::Order);
                self.report.control += 1;
            }
            Local::OrderRecv { from, .. } => {
                let Some(frame) = self.pop(t, *from) else {
                    return Ok(false);
                };
                if !matches!(frame, Frame::Order) {
                    return Err(CheckError::UnexpectedMessage {
                        role: format!("{role:?}"),
                        from: format!("{from:?}"),
                        expected: "an order frame".to_owned(),
                        received: frame.describe(),
                    });
                }
            }
            Local::Recv { from, msg, .. } => {
                let Some(frame) = self.pop(t, *from) else {
                    return Ok(false);
                };
                match frame {
                    Frame::Message(got) if got == msg => self.report.messages += 1,
                    other => {
                        return Err(CheckError::UnexpectedMessage {
                            role: format!("{role:?}"),
                            from: format!("{from:?}"),
                            expected: format!("message {msg:?}"),
                            received: other.describe(),
                        });
                    }
                }
            }
            Local::Select { tell, branches, .. } => {
                let labels: Vec<Label> = branches.iter().map(|(l, _)| l.clone()).collect();
                let pick = policy.choose(role, &labels) % branches.len().max(1);
                if let Some((label, body)) = branches.get(pick) {
                    for peer in tell {
                        self.push(t, *peer, Frame::Label(label));
                        self.report.control += 1;
                    }
                    self.threads[t].stack.push(Cont::Seq(body, 0));
                }
            }
            Local::Branch {
                from,
                tell,
                branches,
                ..
            } => {
                let Some(frame) = self.pop(t, *from) else {
                    return Ok(false);
                };
                let picked = match &frame {
                    Frame::Label(label) => branches.iter().find(|(l, _)| l == *label),
                    _ => None,
                };
                let Some((label, body)) = picked else {
                    return Err(CheckError::UnexpectedLabel {
                        role: format!("{role:?}"),
                        from: format!("{from:?}"),
                        expected: branches.iter().map(|(l, _)| l.to_string()).collect(),
                        received: frame.describe(),
                    });
                };
                for peer in tell {
                    self.push(t, *peer, Frame::Label(label));
                    self.report.control += 1;
                }
                self.threads[t].stack.push(Cont::Seq(body, 0));
            }
            Local::Loop { control, body, .. } => {
                let cont = match control {
                    LoopControl::Count(rounds) => Cont::Repeat {
                        body,
                        remaining: *rounds,
                        total: *rounds,
                    },
                    LoopControl::Decide { tell } => Cont::Decide {
                        body,
                        tell,
                        round: 0,
                    },
                    LoopControl::Follow { decider } => Cont::Follow {
                        body,
                        decider: *decider,
                        round: 0,
                    },
                };
                self.threads[t].stack.push(cont);
            }
            Local::Par { parts } => {
                self.threads[t].children = parts.len();
                let rounds = self.rounds(t);
                for part in parts {
                    let child = self.threads.len();
                    self.threads.push(Thread {
                        role: me,
                        stack: vec![Cont::Seq(part, 0)],
                        parent: Some(t),
                        children: 0,
                        done: false,
                        rounds: rounds.clone(),
                    });
                    if let Some(witness) = self.witness.as_mut() {
                        witness.fork(t, child);
                    }
                }
            }
            Local::Timeout { body, .. } => {
                self.threads[t].stack.push(Cont::Seq(body, 0));
            }
            Local::Ext(ext) => {
                self.report.extensions.push((role, ext.type_name()));
                match ext.stage() {
                    crate::background::Stage::Whole => {}
                    crate::background::Stage::Start(handle) => {
                        if self.running.iter().any(|(r, h)| *r == me && h == handle) {
                            return Err(CheckError::Background {
                                role: format!("{role:?}"),
                                problem: format!(
                                    "starts `{handle}` while the effect it started as `{handle}` still runs"
                                ),
                            });
                        }
                        self.running.push((me, handle.clone()));
                    }
                    crate::background::Stage::Finish(handle) => {
                        let Some(at) = self
                            .running
                            .iter()
                            .position(|(r, h)| *r == me && h == handle)
                        else {
                            return Err(CheckError::Background {
                                role: format!("{role:?}"),
                                problem: format!(
                                    "finishes `{handle}`, but no effect it started as `{handle}` runs"
                                ),
                            });
                        };
                        self.running.swap_remove(at);
                    }
                }
                if let Some(tag) = ext.order_tag() {
                    let key = unfold(tag, &self.rounds(t));
                    if let (Some(key), Some(_)) = (key, self.witness.as_ref()) {
                        let instance =
                            self.start_effect(t, role, ext.type_name(), key, tag.participants())?;
                        self.threads[t].stack.push(Cont::Finish(instance));
                        self.yielded = true;
                    }
                }
            }
        }
        Ok(true)
    }
}
