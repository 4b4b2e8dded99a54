//! Local programs: what one role does, as projected from a global program.

use std::fmt::{self, Debug, Display, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::extension::{Extension, Place};
use crate::label::Label;

/// How a projected loop is driven for one role.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LoopControl<R> {
    /// Exactly this many rounds.
    Count(u64),
    /// This role decides before every round and sends "go on"/"stop" to each of `tell`.
    Decide {
        /// The roles told of every decision, in order.
        tell: Vec<R>,
    },
    /// This role receives "go on"/"stop" from `decider` before every round.
    Follow {
        /// The role that decides.
        decider: R,
    },
}

/// One effect of a local program.
///
/// # Example
/// ```
/// use stormchor_choreography::{project, Local, LoopControl, Program};
///
/// let program: Program<&str, &str> = Program::new()
///     .loop_until("coordinator", Program::new().send("worker", "coordinator", "rows"));
/// let worker = project(&program, "worker").expect("sound");
/// assert_eq!(worker.effects(), &[Local::Loop {
///     control: LoopControl::Follow { decider: "coordinator" },
///     body: vec![Local::Send { to: "coordinator", msg: "rows", at: Default::default() }],
///     at: Default::default(),
/// }]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Local<R, M> {
    /// Send a message produced from template `msg` to `to`.
    Send {
        /// The receiver.
        to: R,
        /// The message kind (template).
        msg: M,
        /// Where the step comes from in the global program.
        at: Origin,
    },
    /// Receive a message of kind `msg` from `from`.
    Recv {
        /// The sender.
        from: R,
        /// The expected message kind (template).
        msg: M,
        /// Where the step comes from in the global program.
        at: Origin,
    },
    /// This role chooses a branch, sends its label to each of `tell`, then runs it.
    Select {
        /// The roles that learn the choice from this role, in order.
        tell: Vec<R>,
        /// The branches.
        branches: Vec<(Label, Vec<Local<R, M>>)>,
        /// Where the choice is in the global program.
        at: Origin,
    },
    /// This role receives a label from `from`, passes it on to each of `tell`, then runs
    /// the branch with that label.
    Branch {
        /// The role this one learns the choice from.
        from: R,
        /// The roles that learn the choice from this role, in order.
        tell: Vec<R>,
        /// The branches.
        branches: Vec<(Label, Vec<Local<R, M>>)>,
        /// Where the choice is in the global program.
        at: Origin,
    },
    /// A loop.
    Loop {
        /// How the rounds are counted or decided.
        control: LoopControl<R>,
        /// One round.
        body: Vec<Local<R, M>>,
        /// Where the loop is in the global program.
        at: Origin,
    },
    /// Parts run concurrently; each uses channels no other part uses.
    Par {
        /// The parts.
        parts: Vec<Vec<Local<R, M>>>,
    },
    /// `body` must finish within `duration`.
    Timeout {
        /// The bound.
        duration: Duration,
        /// The bounded effects.
        body: Vec<Local<R, M>>,
        /// Where the timeout is in the global program.
        at: Origin,
    },
    /// Carry out an extension effect.
    Ext(Extension),
    /// Send an *order frame* to `to`: a control frame, distinct from messages and
    /// branch labels, that projection inserts so that an ordered extension effect of
    /// `to` starts only after the effects before it have finished (docs/choreography.md).
    OrderSend {
        /// The role that waits for it.
        to: R,
        /// Where in the global program effect order needs it.
        at: Origin,
    },
    /// Wait for an order frame from `from`.
    OrderRecv {
        /// The role that sends it.
        from: R,
        /// Where in the global program effect order needs it.
        at: Origin,
    },
}

/// Where a local step comes from in the global program, for failure messages: the
/// path of the message, choice, loop or timeout projection made it from, or, for an
/// order frame, of the effect (or block end) that needs it.
///
/// It takes no part in equality or hashing: two steps that do the same are equal
/// wherever they come from. Programs written by hand have none ([`Origin::default`]).
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Local, Origin, Program};
///
/// let program: Program<&str, &str> = Program::new()
///     .send("a", "b", "ping")
///     .loop_n(2, Program::new().send("b", "a", "pong"));
/// let locals = project_all(&program).expect("sound");
/// let Local::Loop { body, .. } = &locals["a"].effects()[1] else { panic!() };
/// let Local::Recv { at, .. } = &body[0] else { panic!() };
/// assert_eq!(at.to_string(), "[1] > body > [0]");
/// // The origin does not make steps differ.
/// assert_eq!(body[0], Local::Recv { from: "b", msg: "pong", at: Origin::default() });
/// ```
#[derive(Clone, Default)]
pub struct Origin(Option<Arc<Place>>);

impl Origin {
    /// The origin at `place`.
    pub fn new(place: Place) -> Self {
        Origin(Some(Arc::new(place)))
    }

    /// The place, when known.
    pub fn place(&self) -> Option<&Place> {
        self.0.as_deref()
    }
}

impl PartialEq for Origin {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Origin {}

impl Hash for Origin {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

impl Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place() {
            Some(place) => write!(f, "{place}"),
            None => f.write_str("-"),
        }
    }
}

impl Display for Origin {
    /// The place, or `an unknown place`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.place() {
            Some(place) => Display::fmt(place, f),
            None => f.write_str("an unknown place"),
        }
    }
}

