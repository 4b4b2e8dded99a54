//! The per-action figures of every stress load reach the scenario's report (typed,
//! JSON and console) with counts that match what the database holds; and a load whose
//! server cannot be reached fails naming it, with no figures made up.

use std::time::Duration;

use serde_json::Value;
use stormchor_choreography::At;
use stormchor_kit::effects::load::stress;
use stormchor_kit::effects::{ServerInfo, Sql, StartServer, StressLoad};
use stormchor_kit::slots::PRIMARY;
use stormchor_kit::{
    Carry, DbEffect, Kit, KitRole, Node, Program, ScenarioOptions, ScenarioReport, run_program,
};
use stormchor_macros::ExtensionEffect;
use stormchor_postgres::ActionRegistry;
use stormchor_runtime::EffectFailure;
use stormchor_workloads::stream_seed;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Role {
    Primary,
    Worker(u16),
}

impl KitRole for Role {
    fn member(&self) -> Option<u16> {
        match self {
            Role::Worker(k) => Some(*k),
            Role::Primary => None,
        }
    }
}

use Role::*;

/// The stress load with a mix whose every success leaves a row of the role's in
/// `counted` (`insert`, weight 3) and whose other action always fails with
/// division_by_zero (`divide`, weight 1); then the rows the role finds there, as the
/// figure `rows_<role>`.
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
struct CountedStress {
    duration: Duration,
}

impl DbEffect for CountedStress {
    type Output = u64;

    async fn run(&self, node: &Node) -> Result<u64, EffectFailure> {
        let failed = |e: &dyn std::fmt::Display| EffectFailure::permanent(e.to_string());
        let mut mix = ActionRegistry::new();
        mix.insert_sql(
            "insert",
            3,
            &format!("INSERT INTO counted VALUES ('{}')", node.role()),
        )
        .map_err(|e| failed(&e))?;
        mix.insert_sql("divide", 1, "SELECT 1/0")
            .map_err(|e| failed(&e))?;
        let ran = stress(node, PRIMARY, self.duration, mix).await?;
        let server = node.value(PRIMARY)?;
        let client = stormchor_postgres::connect(&server.connection)
            .await
            .map_err(|e| failed(&e))?;
        let rows: i64 = client
            .query_one(
                "SELECT count(*) FROM counted WHERE role = $1",
                &[&node.role()],
            )
            .await
            .map_err(|e| failed(&e))?
            .get(0);
        node.journal()
            .figure(&format!("rows_{}", node.role()), rows);
        Ok(ran)
    }
}

/// A server at a port that refuses connections (bound, not listening).
#[derive(Clone, Debug, PartialEq, ExtensionEffect)]
struct ClosedServer {
    port: u16,
}

impl DbEffect for ClosedServer {
    type Output = ServerInfo;

    async fn run(&self, node: &Node) -> Result<ServerInfo, EffectFailure> {
        Ok(ServerInfo {
            owner: node.role().to_owned(),
            connection: format!("host=127.0.0.1 port={} user=postgres", self.port),
            archive: None,
            controlled: false,
        })
    }
}

