//! Extension effects: type-erased, domain-specific steps of a choreography.
//!
//! An extension effect stands for something a role *does* rather than a message it
//! exchanges: "run the workload for 30 s", "take a base backup", "crash the server".
//! The algebra only needs to know which roles take part; the runtime finds the
//! handler for the effect's concrete type in its extension registry.

use std::any::{Any, TypeId};
use std::fmt::{self, Debug};
use std::sync::Arc;

use crate::background::{Handle, Stage};
use crate::label::Path;
use crate::role::RoleId;

/// The object-safe trait of an extension effect.
///
/// Implement it for a plain `Clone + Debug` struct (the `#[derive(ExtensionEffect)]`
/// of the macros crate writes it for you). The identity method is called
/// [`effect_type_id`](ExtensionEffect::effect_type_id), not `type_id`, so that it never
/// clashes with [`Any::type_id`] at a call site.
///
/// [`participating_role_ids`](ExtensionEffect::participating_role_ids) returns the roles
/// that carry the effect out, boxed as `dyn Any` so that the trait stays object-safe and
/// independent of any role type:
/// - an empty vector means *every* role of the program takes part;
/// - values whose type is not the program's role type are skipped, so an effect naming
///   roles of another choreography simply takes part in none of this one's roles.
///
/// # Example
/// ```
/// use std::any::{Any, TypeId};
/// use stormchor_choreography::ExtensionEffect;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Backup }
///
/// #[derive(Clone, Debug)]
/// struct TakeBaseBackup { node: Role }
///
/// impl ExtensionEffect for TakeBaseBackup {
///     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
///     fn type_name(&self) -> &'static str { "TakeBaseBackup" }
///     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { vec![Box::new(self.node)] }
///     fn as_any(&self) -> &dyn Any { self }
///     fn as_any_mut(&mut self) -> &mut dyn Any { self }
///     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// }
///
/// let effect: Box<dyn ExtensionEffect> = Box::new(TakeBaseBackup { node: Role::Backup });
/// assert_eq!(effect.type_name(), "TakeBaseBackup");
/// assert!(effect.as_any().downcast_ref::<TakeBaseBackup>().is_some());
/// ```
pub trait ExtensionEffect: Send + Sync + Debug + 'static {
    /// The [`TypeId`] of the concrete effect type; the registry dispatches on it.
    fn effect_type_id(&self) -> TypeId;

    /// A readable name of the concrete type, for errors, traces and diagrams.
    fn type_name(&self) -> &'static str;

    /// The roles that carry this effect out, type-erased; empty means every role.
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>>;

    /// The effect as `&dyn Any`, to downcast to its concrete type.
    fn as_any(&self) -> &dyn Any;

    /// The effect as `&mut dyn Any`, to downcast to its concrete type.
    fn as_any_mut(&mut self) -> &mut dyn Any;

    /// A boxed copy of the effect.
    fn clone_box(&self) -> Box<dyn ExtensionEffect>;

    /// Whether `other` is the same effect. Projection uses it to decide whether two
    /// branches of a choice look the same to a role.
    ///
    /// The default compares the concrete types and the `Debug` renderings, which is
    /// exact for the plain data structs effects are meant to be. Override it when your
    /// `Debug` output leaves fields out.
    fn same_effect(&self, other: &dyn ExtensionEffect) -> bool {
        self.effect_type_id() == other.effect_type_id()
            && format!("{self:?}") == format!("{other:?}")
    }

    /// Whether the effect takes part in *effect order* (docs/choreography.md): an
    /// ordered effect starts at each of its roles only after every ordered effect
    /// before it in the global program has finished at every one of its roles, and
    /// projection inserts the order frames this needs.
    ///
    /// Return `false` for pure bookkeeping (a phase marker, a log line) that needs no
    /// such guarantee and should cost no frame; `#[derive(ExtensionEffect)]` does so
    /// for `#[effect(unordered)]`. The default is `true`.
    fn ordered(&self) -> bool {
        true
    }
}

impl Clone for Box<dyn ExtensionEffect> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Which roles of a program's role type `R` take part in an extension effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Participation<R> {
    /// The effect named no role at all: every role of the program takes part.
    Everyone,
    /// Exactly these roles (possibly none, when the effect named roles of another type).
    Roles(Vec<R>),
}

impl<R: RoleId> Participation<R> {
    /// Whether `role` takes part.
    pub fn includes(&self, role: &R) -> bool {
        match self {
            Participation::Everyone => true,
            Participation::Roles(roles) => roles.contains(role),
        }
    }
}

