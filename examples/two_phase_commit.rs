//! Two-phase commit between a coordinator and N participants, run for real.
//!
//! Every participant votes (participant `k` votes no when `--veto k` is given); the
//! coordinator commits only if every vote is yes, and every participant learns the
//! decision from the coordinator's message.
//!
//! ```sh
//! cargo run --example two_phase_commit                     # in memory, 4 participants
//! cargo run --example two_phase_commit -- --veto 2         # participant 2 votes no
//! cargo run --example two_phase_commit -- --tcp            # every role over TCP, one process
//! cargo run --example two_phase_commit -- --processes      # one OS process per role, over TCP
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, ExitCode};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stormchor::prelude::*;
use stormchor::runtime::tcp::{loopback_addresses, run_all_over_tcp, run_role_over_tcp};
use stormchor::runtime::{EventKind, Labels, RoleLogic, RoleSetup, RoleState, RunConfig, run_all};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Participant(u16),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Prepare,
    Vote(bool),
    Commit,
    Abort,
    Ack,
}

/// What each role knows: how many participants there are, and who vetoes.
#[derive(Debug)]
struct Node {
    participants: u16,
    veto: Option<u16>,
}

impl RoleLogic<Role, Msg> for Node {
    fn message(state: &RoleState<Role, Msg, Self>, _to: Role, template: &Msg) -> Msg {
        match (template, state.role()) {
            (Msg::Vote(_), Role::Participant(k)) => Msg::Vote(state.data().veto != Some(k)),
            (other, _) => other.clone(),
        }
    }

    fn choose(state: &RoleState<Role, Msg, Self>, labels: Labels<'_, Role, Msg>) -> usize {
        let all_yes = (0..state.data().participants)
            .all(|k| state.latest_from(&Role::Participant(k)) == Some(Msg::Vote(true)));
        labels
            .position(if all_yes { "commit" } else { "abort" })
            .unwrap_or(0)
    }
}

fn choreography(participants: u16) -> Program<Role, Msg> {
    let family = Family::indexed("Participant", participants, Role::Participant);
    primitives::two_phase_commit(
        Role::Coordinator,
        &family,
        primitives::TwoPhaseMessages {
            prepare: Msg::Prepare,
            vote: Msg::Vote(true),
            commit: Msg::Commit,
            abort: Msg::Abort,
            ack: Msg::Ack,
        },
    )
}

fn setup(participants: u16, veto: Option<u16>) -> impl FnMut(Role) -> RoleSetup<Role, Msg, Node> {
    move |_| RoleSetup::new(Node { participants, veto })
}

/// The decision every participant received, if they all agree.
fn decision<'a>(outcomes: impl Iterator<Item = (&'a Role, Option<Msg>)>) -> Result<Msg, String> {
    let mut decided = None;
    for (role, got) in outcomes {
        if let Role::Participant(_) = role {
            let got = got.ok_or_else(|| format!("{role:?} learned no decision"))?;
            if decided.get_or_insert_with(|| got.clone()) != &got {
                return Err(format!(
                    "{role:?} received {got:?}, another participant {decided:?}"
                ));
            }
        }
    }
    decided.ok_or_else(|| "no participant".to_owned())
}

