//! The `stormchor` command's modules (binary only: nothing here is library API).
//!
//! - [`args`], the command line (clap): subcommands and flags;
//! - [`config`], flags, `STORMCHOR_*` variables and the config file resolved into
//!   settings, each value with its source;
//! - [`exit`], the exit status convention (0, 1, 2, 128 + n);
//! - [`run`], `run NAME`: check, then a scenario or a workload under the signal watch;
//! - [`scenario`], a flagship scenario's options and run;
//! - [`workload`], a workload made, configured, run and cleaned up;
//! - [`output`], the printed workload table, the JSON and HTML report files;
//! - [`progress`], the live progress line (indicatif);
//! - [`signals`], SIGINT, SIGTERM, SIGHUP during a run;
//! - [`catalog`], `list` and `describe`;
//! - [`validate`], `validate FILE`;
//! - [`isolation`], `isolation-suite`;
//! - [`processes`], `role` and `run --processes`: every role a process of its own.

pub mod args;
pub mod catalog;
pub use stormchor::config;
pub mod exit;
pub mod isolation;
pub mod output;
pub mod processes;
pub mod progress;
pub mod run;
pub mod scenario;
pub mod signals;
pub mod validate;
pub mod workload;
