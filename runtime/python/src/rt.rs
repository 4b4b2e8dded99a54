//! The tokio runtime behind every call that waits, and the interner of names.
//!
//! Rust's program types hold names as `&'static str` (roles, slots, effect names,
//! SQL of kit effects). A name from Python is interned: leaked once, reused after,
//! so the memory is bounded by the number of distinct names a process uses.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

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
