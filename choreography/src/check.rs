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

use thiserror::Error;

use crate::label::Label;
use crate::local::{Local, LoopControl};
use crate::program::Message;
use crate::project::Projections;
use crate::role::RoleId;

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
///     ("a", LocalProgram::new("a", vec![Local::Recv { from: "b", msg: "x" }])),
///     ("b", LocalProgram::new("b", vec![Local::Recv { from: "a", msg: "y" }])),
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
    };
    for local in locals.values() {
        let role = machine.index(*local.role());
        machine.threads.push(Thread {
            role,
            stack: vec![Cont::Seq(local.effects(), 0)],
            parent: None,
            children: 0,
            done: false,
        });
    }
    machine.run(policy)?;
    Ok(machine.report)
}

fn collect_peers<R: RoleId, M>(effects: &[Local<R, M>], roles: &mut Vec<R>) {
    let mut stack = vec![effects];
    while let Some(seq) = stack.pop() {
        for effect in seq {
            match effect {
                Local::Send { to: peer, .. } | Local::Recv { from: peer, .. } => roles.push(*peer),
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
}

impl<M: Debug> Frame<'_, M> {
    fn describe(&self) -> String {
        match self {
            Frame::Message(msg) => format!("message {msg:?}"),
            Frame::Label(label) => format!("label {label:?}"),
            Frame::Decision(true) => "loop decision \"go on\"".to_owned(),
            Frame::Decision(false) => "loop decision \"stop\"".to_owned(),
        }
    }
}

enum Cont<'a, R, M> {
    Seq(&'a [Local<R, M>], usize),
    Repeat {
        body: &'a [Local<R, M>],
        remaining: u64,
    },
    Decide {
        body: &'a [Local<R, M>],
        tell: &'a [R],
        round: u64,
    },
    Follow {
        body: &'a [Local<R, M>],
        decider: R,
    },
}

struct Thread<'a, R, M> {
    role: usize,
    stack: Vec<Cont<'a, R, M>>,
    parent: Option<usize>,
    children: usize,
    done: bool,
}

struct Machine<'a, R, M> {
    roles: Vec<R>,
    queues: Vec<VecDeque<Frame<'a, M>>>,
    threads: Vec<Thread<'a, R, M>>,
    report: CheckReport<R>,
}

enum Outcome {
    Progress,
    Blocked,
}

impl<'a, R: RoleId, M: Message> Machine<'a, R, M> {
    fn index(&self, role: R) -> usize {
        // Every role of every local program was collected before the run.
        self.roles.binary_search(&role).unwrap_or(0)
    }

    fn queue(&mut self, from: R, to: usize) -> &mut VecDeque<Frame<'a, M>> {
        let from = self.index(from);
        let n = self.roles.len();
        &mut self.queues[from * n + to]
    }

    fn push(&mut self, from: usize, to: R, frame: Frame<'a, M>) {
        let to = self.index(to);
        let n = self.roles.len();
        self.queues[from * n + to].push_back(frame);
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
            for frame in queue {
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
                    Some(Local::Recv { from, msg }) => format!("waits for {msg:?} from {from:?}"),
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
                }
                Cont::Repeat { body, remaining } => {
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
                        self.push(me, *peer, Frame::Decision(go));
                        self.report.control += 1;
                    }
                    if go {
                        self.threads[t].stack.push(Cont::Seq(body, 0));
                    } else {
                        self.threads[t].stack.pop();
                    }
                    outcome = Outcome::Progress;
                }
                Cont::Follow { body, decider } => {
                    let (body, decider): (&'a [Local<R, M>], R) = (body, *decider);
                    let Some(frame) = self.queue(decider, me).pop_front() else {
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
            Local::Send { to, msg } => {
                self.push(me, *to, Frame::Message(msg));
            }
            Local::Recv { from, msg } => {
                let Some(frame) = self.queue(*from, me).pop_front() else {
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
            Local::Select { tell, branches } => {
                let labels: Vec<Label> = branches.iter().map(|(l, _)| l.clone()).collect();
                let pick = policy.choose(role, &labels) % branches.len().max(1);
                if let Some((label, body)) = branches.get(pick) {
                    for peer in tell {
                        self.push(me, *peer, Frame::Label(label));
                        self.report.control += 1;
                    }
                    self.threads[t].stack.push(Cont::Seq(body, 0));
                }
            }
            Local::Branch {
                from,
                tell,
                branches,
            } => {
                let Some(frame) = self.queue(*from, me).pop_front() else {
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
                    self.push(me, *peer, Frame::Label(label));
                    self.report.control += 1;
                }
                self.threads[t].stack.push(Cont::Seq(body, 0));
            }
            Local::Loop { control, body } => {
                let cont = match control {
                    LoopControl::Count(rounds) => Cont::Repeat {
                        body,
                        remaining: *rounds,
                    },
                    LoopControl::Decide { tell } => Cont::Decide {
                        body,
                        tell,
                        round: 0,
                    },
                    LoopControl::Follow { decider } => Cont::Follow {
                        body,
                        decider: *decider,
                    },
                };
                self.threads[t].stack.push(cont);
            }
            Local::Par { parts } => {
                self.threads[t].children = parts.len();
                for part in parts {
                    self.threads.push(Thread {
                        role: me,
                        stack: vec![Cont::Seq(part, 0)],
                        parent: Some(t),
                        children: 0,
                        done: false,
                    });
                }
            }
            Local::Timeout { body, .. } => {
                self.threads[t].stack.push(Cont::Seq(body, 0));
            }
            Local::Ext(ext) => self.report.extensions.push((role, ext.type_name())),
        }
        Ok(true)
    }
}
