//! The interpreter: runs one role's local program with a handler.
//!
//! It walks the program with an explicit stack, so loops and long sequences cost no
//! allocation or recursion; only `par` parts and `timeout` bodies run as sub-futures.

use std::fmt;
use std::mem::discriminant;
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, try_join_all};
use std::task::Poll;

use stormchor_choreography::{
    Label, Local, LocalProgram, LoopControl, Message, Origin, RoleId, Stage,
};

use crate::background::Background;

use crate::effects::{EffectContext, Effects};
use crate::handler::{Handler, RunError, RunErrorKind};
use crate::registry::ExtensionRegistry;
use crate::state::{Labels, RoleLogic, RoleState};
use crate::transport::{Channels, Transport};

/// One thing a role did, for its trace.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind<R> {
    /// Sent a message to a peer.
    Sent {
        /// The peer.
        to: R,
    },
    /// Received a message from a peer.
    Received {
        /// The peer.
        from: R,
    },
    /// Chose a branch.
    Chose {
        /// The branch.
        label: Label,
    },
    /// Learned a branch from a peer.
    Learned {
        /// The peer.
        from: R,
        /// The branch.
        label: Label,
    },
    /// Started a round of a loop.
    Round {
        /// The round, counted from 0.
        round: u64,
    },
    /// Sent an order frame (effect order) to a peer.
    OrderSent {
        /// The peer.
        to: R,
    },
    /// Received an order frame from a peer.
    OrderReceived {
        /// The peer.
        from: R,
    },
    /// Started an extension effect in the background (`ext start`); it has started.
    Started {
        /// The effect's type name.
        effect: &'static str,
        /// How long until it counted as started.
        took: Duration,
    },
    /// Carried out an extension effect (for a started one: its finish, with the time
    /// from its start to its end).
    Ext {
        /// The effect's type name.
        effect: &'static str,
        /// How long it took.
        took: Duration,
    },
}

/// A timestamped event of a role's trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Event<R> {
    /// Time since the role started.
    pub at: Duration,
    /// What happened.
    pub kind: EventKind<R>,
}

/// Why a role failed, and where.
#[derive(Debug)]
pub struct RoleFailure {
    /// The role.
    pub role: String,
    /// Where in the role's local program: the index of the effect in each nested
    /// sequence, outermost first (a `par` part's index counts as a level).
    pub path: Vec<usize>,
    /// The step that failed, as the global program writes it (`ext Resumes`,
    /// `ext finish update (Sql)`, `receive Start from Coordinator`).
    pub effect: String,
    /// Where the step comes from in the global program: for an extension effect the
    /// DSL statement's source line (`src/scenarios/isolation.rs:72`), else its path
    /// (`[3] > body > [1]`); for a message, a choice's label or a loop's decision the
    /// path of the message, choice or loop; for an order frame, the place of the
    /// effect it orders. `None` for hand-written local programs.
    pub place: Option<String>,
    /// The cause.
    pub error: RunError,
}

impl RoleFailure {
    /// Whether the role failed because a deadline passed.
    pub fn timed_out(&self) -> bool {
        matches!(self.error.kind(), RunErrorKind::TimedOut { .. })
    }
}

impl fmt::Display for RoleFailure {
    /// `T2 failed at ext Resumes (src/scenarios/suite.rs:41): <cause>`: the step once,
    /// in the global program's terms, then what went wrong (for a failed extension
    /// effect, its handler's own error, without naming the effect and role again).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed at {}", self.role, self.effect)?;
        if let Some(place) = &self.place {
            write!(f, " ({place})")?;
        }
        match self.error.kind() {
            RunErrorKind::Extension(crate::registry::ExtensionError::Failed {
                failure, ..
            }) => {
                write!(f, ": {failure}")
            }
            _ => write!(f, ": {}", self.error),
        }
    }
}

impl std::error::Error for RoleFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