/// An extension effect as it sits in a program: shared, cheap to clone, comparable.
///
/// # Example
/// ```
/// use std::any::{Any, TypeId};
/// use stormchor_choreography::{Extension, ExtensionEffect, Participation};
///
/// #[derive(Clone, Debug)]
/// struct LogPhase { phase: &'static str }
///
/// impl ExtensionEffect for LogPhase {
///     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
///     fn type_name(&self) -> &'static str { "LogPhase" }
///     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { Vec::new() }
///     fn as_any(&self) -> &dyn Any { self }
///     fn as_any_mut(&mut self) -> &mut dyn Any { self }
///     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// }
///
/// let ext = Extension::new(LogPhase { phase: "load" });
/// assert_eq!(ext.downcast_ref::<LogPhase>().map(|e| e.phase), Some("load"));
/// assert_eq!(ext.participation::<u8>(), Participation::Everyone);
/// ```
///
/// A projected effect may carry an [`OrderTag`]: where it sits in the global
/// program, for the checker's effect-order check. The tag takes no part in equality
/// or in the `Debug` form.
///
/// An extension is the whole effect, or the start or the finish of an effect that
/// runs in the background between them ([`Stage`]; `Program::ext_start`).
///
/// It may also know where it is written ([`Place`]: the DSL statement's source line,
/// and, once projected, its path in the global program), for failure messages; the
/// place takes no part in equality either.
#[derive(Clone)]
pub struct Extension(
    Arc<dyn ExtensionEffect>,
    Option<Arc<OrderTag>>,
    Stage,
    Option<Arc<Place>>,
);

/// Where an extension effect is written: the source line of the DSL statement (when
/// the DSL wrote it) and its path in the global program (once projected).
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Extension, Global, Local, Program};
/// # use std::any::{Any, TypeId};
/// # use stormchor_choreography::ExtensionEffect;
/// # #[derive(Clone, Debug)]
/// # struct Checkpoint;
/// # impl ExtensionEffect for Checkpoint {
/// #     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
/// #     fn type_name(&self) -> &'static str { "Checkpoint" }
/// #     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { vec![Box::new("a")] }
/// #     fn as_any(&self) -> &dyn Any { self }
/// #     fn as_any_mut(&mut self) -> &mut dyn Any { self }
/// #     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// # }
///
/// let program: Program<&str, &str> = Program::new()
///     .send("a", "b", "go")
///     .ext_shared(Extension::new(Checkpoint).with_source("src/scenario.rs", 12));
/// let locals = project_all(&program).expect("sound");
/// let Local::Ext(ext) = &locals["a"].effects()[1] else { panic!() };
/// let place = ext.place().expect("projected");
/// assert_eq!(place.to_string(), "src/scenario.rs:12");
/// assert_eq!(place.path().map(ToString::to_string).as_deref(), Some("[1]"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    source: Option<(&'static str, u32)>,
    path: Option<Path>,
    /// The step is the same in every branch of the choice at `path` (a role that
    /// need not learn the pick), so no one branch is its place.
    any_branch: bool,
}

impl Place {
    /// The place at `path` of the global program.
    pub(crate) fn at(path: &Path) -> Self {
        Place {
            source: None,
            path: Some(path.clone()),
            any_branch: false,
        }
    }

    /// A step that is the same in every branch of the choice at `choice`.
    pub(crate) fn in_any_branch(choice: &Path) -> Self {
        Place {
            source: None,
            path: Some(choice.clone()),
            any_branch: true,
        }
    }

    /// Whether the step is the same in every branch of the choice at
    /// [`path`](Place::path), written once per branch (so no source line is its own).
    pub fn in_every_branch(&self) -> bool {
        self.any_branch
    }

    /// The source file and line of the statement, when known.
    pub fn source(&self) -> Option<(&'static str, u32)> {
        self.source
    }

    /// The path in the global program, once projected.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_ref()
    }
}

impl fmt::Display for Place {
    /// The source line when known, else the global path (`[3] > body > [0]`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, &self.path) {
            (Some((file, line)), _) => write!(f, "{file}:{line}"),
            (None, Some(path)) if self.any_branch => {
                write!(f, "every branch of the choice at {path}")
            }
            (None, Some(path)) => write!(f, "{path}"),
            (None, None) => f.write_str("an unknown place"),
        }
    }
}