async fn in_memory(participants: u16, veto: Option<u16>) -> Result<Msg, String> {
    let report = run_all(
        &choreography(participants),
        setup(participants, veto),
        RunConfig::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some((_, failure)) = report.failures().next() {
        return Err(failure.to_string());
    }
    decision(report.outcomes.iter().map(|(role, o)| {
        (
            role,
            o.state
                .as_ref()
                .and_then(|s| s.latest_from(&Role::Coordinator)),
        )
    }))
}

async fn over_tcp(participants: u16, veto: Option<u16>) -> Result<Msg, String> {
    let report = run_all_over_tcp(
        &choreography(participants),
        setup(participants, veto),
        RunConfig::default(),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some((_, failure)) = report.failures().next() {
        return Err(failure.to_string());
    }
    decision(report.outcomes.iter().map(|(role, o)| {
        (
            role,
            o.state
                .as_ref()
                .and_then(|s| s.latest_from(&Role::Coordinator)),
        )
    }))
}

/// Starts one process per role (this same example with `--role`), and waits for all.
fn processes(participants: u16, veto: Option<u16>) -> Result<Msg, String> {
    let roles: Vec<Role> = choreography(participants).roles().into_iter().collect();
    let addresses = loopback_addresses(roles.iter().copied()).map_err(|e| e.to_string())?;
    let list: Vec<String> = roles.iter().map(|r| addresses[r].to_string()).collect();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for (index, role) in roles.iter().enumerate() {
        let mut command = Command::new(&exe);
        command.args([
            "--participants",
            &participants.to_string(),
            "--role",
            &index.to_string(),
            "--addresses",
            &list.join(","),
        ]);
        if let Some(k) = veto {
            command.args(["--veto", &k.to_string()]);
        }
        command.stdout(std::process::Stdio::piped());
        children.push((*role, command.spawn()));
    }
    // Wait for every child, even after one fails, so none is left behind.
    let outputs: Vec<_> = children
        .into_iter()
        .map(|(role, child)| (role, child.and_then(|c| c.wait_with_output())))
        .collect();
    let mut decided = Vec::new();
    for (role, output) in outputs {
        let output = output.map_err(|e| format!("{role:?}: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        println!("  {role:?} process: {text}");
        if !output.status.success() {
            return Err(format!("{role:?} failed: {text}"));
        }
        let got = match text.rsplit(' ').next() {
            Some("Commit") => Some(Msg::Commit),
            Some("Abort") => Some(Msg::Abort),
            _ => None,
        };
        decided.push((role, got));
    }
    decision(decided.iter().map(|(r, g)| (r, g.clone())))
}

/// Runs one role in this process (started by `processes`).
async fn one_role(
    participants: u16,
    veto: Option<u16>,
    index: usize,
    addresses: &str,
) -> Result<Msg, String> {
    let program = choreography(participants);
    let roles: Vec<Role> = program.roles().into_iter().collect();
    let role = *roles.get(index).ok_or("no such role")?;
    let addresses: BTreeMap<Role, SocketAddr> = roles
        .iter()
        .copied()
        .zip(addresses.split(',').filter_map(|a| a.parse().ok()))
        .collect();
    let outcome = run_role_over_tcp(
        &program,
        role,
        &addresses,
        setup(participants, veto)(role),
        RunConfig::default(),
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    outcome.result.map_err(|f| f.to_string())?;
    match role {
        // The coordinator's trace holds the branch it chose.
        Role::Coordinator => outcome
            .trace
            .iter()
            .find_map(|event| match &event.kind {
                EventKind::Chose { label } if label.as_str() == "commit" => Some(Msg::Commit),
                EventKind::Chose { .. } => Some(Msg::Abort),
                _ => None,
            })
            .ok_or_else(|| "the coordinator chose nothing".to_owned()),
        Role::Participant(_) => outcome
            .state
            .and_then(|s| s.latest_from(&Role::Coordinator))
            .ok_or_else(|| "no decision".to_owned()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let participants: u16 = value("--participants")
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let veto: Option<u16> = value("--veto").and_then(|v| v.parse().ok());
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
    let (mode, result) =
        if let (Some(index), Some(addresses)) = (value("--role"), value("--addresses")) {
            let index = index.parse().unwrap_or(usize::MAX);
            let result = runtime.block_on(one_role(participants, veto, index, &addresses));
            match &result {
                Ok(msg) => println!("done: {msg:?}"),
                Err(error) => println!("failed: {error}"),
            }
            return if result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        } else if args.iter().any(|a| a == "--processes") {
            (
                "one process per role over TCP",
                processes(participants, veto),
            )
        } else if args.iter().any(|a| a == "--tcp") {
            ("over TCP", runtime.block_on(over_tcp(participants, veto)))
        } else {
            ("in memory", runtime.block_on(in_memory(participants, veto)))
        };
    match result {
        Ok(decision) => {
            println!(
                "two-phase commit with {participants} participants, {mode}: every participant received {decision:?}"
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::test]
async fn commits_when_everyone_agrees_and_aborts_on_a_veto() {
    for participants in [1, 4, 16] {
        assert_eq!(in_memory(participants, None).await, Ok(Msg::Commit));
        assert_eq!(
            in_memory(participants, Some(participants - 1)).await,
            Ok(Msg::Abort)
        );
    }
    assert_eq!(over_tcp(4, None).await, Ok(Msg::Commit));
    assert_eq!(over_tcp(4, Some(0)).await, Ok(Msg::Abort));
}
