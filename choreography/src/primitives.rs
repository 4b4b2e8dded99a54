//! Reusable choreographies: building blocks that any program can compose with
//! [`Program::then`].
//!
//! Each function returns a plain [`Program`], generic over the role and message
//! types, so a crate can define its own primitives the same way and another crate can
//! compose them (see `examples/cross_crate.rs`).

use crate::program::{Message, Program};
use crate::role::{Family, RoleId};

/// The coordinator sends `request` to every member, then collects one `reply` from each.
///
/// # Example
/// ```
/// use stormchor_choreography::{check, primitives::scatter_gather, project_all, Family, SeededPolicy};
///
/// let workers = Family::new("worker", ["w1", "w2", "w3"]);
/// let program = scatter_gather("coordinator", &workers, "task", "result");
/// let report = check(&project_all(&program).expect("sound"), &mut SeededPolicy::new(0)).expect("runs");
/// assert_eq!(report.messages, 6);
/// ```
pub fn scatter_gather<R: RoleId, M: Message>(
    coordinator: R,
    members: &Family<R>,
    request: M,
    reply: M,
) -> Program<R, M> {
    Program::new()
        .role(coordinator)
        .family(members)
        .broadcast(coordinator, members, request)
        .gather(members, coordinator, reply)
}

/// Nobody passes the barrier before everyone has arrived: every member tells the
/// coordinator it `arrived`, then the coordinator `release`s them all.
///
/// # Example
/// ```
/// use stormchor_choreography::{primitives::barrier, project_all, Family, Local};
///
/// let workers = Family::new("worker", ["w1", "w2"]);
/// let locals = project_all(&barrier("coordinator", &workers, "arrived", "release")).expect("sound");
/// assert_eq!(locals["w1"].effects()[0], Local::Send { to: "coordinator", msg: "arrived", at: Default::default() });
/// ```
pub fn barrier<R: RoleId, M: Message>(
    coordinator: R,
    members: &Family<R>,
    arrived: M,
    release: M,
) -> Program<R, M> {
    Program::new()
        .role(coordinator)
        .family(members)
        .gather(members, coordinator, arrived)
        .broadcast(coordinator, members, release)
}

/// A token travels around the ring `ring[0] -> ring[1] -> .. -> ring[0]`, `rounds` times.
/// A ring of fewer than two roles passes nothing.
///
/// # Example
/// ```
/// use stormchor_choreography::{check, primitives::round_robin, project_all, SeededPolicy};
///
/// let program = round_robin(&["a", "b", "c"], "token", 2);
/// let report = check(&project_all(&program).expect("sound"), &mut SeededPolicy::new(0)).expect("runs");
/// assert_eq!(report.messages, 6);
/// ```
pub fn round_robin<R: RoleId, M: Message>(ring: &[R], token: M, rounds: u64) -> Program<R, M> {
    let mut lap = Program::new();
    if ring.len() >= 2 {
        for (i, from) in ring.iter().enumerate() {
            lap = lap.send(*from, ring[(i + 1) % ring.len()], token.clone());
        }
    }
    Program::new()
        .with_roles(ring.iter().copied())
        .loop_n(rounds, lap)
}

/// The messages of [`two_phase_commit`].
#[derive(Clone, Debug, PartialEq)]
pub struct TwoPhaseMessages<M> {
    /// Coordinator to participants: get ready to commit.
    pub prepare: M,
    /// Participant to coordinator: its vote.
    pub vote: M,
    /// Coordinator to participants: commit.
    pub commit: M,
    /// Coordinator to participants: roll back.
    pub abort: M,
    /// Participant to coordinator: done.
    pub ack: M,
}

/// Two-phase commit: the coordinator asks every participant to prepare and collects
/// their votes, then chooses `"commit"` or `"abort"`; every participant learns the
/// outcome from the coordinator's message and acknowledges it.
///
/// # Example
/// ```
/// use stormchor_choreography::{primitives::{two_phase_commit, TwoPhaseMessages}, project_all, Family, Local};
///
/// let participants = Family::new("node", ["n1", "n2"]);
/// let messages = TwoPhaseMessages { prepare: "prepare", vote: "vote", commit: "commit", abort: "abort", ack: "ack" };
/// let locals = project_all(&two_phase_commit("coordinator", &participants, messages)).expect("sound");
/// assert!(matches!(locals["n1"].effects()[2], Local::Branch { from: "coordinator", .. }));
/// ```
pub fn two_phase_commit<R: RoleId, M: Message>(
    coordinator: R,
    participants: &Family<R>,
    messages: TwoPhaseMessages<M>,
) -> Program<R, M> {
    let outcome = |decision: M| {
        Program::new()
            .broadcast(coordinator, participants, decision)
            .gather(participants, coordinator, messages.ack.clone())
    };
    scatter_gather(
        coordinator,
        participants,
        messages.prepare.clone(),
        messages.vote.clone(),
    )
    .choice(
        coordinator,
        [
            ("commit", outcome(messages.commit.clone())),
            ("abort", outcome(messages.abort.clone())),
        ],
    )
}
