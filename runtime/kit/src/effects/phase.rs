//! Phases: named stretches of a role's run, for the report.

use stormchor_macros::ExtensionEffect;
use stormchor_runtime::EffectFailure;

use crate::effect::DbEffect;
use crate::node::Node;

/// The roles taking part enter a named phase (with no `@`, every role does). Pure
/// bookkeeping: it orders nothing.
///
/// # Example
/// ```
/// use stormchor_kit::effects::Phase;
/// use stormchor_kit::{Carry, Program};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator }
///
/// let program: Program<Role, Carry> = Program::new().role(Role::Coordinator).ext(Phase("load"));
/// assert_eq!(program.counts().extensions, 1);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
#[effect(unordered)]
pub struct Phase(pub &'static str);

impl DbEffect for Phase {
    type Output = ();

    async fn run(&self, node: &Node) -> Result<(), EffectFailure> {
        node.journal().enter(self.0);
        Ok(())
    }
}
