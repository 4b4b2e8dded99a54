//! Load: the stress mix of DDL/DML on a role's share of the schema, and the ledger
//! writer whose every transaction's outcome is known.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{
    ActionRegistry, Commit, Ledger, LedgerTarget, SqlLog, write_ledger_observed,
};
use stormchor_runtime::{EffectFailure, StartSignal};
use stormchor_workloads::{
    LoadConfig, Observer, OperationDone, OperationMetrics, Stress, Workload, WorkloadRegistry,
    run_load, stream_seed, weights,
};

use super::server::ServerInfo;
use super::{connect, failed};
use crate::effect::DbEffect;
use crate::journal::{ActionRecord, EventKind, Journal, LoadSecond, StressRecord};
use crate::node::{Node, lock};
use crate::value::Slot;

/// Runs the action mix for `duration` on the server in `on`, on this role's catalog
/// (discover it first with [`Discover`](super::Discover)); the output is the number of
/// actions run. Ends early on an interrupt. See [`stress`], which it runs with the
/// role's mix.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::StressLoad;
/// use stormchor_kit::slots::{ACTIONS, PRIMARY};
/// use stormchor_kit::DbEffect;
///
/// // Each worker runs the mix on its own share for 10 s; the count goes to the coordinator.
/// let load = StressLoad { on: PRIMARY, duration: Duration::from_secs(10) }.into_slot(ACTIONS);
/// assert_eq!(load.effect.duration, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct StressLoad {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// How long.
    pub duration: Duration,
}

impl DbEffect for StressLoad {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        stress(node, self.on, self.duration, node.actions.clone()).await
    }
}

/// Runs the actions of `registry` for `duration` on the server in `on`, on this role's
/// catalog, as one client of the load runner (the [`Stress`] workload); returns the
/// number of actions run. The one stress load of the kit: [`StressLoad`] runs it with
/// the role's own mix, the Python binding's `StressLoad(registry=...)` with the
/// registry given.
///
/// Each load of a role draws its own stream ([`stream_seed`] of the run's seed and
/// `Role#n`, the how-manieth load of the role it is), logs its statements to the role's
/// SQL log, ends early on an interrupt, and reconnects through a crash (50 attempts,
/// 200 ms apart, then it fails naming the server). Its outcomes go to the role's
/// journal second by second ([`LoadSecond`]), its return after an outage as an
/// [`EventKind::Resumed`] event, and its figures per action both into the role's
/// actions and as a [`StressRecord`](crate::StressRecord) of its own (the report's
/// `stress`).
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use stormchor_kit::effects::load::stress;
/// use stormchor_kit::slots::PRIMARY;
/// use stormchor_kit::Node;
/// use stormchor_postgres::ActionRegistry;
///
/// # async fn demo(node: &Node) -> Result<(), stormchor_runtime::EffectFailure> {
/// let mut mix = ActionRegistry::new();
/// mix.insert_sql("probe", 1, "SELECT 1").expect("a new name");
/// let ran = stress(node, PRIMARY, Duration::from_secs(1), mix).await?;
/// assert_eq!(node.stress_loads()[0].runs(), ran);
/// # Ok(()) }
/// ```
pub async fn stress(
    node: &Node,
    on: Slot<ServerInfo>,
    duration: Duration,
    registry: ActionRegistry,
) -> Result<u64, EffectFailure> {
    let server = node.value(on)?;
    let journal = node.journal();
    let load = journal.counts().get("stress_loads").copied().unwrap_or(0);
    journal.count("stress_loads", 1);
    let name = format!("{}#{load}", node.role());
    let seed = stream_seed(node.options().seed, &name);
    let log = match node.sql_log_path() {
        Some(path) => SqlLog::to_file(&path).map_err(failed)?,
        None => SqlLog::discard(),
    };
    let mix = Stress::new(registry, node.catalog().clone()).with_sql_log(log);
    let info = mix.info();
    let weights = weights(&info, None).map_err(failed)?;
    let mut config = LoadConfig::new(1, duration);
    config.seed = seed;
    config.stop = crate::interrupt::flag();
    config.reconnect_attempts = Some(50);
    // The client's thread sends each outcome here; this task writes them into the
    // journal as they come.
    let (outcomes, mut observed) = tokio::sync::mpsc::unbounded_channel();
    config.observer = Some(Observer::new(move |done: OperationDone<'_>| {
        let _ = outcomes.send(ActionOutcome {
            action: done.index,
            ok: done.ok,
            latency: done.latency,
            after_reconnect: done.after_reconnect,
        });
    }));
    let names: Vec<&str> = info.operations.iter().map(|o| o.name.as_str()).collect();
    // The mix's errors (a serialization failure, a table another worker dropped)
    // are its normal life: only a lost connection is an outage.
    let mut seconds = LoadSeconds::new(journal, false);
    let run = run_load(Arc::new(mix), &server.connection, &weights, config);
    tokio::pin!(run);
    let report = loop {
        tokio::select! {
            Some(outcome) = observed.recv() => seconds.observe_action(&names, outcome),
            report = &mut run => break report,
        }
    };
    while let Ok(outcome) = observed.try_recv() {
        seconds.observe_action(&names, outcome);
    }
    seconds.flush();
    let report = report.map_err(failed)?;
    let runs = report.runs();
    journal.count("stress_actions", runs);
    let actions: BTreeMap<String, ActionRecord> = report
        .operations
        .iter()
        .filter(|(_, metrics)| metrics.runs() > 0)
        .map(|(action, metrics)| (action.clone(), action_record(metrics)))
        .collect();
    for (action, record) in &actions {
        journal.action(action, record);
    }
    journal.stress(StressRecord {
        role: node.role().to_owned(),
        load: name,
        seed,
        elapsed_s: report.elapsed.as_secs_f64(),
        reconnects: report.reconnects,
        actions,
    });
    Ok(runs)
}

