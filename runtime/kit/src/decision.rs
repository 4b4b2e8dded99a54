//! A role's run-time decisions: the branch its next choice takes and whether its
//! next decided loop runs another round.
//!
//! A kit role decides in an effect *before* the decision: the effect (an author's
//! own, or a Python function through the Python package) looks at what the role
//! knows and records the decision in the role's [`Decisions`]; the choice or the loop
//! that comes next at the role takes it ([`RoleLogic::choose`] and
//! [`RoleLogic::keep_looping`] of [`Node`](crate::Node)). A decision is taken once.
//! Without one, a choice takes its first branch and a decided loop stops, as before.
//!
//! [`RoleLogic::choose`]: stormchor_runtime::RoleLogic::choose
//! [`RoleLogic::keep_looping`]: stormchor_runtime::RoleLogic::keep_looping

use std::sync::Mutex;

use crate::node::lock;

/// The decisions a role made for its next choice and its next loop round.
///
/// # Example
/// ```
/// use stormchor_kit::{Node, ScenarioOptions};
///
/// let node = Node::new("Coordinator", None, &ScenarioOptions::short());
/// node.decisions().choose("abort");
/// node.decisions().go_on(true);
/// assert_eq!(node.decisions().take_choice().as_deref(), Some("abort"));
/// assert_eq!(node.decisions().take_choice(), None); // taken once
/// assert_eq!(node.decisions().take_go_on(), Some(true));
/// ```
#[derive(Debug, Default)]
pub struct Decisions {
    choice: Mutex<Option<String>>,
    go_on: Mutex<Option<bool>>,
}

impl Decisions {
    /// The next choice at this role takes the branch labelled `label` (a label the
    /// choice does not have fails the run, naming the branch count).
    pub fn choose(&self, label: impl Into<String>) {
        *lock(&self.choice) = Some(label.into());
    }

    /// The next decision of a loop this role decides: run another round or stop.
    pub fn go_on(&self, go_on: bool) {
        *lock(&self.go_on) = Some(go_on);
    }

    /// Takes the decided label, if any.
    pub fn take_choice(&self) -> Option<String> {
        lock(&self.choice).take()
    }

    /// Takes the loop decision, if any.
    pub fn take_go_on(&self) -> Option<bool> {
        lock(&self.go_on).take()
    }
}
