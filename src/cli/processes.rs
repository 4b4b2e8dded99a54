//! The command's glue for roles in processes of their own (binary only): the `role`
//! subcommand (one role of a scenario over TCP, `stormchor_kit::process`), and
//! `run --processes` (every role a child process of this one, on loopback).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use stormchor::kit::process::{self, ProcessError};
use stormchor::kit::{ScenarioReport, interrupt};
use stormchor::postgres::{Schemas, first_signal, remove_all_clusters_now};
use stormchor::runtime::tcp::Liveness;
use stormchor::scenarios::{Scenario, ScenarioOptions};

/// What `stormchor role` takes besides the scenario options.
#[derive(Debug, Clone, clap::Args)]
pub struct RoleArgs {
    /// The scenario (`backup-restore`, ...).
    pub scenario: String,
    /// The role to run, as the report names it (`Coordinator`, `Primary`, `Worker(0)`).
    pub role: String,
    /// The peers file (TOML): every role's address, and where each role's servers
    /// listen (docs/processes.md).
    #[arg(long)]
    pub peers: Option<PathBuf>,
    /// How long to wait for every peer to connect, in seconds.
    #[arg(long, default_value_t = 60)]
    pub connect_timeout: u64,
    /// How long a peer may be silent (no frame, no heartbeat) before it counts as
    /// down, in seconds (1-3600); heartbeats go out five times as often. Every role of
    /// a run must be given the same. A peer whose connection closes or breaks is down
    /// at once whatever this says.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub peer_silence: u64,
    /// Write this role's result (its journal and how it ended) as JSON to this file.
    #[arg(long)]
    pub result: Option<PathBuf>,
}

/// `stormchor role SCENARIO ROLE --peers FILE [options]`: runs one role; exit status 0
/// when it ran to its end and its checks held, 1 when not, 2 when it could not start.
pub fn role(scenario: &dyn Scenario, options: ScenarioOptions, args: &RoleArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    // SIGINT, SIGTERM (the launcher passes its own on), SIGHUP: the load ends early and
    // the role still ends in order; a second one removes its servers at once.
    runtime.spawn(async {
        first_signal().await;
        stormchor::postgres::interrupt();
        interrupt::request();
        let again = first_signal().await;
        remove_all_clusters_now();
        std::process::exit(128 + again);
    });
    let silence = Duration::from_secs(args.peer_silence);
    let liveness = match Liveness::new(silence / 5, silence) {
        Ok(liveness) => liveness,
        Err(error) => {
            eprintln!("error: --peer-silence: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(process::role_process(
        scenario,
        options,
        &args.role,
        (args.peers.as_deref(), args.result.as_deref()),
        Duration::from_secs(args.connect_timeout),
        liveness,
    ));
    drop(runtime);
    match outcome {
        Ok(result) => {
            let checks_held = result.entries.checks.iter().all(|c| c.passed);
            if !process::launched() {
                let report = ScenarioReport::from_roles(
                    scenario.name(),
                    0,
                    result.elapsed,
                    vec![result.clone()],
                    String::new(),
                );
                for line in report
                    .render()
                    .lines()
                    .skip_while(|l| !l.starts_with("## Checks"))
                {
                    println!("{line}");
                }
                if let Some(down) = &result.peer_down {
                    eprintln!(
                        "role {}: its part completed, but then peer {down}",
                        result.role
                    );
                }
            }
            if result.completed && checks_held {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(match error {
                ProcessError::Tcp { .. } | ProcessError::Launch(_) => 1,
                _ => 2,
            })
        }
    }
}

/// The flags that give a role process exactly `options` (a value a scenario does not
/// have, zero workers, rounds or load time, is left out: the role's defaults are the
/// same zero).
fn option_args(options: &ScenarioOptions) -> Vec<String> {
    let mut args = vec!["--seed".to_owned(), options.seed.to_string()];
    if options.workers > 0 {
        args.extend(["--workers".to_owned(), options.workers.to_string()]);
    }
    if !options.duration.is_zero() {
        args.extend([
            "--duration".to_owned(),
            options.duration.as_secs().max(1).to_string(),
        ]);
    }
    if options.rounds > 0 {
        args.extend(["--rounds".to_owned(), options.rounds.to_string()]);
    }
    if let Some(fault) = options.fault {
        args.extend(["--inject".to_owned(), fault.name().to_owned()]);
    }
    if let Some(target) = &options.target {
        args.extend(["--target".to_owned(), target.clone()]);
    }
    if let Some(schema) = &options.schema_file {
        args.extend(["--schema".to_owned(), schema.display().to_string()]);
    }
    if options.touch_user_tables {
        args.push("--on-user-tables".to_owned());
    }
    if options.amcheck_each_round {
        args.push("--amcheck-each-round".to_owned());
    }
    if let Some(schemas) = &options.discover_schemas {
        let list = match schemas {
            Schemas::AllUser => "all".to_owned(),
            Schemas::Named(names) => names.join(","),
        };
        args.extend(["--discover-schemas".to_owned(), list]);
    }
    args
}

/// `stormchor run SCENARIO --processes`: every role a child process of this one (this
/// program's `role` subcommand) on loopback; the report of them all.
pub async fn launch(
    scenario: &dyn Scenario,
    options: &ScenarioOptions,
) -> Result<ScenarioReport, String> {
    let program = std::env::current_exe()
        .map_err(|e| format!("cannot find this program to start the roles with: {e}"))?;
    let name = scenario.name();
    let option_args = option_args(options);
    process::launch(scenario, options, |role| {
        let mut command = tokio::process::Command::new(&program);
        command
            .arg("role")
            .arg(name)
            .arg(role)
            .args(&option_args)
            // The launcher writes the run's reports; its roles write only their results.
            .env_remove("STORMCHOR_JSON")
            .env_remove("STORMCHOR_HTML");
        command
    })
    .await
    .map_err(|e| e.to_string())
}