/// Where an ordered extension effect sits in the global program, attached by
/// projection to the effect in every participant's local program.
///
/// The checker unfolds it with the rounds of the enclosing loops to tell, for two
/// effect instances, whether the program orders one before the other.
///
/// # Example
/// ```
/// use stormchor_choreography::{project_all, Local, Program};
/// # use std::any::{Any, TypeId};
/// # use stormchor_choreography::ExtensionEffect;
/// # #[derive(Clone, Debug)]
/// # struct Checkpoint(&'static str);
/// # impl ExtensionEffect for Checkpoint {
/// #     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
/// #     fn type_name(&self) -> &'static str { "Checkpoint" }
/// #     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { vec![Box::new(self.0)] }
/// #     fn as_any(&self) -> &dyn Any { self }
/// #     fn as_any_mut(&mut self) -> &mut dyn Any { self }
/// #     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// # }
///
/// let program: Program<&str, &str> = Program::new().loop_n(2, Program::new().ext(Checkpoint("a")));
/// let locals = project_all(&program).expect("sound");
/// let Local::Loop { body, .. } = &locals["a"].effects()[0] else { panic!() };
/// let Local::Ext(ext) = &body[0] else { panic!() };
/// let tag = ext.order_tag().expect("ordered effects are tagged");
/// assert_eq!(tag.path().to_string(), "[0] > body > [0]");
/// assert_eq!(tag.loop_levels(), &[1]);
/// assert_eq!(tag.participants(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrderTag {
    path: Path,
    loop_levels: Vec<usize>,
    participants: usize,
}

impl OrderTag {
    pub(crate) fn new(path: Path, loop_levels: Vec<usize>, participants: usize) -> Self {
        OrderTag {
            path,
            loop_levels,
            participants,
        }
    }

    /// The effect's path in the global program.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The positions in [`path`](OrderTag::path) that are loop bodies (a round there
    /// is a new instance of the effect), outermost first.
    pub fn loop_levels(&self) -> &[usize] {
        &self.loop_levels
    }

    /// How many roles carry the effect out.
    pub fn participants(&self) -> usize {
        self.participants
    }
}

impl Extension {
    /// Wraps an effect.
    pub fn new(effect: impl ExtensionEffect) -> Self {
        Extension(Arc::new(effect), None, Stage::Whole, None)
    }

    /// Wraps an already boxed effect.
    pub fn from_box(effect: Box<dyn ExtensionEffect>) -> Self {
        Extension(Arc::from(effect), None, Stage::Whole, None)
    }

    /// The start of `effect`, to be finished later under `handle`.
    pub fn start(effect: impl ExtensionEffect, handle: impl Into<Handle>) -> Self {
        Extension(Arc::new(effect), None, Stage::Start(handle.into()), None)
    }

    /// The finish of the effect started under `handle`. Until projection gives it its
    /// start's effect, it stands for it with a placeholder.
    pub fn finish(handle: impl Into<Handle>) -> Self {
        let handle = handle.into();
        Extension(
            Arc::new(Unresolved(handle.clone())),
            None,
            Stage::Finish(handle),
            None,
        )
    }

    /// `finish`, the finish of this (started) effect: its effect, `finish`'s stage and
    /// place.
    pub(crate) fn finishing(&self, finish: &Extension) -> Self {
        Extension(self.0.clone(), None, finish.2.clone(), finish.3.clone())
    }

    /// The same effect, written at `line` of `file` (the DSL records its statements'
    /// lines so that failures name them).
    pub fn with_source(mut self, file: &'static str, line: u32) -> Self {
        let mut place = self.3.as_deref().cloned().unwrap_or_default();
        place.source = Some((file, line));
        self.3 = Some(Arc::new(place));
        self
    }

    /// The same effect at `path` of the global program (set by projection).
    pub(crate) fn placed(&self, path: &Path) -> Self {
        let mut place = self.3.as_deref().cloned().unwrap_or_default();
        place.path = Some(path.clone());
        Extension(
            self.0.clone(),
            self.1.clone(),
            self.2.clone(),
            Some(Arc::new(place)),
        )
    }

    /// The same effect, the same in every branch of the choice at `choice` (set by
    /// projection for a role that need not learn the pick).
    pub(crate) fn in_any_branch(&self, choice: &Path) -> Self {
        Extension(
            self.0.clone(),
            self.1.clone(),
            self.2.clone(),
            Some(Arc::new(Place::in_any_branch(choice))),
        )
    }

    /// Where the effect is written, when known.
    pub fn place(&self) -> Option<&Place> {
        self.3.as_deref()
    }

    /// Whether this is the whole effect, its start or its finish.
    pub fn stage(&self) -> &Stage {
        &self.2
    }

    /// The effect itself.
    pub fn effect(&self) -> &dyn ExtensionEffect {
        &*self.0
    }

    /// Whether the effect takes part in effect order ([`ExtensionEffect::ordered`]).
    pub fn is_ordered(&self) -> bool {
        self.0.ordered()
    }

    /// The effect's place in the global program, when projection attached one.
    pub fn order_tag(&self) -> Option<&OrderTag> {
        self.1.as_deref()
    }

    /// The same effect with `tag` attached.
    pub(crate) fn with_tag(&self, tag: Arc<OrderTag>) -> Self {
        Extension(self.0.clone(), Some(tag), self.2.clone(), self.3.clone())
    }

    /// The effect as its concrete type `T`, if it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    /// The [`TypeId`] of the concrete effect type.
    pub fn effect_type_id(&self) -> TypeId {
        self.0.effect_type_id()
    }

