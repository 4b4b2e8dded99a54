//! The state of one role while it runs: the author's data, the values it received and
//! the results of its extension effects.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

use stormchor_choreography::{Label, Local, Message, RoleId};

use crate::registry::ExtValue;

/// The state of one running role.
///
/// It holds the author's own data `S` (shared by the parallel parts of the role, so
/// mutable fields use interior mutability: atomics or mutexes), the latest message
/// received from each peer, and the latest result of each extension effect type.
/// Extension handlers and [`RoleLogic`] read and write it.
///
/// # Example
/// ```
/// use stormchor_runtime::RoleState;
///
/// let state: RoleState<&str, u64, ()> = RoleState::new("backup", ["backup", "coordinator"], ());
/// state.store_received("coordinator", 42);
/// assert_eq!(state.latest_from(&"coordinator"), Some(42));
/// assert_eq!(state.latest_from(&"backup"), None);
/// ```
pub struct RoleState<R, M, S> {
    role: R,
    roles: Arc<[R]>,
    data: S,
    latest: Mutex<Vec<Option<M>>>,
    results: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl<R: Debug, M, S: Debug> Debug for RoleState<R, M, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleState")
            .field("role", &self.role)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl<R: RoleId, M: Message, S> RoleState<R, M, S> {
    /// The state of `role` among `roles`, holding the author's `data`.
    pub fn new(role: R, roles: impl IntoIterator<Item = R>, data: S) -> Self {
        let mut roles: Vec<R> = roles.into_iter().collect();
        roles.sort_unstable();
        roles.dedup();
        let latest = (0..roles.len()).map(|_| None).collect();
        RoleState {
            role,
            roles: roles.into(),
            data,
            latest: Mutex::new(latest),
            results: Mutex::new(HashMap::new()),
        }
    }

    /// The role this state belongs to.
    pub fn role(&self) -> R {
        self.role
    }

    /// The author's data.
    pub fn data(&self) -> &S {
        &self.data
    }

    /// Takes the author's data out.
    pub fn into_data(self) -> S {
        self.data
    }

    /// The latest message received from `peer`, if any.
    pub fn latest_from(&self, peer: &R) -> Option<M> {
        let index = self.roles.binary_search(peer).ok()?;
        lock(&self.latest).get(index).cloned().flatten()
    }

    /// Keeps `msg` as the latest message received from `peer`.
    pub fn store_received(&self, peer: R, msg: M) {
        if let Ok(index) = self.roles.binary_search(&peer) {
            if let Some(slot) = lock(&self.latest).get_mut(index) {
                *slot = Some(msg);
            }
        }
    }

    /// Keeps each `(peer, msg)` as the latest message received from that peer, under
    /// one lock.
    pub fn store_received_all(&self, values: impl IntoIterator<Item = (R, M)>) {
        let mut latest = lock(&self.latest);
        for (peer, msg) in values {
            if let Ok(index) = self.roles.binary_search(&peer) {
                if let Some(slot) = latest.get_mut(index) {
                    *slot = Some(msg);
                }
            }
        }
    }

    /// The latest result of extension effect type `T`, if it returned a `V`.
    pub fn result<T: 'static, V: Any + Send + Sync>(&self) -> Option<Arc<V>> {
        let value = lock(&self.results).get(&TypeId::of::<T>())?.clone();
        value.downcast::<V>().ok()
    }

    /// Keeps the result of an extension effect of type `effect`.
    pub fn store_result(&self, effect: TypeId, value: ExtValue) {
        lock(&self.results).insert(effect, Arc::from(value));
    }
}

/// The branches a chooser picks from.
///
/// # Example
/// ```
/// use stormchor_choreography::{project, Local, Program};
/// use stormchor_runtime::Labels;
///
/// let program: Program<&str, &str> = Program::new().choice("a", [
///     ("commit", Program::new().send("a", "b", "commit")),
///     ("abort", Program::new().send("a", "b", "abort")),
/// ]);
/// let a = project(&program, "a").expect("sound");
/// let Local::Select { branches, .. } = &a.effects()[0] else { unreachable!() };
/// let labels = Labels::new(branches);
/// assert_eq!(labels.len(), 2);
/// assert_eq!(labels.position("abort"), Some(1));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Labels<'a, R, M> {
    branches: &'a [(Label, Vec<Local<R, M>>)],
}

