//! Twelve isolation cases: transaction roles interleaved step by step, each anomaly checked against the documentation.
//!
//! ```sh
//! cargo run --example isolation -- [--workers N] [--seconds S] [--rounds R] [--seed S] [--inject FAULT]
//! ```
//!
//! The same as `stormchor run isolation`; the choreography is in `src/scenarios/isolation.rs`,
//! the long configuration and its figures in `docs/scenarios.md`.

#[path = "common/scenario_main.rs"]
mod common;

fn main() -> std::process::ExitCode {
    common::scenario_main("isolation")
}
