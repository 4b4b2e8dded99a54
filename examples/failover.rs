//! A synchronous replica promoted after the primary is killed under load; every acknowledged write must be there.
//!
//! ```sh
//! cargo run --example failover -- [--workers N] [--seconds S] [--rounds R] [--seed S] [--inject FAULT]
//! ```
//!
//! The same as `stormchor run failover`; the choreography is in `src/scenarios/failover.rs`,
//! the long configuration and its figures in `docs/scenarios.md`.

#[path = "common/scenario_main.rs"]
mod common;

fn main() -> std::process::ExitCode {
    common::scenario_main("failover")
}