impl<'a, R, M> Labels<'a, R, M> {
    /// The labels of these branches.
    pub fn new(branches: &'a [(Label, Vec<Local<R, M>>)]) -> Self {
        Labels { branches }
    }

    /// How many branches there are.
    pub fn len(&self) -> usize {
        self.branches.len()
    }

    /// Whether there is no branch.
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// The label of branch `index`.
    pub fn get(&self, index: usize) -> Option<&'a Label> {
        self.branches.get(index).map(|(label, _)| label)
    }

    /// The index of the branch labelled `label`.
    pub fn position(&self, label: &str) -> Option<usize> {
        self.branches.iter().position(|(l, _)| l.as_str() == label)
    }

    /// The labels in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a Label> + 'a {
        self.branches.iter().map(|(label, _)| label)
    }
}

/// The run-time decisions of a role, made from its state: the values it sends, the
/// branches it chooses and whether its loops go on.
///
/// Implement it for the type of your role data; every method has a default, so
/// `impl RoleLogic<Role, Msg> for MyData {}` sends the program's templates as they
/// are, takes the first branch and runs decided loops zero times.
///
/// # Example
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use stormchor_runtime::{Labels, RoleLogic, RoleState};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// enum Role { Coordinator, Worker }
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Msg { Rows(u64), Verdict(bool) }
///
/// /// The worker counts rows; the coordinator commits when it received any.
/// #[derive(Default)]
/// struct Data { rows: AtomicU64 }
///
/// impl RoleLogic<Role, Msg> for Data {
///     fn message(state: &RoleState<Role, Msg, Self>, _to: Role, template: &Msg) -> Msg {
///         match template {
///             Msg::Rows(_) => Msg::Rows(state.data().rows.load(Ordering::Relaxed)),
///             other => other.clone(),
///         }
///     }
///     fn choose(state: &RoleState<Role, Msg, Self>, labels: Labels<'_, Role, Msg>) -> usize {
///         let received = matches!(state.latest_from(&Role::Worker), Some(Msg::Rows(n)) if n > 0);
///         labels.position(if received { "commit" } else { "abort" }).unwrap_or(0)
///     }
/// }
///
/// let state = RoleState::new(Role::Worker, [Role::Coordinator, Role::Worker], Data::default());
/// state.data().rows.store(7, Ordering::Relaxed);
/// assert_eq!(Data::message(&state, Role::Coordinator, &Msg::Rows(0)), Msg::Rows(7));
/// ```
pub trait RoleLogic<R: RoleId, M: Message>: Send + Sync + Sized + 'static {
    /// Whether `message`, `choose` or `keep_looping` read the role's state while the role
    /// runs. When `false`, received messages reach the state in batches (before every
    /// extension effect, choice, loop, parallel or bounded part, and at the end) rather
    /// than one by one, which makes exchanging messages cheaper. Extension handlers and
    /// the code that reads the state after the run see every value either way.
    const READS_STATE: bool = true;

    /// The value to send to `to` for the program's message `template`.
    fn message(state: &RoleState<R, M, Self>, to: R, template: &M) -> M {
        let _ = (state, to);
        template.clone()
    }

    /// Called with every message `value` received from `from` where the program
    /// expects `template`, before it is kept as that peer's latest. The default accepts
    /// every value of the template's enum variant (the interpreter checks that much
    /// itself); logic whose messages carry a finer kind (a named, typed value) checks it
    /// here, may keep the value in its own data, and rejects a wrong one with a reason:
    /// the run then fails with an unexpected-frame error naming the sender.
    fn accept(
        state: &RoleState<R, M, Self>,
        from: R,
        template: &M,
        value: &M,
    ) -> Result<(), String> {
        let _ = (state, from, template, value);
        Ok(())
    }

    /// The index of the branch to take.
    fn choose(state: &RoleState<R, M, Self>, labels: Labels<'_, R, M>) -> usize {
        let _ = (state, labels);
        0
    }

    /// Whether a loop this role decides runs round `round` (counted from 0).
    fn keep_looping(state: &RoleState<R, M, Self>, round: u64) -> bool {
        let _ = (state, round);
        false
    }
}

impl<R: RoleId, M: Message> RoleLogic<R, M> for () {
    // The defaults read nothing.
    const READS_STATE: bool = false;
}