struct Failure {
    path: Vec<usize>,
    effect: String,
    place: Option<String>,
    error: RunError,
}

enum Cont<'p, R, M> {
    /// A sequence, the index of its next effect, and how many more times to run it
    /// once it ends (counted loops).
    Seq(&'p [Local<R, M>], usize, u64),
    Decide {
        body: &'p [Local<R, M>],
        tell: &'p [R],
        round: u64,
        at: &'p Origin,
    },
    Follow {
        body: &'p [Local<R, M>],
        decider: R,
        round: u64,
        at: &'p Origin,
    },
}

/// Runs the local programs of one role.
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Program};
/// use stormchor_runtime::{memory_mesh, ExtensionRegistry, Interpreter, RoleState};
///
/// let program: Program<&str, u32> = Program::new().send("a", "b", 1).send("b", "a", 2);
/// let locals = project_all(&program).expect("sound");
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// rt.block_on(async {
///     let (mut handlers, _) = memory_mesh::<&str, u32>(&["a", "b"]);
///     let (mut b_end, mut a_end) = (handlers.pop().expect("b"), handlers.pop().expect("a"));
///     let registry = ExtensionRegistry::new();
///     let a_state = RoleState::new("a", ["a", "b"], ());
///     let b_state = RoleState::new("b", ["a", "b"], ());
///     let a = Interpreter::new(&a_state, &registry);
///     let b = Interpreter::new(&b_state, &registry);
///     let ((ra, _), (rb, _)) = tokio::join!(a.run(&locals["a"], &mut a_end), b.run(&locals["b"], &mut b_end));
///     assert!(ra.is_ok() && rb.is_ok());
///     assert_eq!(a_state.latest_from(&"b"), Some(2));
/// });
/// ```
pub struct Interpreter<'a, R, M, S> {
    state: &'a RoleState<R, M, S>,
    registry: &'a ExtensionRegistry<RoleState<R, M, S>>,
    start: Instant,
    trace: bool,
}

