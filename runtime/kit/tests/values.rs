//! Typed values between roles and what each role owns, without a database.

use std::sync::Arc;

use stormchor_choreography::At;
use stormchor_kit::{
    Carry, DbEffect, Kit, KitRole, Node, Program, ScenarioOptions, Slot, run_program,
};
use stormchor_macros::ExtensionEffect;
use stormchor_runtime::EffectFailure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Counter,
    Reader,
    Worker(u16),
}

impl KitRole for Role {
    fn member(&self) -> Option<u16> {
        match self {
            Role::Worker(k) => Some(*k),
            _ => None,
        }
    }
}

/// The rows a role "counted": its family index times ten, or 7.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
struct Count;

impl DbEffect for Count {
    type Output = Vec<u64>;

    async fn run(&self, node: &Node) -> Result<Vec<u64>, EffectFailure> {
        Ok(vec![node.member().map_or(7, |k| u64::from(k) * 10)])
    }
}

const ROWS: Slot<Vec<u64>> = Slot::new("rows");

/// Records, as a check, the sum of every ROWS value the role received.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
struct Sum {
    expected: u64,
}

impl DbEffect for Sum {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        let received = node
            .values()
            .from_each(ROWS)
            .map_err(|e| EffectFailure::permanent(e.to_string()))?;
        let sum: u64 = received.iter().flat_map(|(_, rows)| rows).sum();
        node.journal().check(
            "sum",
            sum == self.expected,
            format!("{sum} from {} roles", received.len()),
            Vec::new(),
        );
        Ok(sum)
    }
}

fn kit() -> Kit<Role> {
    Kit::new()
        .and_then(|kit| kit.with::<Count>())
        .and_then(|kit| kit.with::<Sum>())
        .expect("registers")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_produced_value_travels_typed_and_is_read_by_the_receiver() {
    let workers = stormchor_choreography::Family::indexed("Worker", 3, Role::Worker);
    let program: Program<Role, Carry> = Program::new()
        .role(Role::Counter)
        .role(Role::Reader)
        .family(&workers)
        .ext(At::new(Count.into_slot(ROWS), [Role::Counter]))
        .ext(At::new(Count.into_slot(ROWS), workers.members().to_vec()))
        .send(Role::Counter, Role::Reader, ROWS.carry())
        .gather(&workers, Role::Reader, ROWS.carry())
        .ext(At::new(
            Sum {
                expected: 7 + 10 + 20,
            },
            [Role::Reader],
        ));
    let report = runtime()
        .block_on(run_program(
            "values",
            &program,
            &ScenarioOptions::short(),
            kit(),
        ))
        .expect("runs");
    assert!(report.success, "{}", report.render());
    assert_eq!(report.checks[0].summary, "37 from 4 roles");
}

#[test]
fn a_value_sent_before_it_was_produced_is_refused_naming_the_sender_and_the_slot() {
    let program: Program<Role, Carry> = Program::new()
        .role(Role::Counter)
        .role(Role::Reader)
        .send(Role::Counter, Role::Reader, ROWS.carry())
        .ext(At::new(Count.into_slot(ROWS), [Role::Counter]));
    let report = runtime()
        .block_on(run_program(
            "early",
            &program,
            &ScenarioOptions::short(),
            kit(),
        ))
        .expect("runs");
    assert!(!report.success);
    let reader = report
        .roles
        .iter()
        .find(|r| r.role == "Reader")
        .expect("reader");
    let failure = reader.failure.as_deref().expect("failed");
    assert!(
        failure.contains("`rows` without a value: Counter held none when it sent it"),
        "{failure}"
    );
}

#[test]
fn a_sum_that_does_not_hold_fails_the_report() {
    let program: Program<Role, Carry> = Program::new()
        .role(Role::Counter)
        .role(Role::Reader)
        .ext(At::new(Count.into_slot(ROWS), [Role::Counter]))
        .send(Role::Counter, Role::Reader, ROWS.carry())
        .ext(At::new(Sum { expected: 8 }, [Role::Reader]));
    let report = runtime()
        .block_on(run_program(
            "wrong",
            &program,
            &ScenarioOptions::short(),
            kit(),
        ))
        .expect("runs");
    assert!(!report.success, "a failed check fails the report");
}

#[test]
fn every_role_owns_its_data_alone() {
    // Built from the options only: no handle (Arc, catalog, journal, values) is shared.
    let options = ScenarioOptions::short();
    let nodes: Vec<Node> = [None, Some(0), Some(1)]
        .into_iter()
        .enumerate()
        .map(|(i, member)| Node::new(format!("R{i}"), member, &options))
        .collect();
    for node in &nodes {
        assert_eq!(
            Arc::strong_count(node.catalog()),
            1,
            "{} shares its catalog",
            node.role()
        );
    }
    nodes[1].values().put(ROWS, &vec![1]).expect("encodes");
    assert!(nodes[1].values().holds("rows"));
    assert!(!nodes[0].values().holds("rows") && !nodes[2].values().holds("rows"));
    nodes[0].journal().count("kills", 1);
    assert!(nodes[2].journal().counts().is_empty());
    // Members make their objects under their own prefix.
    assert_eq!(nodes[1].catalog().fresh_name("t"), "w0_t1");
    assert_eq!(nodes[2].catalog().fresh_name("t"), "w1_t1");
}
