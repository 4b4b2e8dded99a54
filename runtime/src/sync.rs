//! Locks whose data stays usable when a holder panicked.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, also when a thread panicked while it held it: the runtime's shared
/// data (role state, background slots) is changed in single steps, so it is consistent
/// whenever the lock is free. (The PostgreSQL layer has the same, public, as
/// `stormchor_postgres::lock`; this crate does not depend on it.)
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