/// The report's record of one action's figures.
fn action_record(metrics: &OperationMetrics) -> ActionRecord {
    ActionRecord {
        runs: metrics.runs(),
        ok: metrics.count,
        errors: metrics.errors.clone(),
        p50_us: metrics.latency.value_at_quantile(0.5),
        p99_us: metrics.latency.value_at_quantile(0.99),
    }
}

/// How one action of a stress load ended, on its way from the client's thread.
struct ActionOutcome {
    /// Its index among the mix's actions.
    action: usize,
    ok: bool,
    latency: Duration,
    after_reconnect: bool,
}

/// Writes ledger transactions (3 rows each) to the server in `on` for `duration`,
/// reconnecting through crashes; the output is what this call wrote (one round: the
/// transactions numbered on from the previous round's), to send to the verifier, which
/// adds up every round each writer sent. The role keeps the whole ledger
/// ([`Node::ledger`]). Only members of a family write (their index is the writer's
/// number).
///
/// Started with `ext start` (and finished with `ext finish`), it counts as started at
/// its first acknowledged commit: the steps the program puts after the start (a kill,
/// a backup) come once the load is running.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::WriteLedger;
/// use stormchor_kit::slots::{LEDGER, PRIMARY};
/// use stormchor_kit::DbEffect;
///
/// let write = WriteLedger { on: PRIMARY, duration: Duration::from_secs(2) }.into_slot(LEDGER);
/// assert_eq!(format!("{write:?}"), format!("{:?} => ledger", write.effect));
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct WriteLedger {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// How long.
    pub duration: Duration,
}

impl DbEffect for WriteLedger {
    type Output = Ledger;

    async fn run(&self, node: &Node) -> Result<Ledger, EffectFailure> {
        // Started with `ext start`, the load counts as started at its first
        // acknowledged commit (taken before any wait, or it would count from that).
        let mut signal = StartSignal::take();
        let server = node.value(self.on)?;
        let mut whole = lock(&node.ledger).clone();
        if whole.rows_per_tx == 0 {
            let Some(k) = node.member() else {
                return Err(EffectFailure::permanent(format!(
                    "{} is no member of a family: only members write the ledger",
                    node.role()
                )));
            };
            whole = Ledger::new(i32::from(k), 3);
        }
        let mut round = whole.continuation();
        let target = LedgerTarget::new(server.connection);
        let mut seconds = LoadSeconds::new(
            node.journal(),
            node.ledger_outage
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        write_ledger_observed(
            &mut round,
            &target,
            self.duration,
            &crate::interrupt::flag(),
            |commit| {
                if commit.acknowledged {
                    drop(signal.take());
                }
                seconds.observe(commit)
            },
        )
        .await;
        seconds.flush();
        node.ledger_outage
            .store(seconds.outage, std::sync::atomic::Ordering::Relaxed);
        whole.absorb(round.clone());
        *lock(&node.ledger) = whole;
        Ok(round)
    }
}

/// A load's outcomes (ledger commits, or actions of the stress mix), second by second,
/// into its journal; and the moment it is back after an outage (a lost connection, or
/// ledger commits failing), as an [`EventKind::Resumed`] event.
struct LoadSeconds<'a> {
    journal: &'a Journal,
    second: u32,
    ok: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    /// Since the last acknowledged commit, the connection was lost or a commit failed.
    outage: bool,
}

impl<'a> LoadSeconds<'a> {
    /// Seconds of `journal`'s role, which starts in an outage when its last round
    /// ended in one.
    fn new(journal: &'a Journal, outage: bool) -> Self {
        LoadSeconds {
            journal,
            second: second_of(journal),
            ok: 0,
            errors: 0,
            latencies_us: Vec::new(),
            outage,
        }
    }

    /// A ledger transaction: one that failed or whose outcome is unknown starts an
    /// outage, the next acknowledged one ends it.
    fn observe(&mut self, commit: Commit) {
        self.next_second();
        self.outage |= commit.after_reconnect;
        if commit.acknowledged {
            self.succeeded(commit.latency, || {
                format!("acknowledged commit (transaction {})", commit.tx)
            });
        } else {
            self.errors += 1;
            self.outage = true;
        }
    }

