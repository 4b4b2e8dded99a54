//! The extension registry: one async handler per extension effect type.
//!
//! A registry maps the concrete type of an extension effect to the handler that
//! carries it out. Registries from several crates merge into one; dispatch is a single
//! hash lookup on the effect's [`TypeId`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::{self, Debug};
use std::hash::{BuildHasherDefault, Hasher};

use futures::future::BoxFuture;
use stormchor_choreography::{Extension, ExtensionEffect};
use thiserror::Error;

/// The boxed error type extension handlers fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What an extension handler returns: the value is kept in the role's state.
pub type ExtValue = Box<dyn Any + Send + Sync>;

/// How an extension handler failed, and whether trying again may help.
///
/// # Example
/// ```
/// use stormchor_runtime::EffectFailure;
///
/// let failure = EffectFailure::transient("connection reset");
/// assert!(failure.is_transient());
/// assert_eq!(failure.to_string(), "connection reset");
/// ```
#[derive(Debug)]
pub struct EffectFailure {
    transient: bool,
    source: BoxError,
}

impl EffectFailure {
    /// A failure that will happen again if retried.
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        EffectFailure {
            transient: false,
            source: source.into(),
        }
    }

    /// A failure that may go away if retried (a dropped connection, a serialization
    /// failure, a lock timeout).
    pub fn transient(source: impl Into<BoxError>) -> Self {
        EffectFailure {
            transient: true,
            source: source.into(),
        }
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.source
    }
}

impl std::error::Error for EffectFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl fmt::Display for EffectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

/// Why an extension effect could not be carried out.
#[derive(Debug, Error)]
pub enum ExtensionError {
    /// No handler is registered for the effect's type.
    #[error("no handler is registered for extension effect {effect} (role {role})")]
    HandlerNotRegistered {
        /// The effect's type name.
        effect: &'static str,
        /// The role that met it.
        role: String,
    },
    /// The effect claims a type it does not have.
    #[error("extension effect {actual} is not a {expected}")]
    TypeMismatch {
        /// The type the handler was registered for.
        expected: &'static str,
        /// The effect's own type name.
        actual: &'static str,
    },
    /// The handler ran and failed.
    #[error("extension effect {effect} failed on role {role}: {failure}")]
    Failed {
        /// The effect's type name.
        effect: &'static str,
        /// The role that ran it.
        role: String,
        /// The failure.
        #[source]
        failure: EffectFailure,
    },
}

impl ExtensionError {
    /// Whether retrying the effect may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ExtensionError::Failed { failure, .. } if failure.is_transient())
    }
}

/// A registration problem: two handlers for one effect type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// `register` was called twice for the same type.
    #[error("a handler for extension effect {effect} is already registered")]
    Duplicate {
        /// The effect's type name.
        effect: &'static str,
    },
    /// Both registries of a `merge` handle the same type.
    #[error("both registries handle extension effect {effect}; merging would lose one handler")]
    MergeConflict {
        /// The effect's type name.
        effect: &'static str,
    },
}

/// A handler whose result is kept: its future maps the value into an [`ExtValue`].
type Erased<E> = Box<
    dyn for<'a> Fn(
            &'a E,
            &'a dyn ExtensionEffect,
        )
            -> Result<BoxFuture<'a, Result<Option<ExtValue>, EffectFailure>>, ExtensionError>
        + Send
        + Sync,
>;

/// A handler with no result: its own future is awaited as it is (one allocation less).
type ErasedUnit<E> = Box<
    dyn for<'a> Fn(
            &'a E,
            &'a dyn ExtensionEffect,
        ) -> Result<BoxFuture<'a, Result<(), EffectFailure>>, ExtensionError>
        + Send
        + Sync,
>;

enum Run<E> {
    Value(Erased<E>),
    Unit(ErasedUnit<E>),
}

struct Handler<E> {
    name: &'static str,
    run: Run<E>,
}

/// The last segment of a type's path.
fn short_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

/// The effect as a `T`, or the mismatch.
fn downcast<'a, T: 'static>(
    effect: &'a dyn ExtensionEffect,
    expected: &'static str,
) -> Result<&'a T, ExtensionError> {
    effect
        .as_any()
        .downcast_ref::<T>()
        .ok_or(ExtensionError::TypeMismatch {
            expected,
            actual: effect.type_name(),
        })
}

/// `TypeId`s are already well-mixed hashes: use their bits directly.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// Async handlers for extension effects, by effect type.
///
/// `E` is what every handler receives besides the effect: the role's state (in the
/// runtime, a [`RoleState`](crate::RoleState)). A handler returns a value, which the
/// interpreter keeps in the role's state under the effect's type so that later effects
/// and messages can use it; `()` is not kept.
///
/// # Example
/// ```
/// use std::any::{Any, TypeId};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use stormchor_choreography::{Extension, ExtensionEffect};
/// use stormchor_runtime::{EffectFailure, ExtensionRegistry};
///
/// #[derive(Clone, Debug)]
/// struct InsertRows { rows: u64 }
///
/// impl ExtensionEffect for InsertRows {
///     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
///     fn type_name(&self) -> &'static str { "InsertRows" }
///     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { Vec::new() }
///     fn as_any(&self) -> &dyn Any { self }
///     fn as_any_mut(&mut self) -> &mut dyn Any { self }
///     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// }
///
/// let mut registry: ExtensionRegistry<AtomicU64> = ExtensionRegistry::new();
/// registry
///     .register::<InsertRows, u64, _>(|total, effect| {
///         Box::pin(async move {
///             Ok::<_, EffectFailure>(total.fetch_add(effect.rows, Ordering::Relaxed) + effect.rows)
///         })
///     })
///     .expect("first registration");
///
/// let total = AtomicU64::new(0);
/// let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
/// let value = rt.block_on(registry.handle(&total, &Extension::new(InsertRows { rows: 5 }), &"worker"));
/// assert_eq!(value.expect("handled").and_then(|v| v.downcast::<u64>().ok()).map(|v| *v), Some(5));
/// ```
pub struct ExtensionRegistry<E> {
    handlers: HashMap<TypeId, Handler<E>, BuildHasherDefault<TypeIdHasher>>,
}

