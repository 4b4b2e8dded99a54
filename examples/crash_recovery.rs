//! SIGKILLs at seeded moments while workers commit ledger transactions; nothing acknowledged may be lost or half there.
//!
//! ```sh
//! cargo run --example crash_recovery -- [--workers N] [--seconds S] [--rounds R] [--seed S] [--inject FAULT]
//! ```
//!
//! The same as `stormchor run crash-recovery`; the choreography is in `src/scenarios/crash_recovery.rs`,
//! the long configuration and its figures in `docs/scenarios.md`.

#[path = "common/scenario_main.rs"]
mod common;

fn main() -> std::process::ExitCode {
    common::scenario_main("crash-recovery")
}
