//! The command line: subcommands and their flags (clap).
//!
//! Each subcommand is one variant of [`Command`] holding its own argument struct, so a
//! new subcommand is a variant, a struct and a module of its own.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use stormchor::scenarios::Fault;

use super::config::{FileConfig, FlagValues, Settings};

/// Multi-party PostgreSQL tests written as choreographies.
///
/// With no command it runs the `backup-restore` scenario against a throwaway cluster. Values
/// come from flags, then `STORMCHOR_*` environment variables, then the `--config` file,
/// then defaults.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// The subcommand (none: `run backup-restore`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The flags of the default `run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario or a workload (default: `backup-restore`).
    Run {
        /// A scenario (`backup-restore`, `crash-recovery`, `pitr`, `failover`,
        /// `existing-database`, `isolation`, `stress-check`), a workload (`tpcb`,
        /// `read-only`, `ecommerce`, `stress`), or a workload file (`my-workload.toml`);
        /// see `list`.
        name: Option<String>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run one role of a scenario in this process, talking to its peers (each in a
    /// process of its own, on this host or others) over TCP (docs/processes.md).
    Role {
        #[command(flatten)]
        role: super::processes::RoleArgs,
        #[command(flatten)]
        args: RunArgs,
    },
    /// List the scenarios and workloads.
    List,
    /// Describe a scenario (its diagram and every role's program), a workload (its
    /// operations) or an isolation spec file (a permutation's choreography).
    Describe {
        /// The scenario, workload, workload file, or isolation spec (`FILE.spec`).
        name: String,
        /// Also write the scenario's (or the spec permutation's) sequence diagram as a
        /// self-contained SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// The permutation of a spec file to describe, from 1 [default: 1].
        #[arg(long, value_name = "N")]
        permutation: Option<usize>,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Check a config file (keys, types, ranges, workload sections) or a workload file
    /// (TOML or YAML) without running anything.
    Validate {
        /// The config file (TOML) or workload file (`.toml`, `.yaml`, `.yml`).
        config: PathBuf,
    },
    /// Run PostgreSQL's isolation specs of DIR (laid out as src/test/isolation) and
    /// compare each output with its expected files.
    IsolationSuite(IsolationSuiteArgs),
}

/// The flags of `isolation-suite`.
#[derive(Debug, Clone, clap::Args)]
pub struct IsolationSuiteArgs {
    /// The directory (isolation_schedule, specs/, expected/).
    pub dir: PathBuf,
    /// Tests to run (default: every test of DIR/isolation_schedule).
    pub names: Vec<String>,
    /// Run against this server (a libpq connection string) instead of a throwaway
    /// cluster.
    #[arg(long)]
    pub target: Option<String>,
    /// Write per-test verdicts as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report (counts, each difference's diff) to this
    /// file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Cancel a step still running after this many seconds (upstream's
    /// max_step_wait); give up after twice it.
    #[arg(long, default_value_t = 360)]
    pub step_timeout: u64,
}

/// The flags of `run` (and of `describe`, which draws a scenario for them).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// A config file (TOML); flags and STORMCHOR_* variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run against this server (a libpq connection string) instead of a throwaway
    /// cluster [env: STORMCHOR_TARGET].
    #[arg(long)]
    pub target: Option<String>,
    /// Workers of a scenario, or clients of a workload [default: 2, env: STORMCHOR_WORKERS].
    #[arg(long)]
    pub workers: Option<u16>,
    /// How long the load runs: seconds, or `30s`, `5m`, `1h30m` [default: 10, env:
    /// STORMCHOR_DURATION].
    #[arg(long, value_parser = super::config::parse_duration)]
    pub duration: Option<u64>,
    /// The seed of every random choice [default: 1, env: STORMCHOR_SEED].
    #[arg(long)]
    pub seed: Option<u64>,
    /// The scale of the pgbench workloads [default: 1, env: STORMCHOR_SCALE].
    #[arg(long)]
    pub scale: Option<u32>,
    /// Rounds of a scenario: crashes of crash-recovery (default 10), recorded points of
    /// pitr (default 3) [env: STORMCHOR_ROUNDS].
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Inject a fault the scenario's verifier must catch: delete-acknowledged-row,
    /// corrupt-ledger-index, corrupt-restored-table, skip-wal-replay,
    /// drop-table-behind-catalog, weaker-isolation.
    #[arg(long)]
    pub inject: Option<Fault>,
    /// The schema (a SQL file) the existing-database scenario starts from [default: a
    /// built-in one].
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Let the stress mix of existing-database and stress-check change and drop the
    /// existing tables of the server given with --target (off: your tables are not
    /// touched); the tables each worker makes there (`w<k>_...`) stay after the run.
    #[arg(long)]
    pub on_user_tables: bool,
    /// Run pg_amcheck after every crash round of crash-recovery, not only at the end.
    #[arg(long)]
    pub amcheck_each_round: bool,
    /// The schemas a scenario discovers and validates: names separated by commas, or
    /// `all` (every schema but the system's) [default: public].
    #[arg(long)]
    pub discover_schemas: Option<stormchor::postgres::Schemas>,
    /// Run a workload as an open loop at this many operations per second in all
    /// (0.001 to 10000000) [env: STORMCHOR_RATE].
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Send each operation's statements without waiting for each reply, as pgbench's
    /// `\startpipeline` does (tpcb, read-only).
    #[arg(long)]
    pub pipeline: bool,
    /// Run every role of a scenario as a process of its own on loopback.
    #[arg(long)]
    pub processes: bool,
    /// Write the report as JSON to this file [env: STORMCHOR_JSON].
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a workload's report as a self-contained HTML page with plots to this file
    /// [env: STORMCHOR_HTML].
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Print the resolved configuration, with where each value came from, and stop.
    #[arg(long)]
    pub show_config: bool,
}

impl RunArgs {
    /// The settings these flags, the environment and the `--config` file give.
    pub fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => Some(FileConfig::load(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let flags = FlagValues {
            target: self.target.clone(),
            workers: self.workers,
            duration: self.duration,
            seed: self.seed,
            scale: self.scale,
            rounds: self.rounds,
            rate: self.rate,
            json: self.json.clone(),
            html: self.html.clone(),
        };
        Settings::resolve(flags, |name| std::env::var(name).ok(), file).map_err(|e| e.to_string())
    }
}
