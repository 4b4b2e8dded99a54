//! Points recorded under load (WAL position + checksums); the backup node restores to each and compares.
//!
//! ```sh
//! cargo run --example pitr -- [--workers N] [--seconds S] [--rounds R] [--seed S] [--inject FAULT]
//! ```
//!
//! The same as `stormchor run pitr`; the choreography is in `src/scenarios/pitr.rs`,
//! the long configuration and its figures in `docs/scenarios.md`.

#[path = "common/scenario_main.rs"]
mod common;

fn main() -> std::process::ExitCode {
    common::scenario_main("pitr")
}