    /// The readable name of the concrete effect type.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// Which roles of type `R` take part; values of other types are skipped.
    pub fn participation<R: RoleId>(&self) -> Participation<R> {
        let ids = self.0.participating_role_ids();
        if ids.is_empty() {
            return Participation::Everyone;
        }
        let mut roles: Vec<R> = ids
            .iter()
            .filter_map(|id| id.downcast_ref::<R>().copied())
            .collect();
        roles.sort_unstable();
        roles.dedup();
        Participation::Roles(roles)
    }
}

impl<T: ExtensionEffect> From<T> for Extension {
    fn from(effect: T) -> Self {
        Extension::new(effect)
    }
}

impl Debug for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.2 {
            Stage::Whole => Debug::fmt(&*self.0, f),
            Stage::Start(handle) => write!(f, "start {:?} as {handle}", &*self.0),
            Stage::Finish(handle) => write!(f, "finish {handle} ({})", self.0.type_name()),
        }
    }
}

impl PartialEq for Extension {
    fn eq(&self, other: &Self) -> bool {
        self.2 == other.2 && (Arc::ptr_eq(&self.0, &other.0) || self.0.same_effect(&*other.0))
    }
}

/// What a finish holds before projection gives it its start's effect.
#[derive(Clone)]
struct Unresolved(Handle);

impl Debug for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the effect started as {}", self.0)
    }
}

impl ExtensionEffect for Unresolved {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "the effect it finishes"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        // Nobody until resolved: an unresolved finish mentions no role.
        vec![Box::new(())]
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

/// An extension effect carried out by the roles named here rather than by the roles its
/// own fields name. The DSL's `ext Effect { .. } @ Worker[0]` builds one.
///
/// The wrapper is transparent to the runtime: its [`effect_type_id`](ExtensionEffect::effect_type_id),
/// [`type_name`](ExtensionEffect::type_name) and [`as_any`](ExtensionEffect::as_any) are the
/// inner effect's, so the handler registered for `E` runs it and downcasts to `E`. An
/// empty role list means that no role takes part (not every role).
///
/// # Example
/// ```
/// use stormchor_choreography::{At, Extension, ExtensionEffect, Participation};
/// # use std::any::{Any, TypeId};
/// #[derive(Clone, Debug)]
/// struct Checkpoint;
/// # impl ExtensionEffect for Checkpoint {
/// #     fn effect_type_id(&self) -> TypeId { TypeId::of::<Self>() }
/// #     fn type_name(&self) -> &'static str { "Checkpoint" }
/// #     fn participating_role_ids(&self) -> Vec<Box<dyn Any>> { Vec::new() }
/// #     fn as_any(&self) -> &dyn Any { self }
/// #     fn as_any_mut(&mut self) -> &mut dyn Any { self }
/// #     fn clone_box(&self) -> Box<dyn ExtensionEffect> { Box::new(self.clone()) }
/// # }
///
/// let ext = Extension::new(At::new(Checkpoint, ["backup"]));
/// assert_eq!(ext.participation::<&str>(), Participation::Roles(vec!["backup"]));
/// assert!(ext.downcast_ref::<Checkpoint>().is_some());
/// assert_eq!(ext.type_name(), "Checkpoint");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct At<E, R> {
    effect: E,
    roles: Vec<R>,
}

/// Stands in the participant list of an [`At`] that names no role, so that the list
/// is not read as "every role".
struct NoRole;

impl<E, R> At<E, R> {
    /// `effect`, carried out by `roles`.
    pub fn new(effect: E, roles: impl IntoIterator<Item = R>) -> Self {
        At {
            effect,
            roles: roles.into_iter().collect(),
        }
    }

    /// The inner effect.
    pub fn effect(&self) -> &E {
        &self.effect
    }

    /// The roles that carry it out.
    pub fn roles(&self) -> &[R] {
        &self.roles
    }
}

impl<E: Debug, R: Debug> Debug for At<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} @ {:?}", self.effect, self.roles)
    }
}

impl<E, R> ExtensionEffect for At<E, R>
where
    E: ExtensionEffect + Clone,
    R: RoleId,
{
    fn effect_type_id(&self) -> TypeId {
        self.effect.effect_type_id()
    }

    fn type_name(&self) -> &'static str {
        self.effect.type_name()
    }

    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        if self.roles.is_empty() {
            return vec![Box::new(NoRole)];
        }
        self.roles
            .iter()
            .map(|role| Box::new(*role) as Box<dyn Any>)
            .collect()
    }

    fn as_any(&self) -> &dyn Any {
        self.effect.as_any()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self.effect.as_any_mut()
    }

    fn clone_box(&self) -> Box<dyn ExtensionEffect> {
        Box::new(self.clone())
    }

    fn ordered(&self) -> bool {
        self.effect.ordered()
    }
}
