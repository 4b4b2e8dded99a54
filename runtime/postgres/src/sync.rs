//! Locks whose data stays usable when a holder panicked.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, also when a thread panicked while it held it: the data a stormchor
/// mutex guards (registries, counters, histograms) is changed in single steps, so it
/// is consistent whenever the lock is free, and one panicking task must not take every
/// other one down with it.
///
/// # Example
/// ```
/// use std::sync::Mutex;
///
/// let counter = Mutex::new(0);
/// let _ = std::thread::scope(|scope| {
///     scope
///         .spawn(|| {
///             let _held = counter.lock();
///             panic!("a holder panics");
///         })
///         .join()
/// });
/// assert!(counter.is_poisoned());
/// *stormchor_postgres::lock(&counter) += 1;
/// assert_eq!(*stormchor_postgres::lock(&counter), 1);
/// ```
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