impl<E> Default for ExtensionRegistry<E> {
    fn default() -> Self {
        ExtensionRegistry {
            handlers: HashMap::default(),
        }
    }
}

impl<E> Debug for ExtensionRegistry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.handlers.values().map(|h| h.name).collect();
        names.sort_unstable();
        f.debug_struct("ExtensionRegistry")
            .field("handles", &names)
            .finish()
    }
}

impl<E: Sync + 'static> ExtensionRegistry<E> {
    /// An empty registry.
    pub fn new() -> Self {
        ExtensionRegistry::default()
    }

    /// Registers the handler of effect type `T`, whose result `V` is kept in the role's
    /// state. Registering a second handler for `T` is an error.
    pub fn register<T, V, F>(&mut self, handler: F) -> Result<&mut Self, RegistryError>
    where
        T: ExtensionEffect,
        V: Any + Send + Sync,
        F: for<'a> Fn(&'a E, &'a T) -> BoxFuture<'a, Result<V, EffectFailure>>
            + Send
            + Sync
            + 'static,
    {
        let name = short_name::<T>();
        let keep = TypeId::of::<V>() != TypeId::of::<()>();
        let run: Erased<E> = Box::new(move |env, effect| {
            let effect = downcast::<T>(effect, name)?;
            let future = handler(env, effect);
            Ok(Box::pin(async move {
                let value = future.await?;
                Ok(if keep {
                    Some(Box::new(value) as ExtValue)
                } else {
                    None
                })
            }))
        });
        self.insert::<T>(name, Run::Value(run))
    }

    /// Registers the handler of effect type `T` when it returns nothing to keep; the
    /// same as `register::<T, (), _>`, with one allocation less per dispatch.
    pub fn register_unit<T, F>(&mut self, handler: F) -> Result<&mut Self, RegistryError>
    where
        T: ExtensionEffect,
        F: for<'a> Fn(&'a E, &'a T) -> BoxFuture<'a, Result<(), EffectFailure>>
            + Send
            + Sync
            + 'static,
    {
        let name = short_name::<T>();
        let run: ErasedUnit<E> =
            Box::new(move |env, effect| Ok(handler(env, downcast::<T>(effect, name)?)));
        self.insert::<T>(name, Run::Unit(run))
    }

    fn insert<T: 'static>(
        &mut self,
        name: &'static str,
        run: Run<E>,
    ) -> Result<&mut Self, RegistryError> {
        match self.handlers.entry(TypeId::of::<T>()) {
            Entry::Occupied(_) => Err(RegistryError::Duplicate { effect: name }),
            Entry::Vacant(slot) => {
                slot.insert(Handler { name, run });
                Ok(self)
            }
        }
    }

    /// Moves every handler of `other` into this registry. If both handle a type, nothing
    /// is moved and the conflict is returned.
    pub fn merge(&mut self, other: ExtensionRegistry<E>) -> Result<&mut Self, RegistryError> {
        if let Some(handler) = other
            .handlers
            .iter()
            .find(|(id, _)| self.handlers.contains_key(id))
        {
            return Err(RegistryError::MergeConflict {
                effect: handler.1.name,
            });
        }
        self.handlers.extend(other.handlers);
        Ok(self)
    }

    /// Whether a handler for effect type `T` is registered.
    pub fn handles<T: 'static>(&self) -> bool {
        self.handlers.contains_key(&TypeId::of::<T>())
    }

    /// The number of registered effect types.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Carries out `effect` for `role` with the handler of its type; returns the value
    /// to keep (`None` for `()`).
    pub async fn handle(
        &self,
        env: &E,
        effect: &Extension,
        role: &(dyn Debug + Sync),
    ) -> Result<Option<ExtValue>, ExtensionError> {
        let effect = effect.effect();
        let Some(handler) = self.handlers.get(&effect.effect_type_id()) else {
            return Err(ExtensionError::HandlerNotRegistered {
                effect: effect.type_name(),
                role: format!("{role:?}"),
            });
        };
        let failed = |failure: EffectFailure| ExtensionError::Failed {
            effect: effect.type_name(),
            role: format!("{role:?}"),
            failure,
        };
        match &handler.run {
            Run::Unit(run) => run(env, effect)?.await.map(|()| None).map_err(failed),
            Run::Value(run) => run(env, effect)?.await.map_err(failed),
        }
    }
}
