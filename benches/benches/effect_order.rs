//! The cost of effect order: a 1,000-step program whose steps are extension effects
//! alternating between 4 roles, ordered by the order frames projection inserts,
//! against the same program with a hand-written hand-off message after every step.
//!
//! Run: `cargo bench -p stormchor-benches --bench effect_order`
//!
//! Prints the control frames per step of each program, the time per step of running
//! the projections in memory (4 interpreters on a current-thread runtime), and the
//! time to project each program.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use stormchor_choreography::{Program, Projections, order_frames, project_all};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::{ExtensionRegistry, Interpreter, RoleState, memory_mesh};
use tokio::runtime::{Builder, Runtime};

const STEPS: u8 = 4;
const LENGTH: usize = 1_000;

#[derive(Clone, Debug, ExtensionEffect)]
struct Work(#[participant] u8);

type P = Program<u8, u64>;

/// Effects alternating between the roles; effect order hands over.
fn ordered() -> P {
    (0..LENGTH).fold(P::new(), |p, i| p.ext(Work(i as u8 % STEPS)))
}

/// The same effects, each followed by a "your turn" message to the next role.
fn hand_written() -> P {
    (0..LENGTH).fold(P::new(), |p, i| {
        let (me, next) = (i as u8 % STEPS, (i as u8 + 1) % STEPS);
        let p = p.ext(Work(me));
        if i + 1 < LENGTH {
            p.send(me, next, 0)
        } else {
            p
        }
    })
}

fn registry() -> Arc<ExtensionRegistry<RoleState<u8, u64, ()>>> {
    let mut registry = ExtensionRegistry::new();
    registry
        .register_unit::<Work, _>(|_, _| Box::pin(async { Ok(()) }))
        .expect("one handler");
    Arc::new(registry)
}

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

type Registry = Arc<ExtensionRegistry<RoleState<u8, u64, ()>>>;

/// Runs the projections: one interpreter per role, each in its own task.
async fn run(locals: &Projections<u8, u64>, registry: &Registry) {
    let roles: Vec<u8> = locals.keys().copied().collect();
    let (handlers, _notifier) = memory_mesh::<u8, u64>(&roles);
    let mut tasks = Vec::new();
    for (local, mut handler) in locals.values().cloned().zip(handlers) {
        let (registry, roles) = (registry.clone(), roles.clone());
        tasks.push(tokio::spawn(async move {
            let state = RoleState::new(*local.role(), roles, ());
            let interpreter = Interpreter::new(&state, &registry).with_trace(false);
            interpreter.run(&local, &mut handler).await.0.is_ok()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap_or(false), "a role failed");
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn per_step(rt: &Runtime, locals: &Projections<u8, u64>, registry: &Registry) -> f64 {
    median(
        (0..15)
            .map(|_| {
                let started = Instant::now();
                rt.block_on(run(locals, registry));
                started.elapsed().as_nanos() as f64 / LENGTH as f64
            })
            .collect(),
    )
}

fn projection_time(program: &P) -> Duration {
    Duration::from_nanos(median(
        (0..15)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(project_all(program).expect("sound"));
                started.elapsed().as_nanos() as f64
            })
            .collect(),
    ) as u64)
}

fn main() {
    let rt = runtime();
    let registry = registry();
    let (ordered, hand_written) = (ordered(), hand_written());
    let (ordered_locals, hand_locals) = (
        project_all(&ordered).expect("sound"),
        project_all(&hand_written).expect("sound"),
    );
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut group = criterion.benchmark_group("effects_1000_steps_4_roles");
    group.bench_function("effect_order", |b| {
        b.iter(|| rt.block_on(run(&ordered_locals, &registry)))
    });
    group.bench_function("hand_written_hand_offs", |b| {
        b.iter(|| rt.block_on(run(&hand_locals, &registry)))
    });
    group.finish();
    criterion.final_summary();

    let frames = |p: &P| order_frames(p).expect("sound").total() as f64 / LENGTH as f64;
    let messages = |p: &P| p.counts().messages as f64 / LENGTH as f64;
    let (t_ordered, t_hand) = (
        per_step(&rt, &ordered_locals, &registry),
        per_step(&rt, &hand_locals, &registry),
    );
    println!("\n{LENGTH} steps alternating between {STEPS} roles, medians of 15 runs:");
    println!(
        "  effect order        {:.3} order frames + {:.3} messages per step, {t_ordered:>7.1} ns per step",
        frames(&ordered),
        messages(&ordered)
    );
    println!(
        "  hand-written        {:.3} order frames + {:.3} messages per step, {t_hand:>7.1} ns per step",
        frames(&hand_written),
        messages(&hand_written)
    );
    println!("  ratio               x{:.2}", t_ordered / t_hand);
    println!(
        "  projection          {:?} with effect order, {:?} hand-written",
        projection_time(&ordered),
        projection_time(&hand_written)
    );
}