fn kit() -> Kit<Role> {
    Kit::new()
        .and_then(|kit| kit.with::<CountedStress>())
        .and_then(|kit| kit.with::<ClosedServer>())
        .expect("registers")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn counted_program() -> Program<Role, Carry> {
    let workers = [Worker(0), Worker(1)];
    Program::new()
        .with_roles([Primary, Worker(0), Worker(1)])
        .ext(At::new(
            StartServer::throwaway().into_slot(PRIMARY),
            [Primary],
        ))
        .ext(At::new(
            Sql::ok(PRIMARY, "CREATE TABLE counted (role text)"),
            [Primary],
        ))
        .send(Primary, Worker(0), PRIMARY.carry())
        .send(Primary, Worker(1), PRIMARY.carry())
        .ext(At::new(
            CountedStress {
                duration: Duration::from_millis(1500),
            },
            workers,
        ))
        .send(Worker(0), Primary, Carry::signal("done"))
        .send(Worker(1), Primary, Carry::signal("done"))
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

#[test]
fn every_stress_load_reports_its_actions_with_the_counts_the_database_holds() {
    let options = ScenarioOptions::short();
    let report: ScenarioReport = runtime()
        .block_on(run_program(
            "counted stress",
            &counted_program(),
            &options,
            kit(),
        ))
        .expect("runs");
    let text = report.render();
    assert!(report.success, "{text}");
    let json = report.to_json().expect("the report as JSON");
    assert_eq!(json["revision"], 3);
    let loads = json["stress"].as_array().expect("a list of loads");
    assert_eq!(loads.len(), 2, "one load per worker: {json:#}");
    let mut total = 0;
    for (k, load) in loads.iter().enumerate() {
        let role = format!("Worker({k})");
        assert_eq!(load["role"], role.as_str());
        assert_eq!(load["load"], format!("{role}#0").as_str());
        assert_eq!(
            number(&load["seed"]),
            stream_seed(options.seed, &format!("{role}#0"))
        );
        let insert = &load["actions"]["insert"];
        let divide = &load["actions"]["divide"];
        // Every successful insert is a row in the table, and none failed.
        let rows = number(&json["figures"][format!("rows_{role}")]);
        assert!(rows > 0, "{json:#}");
        assert_eq!(number(&insert["ok"]), rows, "{load:#}");
        assert_eq!(number(&insert["runs"]), rows, "{load:#}");
        assert_eq!(insert["errors"], serde_json::json!({}), "{load:#}");
        // Every division failed, by its SQLSTATE.
        let divided = number(&divide["runs"]);
        assert!(divided > 0, "{load:#}");
        assert_eq!(number(&divide["ok"]), 0, "{load:#}");
        assert_eq!(number(&divide["errors"]["22012"]), divided, "{load:#}");
        // The load's seconds add up to its actions.
        let seconds: u64 = json["load"][&role]
            .as_array()
            .expect("the role's load")
            .iter()
            .map(|s| number(&s["ok"]) + number(&s["errors"]))
            .sum();
        assert_eq!(seconds, rows + divided, "{json:#}");
        total += rows + divided;
        assert!(
            text.contains(&format!("### {role}#0")) && text.contains(&format!("| {role}#0 |")),
            "{text}"
        );
    }
    // Over every load: the figure, the merged actions and the typed report agree.
    assert_eq!(number(&json["figures"]["stress_actions"]), total);
    let merged: u64 = ["insert", "divide"]
        .iter()
        .map(|a| number(&json["actions"][*a]["runs"]))
        .sum();
    assert_eq!(merged, total);
    assert_eq!(report.stress.iter().map(|l| l.runs()).sum::<u64>(), total);
    assert!(
        text.contains("| divide |") && text.contains("22012: "),
        "{text}"
    );
}

#[test]
fn a_stress_load_that_cannot_reach_its_server_fails_naming_it_and_reports_no_actions() {
    // Bound but not listening: connections are refused, and nothing else can take the
    // port while the test runs.
    let runtime = runtime();
    let socket = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        socket
    });
    let port = socket.local_addr().expect("addr").port();
    let program: Program<Role, Carry> = Program::new()
        .with_roles([Worker(0)])
        .ext(At::new(
            ClosedServer { port }.into_slot(PRIMARY),
            [Worker(0)],
        ))
        .ext(At::new(
            StressLoad {
                on: PRIMARY,
                duration: Duration::from_secs(1),
            },
            [Worker(0)],
        ));
    let report = runtime
        .block_on(run_program(
            "unreachable stress",
            &program,
            &ScenarioOptions::short(),
            kit(),
        ))
        .expect("runs");
    drop(socket);
    assert!(!report.success, "{}", report.render());
    let failure = report.roles[0].failure.clone().unwrap_or_default();
    assert!(
        failure.contains(&format!(
            "connecting client 0 to `host=127.0.0.1 port={port} user=postgres` after 51 attempts"
        )),
        "{failure}"
    );
    let json = report.to_json().expect("the report as JSON");
    assert_eq!(json["stress"], serde_json::json!([]), "{json:#}");
    assert_eq!(json["actions"], serde_json::json!({}), "{json:#}");
    assert!(!report.render().contains("## Stress loads"));
}