/// The program of one role, the result of projection.
///
/// The program ends when its last effect is done; there is no separate end marker.
/// Its [`Display`] form is a readable indented listing.
///
/// # Example
/// ```
/// use stormchor_choreography::{project, Program};
///
/// let program: Program<&str, &str> = Program::new().send("a", "b", "ping").send("b", "a", "pong");
/// let b = project(&program, "b").expect("well-formed");
/// assert_eq!(b.to_string(), "\"b\":\n  recv \"a\" \"ping\"\n  send \"a\" \"pong\"\n");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LocalProgram<R, M> {
    role: R,
    effects: Vec<Local<R, M>>,
}

impl<R, M> LocalProgram<R, M> {
    /// A local program of `role` made of `effects`.
    pub fn new(role: R, effects: Vec<Local<R, M>>) -> Self {
        LocalProgram { role, effects }
    }

    /// The role this program belongs to.
    pub fn role(&self) -> &R {
        &self.role
    }

    /// The effects, in order.
    pub fn effects(&self) -> &[Local<R, M>] {
        &self.effects
    }

    /// The effects, mutable (for tools and tests that rewrite programs).
    pub fn effects_mut(&mut self) -> &mut Vec<Local<R, M>> {
        &mut self.effects
    }

    /// Whether the role has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty()
    }

    /// The number of effects, nested ones included.
    pub fn size(&self) -> usize {
        let mut count = 0;
        let mut stack: Vec<&[Local<R, M>]> = vec![&self.effects];
        while let Some(seq) = stack.pop() {
            for effect in seq {
                count += 1;
                push_blocks(effect, &mut stack);
            }
        }
        count
    }
}

/// Pushes the nested sequences of a local effect.
pub(crate) fn push_blocks<'a, R, M>(effect: &'a Local<R, M>, stack: &mut Vec<&'a [Local<R, M>]>) {
    match effect {
        Local::Select { branches, .. } | Local::Branch { branches, .. } => {
            stack.extend(branches.iter().map(|(_, body)| body.as_slice()));
        }
        Local::Loop { body, .. } | Local::Timeout { body, .. } => stack.push(body),
        Local::Par { parts } => stack.extend(parts.iter().map(Vec::as_slice)),
        Local::Send { .. }
        | Local::Recv { .. }
        | Local::Ext(_)
        | Local::OrderSend { .. }
        | Local::OrderRecv { .. } => {}
    }
}

fn write_list<R: Debug>(out: &mut String, roles: &[R]) -> fmt::Result {
    out.push('[');
    for (i, role) in roles.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write!(out, "{role:?}")?;
    }
    out.push(']');
    Ok(())
}

fn render<R: Debug, M: Debug>(out: &mut String, seq: &[Local<R, M>], depth: usize) -> fmt::Result {
    for effect in seq {
        for _ in 0..depth {
            out.push_str("  ");
        }
        match effect {
            Local::Send { to, msg, .. } => writeln!(out, "send {to:?} {msg:?}")?,
            Local::Recv { from, msg, .. } => writeln!(out, "recv {from:?} {msg:?}")?,
            Local::Select { tell, branches, .. } => {
                out.push_str("select");
                if !tell.is_empty() {
                    out.push_str(", tell ");
                    write_list(out, tell)?;
                }
                out.push('\n');
                render_branches(out, branches, depth)?;
            }
            Local::Branch {
                from,
                tell,
                branches,
                ..
            } => {
                write!(out, "branch from {from:?}")?;
                if !tell.is_empty() {
                    out.push_str(", tell ");
                    write_list(out, tell)?;
                }
                out.push('\n');
                render_branches(out, branches, depth)?;
            }
            Local::Loop { control, body, .. } => {
                match control {
                    LoopControl::Count(rounds) => writeln!(out, "loop {rounds} times")?,
                    LoopControl::Decide { tell } => {
                        out.push_str("loop while I decide, tell ");
                        write_list(out, tell)?;
                        out.push('\n');
                    }
                    LoopControl::Follow { decider } => {
                        writeln!(out, "loop while {decider:?} decides")?
                    }
                }
                render(out, body, depth + 1)?;
            }
            Local::Par { parts } => {
                out.push_str("par\n");
                for (i, part) in parts.iter().enumerate() {
                    for _ in 0..=depth {
                        out.push_str("  ");
                    }
                    writeln!(out, "part {i}:")?;
                    render(out, part, depth + 2)?;
                }
            }
            Local::Timeout { duration, body, .. } => {
                writeln!(out, "timeout {duration:?}")?;
                render(out, body, depth + 1)?;
            }
            Local::Ext(ext) => writeln!(out, "ext {ext:?}")?,
            Local::OrderSend { to, .. } => writeln!(out, "order frame to {to:?}")?,
            Local::OrderRecv { from, .. } => writeln!(out, "wait for order frame from {from:?}")?,
        }
    }
    Ok(())
}

fn render_branches<R: Debug, M: Debug>(
    out: &mut String,
    branches: &[(Label, Vec<Local<R, M>>)],
    depth: usize,
) -> fmt::Result {
    for (label, body) in branches {
        for _ in 0..=depth {
            out.push_str("  ");
        }
        writeln!(out, "{label:?} =>")?;
        render(out, body, depth + 2)?;
    }
    Ok(())
}

impl<R: Debug, M: Debug> Display for LocalProgram<R, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        writeln!(out, "{:?}:", self.role)?;
        render(&mut out, &self.effects, 1)?;
        f.write_str(&out)
    }
}
