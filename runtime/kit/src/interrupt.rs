//! The process's interrupt request (Ctrl-C, SIGTERM): load effects end early when
//! it is set, so that a run still verifies and reports what it did.
//!
//! It is the state of this process, not of any role: every role running in the
//! process sees it, and a role in another process has its own. It stays set until
//! [`clear`]ed: a program that runs several scenarios one after another in one
//! process (a test harness, a loop of runs) clears it before the next run, once it
//! has decided the interrupt does not end them all.
//!
//! # Example
//! ```
//! use stormchor_kit::interrupt;
//!
//! interrupt::request();
//! assert!(interrupt::requested());
//! interrupt::clear();
//! assert!(!interrupt::requested());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

static REQUESTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
static NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Asks every load effect of this process to end after its current operation (and a
/// launcher to pass the request on to its role processes).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}

/// Resolves once an interrupt is requested (at once if it was).
pub async fn requested_now() {
    loop {
        let notified = NOTIFY.notified();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// Forgets an earlier request: load effects started from now on run their full
/// duration again.
pub fn clear() {
    REQUESTED.store(false, Ordering::Relaxed);
}

/// Whether an interrupt was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The flag itself, for load engines that poll an `AtomicBool`.
pub fn flag() -> Arc<AtomicBool> {
    REQUESTED.clone()
}
