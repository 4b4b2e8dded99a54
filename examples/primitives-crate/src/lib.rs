//! An example of a crate that ships its own choreography primitives.
//!
//! It depends only on `stormchor-choreography`, defines a primitive generic over any
//! role and message type, and an extension effect generic over the role type. The
//! `cross_crate` example of the main package composes it with the built-in primitives.
#![deny(missing_docs)]

use stormchor_choreography::{Family, Message, Program, RoleId};
use stormchor_macros::ExtensionEffect;

/// Extension effect: the node flushes its write-ahead log to disk.
///
/// Generic over the role type: in a choreography of another role type it simply takes
/// part in no role. The trait comes from `#[derive(ExtensionEffect)]`.
///
/// # Example
/// ```
/// use stormchor_choreography::{Extension, Participation};
/// use stormchor_example_primitives::FlushWal;
///
/// let effect = Extension::new(FlushWal { node: 3u8 });
/// assert_eq!(effect.participation::<u8>(), Participation::Roles(vec![3]));
/// assert_eq!(effect.participation::<u16>(), Participation::Roles(vec![]));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct FlushWal<R> {
    /// The node that flushes.
    #[participant]
    pub node: R,
}

/// A checkpoint across a group: the leader asks every node to `checkpoint`, each
/// node flushes its WAL ([`FlushWal`]) and answers `done`.
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Family};
/// use stormchor_example_primitives::checkpoint_all;
///
/// let nodes = Family::new("node", ["n1", "n2"]);
/// let locals = project_all(&checkpoint_all("leader", &nodes, "checkpoint", "done")).expect("sound");
/// assert_eq!(locals["n1"].effects().len(), 3);
/// ```
pub fn checkpoint_all<R: RoleId, M: Message>(
    leader: R,
    nodes: &Family<R>,
    checkpoint: M,
    done: M,
) -> Program<R, M> {
    // The nodes flush at the same time: in sequence, effect order would have each
    // wait for the one before.
    let flushes = nodes
        .members()
        .iter()
        .map(|node| Program::new().ext(FlushWal { node: *node }));
    Program::new()
        .role(leader)
        .family(nodes)
        .broadcast(leader, nodes, checkpoint)
        .par(flushes)
        .gather(nodes, leader, done)
}