impl<'a, R, M, S> Interpreter<'a, R, M, S>
where
    R: RoleId,
    M: Message,
    S: RoleLogic<R, M>,
{
    /// An interpreter for the role whose state is `state`, with its registry.
    pub fn new(
        state: &'a RoleState<R, M, S>,
        registry: &'a ExtensionRegistry<RoleState<R, M, S>>,
    ) -> Self {
        Interpreter {
            state,
            registry,
            start: Instant::now(),
            trace: true,
        }
    }

    /// Whether to record a trace of events (on by default).
    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    /// Runs `local` to its end; returns how it ended and the trace.
    pub async fn run<T: Transport<R, M>, E: Effects<R>>(
        &self,
        local: &LocalProgram<R, M>,
        handler: &mut Handler<T, E>,
    ) -> (Result<(), RoleFailure>, Vec<Event<R>>) {
        let mut events = Vec::new();
        // The effects this role starts and has not finished yet.
        let background = Background::default();
        let main = self.run_seq(
            local.effects(),
            handler,
            Vec::new(),
            &mut events,
            &background,
        );
        let result = if starts_any(local.effects()) {
            self.with_background(main, &background).await
        } else {
            main.await
        };
        let result = result.map_err(|failure| RoleFailure {
            role: format!("{:?}", self.state.role()),
            path: failure.path,
            effect: failure.effect,
            place: failure.place,
            error: failure.error,
        });
        (result, events)
    }

    #[inline(always)]
    /// [`run`](Interpreter::run) within `deadline`; past it the role fails as timed out.
    pub async fn run_within<T: Transport<R, M>, E: Effects<R>>(
        &self,
        local: &LocalProgram<R, M>,
        handler: &mut Handler<T, E>,
        deadline: Duration,
    ) -> (Result<(), RoleFailure>, Vec<Event<R>>) {
        match tokio::time::timeout(deadline, self.run(local, handler)).await {
            Ok(ended) => ended,
            Err(_) => (
                Err(RoleFailure {
                    role: format!("{:?}", self.state.role()),
                    path: Vec::new(),
                    effect: "the whole program".to_owned(),
                    place: None,
                    error: RunErrorKind::TimedOut { limit: deadline }.into(),
                }),
                Vec::new(),
            ),
        }
    }

    /// Runs `main` and polls the effects it starts alongside; they are dropped when
    /// it ends, fails or is dropped itself, and the first that fails fails the role.
    async fn with_background(
        &self,
        mut main: BoxFuture<'_, Result<(), Failure>>,
        background: &Background<'a>,
    ) -> Result<(), Failure> {
        struct Reap<'r, 'a>(&'r Background<'a>);
        impl Drop for Reap<'_, '_> {
            fn drop(&mut self) {
                self.0.clear();
            }
        }
        let _reap = Reap(background);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = main.as_mut().poll(cx) {
                return Poll::Ready(result);
            }
            match background.poll(cx) {
                Some(failed) => Poll::Ready(Err(Failure {
                    path: failed.path,
                    effect: format!("ext start {} as {}", failed.effect, failed.handle),
                    place: failed.place,
                    error: failed.error,
                })),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// What the role's extension effects run with.
    fn context(&self) -> EffectContext<'a, R, RoleState<R, M, S>> {
        EffectContext::new(self.state.role(), self.registry, self.state)
    }

    fn event(&self, events: &mut Vec<Event<R>>, kind: EventKind<R>) {
        if self.trace {
            events.push(Event {
                at: self.start.elapsed(),
                kind,
            });
        }
    }

    fn run_seq<'b, T: Transport<R, M>, E: Effects<R>>(
        &'b self,
        seq: &'b [Local<R, M>],
        handler: &'b mut Handler<T, E>,
        prefix: Vec<usize>,
        events: &'b mut Vec<Event<R>>,
        background: &'b Background<'a>,
    ) -> BoxFuture<'b, Result<(), Failure>> {
        Box::pin(async move {
            let mut pending = Pending::default();
            let result = self
                .drive(seq, handler, prefix, events, &mut pending, background)
                .await;
            pending.flush(self.state);
            result
        })
    }

    /// Runs a sequence; received values wait in `pending` until the role's state must
    /// show them.
    async fn drive<'b, T: Transport<R, M>, E: Effects<R>>(
        &'b self,
        seq: &'b [Local<R, M>],
        handler: &'b mut Handler<T, E>,
        prefix: Vec<usize>,
        events: &'b mut Vec<Event<R>>,
        pending: &mut Pending<R, M>,
        background: &'b Background<'a>,
    ) -> Result<(), Failure> {
        {
            let mut stack: Vec<Cont<'b, R, M>> = vec![Cont::Seq(seq, 0, 0)];
            while let Some(top) = stack.last_mut() {
                let push = match top {
                    Cont::Seq(items, pos, again) => {
                        let items: &'b [Local<R, M>] = items;
                        // Messages, nearly all the traffic, take the short way: a run of
                        // sends and receives in one go. (Extension effects run for
                        // milliseconds or more; the boxed slow path costs them nothing
                        // that shows, and keeps the message loop's state small.)
                        while let Some(
                            effect @ (Local::Send { .. }
                            | Local::Recv { .. }
                            | Local::Ext(_)
                            | Local::OrderSend { .. }
                            | Local::OrderRecv { .. }),
                        ) = items.get(*pos)
                        {
                            *pos += 1;
                            let done = match effect {
                                Local::Send { to, msg, .. } => handler
                                    .transport
                                    .send(*to, self.message(*to, msg, pending))
                                    .await
                                    .map(|()| self.event(events, EventKind::Sent { to: *to })),
                                Local::Recv { from, msg, .. } => {
                                    match handler.transport.recv(*from).await {
                                        Ok(value) => {
                                            self.received(*from, msg, value, events, pending)
                                        }
                                        Err(error) => Err(error),
                                    }
                                }
                                Local::Ext(ext) if ext.stage() != &Stage::Whole => {
                                    // Starts and finishes take the slow path.
                                    *pos -= 1;
                                    break;
                                }
                                Local::Ext(ext) => {
                                    self.extension(ext, handler, events, pending).await
                                }
                                Local::OrderSend { to, .. } => {
                                    handler.transport.order(*to).await.map(|()| {
                                        self.event(events, EventKind::OrderSent { to: *to })
                                    })
                                }
                                Local::OrderRecv { from, .. } => {
                                    handler.transport.await_order(*from).await.map(|()| {
                                        self.event(events, EventKind::OrderReceived { from: *from })
                                    })
                                }
                                _ => Ok(()),
                            };
                            if let Err(error) = done {
                                return Err(Failure {
                                    path: path_of(&prefix, &stack),
                                    effect: describe(effect),
                                    place: place_of(effect),
                                    error,
                                });
                            }
                        }
                        let Some(effect) = items.get(*pos) else {
                            if *again > 0 {
                                *again -= 1;
                                *pos = 0;
                            } else {
                                stack.pop();
                            }
                            continue;
                        };
                        *pos += 1;
                        // Boxed: the rare effects' big future stays out of the message
                        // loop's state.
                        match Box::pin(self.step(
                            effect, handler, &stack, &prefix, events, pending, background,
                        ))
                        .await
                        {
                            Ok(push) => push,
                            Err(StepError::Here(error)) => {
                                return Err(Failure {
                                    path: path_of(&prefix, &stack),
                                    effect: describe(effect),
                                    place: place_of(effect),
                                    error,
                                });
                            }
                            Err(StepError::Nested(failure)) => return Err(failure),
                        }
                    }
                    Cont::Decide {
                        body,
                        tell,
                        round,
                        at,
                    } => {
                        let (body, tell, this_round, at) = (*body, *tell, *round, *at);
                        *round += 1;
                        if S::READS_STATE {
                            pending.flush(self.state);
                        }
                        let go_on = S::keep_looping(self.state, this_round);
                        for peer in tell {
                            if let Err(error) = handler.transport.decide(*peer, go_on).await {
                                return Err(Failure {
                                    path: path_of(&prefix, &stack),
                                    effect: format!("tell {peer:?} the loop decision"),
                                    place: at.place().map(ToString::to_string),
                                    error,
                                });
                            }
                        }
                        if go_on {
                            self.event(events, EventKind::Round { round: this_round });
                            Some(Cont::Seq(body, 0, 0))
                        } else {
                            stack.pop();
                            None
                        }
                    }
                    Cont::Follow {
                        body,
                        decider,
                        round,
                        at,
                    } => {
                        let (body, decider, this_round, at) = (*body, *decider, *round, *at);
                        *round += 1;
                        match handler.transport.follow(decider).await {
                            Ok(true) => {
                                self.event(events, EventKind::Round { round: this_round });
                                Some(Cont::Seq(body, 0, 0))
                            }
                            Ok(false) => {
                                stack.pop();
                                None
                            }
                            Err(error) => {
                                return Err(Failure {
                                    path: path_of(&prefix, &stack),
                                    effect: format!("learn the loop decision from {decider:?}"),
                                    place: at.place().map(ToString::to_string),
                                    error,
                                });
                            }
                        }
                    }
                };
                if let Some(cont) = push {
                    stack.push(cont);
                }
            }
            Ok(())
        }
    }

    /// Checks a received message and keeps it (in `pending` until it must show).
    #[inline]
    fn received(
        &self,
        from: R,
        template: &M,
        value: M,
        events: &mut Vec<Event<R>>,
        pending: &mut Pending<R, M>,
    ) -> Result<(), RunError> {
        if discriminant(&value) != discriminant(template) {
            return Err(RunErrorKind::UnexpectedFrame {
                from: format!("{from:?}"),
                expected: format!("message {template:?}"),
                received: format!("message {value:?}"),
            }
            .into());
        }
        if let Err(reason) = S::accept(self.state, from, template, &value) {
            return Err(RunErrorKind::UnexpectedFrame {
                from: format!("{from:?}"),
                expected: format!("message {template:?}"),
                received: reason,
            }
            .into());
        }
        pending.keep(from, value);
        self.event(events, EventKind::Received { from });
        Ok(())
    }

    /// The value to send for `template`, after showing the received values to the
    /// logic if it reads them.
    fn message(&self, to: R, template: &M, pending: &mut Pending<R, M>) -> M {
        if S::READS_STATE {
            pending.flush(self.state);
        }
        S::message(self.state, to, template)
    }

    /// Carries out an extension effect and keeps its result.
    async fn extension<T: Transport<R, M>, E: Effects<R>>(
        &self,
        ext: &stormchor_choreography::Extension,
        handler: &mut Handler<T, E>,
        events: &mut Vec<Event<R>>,
        pending: &mut Pending<R, M>,
    ) -> Result<(), RunError> {
        // The handler reads the state: show it every value received so far.
        pending.flush(self.state);
        let started = self.trace.then(Instant::now);
        if let Some(value) = handler.effects.extension(self.context(), ext).await? {
            self.state.store_result(ext.effect_type_id(), value);
        }
        if let Some(started) = started {
            self.event(
                events,
                EventKind::Ext {
                    effect: ext.type_name(),
                    took: started.elapsed(),
                },
            );
        }
        Ok(())
    }

    /// Carries out one effect; returns the continuation to push, if any.
    #[allow(clippy::too_many_arguments)] // the interpreter's own state, passed down
    async fn step<'b, T: Transport<R, M>, E: Effects<R>>(
        &'b self,
        effect: &'b Local<R, M>,
        handler: &mut Handler<T, E>,
        stack: &[Cont<'b, R, M>],
        prefix: &[usize],
        events: &mut Vec<Event<R>>,
        pending: &mut Pending<R, M>,
        background: &'b Background<'a>,
    ) -> Result<Option<Cont<'b, R, M>>, StepError> {
        // Everything but messages may run the author's code or nested parts: show them
        // every value received so far.
        if !matches!(
            effect,
            Local::Send { .. }
                | Local::Recv { .. }
                | Local::OrderSend { .. }
                | Local::OrderRecv { .. }
        ) {
            pending.flush(self.state);
        }
        match effect {
            Local::Send { to, msg, .. } => {
                handler
                    .transport
                    .send(*to, self.message(*to, msg, pending))
                    .await?;
                self.event(events, EventKind::Sent { to: *to });
                Ok(None)
            }
            Local::Recv { from, msg, .. } => {
                let value = handler.transport.recv(*from).await?;
                self.received(*from, msg, value, events, pending)?;
                Ok(None)
            }
            Local::Select { tell, branches, .. } => {
                let index = S::choose(self.state, Labels::new(branches));
                let Some((label, body)) = branches.get(index) else {
                    return Err(StepError::Here(RunError::from(RunErrorKind::BadChoice {
                        index,
                        count: branches.len(),
                    })));
                };
                for peer in tell {
                    handler.transport.choose(*peer, index as u32).await?;
                }
                self.event(
                    events,
                    EventKind::Chose {
                        label: label.clone(),
                    },
                );
                Ok(Some(Cont::Seq(body, 0, 0)))
            }
            Local::Branch {
                from,
                tell,
                branches,
                ..
            } => {
                let index = handler.transport.offer(*from).await?;
                let Some((label, body)) = branches.get(index as usize) else {
                    return Err(StepError::Here(RunError::from(
                        RunErrorKind::UnknownLabel {
                            from: format!("{from:?}"),
                            index,
                            count: branches.len(),
                        },
                    )));
                };
                for peer in tell {
                    handler.transport.choose(*peer, index).await?;
                }
                self.event(
                    events,
                    EventKind::Learned {
                        from: *from,
                        label: label.clone(),
                    },
                );
                Ok(Some(Cont::Seq(body, 0, 0)))
            }
            Local::Loop { control, body, at } => Ok(Some(match control {
                LoopControl::Count(0) => return Ok(None),
                LoopControl::Count(rounds) => Cont::Seq(body, 0, rounds - 1),
                LoopControl::Decide { tell } => Cont::Decide {
                    body,
                    tell,
                    round: 0,
                    at,
                },
                LoopControl::Follow { decider } => Cont::Follow {
                    body,
                    decider: *decider,
                    round: 0,
                    at,
                },
            })),
            Local::Par { parts } => {
                let channels: Vec<Channels<R>> =
                    parts.iter().map(|part| Channels::of(part)).collect();
                let mut handlers = handler.split::<R, M>(&channels)?;
                let here = path_of(prefix, stack);
                let mut part_events: Vec<Vec<Event<R>>> =
                    parts.iter().map(|_| Vec::new()).collect();
                let result = {
                    let runs = handlers
                        .iter_mut()
                        .zip(parts)
                        .zip(part_events.iter_mut())
                        .enumerate()
                        .map(|(i, ((part_handler, part), part_events))| {
                            let mut path = here.clone();
                            path.push(i);
                            self.run_seq(part, part_handler, path, part_events, background)
                        });
                    try_join_all(runs).await
                };
                handler.join::<R, M>(handlers);
                for part in part_events {
                    events.extend(part);
                }
                events.sort_by_key(|event| event.at);
                result.map(|_| None).map_err(StepError::Nested)
            }
            Local::Timeout { duration, body, .. } => {
                let here = path_of(prefix, stack);
                match tokio::time::timeout(
                    *duration,
                    self.run_seq(body, handler, here, events, background),
                )
                .await
                {
                    Ok(result) => result.map(|()| None).map_err(StepError::Nested),
                    Err(_) => Err(StepError::Here(RunError::from(RunErrorKind::TimedOut {
                        limit: *duration,
                    }))),
                }
            }
            Local::Ext(ext) => {
                match ext.stage() {
                    Stage::Whole => self.extension(ext, handler, events, pending).await?,
                    Stage::Start(handle) => {
                        let since = Instant::now();
                        // Through the middleware, which wraps the run (it must not
                        // hold the handler: the role goes on with it meanwhile).
                        let run = handler.effects.start_extension(self.context(), ext);
                        let future = async move { run.run().await };
                        background
                            .start(
                                handle.clone(),
                                ext.type_name(),
                                path_of(prefix, stack),
                                ext.place().map(ToString::to_string),
                                future,
                            )
                            .await;
                        self.event(
                            events,
                            EventKind::Started {
                                effect: ext.type_name(),
                                took: since.elapsed(),
                            },
                        );
                    }
                    Stage::Finish(handle) => {
                        let Some((outcome, took)) = background.finish(handle).await else {
                            return Err(StepError::Here(
                                RunErrorKind::NotStarted {
                                    handle: handle.to_string(),
                                }
                                .into(),
                            ));
                        };
                        if let Some(value) = handler
                            .effects
                            .finish_extension(self.state.role(), ext, outcome)
                            .await?
                        {
                            self.state.store_result(ext.effect_type_id(), value);
                        }
                        self.event(
                            events,
                            EventKind::Ext {
                                effect: ext.type_name(),
                                took,
                            },
                        );
                    }
                }
                Ok(None)
            }
            Local::OrderSend { to, .. } => {
                handler.transport.order(*to).await?;
                self.event(events, EventKind::OrderSent { to: *to });
                Ok(None)
            }
            Local::OrderRecv { from, .. } => {
                handler.transport.await_order(*from).await?;
                self.event(events, EventKind::OrderReceived { from: *from });
                Ok(None)
            }
        }
    }
}

