//! Projection cost: a program of 1,000, 10,000 and 100,000 effects projected onto 64
//! roles (a coordinator and 63 workers).
//!
//! Run: `cargo bench -p stormchor-benches --bench projection`
//!
//! After criterion's own figures, the summary prints the cost per effect at each size
//! and its ratio to the 1,000-effect cost measured in the same run: a ratio near 1 means
//! the cost grows linearly. The goal is under 50 ms for 10,000 effects on 64 roles.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use stormchor_choreography::{Family, Program, project_all};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Coordinator,
    Worker(u16),
}

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Task(u32),
    Done,
    Commit,
    Abort,
}

const WORKERS: u16 = 63;

/// A deterministic mix of sends, broadcasts, gathers, choices and loops with at least
/// `target` effects (nested effects counted).
fn program(target: usize) -> Program<Role, Msg> {
    let workers = Family::indexed("Worker", WORKERS, Role::Worker);
    let mut state: u64 = 0x5EED;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut program = Program::new().role(Role::Coordinator).family(&workers);
    let mut effects = 0;
    while effects < target {
        let a = Role::Worker(next(u64::from(WORKERS)) as u16);
        let b = Role::Worker(next(u64::from(WORKERS)) as u16);
        program = match next(10) {
            0 => {
                effects += 1;
                program.broadcast(Role::Coordinator, &workers, Msg::Task(1))
            }
            1 => {
                effects += 1;
                program.gather(&workers, Role::Coordinator, Msg::Done)
            }
            2 => {
                // A choice the worker learns from the coordinator: 1 choice + 2 x 2 sends.
                effects += 5;
                program.choice(
                    Role::Coordinator,
                    [
                        (
                            "commit",
                            Program::new().send(Role::Coordinator, a, Msg::Commit).send(
                                a,
                                Role::Coordinator,
                                Msg::Done,
                            ),
                        ),
                        (
                            "abort",
                            Program::new().send(Role::Coordinator, a, Msg::Abort).send(
                                a,
                                Role::Coordinator,
                                Msg::Done,
                            ),
                        ),
                    ],
                )
            }
            3 => {
                effects += 3;
                program.loop_n(
                    2,
                    Program::new()
                        .send(Role::Coordinator, a, Msg::Task(2))
                        .send(a, Role::Coordinator, Msg::Done),
                )
            }
            _ if a != b => {
                effects += 1;
                program.send(a, b, Msg::Task(next(100) as u32))
            }
            _ => {
                effects += 1;
                program.send(Role::Coordinator, a, Msg::Task(0))
            }
        };
    }
    program
}

fn median_time(program: &Program<Role, Msg>, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(
                project_all(black_box(program))
                    .map(|p| p.len())
                    .unwrap_or(0),
            );
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let sizes = [1_000usize, 10_000, 100_000];
    let programs: Vec<_> = sizes.iter().map(|&n| (n, program(n))).collect();

    let mut criterion = Criterion::default().configure_from_args().sample_size(20);
    let mut group = criterion.benchmark_group("project_all_64_roles");
    for (size, program) in &programs {
        let effects = program.counts().total() as u64;
        group.throughput(Throughput::Elements(effects));
        group.bench_with_input(
            BenchmarkId::from_parameter(size),
            program,
            |bench, program| {
                bench.iter(|| {
                    project_all(black_box(program))
                        .map(|p| p.len())
                        .unwrap_or(0)
                });
            },
        );
    }
    group.finish();
    criterion.final_summary();

    println!("\nprojection onto 64 roles, median of repeated runs in this process:");
    let mut base_per_effect = None;
    for (size, program) in &programs {
        let effects = program.counts().total();
        let runs = if *size >= 100_000 { 7 } else { 31 };
        let time = median_time(program, runs);
        let per_effect = time.as_secs_f64() * 1e9 / effects as f64;
        let base = *base_per_effect.get_or_insert(per_effect);
        println!(
            "  {effects:>7} effects: {:>9.3} ms  {:>7.1} ns/effect  x{:.2} the per-effect cost at 1,000",
            time.as_secs_f64() * 1e3,
            per_effect,
            per_effect / base
        );
        if *size == 10_000 {
            println!(
                "           goal < 50 ms: {:.1}% of the budget",
                time.as_secs_f64() * 1e3 / 50.0 * 100.0
            );
        }
    }
}
