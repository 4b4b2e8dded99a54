//! The `stormchor` command.
//!
//! Until the runtime lands, the main job shows what the algebra does with a real
//! choreography: a barrier followed by a two-phase commit between a coordinator and
//! three workers. It projects the program onto every role, prints each local program
//! and the mermaid diagram, and runs the projections together under many decision
//! seeds to show that they always complete.

use std::process::ExitCode;

use stormchor::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Worker(u16),
}

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Ready,
    Go,
    Prepare,
    Vote,
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
                vote: Msg::Vote,
                commit: Msg::Commit,
                abort: Msg::Abort,
                ack: Msg::Ack,
            },
        ))
        .end()
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
         ({messages} messages and labels delivered, no deadlock, no orphan message).",
        locals.len()
    );
    ExitCode::SUCCESS
}
