//! The choreography's own cost at scale: a coordinator and 64 worker roles on the
//! in-memory transport, each round the coordinator sends every worker its turn, each
//! worker runs one statement on its own connection and answers; written two ways (a
//! `par` of one part per worker, and a broadcast, one effect at every worker, a
//! gather). The baseline does the
//! same statements on the same connections from 64 plain tokio tasks that meet at a
//! barrier each round (the least synchronisation that keeps rounds apart). Both run on
//! one throwaway cluster, interleaved, in the same run.
//!
//! Run: `cargo bench -p stormchor-benches --bench orchestration`
//! (`ORCHESTRATION_WORKERS=16 ORCHESTRATION_ROUNDS=100` for another shape).
//!
//! Prints the time per round of each, the ratio, the choreography's overhead (time
//! outside database calls that the baseline does not spend) as a fraction of the run,
//! and the share of the workers' time spent in database calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stormchor_choreography::{Program, Projections, project_all};
use stormchor_macros::ExtensionEffect;
use stormchor_postgres::{ClusterOptions, PgCluster};
use stormchor_runtime::{
    EffectFailure, ExtensionRegistry, Interpreter, RoleLogic, RoleState, memory_mesh,
};
use tokio::sync::Barrier;
use tokio_postgres::{Client, Statement};

/// The coordinator; workers are 1..=N.
const COORDINATOR: u16 = 0;

