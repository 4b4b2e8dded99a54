//! Backup under load, restored to a recorded point and compared table by table; the workers go on on the restored cluster.
//!
//! ```sh
//! cargo run --example backup_restore -- [--workers N] [--seconds S] [--rounds R] [--seed S] [--inject FAULT]
//! ```
//!
//! The same as `stormchor run backup-restore`; the choreography is in `src/scenarios/backup_restore.rs`,
//! the long configuration and its figures in `docs/scenarios.md`.

#[path = "common/scenario_main.rs"]
mod common;

fn main() -> std::process::ExitCode {
    common::scenario_main("backup-restore")
}
