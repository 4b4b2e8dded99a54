//! Roles and role families.
//!
//! A *role* is a party of a choreography: the coordinator, a worker, the backup node.
//! Any small value type can be a role as long as it meets [`RoleId`]; usually it is an
//! enum of your own. A *family* is a numbered group of roles of the same kind, such as
//! `Worker(0)..Worker(n)`, whose size is known when the program is built, so one
//! choreography serves 1 or 64 workers.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

/// The bound every role type meets.
///
/// It is implemented automatically for every type that is `Copy + Eq + Hash + Ord +
/// Debug + Send + Sync + 'static`.
///
/// # Example
/// ```
/// use stormchor_choreography::RoleId;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role {
///     Coordinator,
///     Worker(u16),
/// }
///
/// fn is_role<R: RoleId>(_: R) {}
/// is_role(Role::Worker(3));
/// is_role(Role::Coordinator);
/// ```
pub trait RoleId: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static {}

impl<T> RoleId for T where T: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static {}

/// A named, ordered group of roles of the same kind, such as the workers of a test.
///
/// Broadcasts and gathers address a family as a whole; the projection gives every
/// member its own local program.
///
/// # Example
/// ```
/// use stormchor_choreography::Family;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Worker(u16) }
///
/// let workers = Family::indexed("Worker", 4, Role::Worker);
/// assert_eq!(workers.len(), 4);
/// assert_eq!(workers.members()[2], Role::Worker(2));
/// assert_eq!(workers.name(), "Worker");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Family<R> {
    name: Cow<'static, str>,
    members: Arc<[R]>,
}

impl<R: RoleId> Family<R> {
    /// A family with the given name and members, in the order given.
    pub fn new(name: impl Into<Cow<'static, str>>, members: impl IntoIterator<Item = R>) -> Self {
        Family {
            name: name.into(),
            members: members.into_iter().collect(),
        }
    }

    /// The family `make(0), make(1), .., make(size - 1)`.
    pub fn indexed<I>(name: impl Into<Cow<'static, str>>, size: I, make: impl Fn(I) -> R) -> Self
    where
        I: Copy + TryFrom<usize> + TryInto<usize>,
    {
        let size: usize = size.try_into().unwrap_or(0);
        Family::new(
            name,
            (0..size).filter_map(|i| I::try_from(i).ok()).map(make),
        )
    }

    /// The family's name, used in diagrams.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members, in order.
    pub fn members(&self) -> &[R] {
        &self.members
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the family has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `role` is a member.
    pub fn contains(&self, role: &R) -> bool {
        self.members.contains(role)
    }
}

impl<R: Debug> Debug for Family<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:?}", self.name, &*self.members)
    }
}

impl<R: RoleId> From<Vec<R>> for Family<R> {
    fn from(members: Vec<R>) -> Self {
        Family::new("group", members)
    }
}

impl<R: RoleId, const N: usize> From<[R; N]> for Family<R> {
    fn from(members: [R; N]) -> Self {
        Family::new("group", members)
    }
}

impl<R: RoleId> From<&Family<R>> for Family<R> {
    fn from(family: &Family<R>) -> Self {
        family.clone()
    }
}

impl<'a, R> IntoIterator for &'a Family<R> {
    type Item = &'a R;
    type IntoIter = std::slice::Iter<'a, R>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}
