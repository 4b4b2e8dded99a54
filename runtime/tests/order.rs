//! Effect order at run time: random programs of extension effects on random roles,
//! run with `run_all` (in memory and over TCP); the effects' start and finish, stamped
//! from one counter shared by all roles, follow the program's order.

#[path = "../../choreography/tests/common/mod.rs"]
mod common;

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backup, Coordinator, Msg, Role, Worker};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stormchor_choreography::{ExtensionEffect, Program};
use stormchor_runtime::tcp::run_all_over_tcp;
use stormchor_runtime::{
    EventKind, ExtensionRegistry, RoleLogic, RoleSetup, RoleState, RunConfig, run_all,
};

type P = Program<Role, Msg>;

/// An ordered effect with an id, carried out by `on`.
#[derive(Clone, Debug)]
struct Step {
    id: usize,
    on: Vec<Role>,
}

impl ExtensionEffect for Step {
    fn effect_type_id(&self) -> TypeId {
        TypeId::of::<Self>()
    }
    fn type_name(&self) -> &'static str {
        "Step"
    }
    fn participating_role_ids(&self) -> Vec<Box<dyn Any>> {
        self.on
            .iter()
            .map(|r| Box::new(*r) as Box<dyn Any>)
            .collect()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn ExtensionEffect> {
        Box::new(self.clone())
    }
}

/// One effect run: which, where, and its start and finish stamps.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: usize,
    role: Role,
    start: u64,
    finish: u64,
}

#[derive(Clone, Default)]
struct Shared {
    clock: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<Entry>>>,
}

impl RoleLogic<Role, Msg> for Shared {}

fn registry() -> Arc<ExtensionRegistry<RoleState<Role, Msg, Shared>>> {
    let mut registry = ExtensionRegistry::new();
    registry
        .register_unit::<Step, _>(|state: &RoleState<Role, Msg, Shared>, step| {
            Box::pin(async move {
                let shared = state.data();
                let start = shared.clock.fetch_add(1, Ordering::SeqCst);
                // Give the other roles every chance to run in between.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                let finish = shared.clock.fetch_add(1, Ordering::SeqCst);
                shared
                    .log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Entry {
                        id: step.id,
                        role: state.role(),
                        start,
                        finish,
                    });
                Ok(())
            })
        })
        .expect("one handler");
    Arc::new(registry)
}

/// A step of an effect's place in the generated program.
#[derive(Clone, Debug, PartialEq)]
enum Place {
    Index(usize),
    Part(usize),
    /// A loop of this many rounds.
    Loop(u64),
}

/// Where each effect is, by id, and its roles.
type Places = Vec<(Vec<Place>, Vec<Role>)>;

/// An instance's unfolded place: (kind, index or round) per step.
type Unfolded = Vec<(u8, u64)>;

/// Builds random programs and remembers where each effect is.
struct Generator {
    rng: SmallRng,
    places: Places,
}

const ROLES: [Role; 5] = [Coordinator, Backup, Worker(0), Worker(1), Worker(2)];

impl Generator {
    fn seq(&mut self, scope: &[Role], place: &mut Vec<Place>, depth: usize) -> P {
        let mut program = P::new();
        let len = self.rng.random_range(1..5);
        for index in 0..len {
            place.push(Place::Index(index));
            let kind = self.rng.random_range(0..10);
            program = match kind {
                9 if depth < 3 => program.timeout(
                    scope[0],
                    Duration::from_secs(30),
                    self.seq(scope, place, depth + 1),
                ),
                _ if kind <= 4 || depth >= 3 || scope.len() < 2 => {
                    let mut on: Vec<Role> = scope
                        .iter()
                        .copied()
                        .filter(|_| self.rng.random_bool(0.4))
                        .collect();
                    if on.is_empty() {
                        on.push(scope[self.rng.random_range(0..scope.len())]);
                    }
                    let id = self.places.len();
                    self.places.push((place.clone(), on.clone()));
                    program.ext(Step { id, on })
                }
                5..=6 => {
                    let a = self.rng.random_range(0..scope.len());
                    let b = (a + self.rng.random_range(1..scope.len())) % scope.len();
                    program.send(scope[a], scope[b], Msg::Start)
                }
                7 => {
                    let rounds = self.rng.random_range(2..4);
                    place.push(Place::Loop(rounds));
                    let body = self.seq(scope, place, depth + 1);
                    place.pop();
                    program.loop_n(rounds, body)
                }
                _ => {
                    // Parts on disjoint roles.
                    let split = self.rng.random_range(1..scope.len());
                    let (left, right) = scope.split_at(split);
                    let mut parts = Vec::new();
                    for (i, sub) in [left, right].into_iter().enumerate() {
                        place.push(Place::Part(i));
                        parts.push(self.seq(sub, place, depth + 1));
                        place.pop();
                    }
                    program.par(parts)
                }
            };
            place.pop();
        }
        program
    }
}

/// The unfolded place of the `k`-th instance (counted from 0) of an effect at `place`.
fn unfold(place: &[Place], mut k: u64) -> Unfolded {
    let loops: Vec<u64> = place
        .iter()
        .filter_map(|p| match p {
            Place::Loop(n) => Some(*n),
            _ => None,
        })
        .collect();
    let mut rounds = vec![0; loops.len()];
    for (slot, n) in rounds.iter_mut().zip(&loops).rev() {
        *slot = k % n;
        k /= n;
    }
    let mut rounds = rounds.into_iter();
    place
        .iter()
        .map(|p| match p {
            Place::Index(i) => (0, *i as u64),
            Place::Part(i) => (1, *i as u64),
            Place::Loop(_) => (2, rounds.next().unwrap_or(0)),
        })
        .collect()
}

