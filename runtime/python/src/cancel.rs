//! Python calls that do not return: stop waiting for them, interrupt them where
//! Python can, and say where each role was.
//!
//! A Python callable runs on a thread of tokio's blocking pool, which nothing can
//! kill. When its effect's `timeout=` runs out, or its role is dropped (the run's
//! timeout, a failure elsewhere, Ctrl-C), the role stops waiting at once and the
//! thread is sent an asynchronous `TimeoutError` (`PyThreadState_SetAsyncExc`): Python
//! code stops at its next instruction; a call blocked in C (`time.sleep`, a lock)
//! runs on until it returns, then stops. The exception is set only while the thread
//! is still inside that call (checked under the GIL), and a pending one is cleared
//! when the call returns, so it never reaches a later call on the same thread.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The calls of a run dropped before they returned: (role, what, for how long).
#[derive(Clone, Default)]
pub(crate) struct Abandoned(Arc<Mutex<Vec<(String, String, Duration)>>>);

impl Abandoned {
    fn push(&self, role: String, what: String, running: Duration) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((role, what, running));
    }

    /// The calls dropped so far.
    pub(crate) fn take(&self) -> Vec<(String, String, Duration)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The thread running a call while it runs the callable, and whether it was sent an
/// interrupt (read and written under the GIL only).
#[derive(Default)]
pub(crate) struct Running(Mutex<(Option<u64>, bool)>);

fn set_async_exc(py: Python<'_>, thread: u64, exception: Option<Bound<'_, PyAny>>) -> PyResult<()> {
    let ctypes = py.import("ctypes")?;
    let id = ctypes.getattr("c_ulong")?.call1((thread,))?;
    let exception = match exception {
        Some(e) => ctypes.getattr("py_object")?.call1((e,))?,
        // None is passed as NULL: clear the thread's pending exception.
        None => py.None().into_bound(py),
    };
    ctypes
        .getattr("pythonapi")?
        .getattr("PyThreadState_SetAsyncExc")?
        .call1((id, exception))?;
    Ok(())
}

impl Running {
    fn slot(&self) -> std::sync::MutexGuard<'_, (Option<u64>, bool)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The calling thread begins the call.
    pub(crate) fn enter(&self, py: Python<'_>) {
        let id = py
            .import("threading")
            .and_then(|t| t.getattr("get_ident")?.call0()?.extract::<u64>());
        *self.slot() = (id.ok(), false);
    }

    /// The call returned: no interrupt may reach the thread from now on (one sent
    /// and not yet delivered is cleared).
    pub(crate) fn leave(&self, py: Python<'_>) {
        let (thread, interrupted) = std::mem::take(&mut *self.slot());
        if let (Some(thread), true) = (thread, interrupted) {
            let _ = set_async_exc(py, thread, None);
        }
    }

    /// Interrupts the call if it still runs.
    fn interrupt(&self, py: Python<'_>) {
        // Marked first, the lock not held while Python runs.
        let thread = {
            let mut slot = self.slot();
            slot.1 = slot.0.is_some();
            slot.0
        };
        if let Some(thread) = thread {
            let error = py
                .import("builtins")
                .and_then(|b| b.getattr("TimeoutError"));
            if let Ok(error) = error {
                let _ = set_async_exc(py, thread, Some(error));
            }
        }
    }
}

/// Interrupts `running` from a thread of its own (taking the GIL may wait, which
/// the runtime's threads must not).
fn interrupt_later(running: Arc<Running>) {
    let work = move || Python::with_gil(|py| running.interrupt(py));
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(work)),
        Err(_) => drop(std::thread::spawn(work)),
    }
}

/// Held while a role waits for a call: dropped before the call returned (the role
/// itself was dropped), it records the call in the run's `Abandoned` and interrupts
/// it.
pub(crate) struct Waiting {
    pub(crate) running: Arc<Running>,
    pub(crate) abandoned: Option<Abandoned>,
    pub(crate) role: String,
    pub(crate) what: String,
    pub(crate) began: Instant,
    pub(crate) done: bool,
}

impl Waiting {
    /// The call timed out: interrupt it; the caller reports the failure.
    pub(crate) fn timed_out(mut self) {
        self.done = true;
        interrupt_later(self.running.clone());
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(abandoned) = &self.abandoned {
            abandoned.push(
                std::mem::take(&mut self.role),
                std::mem::take(&mut self.what),
                self.began.elapsed(),
            );
        }
        interrupt_later(self.running.clone());
    }
}
