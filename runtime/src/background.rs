//! Effects a role started and has not finished yet (`ext start` .. `ext finish`):
//! their futures, owned by the running role and polled alongside its program, and the
//! signal by which a handler says when its effect counts as started.
//!
//! Nothing is spawned: a started effect is a future the role's interpreter polls
//! together with the program, so it stops when the role stops (failure, cancellation,
//! end), and it can borrow the role's state like any handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use stormchor_choreography::Handle;

use crate::effects::ExtOutcome;
use crate::handler::RunError;

tokio::task_local! {
    static STARTING: Arc<StartCell>;
}

/// How a started effect is doing, shared by its future, the signal and the role.
#[derive(Default)]
struct StartCell {
    /// The handler took the signal: it says when the effect has started.
    deferred: AtomicBool,
    /// The effect has started (or ended).
    started: AtomicBool,
    /// The role's task, waiting for the start or the outcome.
    waker: AtomicWaker,
}

impl StartCell {
    fn fire(&self) {
        self.started.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// Lets the handler of an effect being started (`ext start`) say when it has started,
/// so that the role, and by effect order the steps after the start, go on only then:
/// a statement once the server reports it waiting for a lock, a backup once it
/// streams.
///
/// Without it, an effect counts as started once its handler has run up to its first
/// wait. Dropping the signal, or the effect ending, counts as started too.
///
/// # Example
/// ```
/// use stormchor_runtime::StartSignal;
///
/// // Outside an effect being started (a whole `ext`, or plain code) there is none.
/// assert!(StartSignal::take().is_none());
/// ```
pub struct StartSignal(Arc<StartCell>);

impl StartSignal {
    /// The signal of the effect being started, when called in its handler; `None`
    /// when the effect runs whole (`ext`), so the handler knows which it is.
    pub fn take() -> Option<StartSignal> {
        STARTING
            .try_with(|cell| {
                cell.deferred.store(true, Ordering::Release);
                StartSignal(cell.clone())
            })
            .ok()
    }

    /// The effect has started: the role goes on with its program.
    pub fn started(self) {
        drop(self);
    }
}

impl Drop for StartSignal {
    fn drop(&mut self) {
        self.0.fire();
    }
}

/// What a started effect ended with (through the role's middleware).
pub(crate) type Outcome = ExtOutcome;

/// One started effect.
struct Slot<'a> {
    handle: Handle,
    cell: Arc<StartCell>,
    future: Option<BoxFuture<'a, Outcome>>,
    outcome: Option<Outcome>,
    /// The type name, for failures.
    effect: &'static str,
    /// The role's local path of the start, for failures.
    path: Vec<usize>,
    /// Where the start is written in the global program.
    place: Option<String>,
    since: Instant,
    /// Whether the future has been polled once.
    polled: bool,
}

/// A started effect that failed before its finish.
pub(crate) struct Failed {
    pub(crate) path: Vec<usize>,
    pub(crate) place: Option<String>,
    pub(crate) effect: &'static str,
    pub(crate) handle: Handle,
    pub(crate) error: RunError,
}

/// The effects one role started and has not finished.
#[derive(Default)]
pub(crate) struct Background<'a> {
    slots: Mutex<Vec<Slot<'a>>>,
}

impl<'a> Background<'a> {
    fn lock(&self) -> MutexGuard<'_, Vec<Slot<'a>>> {
        crate::sync::lock(&self.slots)
    }

    /// Starts `future` under `handle`; the role polls it from now on.
    pub(crate) fn start(
        &self,
        handle: Handle,
        effect: &'static str,
        path: Vec<usize>,
        place: Option<String>,
        future: impl Future<Output = Outcome> + Send + 'a,
    ) -> Started {
        let cell = Arc::new(StartCell::default());
        let scoped = STARTING.scope(cell.clone(), future);
        self.lock().push(Slot {
            handle,
            cell: cell.clone(),
            future: Some(Box::pin(scoped)),
            outcome: None,
            effect,
            path,
            place,
            since: Instant::now(),
            polled: false,
        });
        Started(cell)
    }

    /// Waits for the outcome of the effect started under `handle`, and how long it ran.
    pub(crate) fn finish<'b>(&'b self, handle: &'b Handle) -> Finishing<'a, 'b> {
        Finishing {
            background: self,
            handle,
        }
    }

    /// Polls every running effect; the first that failed, if any.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Option<Failed> {
        let mut slots = self.lock();
        for slot in slots.iter_mut() {
            let Some(future) = slot.future.as_mut() else {
                continue;
            };
            let polled = future.as_mut().poll(cx);
            slot.polled = true;
            match polled {
                Poll::Ready(Err(error)) => {
                    slot.future = None;
                    slot.cell.fire();
                    return Some(Failed {
                        path: slot.path.clone(),
                        place: slot.place.clone(),
                        effect: slot.effect,
                        handle: slot.handle.clone(),
                        error,
                    });
                }
                Poll::Ready(outcome) => {
                    slot.future = None;
                    slot.outcome = Some(outcome);
                    slot.cell.fire();
                }
                Poll::Pending => {
                    if !slot.cell.deferred.load(Ordering::Acquire)
                        && !slot.cell.started.load(Ordering::Acquire)
                    {
                        slot.cell.fire();
                    }
                }
            }
        }
        None
    }

    /// Drops every started effect (the role ended or failed).
    pub(crate) fn clear(&self) {
        let slots = std::mem::take(&mut *self.lock());
        drop(slots);
    }
}

/// Waits until a started effect has started.
pub(crate) struct Started(Arc<StartCell>);

impl Future for Started {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.waker.register(cx.waker());
        if self.0.started.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Waits for a started effect's outcome.
pub(crate) struct Finishing<'a, 'b> {
    background: &'b Background<'a>,
    handle: &'b Handle,
}

impl Future for Finishing<'_, '_> {
    /// `None` when nothing runs under the handle.
    type Output = Option<(Outcome, std::time::Duration)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slots = self.background.lock();
        let Some(index) = slots.iter().position(|slot| &slot.handle == self.handle) else {
            return Poll::Ready(None);
        };
        if slots[index].outcome.is_some() {
            let slot = slots.swap_remove(index);
            let took = slot.since.elapsed();
            return Poll::Ready(slot.outcome.map(|outcome| (outcome, took)));
        }
        slots[index].cell.waker.register(cx.waker());
        Poll::Pending
    }
}