enum StepError {
    Here(RunError),
    Nested(Failure),
}

impl From<RunError> for StepError {
    fn from(error: RunError) -> Self {
        StepError::Here(error)
    }
}

/// Received values not yet written to the role's state, latest per peer.
struct Pending<R, M> {
    values: Vec<(R, M)>,
}

impl<R, M> Default for Pending<R, M> {
    fn default() -> Self {
        Pending { values: Vec::new() }
    }
}

impl<R: RoleId, M: Message> Pending<R, M> {
    fn keep(&mut self, from: R, value: M) {
        match self.values.iter_mut().find(|(peer, _)| *peer == from) {
            Some(slot) => slot.1 = value,
            None => self.values.push((from, value)),
        }
    }

    fn flush<S>(&mut self, state: &RoleState<R, M, S>) {
        if !self.values.is_empty() {
            state.store_received_all(self.values.drain(..));
        }
    }
}

/// Where a step comes from in the global program: an extension effect's DSL line,
/// else the path projection made the step from (for an order frame, that of the
/// effect it orders: its DSL line when it has one). Hand-written local programs
/// have none.
fn place_of<R, M>(effect: &Local<R, M>) -> Option<String> {
    match effect {
        Local::Ext(ext) => ext.place().map(ToString::to_string),
        Local::Send { at, .. }
        | Local::Recv { at, .. }
        | Local::Select { at, .. }
        | Local::Branch { at, .. }
        | Local::Loop { at, .. }
        | Local::Timeout { at, .. }
        | Local::OrderSend { at, .. }
        | Local::OrderRecv { at, .. } => at.place().map(ToString::to_string),
        Local::Par { .. } => None,
    }
}

