//! The `stormchor` command.
//!
//! Until the PostgreSQL layer and the workloads land, the main job shows the
//! framework on a real choreography: a barrier followed by a two-phase commit between
//! a coordinator and three workers. It projects the program onto every role, prints
//! each local program and the mermaid diagram, checks the projections together under
//! many decision seeds, then runs every role through the interpreter, in memory and
//! over TCP on loopback, and prints how each role ended.

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stormchor::prelude::*;
use stormchor::runtime::tcp::run_all_over_tcp;
use stormchor::runtime::{Labels, RoleLogic, RoleSetup, RoleState, RunConfig, run_all};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Worker(u16),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Ready,
    Go,
    Prepare,
    Vote(bool),
    Commit,
    Abort,
    Ack,
}

const WORKERS: u16 = 3;
const SEEDS: u64 = 1_000;

fn choreography() -> Program<Role, Msg> {
    let workers = Family::indexed("Worker", WORKERS, Role::Worker);
    primitives::barrier(Role::Coordinator, &workers, Msg::Ready, Msg::Go)
        .then(primitives::two_phase_commit(
            Role::Coordinator,
            &workers,
            primitives::TwoPhaseMessages {
                prepare: Msg::Prepare,
                vote: Msg::Vote(true),
                commit: Msg::Commit,
                abort: Msg::Abort,
                ack: Msg::Ack,
            },
        ))
        .end()
}

/// Workers vote yes; the coordinator commits when every vote is yes.
struct Node;

impl RoleLogic<Role, Msg> for Node {
    fn choose(state: &RoleState<Role, Msg, Self>, labels: Labels<'_, Role, Msg>) -> usize {
        let all_yes =
            (0..WORKERS).all(|k| state.latest_from(&Role::Worker(k)) == Some(Msg::Vote(true)));
        labels
            .position(if all_yes { "commit" } else { "abort" })
            .unwrap_or(0)
    }
}

/// Runs every role through the interpreter, in memory and over TCP; prints how each ended.
async fn run(program: &Program<Role, Msg>) -> Result<(), String> {
    let config = RunConfig::default().with_deadline(Duration::from_secs(30));
    let report = run_all(program, |_| RoleSetup::new(Node), config.clone())
        .await
        .map_err(|e| e.to_string())?;
    println!("## Run in memory\n");
    for (role, outcome) in &report.outcomes {
        let ended = match &outcome.result {
            Ok(()) => "completed".to_owned(),
            Err(failure) => format!("FAILED: {failure}"),
        };
        println!(
            "- {role:?}: {ended}, {} events in {:?}",
            outcome.trace.len(),
            outcome.elapsed
        );
    }
    if let Some((_, failure)) = report.failures().next() {
        return Err(failure.to_string());
    }
    let outcomes = run_all_over_tcp(
        program,
        |_| RoleSetup::new(Node),
        config,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!("\n## Run over TCP on loopback\n");
    for (role, outcome) in outcomes {
        let outcome = outcome.map_err(|e| format!("{role:?}: {e}"))?;
        outcome.result.map_err(|f| f.to_string())?;
        let decision = outcome
            .state
            .and_then(|s| s.latest_from(&Role::Coordinator));
        println!(
            "- {role:?}: completed in {:?}, last message from the coordinator: {decision:?}",
            outcome.elapsed
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        eprintln!(
            "usage: stormchor\n\nThe command takes no arguments yet: it projects and checks a sample \
             choreography.\nWorkloads, scenarios and options arrive with the runtime."
        );
        return ExitCode::from(2);
    }
    let program = choreography();
    let locals = match project_all(&program) {
        Ok(locals) => locals,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("# Two-phase commit with {WORKERS} workers\n");
    println!(
        "## Global program as a mermaid sequence diagram\n\n```mermaid\n{}```\n",
        to_mermaid(&program)
    );
    println!("## Local programs\n");
    for local in locals.values() {
        println!("{local}");
    }
    let mut messages = 0;
    for seed in 0..SEEDS {
        match check(&locals, &mut SeededPolicy::new(seed)) {
            Ok(report) => messages += report.messages + report.control,
            Err(error) => {
                eprintln!("error: seed {seed}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "## Check\n\nAll {} local programs ran together to completion under {SEEDS} decision seeds \
         ({messages} messages and labels delivered, no deadlock, no orphan message).\n",
        locals.len()
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&program)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