    /// An action of the stress mix (named in `names`): only a lost connection starts
    /// an outage (its errors are part of the mix), the next successful action ends it.
    fn observe_action(&mut self, names: &[&str], done: ActionOutcome) {
        self.next_second();
        self.outage |= done.after_reconnect;
        if done.ok {
            self.succeeded(done.latency, || {
                let action = names.get(done.action).copied().unwrap_or("?");
                format!("successful action ({action})")
            });
        } else {
            self.errors += 1;
        }
    }

    /// Flushes the second before, when the run has moved on to another one.
    fn next_second(&mut self) {
        let now = second_of(self.journal);
        if now != self.second {
            self.flush();
            self.second = now;
        }
    }

    /// Counts a success, and ends an outage with an [`EventKind::Resumed`] event.
    fn succeeded(&mut self, latency: Duration, what: impl FnOnce() -> String) {
        self.ok += 1;
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        if std::mem::take(&mut self.outage) {
            self.journal.event(
                EventKind::Resumed,
                format!("{}: first {} after an outage", self.journal.role(), what()),
            );
        }
    }

    /// Writes the second so far into the journal.
    fn flush(&mut self) {
        if self.ok + self.errors == 0 {
            return;
        }
        self.latencies_us.sort_unstable();
        let at = |q: f64| {
            let last = self.latencies_us.len().saturating_sub(1);
            self.latencies_us
                .get((last as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        self.journal.load_second(LoadSecond {
            second: self.second,
            ok: self.ok,
            errors: self.errors,
            p50_us: at(0.5),
            p99_us: at(0.99),
        });
        self.ok = 0;
        self.errors = 0;
        self.latencies_us.clear();
    }
}

/// The second of the run it is now at `journal`.
fn second_of(journal: &Journal) -> u32 {
    u32::try_from(journal.elapsed().as_secs()).unwrap_or(u32::MAX)
}

/// What a [`RunWorkload`] did.
///
/// # Example
/// ```
/// use stormchor_kit::effects::WorkloadSummary;
///
/// let summary = WorkloadSummary { workload: "tpcb".into(), operations: 1200, errors: 0, per_second: 240.0 };
/// assert_eq!(summary.operations as f64 / summary.per_second, 5.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSummary {
    /// The workload.
    pub workload: String,
    /// Successful operations.
    pub operations: u64,
    /// Failed operations.
    pub errors: u64,
    /// Successful operations per second.
    pub per_second: f64,
}

/// Runs a registered workload (`tpcb`, `read-only`, `ecommerce`, `stress`, or one an
/// author registered in a [`WorkloadRegistry`]) on the server in `on` with `clients`
/// clients for `duration`, setting it up first when `setup` is set; its figures go
/// into the report. Ends early on an interrupt.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use stormchor_kit::effects::RunWorkload;
/// use stormchor_kit::slots::PRIMARY;
///
/// let tpcb = RunWorkload::builtin(PRIMARY, "tpcb", 2, Duration::from_secs(5));
/// assert!(tpcb.setup);
/// ```
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
pub struct RunWorkload {
    /// The server.
    pub on: Slot<ServerInfo>,
    /// The workload's name.
    pub workload: &'static str,
    /// Concurrent clients.
    pub clients: usize,
    /// How long.
    pub duration: Duration,
    /// Set the workload up (create and fill its tables) first.
    pub setup: bool,
}

impl RunWorkload {
    /// A built-in workload, set up first, with its default weights.
    pub fn builtin(
        on: Slot<ServerInfo>,
        workload: &'static str,
        clients: usize,
        duration: Duration,
    ) -> Self {
        RunWorkload {
            on,
            workload,
            clients,
            duration,
            setup: true,
        }
    }
}

impl DbEffect for RunWorkload {
    type Output = WorkloadSummary;

    async fn run(&self, node: &Node) -> Result<WorkloadSummary, EffectFailure> {
        let server = node.value(self.on)?;
        let workload = WorkloadRegistry::with_builtins()
            .create(self.workload)
            .map_err(failed)?;
        if self.setup {
            let mut client = connect(&server.connection).await?;
            workload.setup(&mut client).await.map_err(failed)?;
        }
        let weights = weights(&workload.info(), None).map_err(failed)?;
        let mut config = LoadConfig::new(self.clients.max(1), self.duration);
        config.seed = node.options().seed;
        config.stop = crate::interrupt::flag();
        let report = run_load(Arc::from(workload), &server.connection, &weights, config)
            .await
            .map_err(failed)?;
        let (operations, errors) = (report.successes(), report.failures());
        let per_second = report.throughput();
        let journal = node.journal();
        journal.count(&format!("{}_operations", self.workload), operations);
        journal.count(&format!("{}_errors", self.workload), errors);
        journal.figure(&format!("{}_per_second", self.workload), per_second.round());
        Ok(WorkloadSummary {
            workload: self.workload.to_owned(),
            operations,
            errors,
            per_second,
        })
    }
}