/// Whether a local program starts an effect in the background anywhere.
fn starts_any<R, M>(effects: &[Local<R, M>]) -> bool {
    effects.iter().any(|effect| match effect {
        Local::Ext(ext) => matches!(ext.stage(), Stage::Start(_)),
        Local::Select { branches, .. } | Local::Branch { branches, .. } => {
            branches.iter().any(|(_, body)| starts_any(body))
        }
        Local::Loop { body, .. } | Local::Timeout { body, .. } => starts_any(body),
        Local::Par { parts } => parts.iter().any(|part| starts_any(part)),
        _ => false,
    })
}

/// The path of the effect being run: the prefix, then each sequence's current index.
fn path_of<R, M>(prefix: &[usize], stack: &[Cont<'_, R, M>]) -> Vec<usize> {
    let mut path = prefix.to_vec();
    path.extend(stack.iter().filter_map(|cont| match cont {
        Cont::Seq(_, pos, _) => Some(pos.saturating_sub(1)),
        _ => None,
    }));
    path
}

fn describe<R: fmt::Debug, M: fmt::Debug>(effect: &Local<R, M>) -> String {
    match effect {
        Local::Send { to, msg, .. } => format!("send {msg:?} to {to:?}"),
        Local::Recv { from, msg, .. } => format!("receive {msg:?} from {from:?}"),
        Local::Select { .. } => "choose a branch".to_owned(),
        Local::Branch { from, .. } => format!("learn a branch from {from:?}"),
        Local::Loop { .. } => "loop".to_owned(),
        Local::Par { .. } => "par".to_owned(),
        Local::Timeout { duration, .. } => format!("timeout {duration:?}"),
        Local::Ext(ext) => match ext.stage() {
            Stage::Whole => format!("ext {}", ext.type_name()),
            Stage::Start(handle) => format!("ext start {} as {handle}", ext.type_name()),
            Stage::Finish(handle) => format!("ext finish {handle} ({})", ext.type_name()),
        },
        Local::OrderSend { to, .. } => format!("send an order frame to {to:?}"),
        Local::OrderRecv { from, .. } => format!("wait for an order frame from {from:?}"),
    }
}