/// Whether the program puts `a` before `b`: at the first difference, a lower index of a
/// sequence or an earlier round; parts of a par are not ordered.
fn before(a: &[(u8, u64)], b: &[(u8, u64)]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.0 == y.0 && x.0 != 1 && x.1 < y.1;
        }
    }
    false
}

/// Checks a run's log against the program's order; the first violation, if any.
fn violation(places: &Places, log: &[Entry]) -> Option<String> {
    // Every effect ran once per round of its loops at each of its roles.
    for (id, (place, on)) in places.iter().enumerate() {
        let rounds: u64 = place
            .iter()
            .map(|p| match p {
                Place::Loop(n) => *n,
                _ => 1,
            })
            .product();
        let runs = log.iter().filter(|e| e.id == id).count() as u64;
        if runs != rounds * on.len() as u64 {
            return Some(format!(
                "effect {id} ran {runs} times, not {}",
                rounds * on.len() as u64
            ));
        }
    }
    // Instance k of an effect at a role is that role's k-th run of it.
    let mut seen: BTreeMap<(usize, Role), u64> = BTreeMap::new();
    let mut instances: BTreeMap<(usize, u64), Vec<Entry>> = BTreeMap::new();
    let mut sorted = log.to_vec();
    sorted.sort_by_key(|e| e.start);
    for entry in sorted {
        let k = seen.entry((entry.id, entry.role)).or_insert(0);
        instances.entry((entry.id, *k)).or_default().push(entry);
        *k += 1;
    }
    let keyed: Vec<(Unfolded, &Vec<Entry>, usize)> = instances
        .iter()
        .map(|((id, k), entries)| (unfold(&places[*id].0, *k), entries, *id))
        .collect();
    for (key, entries, id) in &keyed {
        if entries.len() != places[*id].1.len() {
            return Some(format!(
                "effect {id} ran at {} of its {} roles",
                entries.len(),
                places[*id].1.len()
            ));
        }
        for (other, later, later_id) in &keyed {
            if !before(key, other) {
                continue;
            }
            let finished = entries.iter().map(|e| e.finish).max().unwrap_or(0);
            let started = later.iter().map(|e| e.start).min().unwrap_or(u64::MAX);
            if started < finished {
                return Some(format!(
                    "effect {later_id} {other:?} started at {started}, before effect {id} {key:?} finished at {finished}"
                ));
            }
        }
    }
    None
}

fn generate(seed: u64) -> (P, Places) {
    let mut generator = Generator {
        rng: SmallRng::seed_from_u64(seed),
        places: Vec::new(),
    };
    let program = generator.seq(&ROLES, &mut Vec::new(), 0).with_roles(ROLES);
    (program, generator.places)
}

fn setup(shared: &Shared) -> impl FnMut(Role) -> RoleSetup<Role, Msg, Shared> + '_ {
    let registry = registry();
    move |_| RoleSetup::with_registry(shared.clone(), registry.clone())
}

#[test]
fn the_order_check_catches_a_violation() {
    let places = vec![
        (vec![Place::Index(0)], vec![Coordinator]),
        (vec![Place::Index(1)], vec![Backup]),
    ];
    let ordered = [
        Entry {
            id: 0,
            role: Coordinator,
            start: 0,
            finish: 1,
        },
        Entry {
            id: 1,
            role: Backup,
            start: 2,
            finish: 3,
        },
    ];
    assert_eq!(violation(&places, &ordered), None);
    let overlapping = [
        Entry {
            id: 0,
            role: Coordinator,
            start: 0,
            finish: 2,
        },
        Entry {
            id: 1,
            role: Backup,
            start: 1,
            finish: 3,
        },
    ];
    assert!(violation(&places, &overlapping).is_some());
    let missing = [Entry {
        id: 0,
        role: Coordinator,
        start: 0,
        finish: 1,
    }];
    assert!(violation(&places, &missing).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_programs_run_in_program_order_in_memory() {
    let mut effects = 0;
    for seed in 0..300 {
        let (program, places) = generate(seed);
        let shared = Shared::default();
        let report = run_all(
            &program,
            setup(&shared),
            RunConfig::default().with_deadline(Duration::from_secs(30)),
        )
        .await
        .expect("sound program");
        assert!(
            report.is_success(),
            "seed {seed}: {:?}",
            report.failures().collect::<Vec<_>>()
        );
        let log = shared.log.lock().expect("log").clone();
        effects += log.len();
        if let Some(problem) = violation(&places, &log) {
            panic!("seed {seed}: {problem}\n{program:#?}");
        }
    }
    assert!(effects >= 1_000, "only {effects} effects ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_programs_run_in_program_order_over_tcp() {
    for seed in 0..15 {
        let (program, places) = generate(1_000 + seed);
        let shared = Shared::default();
        let report = run_all_over_tcp(
            &program,
            setup(&shared),
            RunConfig::default().with_deadline(Duration::from_secs(30)),
            Duration::from_secs(10),
        )
        .await
        .expect("sound program");
        let mut frames = 0;
        for (role, outcome) in report.outcomes {
            assert!(
                outcome.result.is_ok(),
                "seed {seed}, {role:?}: {:?}",
                outcome.result
            );
            frames += outcome
                .trace
                .iter()
                .filter(|e| matches!(e.kind, EventKind::OrderReceived { .. }))
                .count();
        }
        let log = shared.log.lock().expect("log").clone();
        if let Some(problem) = violation(&places, &log) {
            panic!("seed {seed}: {problem}\n{program:#?}");
        }
        let needed = stormchor_choreography::order_frames(&program)
            .expect("sound")
            .total();
        assert!(
            needed == 0 || frames > 0,
            "seed {seed}: no order frame arrived"
        );
    }
}
