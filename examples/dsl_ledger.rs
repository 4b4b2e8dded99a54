//! A choreography written with the `choreography!` DSL and run for real, in memory.
//!
//! Workers deposit money in rounds (an extension effect on every worker), report their
//! balances to the coordinator, which tells the auditor the total; the auditor checks
//! it against what the deposits should add up to and tells the coordinator its verdict
//! (a choice). One worker can be told to skim (`--skim k`): the auditor catches it.
//! At the end, a sub-choreography from another crate (`checkpoint_all` of the example
//! primitives crate) makes every worker flush its WAL.
//!
//! ```sh
//! cargo run --example dsl_ledger                              # 4 workers, 3 rounds
//! cargo run --example dsl_ledger -- --workers 8 --skim 2      # worker 2 skims
//! cargo run --example dsl_ledger -- --diagram                 # the mermaid diagram
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use stormchor::prelude::*;
use stormchor::runtime::{
    ExtensionRegistry, Labels, RoleLogic, RoleSetup, RoleState, RunConfig, run_all,
};
use stormchor_example_primitives::{FlushWal, checkpoint_all};

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Start,
    Balance(u64),
    Verdict(bool),
    Checkpoint,
    Flushed,
}

/// One deposit of `amount` on the worker that runs it.
#[derive(Clone, Debug, ExtensionEffect)]
struct Deposit {
    amount: u64,
}

choreography! {
    /// The parties of the ledger.
    enum Role { Coordinator, Auditor, Worker(u16) }

    /// Deposits, balances, an audit.
    fn ledger(workers: u16, rounds: u64, amount: u64) -> Program<Role, Msg> {
        roles Coordinator, Auditor, Worker[workers];
        Coordinator -> Worker: Msg::Start;
        loop rounds {
            ext Deposit { amount } @ Worker;
        }
        Worker -> Coordinator: Msg::Balance(0);
        Coordinator -> Auditor: Msg::Balance(0);
        choice at Auditor {
            balanced => { Auditor -> Coordinator: Msg::Verdict(true); }
            unbalanced => { Auditor -> Coordinator: Msg::Verdict(false); }
        }
        call checkpoint_all(Coordinator, Worker, Msg::Checkpoint, Msg::Flushed);
    }
}

/// What every role knows and holds.
#[derive(Debug)]
struct Node {
    workers: u16,
    expected_per_worker: u64,
    balance: AtomicU64,
    flushes: AtomicU64,
}

impl RoleLogic<Role, Msg> for Node {
    fn message(state: &RoleState<Role, Msg, Self>, _to: Role, template: &Msg) -> Msg {
        match (template, state.role()) {
            (Msg::Balance(_), Role::Worker(_)) => {
                Msg::Balance(state.data().balance.load(Ordering::SeqCst))
            }
            (Msg::Balance(_), Role::Coordinator) => Msg::Balance(
                (0..state.data().workers)
                    .filter_map(|k| match state.latest_from(&Role::Worker(k)) {
                        Some(Msg::Balance(b)) => Some(b),
                        _ => None,
                    })
                    .sum(),
            ),
            (other, _) => other.clone(),
        }
    }

    fn choose(state: &RoleState<Role, Msg, Self>, labels: Labels<'_, Role, Msg>) -> usize {
        let data = state.data();
        let expected = u64::from(data.workers) * data.expected_per_worker;
        let reported = state.latest_from(&Role::Coordinator);
        let label = if reported == Some(Msg::Balance(expected)) {
            "balanced"
        } else {
            "unbalanced"
        };
        labels.position(label).unwrap_or(0)
    }
}

type State = RoleState<Role, Msg, Node>;

fn registry(skim: Option<u16>) -> Arc<ExtensionRegistry<State>> {
    let mut registry = ExtensionRegistry::new();
    let registered = registry.register_unit::<Deposit, _>(move |state: &State, deposit| {
        Box::pin(async move {
            let skimmed = matches!(state.role(), Role::Worker(k) if Some(k) == skim);
            let kept = if skimmed {
                deposit.amount - 1
            } else {
                deposit.amount
            };
            state.data().balance.fetch_add(kept, Ordering::SeqCst);
            Ok(())
        })
    });
    if let Err(error) = registered {
        unreachable!("a fresh registry has no Deposit handler yet: {error}");
    }
    let registered = registry.register_unit::<FlushWal<Role>, _>(|state: &State, _| {
        Box::pin(async move {
            state.data().flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    });
    if let Err(error) = registered {
        unreachable!("a fresh registry has no FlushWal handler yet: {error}");
    }
    Arc::new(registry)
}

/// Runs the ledger; the auditor's verdict as the coordinator received it.
async fn run(workers: u16, rounds: u64, skim: Option<u16>) -> Result<bool, String> {
    let amount = 10;
    let program = ledger(workers, rounds, amount);
    let registry = registry(skim);
    let report = run_all(
        &program,
        |_| {
            RoleSetup::with_registry(
                Node {
                    workers,
                    expected_per_worker: rounds * amount,
                    balance: AtomicU64::new(0),
                    flushes: AtomicU64::new(0),
                },
                Arc::clone(&registry),
            )
        },
        RunConfig::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some((role, failure)) = report.failures().next() {
        return Err(format!("{role:?} failed: {failure}"));
    }
    for k in 0..workers {
        let flushes = report
            .state(&Role::Worker(k))
            .map(|s| s.data().flushes.load(Ordering::SeqCst));
        if flushes != Some(1) {
            return Err(format!("worker {k} flushed {flushes:?} times, not once"));
        }
    }
    match report
        .state(&Role::Coordinator)
        .and_then(|s| s.latest_from(&Role::Auditor))
    {
        Some(Msg::Verdict(verdict)) => Ok(verdict),
        other => Err(format!("the coordinator got no verdict: {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let workers = value("--workers").map_or(4, |v| v.min(u64::from(u16::MAX)) as u16);
    let rounds = value("--rounds").unwrap_or(3);
    let skim = value("--skim").map(|v| v.min(u64::from(u16::MAX)) as u16);
    if args.iter().any(|a| a == "--diagram") {
        println!("{}", to_mermaid(&ledger(workers, rounds, 10)));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(workers, rounds, skim)) {
        Ok(true) => {
            println!("{workers} workers x {rounds} rounds: the auditor found the ledger balanced");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!(
                "{workers} workers x {rounds} rounds: the auditor found the ledger UNBALANCED"
            );
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::test]
async fn an_honest_ledger_balances_and_a_skimmed_one_does_not() {
    assert_eq!(run(4, 3, None).await, Ok(true));
    assert_eq!(run(4, 3, Some(2)).await, Ok(false));
    assert_eq!(run(1, 0, None).await, Ok(true));
}
