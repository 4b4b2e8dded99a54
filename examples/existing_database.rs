//! A schema the test did not create: discovered, stressed with the action mix, validated.
//!
//! ```sh
//! cargo run --example existing_database -- [--workers N] [--seconds S] [--rounds R] [--seed S] [--inject FAULT]
//! ```
//!
//! The same as `stormchor run existing-database`; the choreography is in `src/scenarios/existing_database.rs`,
//! the long configuration and its figures in `docs/scenarios.md`.

#[path = "common/scenario_main.rs"]
mod common;

fn main() -> std::process::ExitCode {
    common::scenario_main("existing-database")
}
