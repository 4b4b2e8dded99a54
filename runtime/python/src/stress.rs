//! The stress mix inside a kit program with an action registry from Python: the
//! kit's `StressLoad` (the same [`stress`] load: per-second figures, outages, per-action
//! records), except that the actions come from the registry given (each run on a fresh
//! copy of it) instead of the node's default mix.

use std::any::{Any, TypeId};
use std::fmt;
use std::time::Duration;

use stormchor_choreography::ExtensionEffect;
use stormchor_kit::effects::ServerInfo;
use stormchor_kit::effects::load::stress;
use stormchor_kit::{DbEffect, Node, Slot};
use stormchor_postgres::ActionRegistry;
use stormchor_runtime::EffectFailure;

/// Runs the actions of `registry` for `duration` on the server in `on`, on this
/// role's catalog; the output is the number of actions run.
#[derive(Clone)]
pub(crate) struct StressWith {
    pub(crate) on: Slot<ServerInfo>,
    pub(crate) duration: Duration,
    pub(crate) registry: ActionRegistry,
}

impl fmt::Debug for StressWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StressLoad {{ on: {:?}, duration: {:?}, actions: {:?} }}",
            self.on, self.duration, self.registry
        )
    }
}

impl PartialEq for StressWith {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

impl ExtensionEffect for StressWith {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "StressLoad"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        Vec::new()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn ExtensionEffect> {
        Box::new(self.clone())
    }
}

impl DbEffect for StressWith {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        stress(node, self.on, self.duration, self.registry.clone()).await
    }
}
