//! The tokio runtime behind every call that waits, the wait itself (which lets
//! Ctrl-C through), and the interner of names.
//!
//! Rust's program types hold names as `&'static str` (roles, slots, effect names,
//! SQL of kit effects). A name from Python is interned: leaked once, reused after,
//! so the memory is bounded by the number of distinct names a process uses.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors::StormchorError;

/// The process's runtime: two worker threads (Python handlers run on its blocking
/// pool, never on these).
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .thread_name("stormchor")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| StormchorError::new_err(format!("cannot start the tokio runtime: {e}")))
}

/// `text`, as a `&'static str` shared by every use of the same text.
pub(crate) fn intern(text: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = names.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// How often a waiting call looks for a signal (Ctrl-C) Python must see.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);
/// How long an interrupted call waits for what it started to be gone.
const CLEANUP_BOUND: Duration = Duration::from_secs(60);

/// The stormchor directories this process owns now (clusters, backups, archives, SQL
/// logs): each has an owner file naming this process.
fn owned_dirs() -> BTreeSet<PathBuf> {
    use stormchor_postgres::{DIRECTORY_PREFIX, OWNER_FILE};
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(DIRECTORY_PREFIX)
        })
        .map(|e| e.path())
        .filter(|dir| {
            std::fs::read_to_string(dir.join(OWNER_FILE))
                .is_ok_and(|owner| owner.split_whitespace().next() == Some(me.as_str()))
        })
        .collect()
}

/// Runs `future` on the runtime while the calling Python thread waits with the GIL
/// released, looking for signals every 50 ms. When a signal handler raises (Ctrl-C:
/// `KeyboardInterrupt`), the future is dropped (its roles with it: their servers are
/// killed and removed, their Python calls interrupted), the call waits (at most 60 s)
/// until every directory it made is gone, and returns the exception.
pub(crate) fn wait<T: Send + 'static>(
    py: Python<'_>,
    future: impl Future<Output = T> + Send + 'static,
) -> PyResult<T> {
    let rt = runtime()?;
    let before = owned_dirs();
    let mut task = rt.spawn(future);
    loop {
        let joined = py.allow_threads(|| {
            rt.block_on(async { tokio::time::timeout(SIGNAL_CHECK, &mut task).await })
        });
        if let Ok(joined) = joined {
            return joined
                .map_err(|e| StormchorError::new_err(format!("the call's task ended: {e}")));
        }
        if let Err(signal) = py.check_signals() {
            task.abort();
            py.allow_threads(|| {
                rt.block_on(async {
                    let _ = tokio::time::timeout(CLEANUP_BOUND, &mut task).await;
                    let deadline = tokio::time::Instant::now() + CLEANUP_BOUND;
                    while !owned_dirs().is_subset(&before) && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
            });
            return Err(signal);
        }
    }
}