/// One statement at a worker, on its own connection.
#[derive(Clone, Debug, ExtensionEffect)]
struct Statement1(#[participant] u16);

/// The same statement at every worker at once.
#[derive(Clone, Debug, ExtensionEffect)]
struct StatementEach(#[participants] Vec<u16>);

type P = Program<u16, u8>;

/// What each role holds: its connection and the time it spent in database calls.
struct Conn {
    client: Option<Arc<Client>>,
    statement: Option<Statement>,
    in_database_ns: Arc<AtomicU64>,
}

// The defaults: messages carry the program's values, the state is never read.
impl RoleLogic<u16, u8> for Conn {
    const READS_STATE: bool = false;
}

type State = RoleState<u16, u8, Conn>;

fn program(workers: u16, rounds: u64) -> P {
    let turns = (1..=workers).map(|w| {
        P::new()
            .send(COORDINATOR, w, 0)
            .ext(Statement1(w))
            .send(w, COORDINATOR, 1)
    });
    P::new().loop_n(rounds, P::new().par(turns))
}

/// Each round a broadcast of the turn, one effect at every worker, a gather of the
/// answers.
fn program_broadcast(workers: u16, rounds: u64) -> P {
    let all: Vec<u16> = (1..=workers).collect();
    let round = all
        .iter()
        .fold(P::new(), |p, &w| p.send(COORDINATOR, w, 0))
        .ext(StatementEach(all.clone()));
    let round = all.iter().fold(round, |p, &w| p.send(w, COORDINATOR, 1));
    P::new().loop_n(rounds, round)
}

/// Runs the worker's statement on its connection, counting the time in the database.
async fn statement(state: &State) -> Result<(), EffectFailure> {
    let conn = state.data();
    let (Some(client), Some(statement)) = (&conn.client, &conn.statement) else {
        return Err(EffectFailure::permanent("a worker without a connection"));
    };
    let began = Instant::now();
    client
        .query_one(statement, &[])
        .await
        .map_err(|e| EffectFailure::permanent(e.to_string()))?;
    conn.in_database_ns
        .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
    Ok(())
}

fn registry() -> Arc<ExtensionRegistry<State>> {
    let mut registry = ExtensionRegistry::new();
    registry
        .register_unit::<Statement1, _>(|state: &State, _| Box::pin(statement(state)))
        .expect("one handler")
        .register_unit::<StatementEach, _>(|state: &State, _| Box::pin(statement(state)))
        .expect("one handler");
    Arc::new(registry)
}

/// Runs the projections, one interpreter task per role; the wall time.
async fn choreography(
    locals: &Projections<u16, u8>,
    registry: &Arc<ExtensionRegistry<State>>,
    clients: &[(Arc<Client>, Statement)],
    in_database_ns: &Arc<AtomicU64>,
) -> Duration {
    let roles: Vec<u16> = locals.keys().copied().collect();
    let (handlers, _notifier) = memory_mesh::<u16, u8>(&roles);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (local, mut handler) in locals.values().cloned().zip(handlers) {
        let role = *local.role();
        let (client, statement) = match role
            .checked_sub(1)
            .and_then(|k| clients.get(usize::from(k)))
        {
            Some((client, statement)) => (Some(client.clone()), Some(statement.clone())),
            None => (None, None),
        };
        let conn = Conn {
            client,
            statement,
            in_database_ns: in_database_ns.clone(),
        };
        let (registry, roles) = (registry.clone(), roles.clone());
        tasks.push(tokio::spawn(async move {
            let state = RoleState::new(role, roles, conn);
            let interpreter = Interpreter::new(&state, &registry).with_trace(false);
            interpreter.run(&local, &mut handler).await.0.is_ok()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap_or(false), "a role failed");
    }
    started.elapsed()
}

/// The same statements from plain tasks meeting at a barrier each round.
async fn baseline(clients: &[(Arc<Client>, Statement)], rounds: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(clients.len()));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .map(|(client, statement)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    barrier.wait().await;
                    client.query_one(&statement, &[]).await.expect("statement");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("joined");
    }
    started.elapsed()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` lists benchmarks; this one has nothing to list.
        return;
    }
    let workers = u16::try_from(env("ORCHESTRATION_WORKERS", 64)).unwrap_or(64);
    let rounds = env("ORCHESTRATION_ROUNDS", 200);
    let repeats = 5;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let cluster = PgCluster::start(ClusterOptions::default())
            .await
            .expect("cluster");
        let mut clients = Vec::new();
        for _ in 0..workers {
            let client = cluster.connect().await.expect("connect");
            let statement = client
                .prepare("SELECT 1::int4")
                .await
                .expect("prepare");
            clients.push((Arc::new(client), statement));
        }
        let registry = registry();
        let shapes = [
            ("par of turns", project_all(&program(workers, rounds)).expect("sound")),
            ("broadcast+gather", project_all(&program_broadcast(workers, rounds)).expect("sound")),
        ];
        let mut theirs = Vec::new();
        let mut ours: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); shapes.len()];
        for _ in 0..repeats {
            theirs.push(baseline(&clients, rounds).await.as_secs_f64());
            for ((_, locals), (times, in_database)) in shapes.iter().zip(ours.iter_mut()) {
                let spent = Arc::new(AtomicU64::new(0));
                let took = choreography(locals, &registry, &clients, &spent).await;
                times.push(took.as_secs_f64());
                in_database.push(
                    spent.load(Ordering::Relaxed) as f64
                        / 1e9
                        / (took.as_secs_f64() * f64::from(workers)),
                );
            }
        }
        let theirs = median(theirs);
        let per_round = |t: f64| t / rounds as f64 * 1e6;
        println!(
            "{workers} workers + a coordinator, {rounds} rounds, one statement per worker per round, \
             in-memory transport, medians of {repeats} interleaved runs:"
        );
        println!("  plain tasks + barrier  {:>9.1} us per round", per_round(theirs));
        for ((name, _), (times, in_database)) in shapes.iter().zip(ours) {
            let (t, db) = (median(times), median(in_database));
            println!(
                "  {name:<22} {:>9.1} us per round  x{:.2}  overhead {:.1}% of its run  \
                 workers in database calls {:.1}% of their time",
                per_round(t),
                t / theirs,
                (1.0 - theirs / t) * 100.0,
                db * 100.0
            );
        }
        drop(clients);
        // Stopping the server blocks: off the runtime's threads.
        tokio::task::spawn_blocking(move || drop(cluster))
            .await
            .expect("stopped");
    });
}
