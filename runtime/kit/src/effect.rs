//! The shape of every kit effect: an [`ExtensionEffect`] with a typed output and an
//! async `run` on the role's [`Node`]; registered with one call.

use std::any::{Any, TypeId};
use std::future::Future;

use stormchor_choreography::ExtensionEffect;
use stormchor_runtime::{EffectFailure, ExtensionRegistry, RegistryError};

use crate::node::{KitRole, KitState, Node};
use crate::value::{Slot, Value};

/// A database effect of the kit (or of an author's own): what it does at each role
/// that carries it out, and what it gives back.
///
/// The output is kept in the role's state; with [`into_slot`](DbEffect::into_slot) it
/// is also the role's value of a [`Slot`], which messages can carry to other roles.
///
/// # Example
/// ```
/// use stormchor_kit::{DbEffect, Node};
/// use stormchor_macros::ExtensionEffect;
/// use stormchor_runtime::EffectFailure;
///
/// /// Counts how many times the role ran it.
/// #[derive(Clone, Debug, PartialEq, ExtensionEffect)]
/// struct Tick;
///
/// impl DbEffect for Tick {
///     type Output = u64;
///     async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
///         node.journal().count("ticks", 1);
///         Ok(node.journal().counts()["ticks"])
///     }
/// }
/// ```
pub trait DbEffect: ExtensionEffect + Clone + Sized {
    /// What the effect gives back.
    type Output: Value;

    /// Carries the effect out at one role.
    fn run(&self, node: &Node) -> impl Future<Output = Result<Self::Output, EffectFailure>> + Send;

    /// This effect, whose output also becomes the role's value of `slot`.
    fn into_slot(self, slot: Slot<Self::Output>) -> Produce<Self> {
        Produce { effect: self, slot }
    }
}

/// An effect whose output becomes the value of a slot at each role that runs it.
/// Made by [`DbEffect::into_slot`]; diagrams show it as `Effect { .. } => slot`.
///
/// # Example
/// ```
/// use stormchor_kit::effects::TableChecksums;
/// use stormchor_kit::slots::{CHECKSUMS, PRIMARY};
/// use stormchor_kit::DbEffect;
///
/// // The checksums become this role's value of CHECKSUMS, which a message can carry on.
/// let produce = TableChecksums { of: PRIMARY }.into_slot(CHECKSUMS);
/// assert_eq!(produce.slot, CHECKSUMS);
/// assert_eq!(format!("{produce:?}"), "TableChecksums { of: primary } => checksums");
/// ```
#[derive(Clone, PartialEq)]
pub struct Produce<E: DbEffect> {
    /// The effect.
    pub effect: E,
    /// Where its output goes.
    pub slot: Slot<E::Output>,
}

impl<E: DbEffect> std::fmt::Debug for Produce<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} => {:?}", self.effect, self.slot)
    }
}

impl<E: DbEffect> ExtensionEffect for Produce<E> {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        self.effect.type_name()
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        self.effect.participating_role_ids()
    }
    fn ordered(&self) -> bool {
        self.effect.ordered()
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

/// Registers `E` (and `E` producing a slot) in a registry of kit roles.
pub fn register<E: DbEffect, R: KitRole>(
    registry: &mut ExtensionRegistry<KitState<R>>,
) -> Result<(), RegistryError> {
    registry.register::<E, E::Output, _>(|state: &KitState<R>, effect: &E| {
        Box::pin(effect.run(state.data()))
    })?;
    registry.register::<Produce<E>, E::Output, _>(
        |state: &KitState<R>, produce: &Produce<E>| {
            Box::pin(async move {
                let node = state.data();
                let output = produce.effect.run(node).await?;
                node.values()
                    .put(produce.slot, &output)
                    .map_err(|e| EffectFailure::permanent(e.to_string()))?;
                Ok(output)
            })
        },
    )?;
    Ok(())
}

/// A registry of kit roles that an author fills: every kit effect is in it after
/// [`Kit::new`]; add your own with [`with`](Kit::with).
///
/// # Example
/// ```
/// use stormchor_kit::{Kit, KitRole};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator }
/// impl KitRole for Role {}
///
/// let kit = Kit::<Role>::new().expect("the kit registers");
/// assert!(kit.registry().handles::<stormchor_kit::effects::Phase>());
/// ```
pub struct Kit<R: KitRole> {
    registry: ExtensionRegistry<KitState<R>>,
}

impl<R: KitRole> Kit<R> {
    /// Every kit effect.
    pub fn new() -> Result<Self, RegistryError> {
        let mut kit = Kit {
            registry: ExtensionRegistry::new(),
        };
        crate::effects::register_all(&mut kit.registry)?;
        Ok(kit)
    }

    /// Adds an author's effect.
    pub fn with<E: DbEffect>(mut self) -> Result<Self, RegistryError> {
        register::<E, R>(&mut self.registry)?;
        Ok(self)
    }

    /// The registry.
    pub fn registry(&self) -> &ExtensionRegistry<KitState<R>> {
        &self.registry
    }

    /// The registry, to add handlers of another shape.
    pub fn registry_mut(&mut self) -> &mut ExtensionRegistry<KitState<R>> {
        &mut self.registry
    }

    /// Takes the registry out.
    pub fn into_registry(self) -> ExtensionRegistry<KitState<R>> {
        self.registry
    }
}
