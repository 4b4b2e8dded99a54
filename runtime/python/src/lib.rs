//! The `stormchor` Python package's native module (`stormchor._native`), built with
//! PyO3 on top of the Rust crates. A map of it:
//!
//! - [`errors`]: every Rust error arrives as a Python exception of the
//!   `StormchorError` family, with the Rust error's text;
//! - [`role`]: roles and families, interned so that they are `Copy` Rust roles;
//! - [`slot`]: named, typed values between roles (the kit's slots and Python's own);
//! - [`program`]: the global program builder, projection, check, mermaid, run;
//! - [`effect`]: Python-defined effects whose handlers are Python callables, run on
//!   a blocking thread with the GIL;
//! - [`kit_effects`]: every kit effect, built with typed Python arguments;
//! - [`decision`]: run-time decisions of choices and decided loops, made by a
//!   Python callable or a slot's value at the deciding role;
//! - [`kit`]: the Python handlers registered beside the kit's effects;
//! - [`actions`]: the action registry (StormWeaver's vocabulary), Python actions, the
//!   stress mix;
//! - [`connection`]: the connection Python callables are given, served by the
//!   task that owns the real one;
//! - [`workload`]: workloads written in Python, run by the Rust load runner, and
//!   the Rust reference workloads they are measured against;
//! - [`config`]: the command's configuration (flags > `STORMCHOR_*` > file >
//!   default), resolved by the command's own code;
//! - [`stress`]: the kit's stress load with an action registry from Python;
//! - [`cluster`]: throwaway PostgreSQL clusters;
//! - [`cancel`]: Python calls that do not return: timeouts, interrupts, and where
//!   each role was when its run ended it;
//! - [`rt`]: the tokio runtime every blocking call runs on, with the GIL released,
//!   and the interner of names.

mod actions;
mod cancel;
mod cluster;
mod config;
mod connection;
mod decision;
mod effect;
mod errors;
mod kit;
mod kit_effects;
mod program;
mod role;
mod rt;
mod slot;
mod stress;
mod workload;

use pyo3::prelude::*;

/// The module `stormchor._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::add(m)?;
    m.add_class::<role::PyRole>()?;
    m.add_class::<role::PyFamily>()?;
    m.add_class::<slot::PySlot>()?;
    m.add_class::<program::PyProgram>()?;
    m.add_class::<program::PyReport>()?;
    m.add_class::<effect::PyEffectObj>()?;
    m.add_class::<effect::Context>()?;
    m.add_class::<kit::PyKit>()?;
    m.add_class::<actions::PyActionRegistry>()?;
    m.add_class::<actions::PyActionEntry>()?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<cluster::PyCluster>()?;
    effect::add(m)?;
    slot::add(m)?;
    actions::add(m)?;
    workload::add(m)?;
    config::add(m)?;
    Ok(())
}
